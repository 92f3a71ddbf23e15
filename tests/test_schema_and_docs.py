"""One schema definition drives DDL, Arrow and docs; README queries run as written; code is ruff-clean."""

from __future__ import annotations

import re
import subprocess
import sys

from litmeta.schemas import ALL_TABLES
from litmeta.schemas.docs import render
from litmeta.warehouse.db import connect
from tests.conftest import BUNDLED_SNAPSHOT, REPO


def test_docs_schema_md_is_generated_from_schemas():
    assert (REPO / "docs" / "schema.md").read_text() == render(), "run: python -m litmeta.schemas.docs > docs/schema.md"


def test_ddl_and_arrow_derive_from_one_definition():
    con = connect(":memory:")
    for t in ALL_TABLES:
        cols = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [t.name]).fetchall()]
        assert cols == t.column_names
        assert t.arrow_schema.names == [c.name for c in t.columns if not c.managed]
        assert set(t.key) <= set(cols)
    assert con.execute("SELECT max(version) FROM schema_migrations").fetchall()[0][0] >= 1


def _load_refs(db) -> None:
    from litmeta.extractors.pubmed_xml import iter_batches
    from litmeta.warehouse.load import BatchLoader
    from tests.pubmed_fixtures import article, document

    con = connect(db)
    loader = BatchLoader(con, "refs")
    doc = document(*(article(p, refs=tuple(range(p * 100, p * 100 + 30))) for p in range(1, 60)))
    for b in iter_batches(doc, source_name="refs.xml"):
        loader.load(b)
    con.close()


def _stored_ddl(con, table: str) -> str:
    return con.execute("SELECT sql FROM duckdb_tables() WHERE table_name = ?", [table]).fetchone()[0]


def test_declared_column_compressions_are_what_duckdb_stores(tmp_path):
    db = tmp_path / "w.duckdb"
    _load_refs(db)
    declared = [(t.name, c.name, c.compression) for t in ALL_TABLES for c in t.columns if c.compression]
    assert ("reference_entries", "citation", "zstd") in declared
    con = connect(db, read_only=True)
    for table, column, compression in declared:
        assert f"{column} VARCHAR USING COMPRESSION {compression}".lower() in _stored_ddl(con, table).lower()
        used = {r[0].lower() for r in con.execute(
            "SELECT DISTINCT compression FROM pragma_storage_info(?) WHERE column_name = ? AND segment_type = 'VARCHAR'",
            [table, column]).fetchall()}
        assert used == {compression}, (table, column, used)


def test_a_compression_is_declared_for_text_columns_and_known_methods_only():
    import pytest

    from litmeta.schemas.model import Column

    with pytest.raises(ValueError, match="VARCHAR columns only, not BIGINT"):
        Column("n", "BIGINT", "a number", compression="zstd")
    with pytest.raises(ValueError, match="'fsst' is not one of"):
        Column("t", "VARCHAR", "a text", compression="fsst")  # DuckDB 2.0 no longer writes it


def test_a_warehouse_made_before_a_column_declared_its_compression_keeps_working(tmp_path):
    """Compression is not migrated (a rebuild would rewrite most of a large file): such a warehouse
    opens without a migration, loads, and holds the same rows as one made now."""
    from dataclasses import replace

    from litmeta.schemas import TABLES

    old = TABLES["reference_entries"]
    before = replace(old, columns=tuple(replace(c, compression=None) for c in old.columns))
    db_old, db_new = tmp_path / "old.duckdb", tmp_path / "new.duckdb"
    con = connect(db_old)
    con.execute("DROP TABLE reference_entries")
    con.execute(before.ddl())
    con.close()
    _load_refs(db_old)
    _load_refs(db_new)
    a, b = connect(db_old, read_only=True), connect(db_new, read_only=True)
    assert "USING COMPRESSION" not in _stored_ddl(a, "reference_entries")
    versions = "SELECT version FROM schema_migrations ORDER BY 1"
    assert a.execute(versions).fetchall() == b.execute(versions).fetchall()  # no migration of its own
    query = "SELECT * FROM reference_entries ORDER BY ALL"
    assert a.execute(query).fetchall() == b.execute(query).fetchall()
    assert len(a.execute(query).fetchall()) == 59 * 30


def _readme_queries() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Example queries", 1)[1].split("\n## ", 1)[0]
    return re.findall(r'^litmeta sql "(.+?)"', section, flags=re.M)


def test_readme_example_queries_run_as_written(tmp_path):
    from litmeta.extractors.pubmed_xml import iter_batches
    from litmeta.warehouse.load import BatchLoader

    queries = _readme_queries()
    assert len(queries) == 3
    con = connect(":memory:")
    loader = BatchLoader(con, "readme")
    for f in sorted((BUNDLED_SNAPSHOT / "pubmed").glob("*.xml")):
        for b in iter_batches(f):
            loader.load(b)
    results = [con.execute(q).fetchall() for q in queries]
    agencies = dict((r[0], r[1]) for r in results[0])
    assert agencies["NCI NIH HHS"] == 28
    assert results[1] == []  # the bundled snapshot carries no MeSH (the seed page does not give it)
    assert dict(results[2]) == {2017: 1, 2022: 1, 2024: 2, 2025: 7}


def test_ruff_clean():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", str(REPO)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:]


def test_extractors_never_touch_duckdb_and_warehouse_never_http():
    for f in (REPO / "extractors").rglob("*.py"):
        assert "import duckdb" not in f.read_text(), f
    for f in (REPO / "warehouse").rglob("*.py"):
        text = f.read_text()
        assert "import requests" not in text and "extractors" not in text, f
