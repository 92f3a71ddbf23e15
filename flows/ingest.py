"""Flows `ingest_pmids` and `search_ingest`: fetch PubMed (and PMC) records and load them."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from litmeta.flows.client import make_client, retry_transient
from litmeta.flows.pipeline import fetch_and_load_pmc, fetch_and_load_pubmed
from litmeta.flows.runs import tracked_run
from litmeta.warehouse.queries import pmcids_of
from litmeta.warehouse.searches import save_search


@task(name="fetch-and-load-pubmed", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5,
      retry_condition_fn=retry_transient)
def pubmed_task(client, db: str, run_id: str, pmids: list[int]):
    return fetch_and_load_pubmed(client, db, run_id, pmids)


@task(name="fetch-and-load-pmc", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5,
      retry_condition_fn=retry_transient)
def pmc_task(client, db: str, run_id: str, pmcids: list[str]):
    return fetch_and_load_pmc(client, db, run_id, pmcids)


def ingest_into(rec, client, db: str, pmids: list[int], pmc: bool) -> None:
    stats, not_found = pubmed_task(client, db, rec.run_id, pmids)
    rec.stats.add(stats)
    rec.extra["not_found"] = len(not_found)
    rec.extra["not_found_pmids"] = not_found[:100]
    if pmc:
        pmcids = pmcids_of(db, pmids)
        rec.stats.add(pmc_task(client, db, rec.run_id, pmcids))
        rec.extra["pmc_requested"] = len(pmcids)


@flow(name="ingest_pmids")
def ingest_pmids(pmids: list[int], db: str, eutils_url: str, pmc: bool = False, email: str | None = None,
                 tool: str = "litmeta", record_snapshot: str | None = None) -> dict:
    """Fetch and load PubMed records for ``pmids`` (and their PMC full text with ``pmc``)."""
    params = {"pmids": pmids if len(pmids) <= 1000 else f"{len(pmids)} PMIDs", "pmc": pmc, "db": db,
              "eutils_url": eutils_url, "email": email, "tool": tool}
    with tracked_run("ingest_pmids", db, params) as rec:
        client = make_client(eutils_url, email, tool, db, rec.run_id, record_snapshot)
        try:
            ingest_into(rec, client, db, pmids, pmc)
        finally:
            rec.http_requests = client.stats.requests
            client.close()
    return rec.extra["summary"]


@flow(name="search_ingest")
def search_ingest(query: str, db: str, eutils_url: str, mindate: str | None = None, maxdate: str | None = None,
                  max_records: int | None = None, save: bool = False, email: str | None = None,
                  tool: str = "litmeta", record_snapshot: str | None = None) -> dict:
    """esearch (history server; sets over 9,999 split by date) and ingest the hits."""
    params = {"query": query, "mindate": mindate, "maxdate": maxdate, "max_records": max_records, "db": db,
              "eutils_url": eutils_url, "email": email, "tool": tool}
    with tracked_run("search_ingest", db, params) as rec:
        client = make_client(eutils_url, email, tool, db, rec.run_id, record_snapshot)
        try:
            result = client.esearch(query, mindate=mindate, maxdate=maxdate, retmax=max_records)
            ids = result.ids[:max_records] if max_records else result.ids
            rec.extra["search_count"] = result.count
            rec.extra["search_ids"] = len(ids)
            rec.extra["search_split_ranges"] = len(result.ranges)
            ingest_into(rec, client, db, ids, pmc=False)
        finally:
            rec.http_requests = client.stats.requests
            client.close()
        if save:
            save_search(db, query, {"mindate": mindate, "maxdate": maxdate, "max_records": max_records})
    return rec.extra["summary"]
