"""The citation sources beside elink: iCite observations, id resolution of reference entries, per-source counts.

- `write_icite_metrics`: one icite_metrics row per PMID per run (inside a network observation's transaction);
- `unresolved_reference_ids` / `write_resolutions`: reference entries that name a DOI or PMCID but no PMID,
  what the PMC ID Converter and E-utilities searches said about them (id_map), and the citation edges of
  the resolved ones (origin of their list, ``resolved_by`` kept; ambiguous and unresolved ones never);
- `sources_report`: per source, the edges around a seed, those only it reports, and the overlap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import duckdb
import pyarrow as pa

from litmeta.errors import UsageError
from litmeta.schemas import TABLES, Reject
from litmeta.schemas.model import quote
from litmeta.warehouse.db import session
from litmeta.warehouse.load import merge_edges, record_rejects

#: a source and the citation_edges origins it reports
SOURCES: dict[str, tuple[str, ...]] = {
    "elink": ("elink_refs", "elink_citedin"),
    "icite": ("icite_refs", "icite_citedby"),
    "reflist": ("pubmed_reflist", "pmc_reflist"),
}
_LIST_ORIGIN = "CASE r.origin WHEN 'pubmed' THEN 'pubmed_reflist' ELSE 'pmc_reflist' END"
#: a reference entry's DOI and PMCID in id_map's normalised form (the ID converter client's normalize_id)
_DOI = "lower(trim(r.cited_doi))"
_PMCID = ("CASE WHEN upper(trim(r.cited_pmcid)) LIKE 'PMC%' THEN upper(trim(r.cited_pmcid)) "
          "ELSE 'PMC' || trim(r.cited_pmcid) END")


def write_icite_metrics(con: duckdb.DuckDBPyConnection, arrow: pa.Table, run_id: str, now: dt.datetime) -> int:
    """One row per PMID per run (a PMID two seeds share, observed twice in one run, is written once)."""
    if arrow.num_rows == 0:
        return 0
    cols = ", ".join(arrow.column_names)
    con.register("_icite", arrow)
    try:
        before = con.execute("SELECT count(*) FROM icite_metrics").fetchall()[0][0]
        con.execute(
            f"INSERT INTO icite_metrics (observed_at, run_id, {cols}) "
            f"SELECT DISTINCT ON (pmid) ?, ?, {cols} FROM _icite i "
            "WHERE NOT EXISTS (SELECT 1 FROM icite_metrics m WHERE m.pmid = i.pmid AND m.run_id = ?)",
            [now, run_id, run_id],
        ).fetchall()
        return con.execute("SELECT count(*) FROM icite_metrics").fetchall()[0][0] - before
    finally:
        con.unregister("_icite")


def _citing(con: duckdb.DuckDBPyConnection, citing: Iterable[int]) -> None:
    con.register("_citing", pa.table({"pmid": pa.array(sorted(set(citing)), pa.int64())}))


def unresolved_reference_ids(db: str, citing: Iterable[int]) -> dict[str, list[str]]:
    """DOIs and PMCIDs (normalised) of the reference entries of ``citing`` with no PMID and no resolution
    yet in id_map (ids asked before and found nowhere are asked again; ambiguous ones are not)."""
    with session(db) as con:
        _citing(con, citing)
        try:
            rows = con.execute(
                "WITH ids AS ("
                f" SELECT 'doi' AS id_type, {_DOI} AS id_value FROM reference_entries r"
                "  WHERE cited_pmid IS NULL AND nullif(trim(cited_doi), '') IS NOT NULL"
                "    AND citing_pmid IN (SELECT pmid FROM _citing)"
                f" UNION SELECT 'pmcid', {_PMCID} FROM reference_entries r"
                "  WHERE cited_pmid IS NULL AND nullif(trim(cited_pmcid), '') IS NOT NULL"
                "    AND citing_pmid IN (SELECT pmid FROM _citing))"
                " SELECT id_type, id_value FROM ids WHERE NOT EXISTS (SELECT 1 FROM id_map m WHERE"
                "  m.id_type = ids.id_type AND m.id_value = ids.id_value AND m.status IN ('resolved', 'ambiguous'))"
                " ORDER BY 1, 2"
            ).fetchall()
        finally:
            con.unregister("_citing")
    out: dict[str, list[str]] = {"doi": [], "pmcid": []}
    for t, v in rows:
        out[t].append(v)
    return out


def upsert_id_map(con: duckdb.DuckDBPyConnection, resolutions: list[dict], run_id: str, now: dt.datetime) -> None:
    """id_map rows for ``resolutions`` (dicts of its extracted columns), replacing what an id had before;
    in the caller's transaction."""
    if not resolutions:
        return
    table = TABLES["id_map"]
    cols = ", ".join(quote(c) for c in table.extracted_names)
    con.register("_res", pa.Table.from_pylist(resolutions, schema=table.arrow_schema))
    try:
        con.execute("DELETE FROM id_map WHERE (id_type, id_value) IN (SELECT (id_type, id_value) FROM _res)")
        con.execute(f"INSERT INTO id_map ({cols}, observed_at, run_id) "
                    f"SELECT DISTINCT ON (id_type, id_value) {cols}, ?, ? FROM _res", [now, run_id])
    finally:
        con.unregister("_res")


