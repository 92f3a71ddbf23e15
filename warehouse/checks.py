"""Integrity checks: per-table content hashes (timestamps and run ids left out), duplicate keys, and
the report of `litmeta check` (`integrity_problems`)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from litmeta.schemas import ALL_TABLES, PUBMED_RECORD_TABLES, TABLES, Table
from litmeta.schemas.model import quote
from litmeta.warehouse.db import check_path, connect, writer_running

# Tables whose every row is tied to a run: their content differs between two histories by design.
# (raw_documents is compared: the same observations store the same answers, whatever the runs.)
PER_RUN_TABLES = {"ingest_runs", "link_snapshots", "icite_metrics", "rejects", "schema_migrations", "network_metrics",
                  "notifications"}


def content_hashes(con: duckdb.DuckDBPyConnection, include_runs: bool = False) -> dict[str, str]:
    """md5 over each table's rows (stable columns, sorted), so equal content gives equal hashes."""
    out = {}
    for t in ALL_TABLES:
        if t.name in PER_RUN_TABLES and not include_runs:
            continue
        cols = [c for c in t.stable_columns if c != "body"]
        row = "concat_ws('|', " + ", ".join(f"coalesce(CAST({quote(c)} AS VARCHAR), '∅')" for c in cols) + ")"
        out[t.name] = con.execute(
            f"SELECT count(*) || ':' || coalesce(md5(string_agg({row}, '\n' ORDER BY {row})), '') FROM {t.name}"
        ).fetchall()[0][0]
    return out


def present_tables(con: duckdb.DuckDBPyConnection) -> list[Table]:
    """The tables of `ALL_TABLES` the warehouse has (one opened read-only may predate a migration)."""
    have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    return [t for t in ALL_TABLES if t.name in have]


def duplicate_keys(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Tables with rows sharing a key (NULLs compare equal), and how many extra rows."""
    out = {}
    for t in present_tables(con):
        key = ", ".join(quote(k) for k in t.key)
        n = con.execute(f"SELECT count(*) - count(DISTINCT ({key})) FROM {t.name}").fetchall()[0][0]
        if n:
            out[t.name] = n
    return out


# -- litmeta check ---------------------------------------------------------------------------------
EXAMPLES = 5


@dataclass
class Problem:
    """One kind of integrity problem in one table: how many rows, and a few example keys."""

    check: str  # missing_table, duplicate_keys, orphan_source, orphan_run, orphan_child, left_running, broken_view
    table: str
    count: int
    examples: list[str]
    what: str

    def line(self) -> str:
        return f"{self.table}: {self.what}: {self.count} ({', '.join(self.examples)})"


def _examples(con: duckdb.DuckDBPyConnection, cols: list[str], frm: str) -> tuple[int, list[str]]:
    """The number of rows of ``frm`` (a FROM ... WHERE clause) and up to EXAMPLES of them as text."""
    n = con.execute(f"SELECT count(*) {frm}").fetchall()[0][0]
    if not n:
        return 0, []
    sel = ", ".join(quote(c) for c in cols)
    rows = con.execute(f"SELECT {sel} {frm} ORDER BY {sel} LIMIT {EXAMPLES}").fetchall()
    return n, ["(" + ", ".join("NULL" if v is None else str(v) for v in r) + ")" for r in rows]


def integrity_problems(con: duckdb.DuckDBPyConnection, writer_alive: bool) -> list[Problem]:
    """Every integrity problem of the warehouse (read-only queries only).

    ``writer_alive``: a run holds the writer lock now, so a 'running' run may be that one.
    """
    out: list[Problem] = []
    tables = present_tables(con)
    for t in ALL_TABLES:
        if t not in tables:
            out.append(Problem("missing_table", t.name, 1, ["the next writing run of this litmeta creates it"],
                               "a table of this litmeta version is missing (a migration is pending)"))
    for name, extra in duplicate_keys(con).items():
        t = TABLES[name]
        key = ", ".join(quote(k) for k in t.key)
        _, ex = _examples(con, t.key, f"FROM (SELECT {key} FROM {t.name} GROUP BY ALL HAVING count(*) > 1)")
        out.append(Problem("duplicate_keys", t.name, extra, ex, f"rows repeating a key of ({', '.join(t.key)})"))
    for t in tables:
        names = t.column_names
        ident = [k for k in t.key if k != "run_id"] or t.key
        if "source_sha256" in names:
            n, ex = _examples(con, ident, f"FROM {t.name} WHERE source_sha256 IS NOT NULL AND source_sha256 NOT IN "
                                          "(SELECT sha256 FROM raw_documents)")
            if n:
                out.append(Problem("orphan_source", t.name, n, ex, "rows whose source_sha256 has no raw_documents row"))
        if "run_id" in names and t.name != "ingest_runs":
            n, ex = _examples(con, ident, f"FROM {t.name} WHERE run_id IS NOT NULL AND run_id NOT IN "
                                          "(SELECT run_id FROM ingest_runs)")
            if n:
                out.append(Problem("orphan_run", t.name, n, ex, "rows whose run_id has no ingest_runs row"))
    for t in PUBMED_RECORD_TABLES[1:]:
        n, ex = _examples(con, t.key, f"FROM {t.name} WHERE pmid NOT IN (SELECT pmid FROM articles)")
        if n:
            out.append(Problem("orphan_child", t.name, n, ex, "rows of an article the warehouse does not hold"))
    for origin, parent in (("pubmed", "SELECT pmid FROM articles"),
                           ("pmc", "SELECT pmid FROM pmc_articles WHERE pmid IS NOT NULL")):
        n, ex = _examples(con, ["citing_pmid", "position"], f"FROM reference_entries WHERE origin = '{origin}' "
                                                           f"AND citing_pmid NOT IN ({parent})")
        if n:
            out.append(Problem("orphan_child", "reference_entries", n, ex,
                               f"{origin} reference entries of an article the warehouse does not hold"))
    if not writer_alive:
        n, ex = _examples(con, ["run_id", "flow"], "FROM ingest_runs WHERE status = 'running'")
        if n:
            out.append(Problem("left_running", "ingest_runs", n, ex,
                               "runs left 'running' by a process that was killed (the next run marks them "
                               "'interrupted')"))
    for (view,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall():
        try:
            con.execute(f"SELECT * FROM {quote(view)} LIMIT 0").fetchall()
        except duckdb.Error as exc:
            out.append(Problem("broken_view", view, 1, [str(exc).splitlines()[0][:120]], "a view that no longer compiles"))
    return out


CHECK_WAIT_S = 4.5  # a check during a run gets in between its write transactions


def check_warehouse(db: str) -> tuple[list[Problem], str | None]:
    """`integrity_problems` of the warehouse file ``db``, read-only; and who is writing it now, if anyone."""
    check_path(db, must_exist=True)
    writer = writer_running(db)
    with connect(db, read_only=True, wait=CHECK_WAIT_S) as con:
        return integrity_problems(con, writer_alive=writer is not None), writer
