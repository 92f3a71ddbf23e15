"""Flows `build_network` and `refresh_seeds`: observe the citation network around seed articles.

One observation of a seed: links for the seed, then hop by hop for the members it reaches, from each
citation source asked (``sources``: NCBI elink and NIH iCite; the network expands over their union),
members capped by ``max_nodes``; records (efetch) for members the warehouse lacks; then edges (each
with its source's origin), similar articles, members, per-member link counts and iCite metrics merged
with first_seen/last_seen; last, the DOIs and PMCIDs of the members' reference entries that name no
PMID are resolved (PMC ID Converter, then E-utilities searches) into id_map and citation edges, and the
entries with no id at all by their citation text (ECitMatch, flows/citation_match.py); with
``fulltext_links`` the members' LinkOut links (elink llinks, flows/linkout.py) go to full_text_links.
"""

from __future__ import annotations

import pyarrow as pa
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from litmeta.extractors.entrez import EntrezClient
from litmeta.extractors.icite import ICiteClient, ICiteRecord, icite_tables
from litmeta.extractors.id_search import resolve_by_esearch
from litmeta.extractors.idconv import ID_TYPES, IdconvClient
from litmeta.extractors.links import Links, observation_tables
from litmeta.flows.citation_match import match_citations
from litmeta.flows.client import (
    make_client,
    make_icite_client,
    make_idconv_client,
    retry_transient,
    service_url,
)
from litmeta.flows.digest import publish_digest
from litmeta.flows.linkout import fetch_full_text_links
from litmeta.flows.network_plan import NetworkPlan
from litmeta.flows.pipeline import fetch_and_load_pubmed
from litmeta.flows.runs import tracked_run
from litmeta.schemas import Reject
from litmeta.warehouse.citation_sources import unresolved_reference_ids, write_resolutions
from litmeta.warehouse.db import crash_point
from litmeta.warehouse.load import LoadStats, utcnow
from litmeta.warehouse.metrics import store_metrics
from litmeta.warehouse.network import begin_observation, missing_pmids, seeds_to_refresh, write_observation

SOURCES = ("elink", "icite")
CITATION_RELATIONS = ("refs", "cited_by")


@task(name="fetch-links", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5,
      retry_condition_fn=retry_transient)
def fetch_links(client: EntrezClient, pmids: list[int], relations: list[str]) -> dict[int, Links]:
    """elink for ``pmids``: references and citing articles in one pass, scored similar in another."""
    if not pmids:
        return {}
    return Links.from_relations(pmids, client.elink_relations(pmids, relations))


@task(name="fetch-icite", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5,
      retry_condition_fn=retry_transient)
def fetch_icite(client: ICiteClient, pmids: list[int]
                ) -> tuple[dict[int, ICiteRecord], list[dict[str, pa.Table]], list[Reject]]:
    """iCite for ``pmids``: its records, their rows (per answer) and the entries rejected."""
    records: dict[int, ICiteRecord] = {}
    parts: list[dict[str, pa.Table]] = []
    rejects: list[Reject] = []
    for batch in client.pubs(pmids):
        records.update(batch.records)
        parts.append(icite_tables(batch.records.values(), batch.document.sha256))
        rejects.extend(batch.rejects)
    return records, parts, rejects


@task(name="fetch-records", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5,
      retry_condition_fn=retry_transient)
def fetch_records(client: EntrezClient, db: str, run_id: str, pmids: list[int]) -> tuple[LoadStats, list[int]]:
    return fetch_and_load_pubmed(client, db, run_id, missing_pmids(db, pmids))


@task(name="network-metrics", cache_policy=NO_CACHE)
def network_metrics(db: str, seed: int, run_id: str) -> dict:
    """PageRank, communities and citation counts of the observation just written (warehouse only)."""
    return store_metrics(db, seed, run_id)


@task(name="resolve-references", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5,
      retry_condition_fn=retry_transient)
def resolve_references(idconv: IdconvClient, client: EntrezClient, db: str, run_id: str,
                       citing: list[int]) -> dict[str, int]:
    """Reference entries of ``citing`` with a DOI or PMCID and no PMID: the PMC ID Converter first, one
    OR-ed esearch (+ esummary) for what it misses; id_map and the resolved edges written together."""
    asked = unresolved_reference_ids(db, citing)
    rows: list[dict] = []
    rejects: list[Reject] = []
    for id_type in ID_TYPES:
        if not asked[id_type]:
            continue
        misses: list[str] = []
        for batch in idconv.convert(id_type, asked[id_type]):
            rejects.extend(batch.rejects)
            for value, res in batch.resolutions.items():
                if res.status == "unresolved":
                    misses.append(value)
                else:
                    rows.append(_id_row(res, "idconv"))
        for res in resolve_by_esearch(client, id_type, misses).values():
            rows.append(_id_row(res, "esearch" if res.status != "unresolved" else None))
    counts = write_resolutions(db, run_id, rows, rejects, citing, utcnow())
    counts["ids_asked"] = sum(len(v) for v in asked.values())
    counts["resolution_rejects"] = len(rejects)
    return counts


