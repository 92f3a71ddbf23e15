"""Writing what a network observation saw: seeds, members, link edges, similar articles, link counts.

All inputs are Arrow tables with the schemas of `litmeta.schemas.tables`. The functions taking a
connection run inside the caller's transaction; those taking the warehouse path (``db``) are one
step of a network run each, in a short write session of their own.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa

from litmeta.schemas import TABLES, Reject
from litmeta.warehouse.citation_sources import write_icite_metrics
from litmeta.warehouse.db import crash_point, session
from litmeta.warehouse.load import merge_edges, record_rejects


def register_seed(con: duckdb.DuckDBPyConnection, seed: int, depth: int, relations: list[str],
                  max_nodes: int | None, similar_top: int, now: dt.datetime, sources: list[str] | None = None) -> None:
    """Add the seed, or update the parameters it is tracked with (added_at stays)."""
    src = ",".join(sources) if sources else None
    con.execute(
        "UPDATE seeds SET depth = ?, relations = ?, max_nodes = ?, similar_top = ?, sources = ? WHERE seed_pmid = ?",
        [depth, ",".join(relations), max_nodes, similar_top, src, seed],
    ).fetchall()
    con.execute(
        "INSERT INTO seeds (seed_pmid, depth, relations, max_nodes, similar_top, sources, added_at) "
        "SELECT ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM seeds WHERE seed_pmid = ?)",
        [seed, depth, ",".join(relations), max_nodes, similar_top, src, now, seed],
    ).fetchall()


def tracked_seeds(con: duckdb.DuckDBPyConnection, seed: int | None = None) -> list[dict]:
    sql = "SELECT seed_pmid, depth, relations, max_nodes, similar_top, sources FROM seeds"
    rows = con.execute(sql + (" WHERE seed_pmid = ?" if seed else "") + " ORDER BY seed_pmid",
                       [seed] if seed else []).fetchall()
    return [{"seed": r[0], "depth": r[1], "relations": r[2].split(","), "max_nodes": r[3], "similar_top": r[4],
             "sources": r[5].split(",") if r[5] else None} for r in rows]


def touch_seed(con: duckdb.DuckDBPyConnection, seed: int, now: dt.datetime) -> None:
    con.execute("UPDATE seeds SET last_refreshed_at = ? WHERE seed_pmid = ?", [now, seed]).fetchall()


def _merge(con: duckdb.DuckDBPyConnection, table: str, arrow: pa.Table, now: dt.datetime,
           extra_set: tuple[str, ...] = ()) -> int:
    if arrow.num_rows == 0:
        return 0
    view = f"_in_{table}"
    con.register(view, arrow)
    try:
        return merge_edges(con, TABLES[table], view, now, extra_set)
    finally:
        con.unregister(view)


def merge_citation_edges(con: duckdb.DuckDBPyConnection, arrow: pa.Table, now: dt.datetime) -> int:
    return _merge(con, "citation_edges", arrow, now)


def merge_similar(con: duckdb.DuckDBPyConnection, arrow: pa.Table, now: dt.datetime) -> int:
    return _merge(con, "similar_articles", arrow, now, extra_set=("score", "rank"))


def merge_members(con: duckdb.DuckDBPyConnection, arrow: pa.Table, now: dt.datetime) -> int:
    return _merge(con, "network_members", arrow, now, extra_set=("hop", "via"))


def merge_full_text_links(con: duckdb.DuckDBPyConnection, arrow: pa.Table, now: dt.datetime) -> int:
    """LinkOut links (elink prlinks/llinks): merged by (pmid, provider, url); what else a link says is
    overwritten by the newest observation."""
    return _merge(con, "full_text_links", arrow, now,
                  extra_set=("category", "attributes", "subject_type", "link_name", "provider_abbr", "provider_id"))


def write_link_snapshots(con: duckdb.DuckDBPyConnection, arrow: pa.Table, run_id: str, now: dt.datetime) -> int:
    """One row per member per run (a member of two seeds refreshed in one run is counted once)."""
    if arrow.num_rows == 0:
        return 0
    con.register("_snap", arrow)
    try:
        before = con.execute("SELECT count(*) FROM link_snapshots").fetchall()[0][0]
        con.execute(
            "INSERT INTO link_snapshots (pmid, run_id, seed_pmid, observed_at, cited_by_count, references_count, similar_count) "
            "SELECT DISTINCT ON (pmid) pmid, ?, seed_pmid, ?, cited_by_count, references_count, similar_count FROM _snap s "
            "WHERE NOT EXISTS (SELECT 1 FROM link_snapshots l WHERE l.pmid = s.pmid AND l.run_id = ?)",
            [run_id, now, run_id],
        ).fetchall()
        return con.execute("SELECT count(*) FROM link_snapshots").fetchall()[0][0] - before
    finally:
        con.unregister("_snap")


def known_pmids(con: duckdb.DuckDBPyConnection, pmids: list[int]) -> set[int]:
    """Which of ``pmids`` the warehouse already holds (or has as deleted)."""
    if not pmids:
        return set()
    con.register("_ask", pa.table({"pmid": pa.array(pmids, pa.int64())}))
    try:
        rows = con.execute(
            "SELECT pmid FROM articles WHERE pmid IN (SELECT pmid FROM _ask) "
            "UNION SELECT pmid FROM deleted_articles WHERE pmid IN (SELECT pmid FROM _ask)"
        ).fetchall()
    finally:
        con.unregister("_ask")
    return {r[0] for r in rows}


# -- the steps of a network run ------------------------------------------------------------------
def begin_observation(db: str, seed: int, depth: int, relations: list[str], max_nodes: int | None,
                      similar_top: int, now: dt.datetime, sources: list[str] | None = None) -> set[int]:
    """Register (or update) the seed; returns its members as of the previous observation."""
    with session(db) as con:
        register_seed(con, seed, depth, relations, max_nodes, similar_top, now, sources)
        return {r[0] for r in con.execute(
            "SELECT pmid FROM network_members WHERE seed_pmid = ?", [seed]).fetchall()}


def missing_pmids(db: str, pmids: list[int]) -> list[int]:
    """The ``pmids`` the warehouse holds no record (nor deletion) of, in the given order."""
    with session(db) as con:
        have = known_pmids(con, pmids)
    return [p for p in pmids if p not in have]


def write_observation(db: str, run_id: str, seed: int, tables: dict[str, pa.Table],
                      observed: dt.datetime, rejects: list[Reject] = ()) -> dict[str, int]:
    """Merge one observation (edges, similar articles, members, link counts, iCite metrics when
    ``tables`` holds them, the entries of answers rejected) in one transaction.

    Returns the new rows per kind: ``edges``, ``similar``, ``members``.
    """
    with session(db) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            counts = {
                "edges": merge_citation_edges(con, tables["citation_edges"], observed),
                "similar": merge_similar(con, tables["similar_articles"], observed),
                "members": merge_members(con, tables["network_members"], observed),
            }
            write_link_snapshots(con, tables["link_snapshots"], run_id, observed)
            if "icite_metrics" in tables:
                write_icite_metrics(con, tables["icite_metrics"], run_id, observed)
            record_rejects(con, run_id, list(rejects), observed)
            touch_seed(con, seed, observed)
            crash_point("edges")  # test-only hook (LITMETA_CRASH_AT): observation written, not committed
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return counts


def seeds_to_refresh(db: str, seed: int | None = None) -> list[dict]:
    """The tracked seeds (or the one asked for) with the parameters they were registered with."""
    with session(db) as con:
        return tracked_seeds(con, seed)
