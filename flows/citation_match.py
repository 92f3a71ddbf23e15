"""Task `match_citations`: reference entries with no id at all, resolved with ECitMatch.

Journal, year, volume and first page are read from each entry's citation text (entries where one cannot be
read are counted, not asked); citations id_map already holds as resolved or ambiguous are not asked again;
the rest go to ECitMatch, many per request. id_map and the edges of the resolved ones are written together.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from litmeta.extractors.ecitmatch import ID_TYPE, parse_citation, resolve_by_ecitmatch
from litmeta.extractors.entrez import EntrezClient
from litmeta.flows.client import retry_transient
from litmeta.warehouse.citation_match import known_citation_keys, reference_citations, write_citation_matches
from litmeta.warehouse.load import utcnow


@task(name="match-citations", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5,
      retry_condition_fn=retry_transient)
def match_citations(client: EntrezClient, db: str, run_id: str, citing: list[int]) -> dict[str, int]:
    """ECitMatch for the id-less reference entries of ``citing``; counts for the run summary."""
    entries: list[tuple[int, str, str]] = []
    queries = {}
    unparsed = 0
    for citing_pmid, origin, _, text in reference_citations(db, citing):
        q = parse_citation(text)
        if q is None:
            unparsed += 1
            continue
        entries.append((citing_pmid, origin, q.id_value))
        queries.setdefault(q.id_value, q)
    known = known_citation_keys(db, queries)
    found, rejects = resolve_by_ecitmatch(client, [q for k, q in queries.items() if k not in known])
    rows = [{"id_type": ID_TYPE, "id_value": r.id_value, "pmid": r.pmid, "status": r.status,
             "resolved_by": "ecitmatch" if r.status != "unresolved" else None,
             "candidates": ",".join(map(str, r.candidates)) if r.status == "ambiguous" else None}
            for r in found.values()]
    counts = write_citation_matches(db, run_id, rows, entries, rejects, utcnow()) if entries else {}
    counts["citations_asked"] = len(found) + len(rejects)
    counts["citations_unparsed"] = unparsed
    counts["citation_rejects"] = len(rejects)
    return counts
