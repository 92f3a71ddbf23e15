"""Integrity checks: per-table content hashes (timestamps and run ids left out) and duplicate keys."""

from __future__ import annotations

import duckdb

from litmeta.schemas import ALL_TABLES
from litmeta.schemas.model import quote

# Tables whose rows are per-run bookkeeping: compared by their stable columns like the rest, except
# these, whose every row is tied to a run (their content differs between two runs by design).
PER_RUN_TABLES = {"ingest_runs", "link_snapshots", "rejects", "raw_documents", "schema_migrations"}


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


def duplicate_keys(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Tables with rows sharing a key (NULLs compare equal), and how many extra rows."""
    out = {}
    for t in ALL_TABLES:
        key = ", ".join(quote(k) for k in t.key)
        n = con.execute(f"SELECT count(*) - count(DISTINCT ({key})) FROM {t.name}").fetchall()[0][0]
        if n:
            out[t.name] = n
    return out