def write_resolutions(db: str, run_id: str, resolutions: list[dict], rejects: list[Reject], citing: Iterable[int],
                      now: dt.datetime) -> dict[str, int]:
    """Upsert id_map with ``resolutions`` (dicts of its columns), then merge the citation edges of the
    resolved reference entries of ``citing``; one transaction. Returns counts for the run summary."""
    with session(db) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            upsert_id_map(con, resolutions, run_id, now)
            record_rejects(con, run_id, rejects, now)
            _citing(con, citing)
            con.execute(
                "CREATE OR REPLACE TEMP VIEW _resolved AS "
                f"SELECT DISTINCT ON (r.citing_pmid, m.pmid, {_LIST_ORIGIN}) r.citing_pmid, m.pmid AS cited_pmid, "
                f"{_LIST_ORIGIN} AS origin, m.resolved_by FROM reference_entries r JOIN id_map m ON m.status = "
                f"'resolved' AND ((m.id_type = 'doi' AND m.id_value = {_DOI}) OR (m.id_type = "
                f"'pmcid' AND m.id_value = {_PMCID})) WHERE r.cited_pmid IS NULL AND r.citing_pmid "
                "IN (SELECT pmid FROM _citing) AND r.citing_pmid <> m.pmid "
                "ORDER BY r.citing_pmid, m.pmid, origin, m.resolved_by")
            new = merge_edges(con, TABLES["citation_edges"], "_resolved", now, carried=("resolved_by",))
            counts = reference_counts(con)
            con.execute("DROP VIEW _resolved")
            con.unregister("_citing")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return {"resolved_edges_new": new, **counts}


def reference_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Of the reference entries of ``_citing``: those with an id but no PMID, resolved or not."""
    row = con.execute(
        "SELECT count(*) FILTER (WHERE m_doi.status = 'resolved' OR m_pmc.status = 'resolved'),"
        " count(*) FILTER (WHERE NOT coalesce(m_doi.status = 'resolved' OR m_pmc.status = 'resolved', false)"
        "   AND (m_doi.status = 'ambiguous' OR m_pmc.status = 'ambiguous')),"
        " count(*) FILTER (WHERE NOT coalesce(m_doi.status IN ('resolved', 'ambiguous')"
        "   OR m_pmc.status IN ('resolved', 'ambiguous'), false)),"
        " count(*) FILTER (WHERE nullif(trim(r.cited_doi), '') IS NULL AND nullif(trim(r.cited_pmcid), '') IS NULL)"
        " FROM reference_entries r"
        f" LEFT JOIN id_map m_doi ON m_doi.id_type = 'doi' AND m_doi.id_value = {_DOI}"
        f" LEFT JOIN id_map m_pmc ON m_pmc.id_type = 'pmcid' AND m_pmc.id_value = {_PMCID}"
        " WHERE r.cited_pmid IS NULL AND r.citing_pmid IN (SELECT pmid FROM _citing)"
    ).fetchall()[0]
    return {"references_resolved": row[0], "references_ambiguous": row[1],
            "references_unresolved": row[2] - row[3], "references_without_id": row[3]}


def sources_report(db: str, seed: int) -> dict:
    """Per source (elink, icite, reflist): the distinct citing->cited pairs it reports around ``seed``, those
    only it reports, and the pairs each two sources share. Two scopes: ``seed`` (edges with the seed at one
    end) and ``network`` (edges with both ends members of the seed's network)."""
    case = " ".join(f"WHEN origin IN ({', '.join(repr(o) for o in origins)}) THEN '{name}'"
                    for name, origins in SOURCES.items())
    scopes = {
        "seed": "(citing_pmid = $seed OR cited_pmid = $seed)",
        "network": "citing_pmid IN (SELECT pmid FROM network_members WHERE seed_pmid = $seed) "
                   "AND cited_pmid IN (SELECT pmid FROM network_members WHERE seed_pmid = $seed)",
    }
    names = list(SOURCES)
    out: dict = {"seed": seed, "scopes": {}}
    with session(db, read_only=True) as con:
        if not con.execute("SELECT count(*) FROM seeds WHERE seed_pmid = ?", [seed]).fetchall()[0][0]:
            raise UsageError(f"{seed} is not a tracked seed in {db}; register it with 'litmeta network {seed}'")
        for scope, where in scopes.items():
            sql = (f"WITH p AS (SELECT citing_pmid, cited_pmid, list(DISTINCT CASE {case} END) AS s "
                   f"FROM citation_edges WHERE {where} GROUP BY 1, 2) SELECT "
                   + ", ".join(f"count(*) FILTER (WHERE list_contains(s, '{n}')), "
                               f"count(*) FILTER (WHERE s = ['{n}'])" for n in names)
                   + ", " + ", ".join(f"count(*) FILTER (WHERE list_contains(s, '{a}') AND list_contains(s, '{b}'))"
                                      for i, a in enumerate(names) for b in names[i + 1:])
                   + ", count(*) FROM p")
            row = con.execute(sql, {"seed": seed}).fetchall()[0]
            per = {n: {"edges": row[2 * i], "only": row[2 * i + 1]} for i, n in enumerate(names)}
            pairs = [f"{a}+{b}" for i, a in enumerate(names) for b in names[i + 1:]]
            shared = dict(zip(pairs, row[2 * len(names):2 * len(names) + len(pairs)], strict=True))
            out["scopes"][scope] = {"sources": per, "shared": shared, "edges": row[-1]}
    return out