def _id_row(res, by: str | None) -> dict:
    return {"id_type": res.id_type, "id_value": res.id_value, "pmid": res.pmid, "resolved_by": by,
            "status": res.status, "candidates": ",".join(map(str, res.candidates)) if res.status == "ambiguous"
            else None}


def observe_seed(client: EntrezClient, db: str, run_id: str, seed: int, depth: int,
                 relations: list[str], max_nodes: int | None, similar_top: int,
                 sources: list[str] | None = None, icite: ICiteClient | None = None,
                 idconv: IdconvClient | None = None, fulltext_links: bool = True) -> dict:
    """One observation of one seed's network; returns counts for the run summary.

    ``sources``: the citation sources expanded over (default both); iCite is asked only with an
    ``icite`` client and refs or cited_by among the relations; ``idconv`` resolves reference entries
    (and turns on ECitMatch for those with no id); ``fulltext_links``: fetch the members' LinkOut links.
    """
    now = utcnow()
    srcs = [s for s in SOURCES if s in (sources or SOURCES)]
    previous = begin_observation(db, seed, depth, relations, max_nodes, similar_top, now,
                                 None if sources is None else srcs)
    plan = NetworkPlan(seed, relations, similar_top, max_nodes)
    elink_relations = [r for r in relations if "elink" in srcs or r not in CITATION_RELATIONS]
    ask_icite = icite is not None and "icite" in srcs and any(r in CITATION_RELATIONS for r in relations)
    links: dict[int, Links] = {}
    icited: dict[int, ICiteRecord] = {}
    icite_parts: list[dict[str, pa.Table]] = []
    rejects: list[Reject] = []
    for hop in range(depth + 1):
        need = [p for p in plan.frontier(hop) if p not in links]
        if hop == depth:  # former members no longer reached are still observed (their links, link counts)
            need += sorted(p for p in previous if p not in plan.members and p not in links)
        links.update(fetch_links(client, need, elink_relations))
        if ask_icite and need:
            recs, parts, rj = fetch_icite(icite, need)
            icited.update(recs)
            icite_parts += parts
            rejects += rj
        if hop < depth:
            plan.expand(hop, _union(links, icited))
    stats, not_found = fetch_records(client, db, run_id, sorted(plan.members))
    crash_point("after-records")  # test-only hook (LITMETA_CRASH_AT)
    former = {p for p in previous if p not in plan.members}
    members = {p: (m.hop, m.via) for p, m in plan.members.items()}
    tables = observation_tables(seed, members, links, elink_relations, former)
    if icite_parts:
        tables["citation_edges"] = pa.concat_tables([tables["citation_edges"]] + [p["citation_edges"]
                                                                                 for p in icite_parts])
        tables["icite_metrics"] = pa.concat_tables([p["icite_metrics"] for p in icite_parts])
    new = write_observation(db, run_id, seed, tables, utcnow(), rejects)
    stats.rejects += len(rejects)
    resolved = resolve_references(idconv, client, db, run_id, sorted(plan.members)) if idconv is not None else {}
    if idconv is not None:
        matched = match_citations(client, db, run_id, sorted(plan.members))
        stats.rejects += matched.get("citation_rejects", 0)
        stats.edges_new += matched.get("citation_edges_new", 0)
        resolved.update(matched)
    linkout = fetch_full_text_links(client, db, sorted(plan.members)) if fulltext_links else {}
    stats.rejects += resolved.get("resolution_rejects", 0)
    stats.edges_new += resolved.get("resolved_edges_new", 0)
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
        "icite_records": len(icited),
        "references": {k: v for k, v in resolved.items() if k != "resolution_rejects"},
        "full_text_links_new": linkout.get("full_text_links_new", 0),
        "not_found": not_found,
        "started": now,
        "metrics": metrics,
    }


def _union(links: dict[int, Links], icited: dict[int, ICiteRecord]) -> dict[int, Links]:
    """Per PMID, elink's links with iCite's references and citing articles added."""
    out = dict(links)
    for pmid, rec in icited.items():
        out[pmid] = out.get(pmid, Links()).union(rec.references, rec.cited_by)
    return out


