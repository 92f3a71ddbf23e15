"""Task `fetch_full_text_links`: LinkOut (elink cmd=llinks) for a network's members, into full_text_links.

llinks lists every LinkOut resource of an article, the full-text providers (what prlinks answers) among
them, so one llinks request per batch of members gives both; the links are merged by (pmid, provider, url).
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from litmeta.extractors.entrez import EntrezClient
from litmeta.extractors.linkout import full_text_link_rows
from litmeta.flows.client import retry_transient
from litmeta.warehouse.linkout import write_full_text_links
from litmeta.warehouse.load import utcnow


@task(name="fetch-full-text-links", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5,
      retry_condition_fn=retry_transient)
def fetch_full_text_links(client: EntrezClient, db: str, pmids: list[int], cmd: str = "llinks") -> dict[str, int]:
    """LinkOut links of ``pmids`` (batched like every elink); counts for the run summary."""
    if not pmids:
        return {"full_text_links_new": 0, "full_text_links_seen": 0}
    rows = full_text_link_rows(client.elink_linkout(pmids, cmd=cmd))
    return {"full_text_links_new": write_full_text_links(db, rows, utcnow()), "full_text_links_seen": rows.num_rows}
