"""Flows `build_network` and `refresh_seeds`: observe the citation network around seed articles.

One observation of a seed: links (elink) for the seed, then hop by hop for the members it
reaches, members capped by ``max_nodes``; records (efetch) for members the warehouse lacks; then
edges, similar articles, members and per-member link counts merged with first_seen/last_seen.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from litmeta.flows.client import DocumentBuffer, make_client, retry_transient
from litmeta.flows.network_plan import Links, NetworkPlan
from litmeta.flows.pipeline import fetch_and_load_pubmed, store_documents
from litmeta.flows.runs import tracked_run
from litmeta.schemas import RowSink
from litmeta.warehouse.db import crash_point, session
from litmeta.warehouse.load import utcnow
from litmeta.warehouse.network import (
    known_pmids,
    merge_citation_edges,
    merge_members,
    merge_similar,
    register_seed,
    touch_seed,
    tracked_seeds,
    write_link_snapshots,
)

LINKNAMES = {"refs": "pubmed_pubmed_refs", "cited_by": "pubmed_pubmed_citedin"}


@task(name="fetch-links", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5,
      retry_condition_fn=retry_transient)
def fetch_links(client, pmids: list[int], relations: list[str]) -> dict[int, Links]:
    """elink for ``pmids``: references and citing articles in one pass, scored similar in another."""
    out = {p: Links() for p in pmids}
    if not pmids:
        return out
    names = [LINKNAMES[r] for r in ("refs", "cited_by") if r in relations]
    if names:
        got = client.elink(pmids, linknames=names)
        for p in pmids:
            if "refs" in relations:
                out[p].refs = got.get(LINKNAMES["refs"], {}).get(p, [])
            if "cited_by" in relations:
                out[p].cited_by = got.get(LINKNAMES["cited_by"], {}).get(p, [])
    if "similar" in relations:
        for p, similar in client.elink_similar(pmids).items():
            if p in out:
                out[p].similar = list(similar)
    return out


@task(name="fetch-records", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5,
      retry_condition_fn=retry_transient)
def fetch_records(client, db: str, run_id: str, pmids: list[int]):
    with session(db) as con:
        have = known_pmids(con, pmids)
    return fetch_and_load_pubmed(client, db, run_id, [p for p in pmids if p not in have])


def _observation_rows(seed: int, plan: NetworkPlan, links: dict[int, Links], relations: list[str],
                      former: set[int]) -> dict:
    """Arrow tables of one observation. ``former`` members (no longer reached) are observed, not re-joined."""
    sink = RowSink(["citation_edges", "similar_articles", "network_members", "link_snapshots"])
    rows = sink.rows
    for pmid in sorted(set(plan.members) | former):
        m = plan.members.get(pmid)
        if m is not None:
            rows["network_members"].append((seed, pmid, m.hop, m.via))
        ln = links.get(pmid)
        if ln is None:
            continue
        for r in dict.fromkeys(ln.refs):
            rows["citation_edges"].append((pmid, r, "elink_refs"))
        for c in dict.fromkeys(ln.cited_by):
            rows["citation_edges"].append((c, pmid, "elink_citedin"))
        ranked = ln.top_similar(len(ln.similar))
        scores = dict(ln.similar)
        for rank, s in enumerate(ranked, 1):
            rows["similar_articles"].append((pmid, s, scores.get(s), rank))
        rows["link_snapshots"].append((
            pmid, "", seed, None,
            len(ln.cited_by) if "cited_by" in relations else None,
            len(ln.refs) if "refs" in relations else None,
            len(ln.similar) if "similar" in relations else None,
        ))
    return sink.to_arrow()


def observe_seed(client, docs: DocumentBuffer, db: str, run_id: str, seed: int, depth: int,
                 relations: list[str], max_nodes: int | None, similar_top: int) -> dict:
    """One observation of one seed's network; returns counts for the run summary."""
    now = utcnow()
    with session(db) as con:
        register_seed(con, seed, depth, relations, max_nodes, similar_top, now)
        previous = {r[0] for r in con.execute(
            "SELECT pmid FROM network_members WHERE seed_pmid = ?", [seed]).fetchall()}
    plan = NetworkPlan(seed, relations, similar_top, max_nodes)
    links: dict[int, Links] = {}
    for hop in range(depth + 1):
        need = [p for p in plan.frontier(hop) if p not in links]
        if hop == depth:  # former members no longer reached are still observed (their links, link counts)
            need += sorted(p for p in previous if p not in plan.members and p not in links)
        links.update(fetch_links(client, need, relations))
        store_documents(db, run_id, docs.drain())
        if hop < depth:
            plan.expand(hop, links)
    stats, not_found = fetch_records(client, db, run_id, sorted(plan.members))
    store_documents(db, run_id, docs.drain())
    crash_point("after-records")  # test-only hook (LITMETA_CRASH_AT)
    former = {p for p in previous if p not in plan.members}
    tables = _observation_rows(seed, plan, links, relations, former)
    observed = utcnow()
    with session(db) as con:
        con.execute("BEGIN TRANSACTION")
        edges_new = merge_citation_edges(con, tables["citation_edges"], observed)
        similar_new = merge_similar(con, tables["similar_articles"], observed)
        members_new = merge_members(con, tables["network_members"], observed)
        write_link_snapshots(con, tables["link_snapshots"], run_id, observed)
        touch_seed(con, seed, observed)
        crash_point("edges")  # test-only hook (LITMETA_CRASH_AT): observation written, not committed
        con.execute("COMMIT")
    return {
        "stats": stats,
        "seed": seed,
        "members": len(plan.members),
        "former_members_observed": len(former),
        "members_by_hop_via": plan.counts(),
        "members_new": members_new,
        "link_edges_new": edges_new,
        "similar_new": similar_new,
        "not_found": not_found,
        "started": now,
    }