def _record(rec, result: dict) -> None:
    rec.stats.add(result.pop("stats"))
    rec.stats.edges_new += result["link_edges_new"]
    seeds = rec.extra.setdefault("seeds", {})
    seeds[str(result["seed"])] = {
        "members": result["members"], "members_new": result["members_new"],
        "link_edges_new": result["link_edges_new"], "similar_new": result["similar_new"],
        "members_by_hop_via": result["members_by_hop_via"], "not_found": len(result["not_found"]),
        "icite_records": result["icite_records"], "references": result["references"],
        "full_text_links_new": result["full_text_links_new"],
        **result["metrics"],
    }
    rec.extra["full_text_links_new"] = rec.extra.get("full_text_links_new", 0) + result["full_text_links_new"]
    rec.extra["members"] = rec.extra.get("members", 0) + result["members"]
    rec.extra["not_found"] = rec.extra.get("not_found", 0) + len(result["not_found"])
    for k, v in result["references"].items():
        rec.extra[k] = rec.extra.get(k, 0) + v


class _Clients:
    """The three clients of a network run, closed together; their requests summed."""

    def __init__(self, eutils_url: str, icite_url: str | None, idconv_url: str | None, email: str | None,
                 tool: str, db: str, run_id: str, record_snapshot: str | None) -> None:
        self.entrez = make_client(eutils_url, email, tool, db, run_id, record_snapshot)
        self.icite = make_icite_client(service_url("icite", icite_url, eutils_url), email, tool, db, run_id)
        self.idconv = make_idconv_client(service_url("idconv", idconv_url, eutils_url), email, tool, db, run_id)

    @property
    def requests(self) -> int:
        return self.entrez.stats.requests + self.icite.stats.requests + self.idconv.stats.requests

    def close(self) -> None:
        for c in (self.entrez, self.icite, self.idconv):
            c.close()


@flow(name="build_network")
def build_network(seed: int, db: str, eutils_url: str, depth: int = 1,
                  relations: tuple[str, ...] = ("refs", "cited_by", "similar"), max_nodes: int | None = None,
                  similar_top: int = 5, email: str | None = None, tool: str = "litmeta",
                  record_snapshot: str | None = None, sources: tuple[str, ...] = SOURCES,
                  icite_url: str | None = None, idconv_url: str | None = None, fulltext_links: bool = True) -> dict:
    """Register ``seed`` and build (or refresh) its network over the citation ``sources``."""
    params = {"seed": seed, "depth": depth, "relations": list(relations), "max_nodes": max_nodes,
              "similar_top": similar_top, "db": db, "eutils_url": eutils_url, "email": email, "tool": tool,
              "sources": list(sources), "icite_url": icite_url, "idconv_url": idconv_url,
              "fulltext_links": fulltext_links}
    with tracked_run("build_network", db, params) as rec:
        clients = _Clients(eutils_url, icite_url, idconv_url, email, tool, db, rec.run_id, record_snapshot)
        try:
            _record(rec, observe_seed(clients.entrez, db, rec.run_id, seed, depth, list(relations), max_nodes,
                                      similar_top, list(sources), clients.icite, clients.idconv, fulltext_links))
        finally:
            rec.http_requests = clients.requests
            clients.close()
    return rec.extra["summary"]


@flow(name="refresh_seeds")
def refresh_seeds(db: str, eutils_url: str, seed: int | None = None, email: str | None = None,
                  tool: str = "litmeta", record_snapshot: str | None = None, icite_url: str | None = None,
                  idconv_url: str | None = None, notify: bool = False) -> dict:
    """Re-observe every tracked seed (or one) with the parameters it was registered with (iCite too); publish
    each seed's digest (artifact), and post it to the webhook of LITMETA_NOTIFY_URL when ``notify``."""
    seeds = seeds_to_refresh(db, seed)
    params = {"seed": seed, "db": db, "eutils_url": eutils_url, "email": email, "tool": tool,
              "icite_url": icite_url, "idconv_url": idconv_url}
    with tracked_run("refresh_seeds", db, params) as rec:
        clients = _Clients(eutils_url, icite_url, idconv_url, email, tool, db, rec.run_id, record_snapshot)
        try:
            for s in seeds:
                _record(rec, observe_seed(clients.entrez, db, rec.run_id, s["seed"], s["depth"], s["relations"],
                                          s["max_nodes"], s["similar_top"], s["sources"], clients.icite,
                                          clients.idconv))
                rec.extra["seeds"][str(s["seed"])]["digest"] = publish_digest(db, s["seed"], rec.run_id, notify)
        finally:
            rec.http_requests = clients.requests
            clients.close()
        rec.extra["seeds_refreshed"] = len(seeds)
    return rec.extra["summary"]
