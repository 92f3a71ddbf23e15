"""Versioned migrations of the warehouse, recorded in `schema_migrations`.

Migration 1 creates every table from `schemas.tables` (the one definition). A later change to a
table adds a migration here (e.g. an ALTER TABLE generated from the new column's definition, or a
rebuild from it where DuckDB cannot alter, as for a column's storage compression);
`check_drift` refuses to run against a file whose columns do not match the schema, naming them.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from schemas import ALL_TABLES, TABLES
from schemas.model import Table, quote
from warehouse.views import create_views


def _initial(con: duckdb.DuckDBPyConnection) -> None:
    for table in ALL_TABLES:
        con.execute(table.ddl())


def rebuild(con: duckdb.DuckDBPyConnection, table: Table) -> None:
    """Re-create ``table`` from its current definition and copy its rows over, in order.

    For what DuckDB cannot ALTER (a column's storage compression). Views name tables, not bind
    them: they work again once the table is back under its name.
    """
    tmp = f"{table.name}__rebuild"
    cols = ", ".join(quote(c) for c in table.column_names)
    con.execute(f"DROP TABLE IF EXISTS {tmp}")
    con.execute(table.ddl(tmp))
    con.execute(f"INSERT INTO {tmp} ({cols}) SELECT {cols} FROM {table.name}")
    con.execute(f"DROP TABLE {table.name}")
    con.execute(f"ALTER TABLE {tmp} RENAME TO {table.name}")


def _citations_zstd(con: duckdb.DuckDBPyConnection) -> None:
    rebuild(con, TABLES["reference_entries"])


MIGRATIONS: list[tuple[int, str, Callable[[duckdb.DuckDBPyConnection], None]]] = [
    (1, "create every table of schemas.tables", _initial),
    (2, "reference_entries.citation stored with zstd compression", _citations_zstd),
]


def applied(con: duckdb.DuckDBPyConnection) -> set[int]:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchall()[0][0]
    if not exists:
        return set()
    return {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply pending migrations (each in its own transaction); (re)create views. Returns versions applied."""
    done = applied(con)
    if not done:
        # never write litmeta's tables into somebody else's database
        other = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1 LIMIT 4"
        ).fetchall()]
        if other:
            raise RuntimeError(
                f"not a litmeta warehouse: it holds other tables ({', '.join(other)}) and no schema_migrations; "
                "point --db at a litmeta warehouse or a new file"
            )
    new = []
    for version, name, step in MIGRATIONS:
        if version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(TABLES["schema_migrations"].ddl())
            step(con)
            con.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, now()::TIMESTAMP)",
                [version, name],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        new.append(version)
    check_drift(con)
    if new:
        create_views(con)
    return new


def check_drift(con: duckdb.DuckDBPyConnection) -> None:
    """Raise if a table's columns differ from schemas.tables (a migration is missing)."""
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'"
    ).fetchall()
    have: dict[str, set[str]] = {}
    for t, c in rows:
        have.setdefault(t, set()).add(c)
    problems = []
    for table in ALL_TABLES:
        missing = [c for c in table.column_names if c not in have.get(table.name, set())]
        if missing:
            problems.append(f"{table.name}: missing {', '.join(missing)}")
    if problems:
        raise RuntimeError(
            "warehouse schema does not match this litmeta version (" + "; ".join(problems)
            + "); a migration is missing: upgrade litmeta or load into a new --db file"
        )