def _record(rec, result: dict) -> None:
    rec.stats.add(result.pop("stats"))
    rec.stats.edges_new += result["link_edges_new"]
    seeds = rec.extra.setdefault("seeds", {})
    seeds[str(result["seed"])] = {
        "members": result["members"], "members_new": result["members_new"],
        "link_edges_new": result["link_edges_new"], "similar_new": result["similar_new"],
        "members_by_hop_via": result["members_by_hop_via"], "not_found": len(result["not_found"]),
    }
    rec.extra["members"] = rec.extra.get("members", 0) + result["members"]
    rec.extra["not_found"] = rec.extra.get("not_found", 0) + len(result["not_found"])


@flow(name="build_network")
def build_network(seed: int, db: str, eutils_url: str, depth: int = 1,
                  relations: tuple[str, ...] = ("refs", "cited_by", "similar"), max_nodes: int | None = None,
                  similar_top: int = 5, email: str | None = None, tool: str = "litmeta",
                  record_snapshot: str | None = None) -> dict:
    """Register ``seed`` and build (or refresh) its network."""
    params = {"seed": seed, "depth": depth, "relations": list(relations), "max_nodes": max_nodes,
              "similar_top": similar_top, "db": db, "eutils_url": eutils_url, "email": email, "tool": tool}
    with tracked_run("build_network", db, params) as rec:
        docs = DocumentBuffer()
        client = make_client(eutils_url, email, tool, record_snapshot, docs)
        try:
            _record(rec, observe_seed(client, docs, db, rec.run_id, seed, depth, list(relations), max_nodes,
                                      similar_top))
        finally:
            rec.http_requests = client.stats.requests
            client.close()
    return rec.extra["summary"]


@flow(name="refresh_seeds")
def refresh_seeds(db: str, eutils_url: str, seed: int | None = None, email: str | None = None,
                  tool: str = "litmeta", record_snapshot: str | None = None) -> dict:
    """Re-observe every tracked seed (or one) with the parameters it was registered with."""
    with session(db) as con:
        seeds = tracked_seeds(con, seed)
    params = {"seed": seed, "db": db, "eutils_url": eutils_url, "email": email, "tool": tool}
    with tracked_run("refresh_seeds", db, params) as rec:
        docs = DocumentBuffer()
        client = make_client(eutils_url, email, tool, record_snapshot, docs)
        try:
            for s in seeds:
                _record(rec, observe_seed(client, docs, db, rec.run_id, s["seed"], s["depth"], s["relations"],
                                          s["max_nodes"], s["similar_top"]))
        finally:
            rec.http_requests = client.stats.requests
            client.close()
        rec.extra["seeds_refreshed"] = len(seeds)
    return rec.extra["summary"]
