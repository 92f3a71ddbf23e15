"""Reads the CLI shows: ad hoc SQL (`litmeta sql`), a run's rejects, a seed's network summary."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from litmeta.errors import UsageError
from litmeta.warehouse.db import WarehouseBusy, connect, session

SQL_WAIT_S = 4.5  # `litmeta sql` is interactive: it says the warehouse is busy rather than wait long


def run_sql(db: str, query: str, allow_files: bool = False) -> tuple[list[str], list[tuple]]:
    """Run ``query`` on the warehouse and nothing else; returns (column names, rows), none for a statement.

    The connection is read-only, cannot reach the filesystem (DuckDB's ``enable_external_access``
    off: no COPY TO, file functions, ATTACH, INSTALL or LOAD) unless ``allow_files``, and cannot
    change its configuration (``lock_configuration``). Refusals and failing queries raise `UsageError`
    with DuckDB's first line.
    """
    config = {"enable_external_access": allow_files, "lock_configuration": True}
    try:
        con = connect(db, read_only=True, wait=SQL_WAIT_S, config=config)
    except WarehouseBusy as exc:
        raise WarehouseBusy(str(exc).replace("retry in a few seconds", "retry in 5-10 seconds")) from None
    try:
        try:
            cur = con.execute(query)
        except duckdb.PermissionException as exc:
            raise UsageError(f"sql reads the warehouse only ({_first(exc)}); add --allow-files for DuckDB's file "
                             "functions, or use 'litmeta export' to write files") from None
        except duckdb.Error as exc:
            first = _first(exc)
            if "read-only" in first or "read only" in first:
                raise UsageError(f"sql is read-only: {first}") from None
            if "configuration has been locked" in first:
                raise UsageError(f"sql cannot change DuckDB's configuration: {first}") from None
            raise UsageError(f"query failed: {first}") from None
        if cur.description is None:
            return [], []
        return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()


def _first(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


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
