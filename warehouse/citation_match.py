"""Reference entries with no id at all, and what ECitMatch said about their citation text.

- `reference_citations`: the entries of the citing articles with no PMID, DOI or PMCID but a citation text;
- `known_citation_keys`: which citation keys id_map already holds as resolved or ambiguous (not asked again);
- `write_citation_matches`: id_map rows (id_type 'citation') and, for the resolved ones, citation edges of
  the entry's list origin with ``resolved_by`` 'ecitmatch', in one transaction. Ambiguous and unresolved
  citations never become edges.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pyarrow as pa

from litmeta.schemas import TABLES, Reject
from litmeta.warehouse.citation_sources import upsert_id_map
from litmeta.warehouse.db import session
from litmeta.warehouse.load import merge_edges, record_rejects

_LIST_ORIGIN = "CASE e.origin WHEN 'pubmed' THEN 'pubmed_reflist' ELSE 'pmc_reflist' END"
_ENTRIES = pa.schema([("citing_pmid", pa.int64()), ("origin", pa.string()), ("id_value", pa.string())])


def reference_citations(db: str, citing: Iterable[int]) -> list[tuple[int, str, int, str]]:
    """(citing_pmid, origin, position, citation) of the entries of ``citing`` that name no id at all."""
    with session(db) as con:
        con.register("_citing", pa.table({"pmid": pa.array(sorted(set(citing)), pa.int64())}))
        try:
            return con.execute(
                "SELECT citing_pmid, origin, position, citation FROM reference_entries WHERE cited_pmid IS NULL"
                " AND nullif(trim(cited_doi), '') IS NULL AND nullif(trim(cited_pmcid), '') IS NULL"
                " AND nullif(trim(citation), '') IS NOT NULL AND citing_pmid IN (SELECT pmid FROM _citing)"
                " ORDER BY 1, 2, 3").fetchall()
        finally:
            con.unregister("_citing")


def known_citation_keys(db: str, keys: Iterable[str]) -> set[str]:
    """The citation keys id_map holds as resolved or ambiguous (those found nowhere are asked again)."""
    ks = sorted(set(keys))
    if not ks:
        return set()
    with session(db) as con:
        con.register("_keys", pa.table({"k": pa.array(ks, pa.string())}))
        try:
            return {r[0] for r in con.execute(
                "SELECT id_value FROM id_map WHERE id_type = 'citation' AND status IN ('resolved', 'ambiguous')"
                " AND id_value IN (SELECT k FROM _keys)").fetchall()}
        finally:
            con.unregister("_keys")


def write_citation_matches(db: str, run_id: str, resolutions: list[dict], entries: list[tuple[int, str, str]],
                           rejects: list[Reject], now: dt.datetime) -> dict[str, int]:
    """Upsert id_map with ``resolutions`` (dicts of its columns), then merge an edge per (citing entry
    ``(citing_pmid, list origin, id_value)``, resolved PMID); one transaction. Returns counts."""
    with session(db) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            upsert_id_map(con, resolutions, run_id, now)
            record_rejects(con, run_id, rejects, now)
            con.register("_entries", pa.Table.from_pylist(
                [{"citing_pmid": c, "origin": o, "id_value": v} for c, o, v in entries], schema=_ENTRIES))
            con.execute(
                "CREATE OR REPLACE TEMP VIEW _matched AS "
                f"SELECT DISTINCT ON (e.citing_pmid, m.pmid, {_LIST_ORIGIN}) e.citing_pmid, m.pmid AS cited_pmid, "
                f"{_LIST_ORIGIN} AS origin, m.resolved_by FROM _entries e JOIN id_map m ON m.id_type = 'citation' "
                "AND m.id_value = e.id_value AND m.status = 'resolved' WHERE e.citing_pmid <> m.pmid "
                "ORDER BY e.citing_pmid, m.pmid, origin")
            new = merge_edges(con, TABLES["citation_edges"], "_matched", now, carried=("resolved_by",))
            row = con.execute(
                "SELECT count(*) FILTER (WHERE m.status = 'resolved'), count(*) FILTER (WHERE m.status = "
                "'ambiguous'), count(*) FILTER (WHERE m.status = 'unresolved' OR m.status IS NULL) FROM _entries e "
                "LEFT JOIN id_map m ON m.id_type = 'citation' AND m.id_value = e.id_value").fetchall()[0]
            con.execute("DROP VIEW _matched")
            con.unregister("_entries")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return {"citation_edges_new": new, "citations_matched": row[0], "citations_ambiguous": row[1],
            "citations_not_found": row[2]}
