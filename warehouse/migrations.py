"""Versioned migrations of the warehouse, recorded in `schema_migrations`.

Migration 1 creates every table from `litmeta.schemas.tables` (the one definition). A later change to a
table adds a migration here (e.g. an ALTER TABLE generated from the new column's definition);
`check_drift` refuses to run against a file whose columns do not match the schema, naming them.

A column's storage compression (`litmeta.schemas.model.Column.compression`) is not migrated: DuckDB cannot
alter it, and rebuilding a table would rewrite most of a large warehouse's file (and grow it by the
table's size until later loads reuse the space). A warehouse created before a compression was
declared keeps DuckDB's own choice for that column: same data, same queries, a larger file.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from litmeta.schemas import ALL_TABLES, TABLES
from litmeta.warehouse.views import create_views


def _initial(con: duckdb.DuckDBPyConnection) -> None:
    for table in ALL_TABLES:
        con.execute(table.ddl())


def _create(*names: str) -> Callable[[duckdb.DuckDBPyConnection], None]:
    """A migration that adds tables defined since (a warehouse created later has them already)."""
    def step(con: duckdb.DuckDBPyConnection) -> None:
        for name in names:
            con.execute(TABLES[name].ddl())

    return step


def _add_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> None:
    """Add a column defined since, from its definition (a warehouse created later has it already)."""
    col = next(c for c in TABLES[table].columns if c.name == column)
    con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {col.ddl}")


def _citation_sources(con: duckdb.DuckDBPyConnection) -> None:
    _create("icite_metrics", "id_map")(con)
    _add_column(con, "citation_edges", "resolved_by")
    _add_column(con, "seeds", "sources")


MIGRATIONS: list[tuple[int, str, Callable[[duckdb.DuckDBPyConnection], None]]] = [
    (1, "create every table of schemas.tables", _initial),
    (2, "create source_files", _create("source_files")),
    (3, "create icite_metrics and id_map; add citation_edges.resolved_by, seeds.sources", _citation_sources),
    (4, "create the tables of the rest of the PubMed record and full_text_links",
     _create("investigators", "investigator_affiliations", "person_identifiers", "affiliation_identifiers",
             "supplementary_mesh", "other_abstracts", "other_ids", "full_text_links")),
    (5, "create network_metrics and notifications", _create("network_metrics", "notifications")),
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
