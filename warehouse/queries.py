"""Reads the CLI shows: ad hoc SQL (`litmeta sql`), a run's rejects, a seed's network summary."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from litmeta.errors import UsageError
from litmeta.warehouse.db import WarehouseBusy, WarehouseError, connect, session

SQL_WAIT_S = 4.5  # `litmeta sql` is interactive: it says the warehouse is busy rather than wait long


def run_sql(db: str, query: str) -> tuple[list[str], list[tuple]]:
    """Run ``query`` on a read-only connection; returns (column names, rows), no columns for a statement.

    A failing query raises `UsageError` with DuckDB's first line; a write is refused as read-only.
    """
    try:
        con = connect(db, read_only=True, wait=SQL_WAIT_S)
    except WarehouseBusy as exc:
        raise WarehouseBusy(str(exc).replace("retry in a few seconds", "retry in 5-10 seconds")) from None
    try:
        try:
            cur = con.execute(query)
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            if "read-only" in first or "read only" in first:
                raise WarehouseError(f"sql is read-only: {first}") from None
            raise UsageError(f"query failed: {first}") from None
        if cur.description is None:
            return [], []
        return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()


def rejects_of(db: str, run_id: str, limit: int = 50) -> list[tuple[str, str, str]]:
    """(source, record_key, reason) of a run's rejects, at most ``limit``."""
    with connect(db, read_only=True, wait=10) as con:
        return con.execute(
            "SELECT source, record_key, reason FROM rejects WHERE run_id = ? ORDER BY source, record_key LIMIT ?",
            [run_id, limit]).fetchall()


def pmcids_of(db: str, pmids: list[int]) -> list[str]:
    """The PMCIDs the warehouse's records of ``pmids`` carry, sorted."""
    with session(db) as con:
        con.register("_want", pa.table({"pmid": pa.array(pmids, pa.int64())}))
        rows = con.execute(
            "SELECT DISTINCT pmcid FROM articles WHERE pmcid IS NOT NULL AND pmid IN (SELECT pmid FROM _want) ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


@dataclass
class NetworkSummary:
    """A seed's record, its members by hop and relation, and what one run found new."""

    seed: int
    article: dict | None  # title, doi, pmcid, journal, year; None when the record is not held
    grants: int
    members_by_hop_via: list[tuple[int, str, int]]
    new_members: list[tuple[int, str, str | None]]  # (pmid, via, title), first 15
    new_edges: int
    previous_run: dt.datetime | None  # when the previous completed network run started


def network_summary(db: str, seed: int, run_id: str) -> NetworkSummary:
    """What `litmeta network`, `refresh` and `demo` print after run ``run_id``."""
    with session(db) as con:
        art = con.execute("SELECT title, doi, pmcid, journal_iso_abbrev, pub_year FROM articles WHERE pmid = ?",
                          [seed]).fetchall()
        grants = con.execute("SELECT count(*) FROM grants WHERE pmid = ?", [seed]).fetchall()[0][0]
        by = con.execute("SELECT hop, via, count(*) FROM network_members WHERE seed_pmid = ? GROUP BY 1, 2 "
                         "ORDER BY 1, 2", [seed]).fetchall()
        run = con.execute("SELECT started_at FROM ingest_runs WHERE run_id = ?", [run_id]).fetchall()
        started = run[0][0] if run else None
        new_members = con.execute(
            "SELECT m.pmid, m.via, a.title FROM network_members m LEFT JOIN articles a USING (pmid) "
            "WHERE m.seed_pmid = ? AND m.first_seen >= ? ORDER BY m.hop, m.pmid LIMIT 15", [seed, started]).fetchall()
        new_edges = con.execute(
            "SELECT count(*) FROM citation_edges WHERE first_seen >= ? AND (citing_pmid = ? OR cited_pmid IN "
            "(SELECT pmid FROM network_members WHERE seed_pmid = ?))", [started, seed, seed]).fetchall()[0][0]
        previous = con.execute(
            "SELECT max(started_at) FROM ingest_runs WHERE started_at < ? AND flow IN ('build_network','refresh_seeds') "
            "AND status LIKE 'completed%'", [started]).fetchall()[0][0]
    article = dict(zip(("title", "doi", "pmcid", "journal", "year"), art[0], strict=True)) if art else None
    return NetworkSummary(seed, article, grants, by, new_members, new_edges, previous)
