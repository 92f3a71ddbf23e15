"""One schema definition drives DDL, Arrow and docs; README queries run as written; code is ruff-clean."""

from __future__ import annotations

import re
import subprocess
import sys

from schemas import ALL_TABLES
from schemas.docs import render
from tests.conftest import BUNDLED_SNAPSHOT, REPO
from warehouse.db import connect


def test_docs_schema_md_is_generated_from_schemas():
    assert (REPO / "docs" / "schema.md").read_text() == render(), "run: python -m schemas.docs > docs/schema.md"


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


def _readme_queries() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Example queries", 1)[1].split("\n## ", 1)[0]
    return re.findall(r'^litmeta sql "(.+?)"', section, flags=re.M)


def test_readme_example_queries_run_as_written(tmp_path):
    from extractors.pubmed_xml import iter_batches
    from warehouse.load import BatchLoader

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
