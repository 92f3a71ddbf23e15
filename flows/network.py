"""Flows `build_network` and `refresh_seeds`: observe the citation network around seed articles.

One observation of a seed: links (elink) for the seed, then hop by hop for the members it
reaches, members capped by ``max_nodes``; records (efetch) for members the warehouse lacks; then
edges, similar articles, members and per-member link counts merged with first_seen/last_seen.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from litmeta.extractors.entrez import EntrezClient
from litmeta.extractors.links import Links, observation_tables
from litmeta.flows.client import make_client, retry_transient
from litmeta.flows.digest import publish_digest
from litmeta.flows.network_plan import NetworkPlan
from litmeta.flows.pipeline import fetch_and_load_pubmed
from litmeta.flows.runs import tracked_run
from litmeta.warehouse.db import crash_point
from litmeta.warehouse.load import LoadStats, utcnow
from litmeta.warehouse.metrics import store_metrics
from litmeta.warehouse.network import begin_observation, missing_pmids, seeds_to_refresh, write_observation


@task(name="fetch-links", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5,
      retry_condition_fn=retry_transient)
def fetch_links(client: EntrezClient, pmids: list[int], relations: list[str]) -> dict[int, Links]:
    """elink for ``pmids``: references and citing articles in one pass, scored similar in another."""
    if not pmids:
        return {}
    return Links.from_relations(pmids, client.elink_relations(pmids, relations))


@task(name="fetch-records", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5,
      retry_condition_fn=retry_transient)
def fetch_records(client: EntrezClient, db: str, run_id: str, pmids: list[int]) -> tuple[LoadStats, list[int]]:
    return fetch_and_load_pubmed(client, db, run_id, missing_pmids(db, pmids))


@task(name="network-metrics", cache_policy=NO_CACHE)
def network_metrics(db: str, seed: int, run_id: str) -> dict:
    """PageRank, communities and citation counts of the observation just written (warehouse only)."""
    return store_metrics(db, seed, run_id)


def observe_seed(client: EntrezClient, db: str, run_id: str, seed: int, depth: int,
                 relations: list[str], max_nodes: int | None, similar_top: int) -> dict:
    """One observation of one seed's network; returns counts for the run summary."""
    now = utcnow()
    previous = begin_observation(db, seed, depth, relations, max_nodes, similar_top, now)
    plan = NetworkPlan(seed, relations, similar_top, max_nodes)
    links: dict[int, Links] = {}
    for hop in range(depth + 1):
        need = [p for p in plan.frontier(hop) if p not in links]
        if hop == depth:  # former members no longer reached are still observed (their links, link counts)
            need += sorted(p for p in previous if p not in plan.members and p not in links)
        links.update(fetch_links(client, need, relations))
        if hop < depth:
            plan.expand(hop, links)
    stats, not_found = fetch_records(client, db, run_id, sorted(plan.members))
    crash_point("after-records")  # test-only hook (LITMETA_CRASH_AT)
    former = {p for p in previous if p not in plan.members}
    members = {p: (m.hop, m.via) for p, m in plan.members.items()}
    new = write_observation(db, run_id, seed, observation_tables(seed, members, links, relations, former), utcnow())
    metrics = network_metrics(db, seed, run_id)
    return {
        "stats": stats,
        "seed": seed,
        "members": len(plan.members),
        "former_members_observed": len(former),
        "members_by_hop_via": plan.counts(),
        "members_new": new["members"],
        "link_edges_new": new["edges"],
        "similar_new": new["similar"],
        "not_found": not_found,
        "started": now,
        "metrics": metrics,
    }


def _record(rec, result: dict) -> None:
    rec.stats.add(result.pop("stats"))
    rec.stats.edges_new += result["link_edges_new"]
    seeds = rec.extra.setdefault("seeds", {})
    seeds[str(result["seed"])] = {
        "members": result["members"], "members_new": result["members_new"],
        "link_edges_new": result["link_edges_new"], "similar_new": result["similar_new"],
        "members_by_hop_via": result["members_by_hop_via"], "not_found": len(result["not_found"]),
        **result["metrics"],
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
        client = make_client(eutils_url, email, tool, db, rec.run_id, record_snapshot)
        try:
            _record(rec, observe_seed(client, db, rec.run_id, seed, depth, list(relations), max_nodes,
                                      similar_top))
        finally:
            rec.http_requests = client.stats.requests
            client.close()
    return rec.extra["summary"]


@flow(name="refresh_seeds")
def refresh_seeds(db: str, eutils_url: str, seed: int | None = None, email: str | None = None,
                  tool: str = "litmeta", record_snapshot: str | None = None, notify: bool = False) -> dict:
    """Re-observe every tracked seed (or one) with the parameters it was registered with; publish each
    seed's digest (artifact), and post it to the webhook of LITMETA_NOTIFY_URL when ``notify``."""
    seeds = seeds_to_refresh(db, seed)
    params = {"seed": seed, "db": db, "eutils_url": eutils_url, "email": email, "tool": tool}
    with tracked_run("refresh_seeds", db, params) as rec:
        client = make_client(eutils_url, email, tool, db, rec.run_id, record_snapshot)
        try:
            for s in seeds:
                _record(rec, observe_seed(client, db, rec.run_id, s["seed"], s["depth"], s["relations"],
                                          s["max_nodes"], s["similar_top"]))
                rec.extra["seeds"][str(s["seed"])]["digest"] = publish_digest(db, s["seed"], rec.run_id, notify)
        finally:
            rec.http_requests = client.stats.requests
            client.close()
        rec.extra["seeds_refreshed"] = len(seeds)
    return rec.extra["summary"]
