"""`litmeta check` and `litmeta reparse` on the whole corpus and the demo: clean, and reparse gives back
what was deleted, with no HTTP request."""

from __future__ import annotations

import json

import duckdb
import pytest

from litmeta.flows.cli import main
from litmeta.warehouse.checks import integrity_problems
from tests.conftest import require_corpus, run_cli


@pytest.mark.e2e
@pytest.mark.corpus
def test_check_and_reparse_on_the_corpus_and_the_demo(tmp_path, prefect_api, capsys):
    """The whole corpus and the demo loaded: `check` is clean; truncated authors, MeSH and references
    come back equal, table by table, from `reparse` with no HTTP request (twice: idempotent); then a
    duplicate authors row and a deleted raw document are both named by `check`, exit 1."""
    from litmeta.extractors.sandbox import BUNDLED_SNAPSHOT, SandboxServer
    from litmeta.warehouse.checks import content_hashes

    db = tmp_path / "w.duckdb"
    files = [str(p) for sub in ("pubmed", "pmc") for p in sorted(require_corpus(sub).iterdir()) if p.is_file()]
    loaded = run_cli(["--db", str(db), "load", *files], prefect_api, timeout=600)
    assert loaded.returncode in (0, 1), loaded.stderr[-2000:]  # some corpus files hold records with rejects
    demo = run_cli(["--db", str(db), "demo"], prefect_api)
    assert demo.returncode == 0, demo.stderr[-2000:]
    capsys.readouterr()
    assert main(["--db", str(db), "check"]) == 0, capsys.readouterr().out
    assert "clean" in capsys.readouterr().out
    with duckdb.connect(str(db)) as con:
        before = content_hashes(con)
        assert con.execute("SELECT count(*) FROM articles").fetchall()[0][0] > 300
        assert con.execute("SELECT count(*) FROM reference_entries WHERE origin = 'pmc'").fetchall()[0][0] > 0
        for t in ("authors", "mesh_headings", "reference_entries"):
            con.execute(f"DELETE FROM {t}")
    with SandboxServer(BUNDLED_SNAPSHOT) as sb:
        for _ in range(2):
            r = run_cli(["--db", str(db), "--eutils-url", sb.base_url, "reparse"], prefect_api, timeout=600)
            assert r.returncode in (0, 1), r.stderr[-2000:]
            with duckdb.connect(str(db), read_only=True) as con:
                after = content_hashes(con)
                assert integrity_problems(con, writer_alive=False) == []
            assert [t for t in before if before[t] != after[t]] == []
        assert sb.stats()["requests"] == 0, sb.stats()

    with duckdb.connect(str(db)) as con:
        con.execute("INSERT INTO authors SELECT * FROM authors WHERE pmid = 39047240 AND position = 1")
        con.execute("DELETE FROM raw_documents WHERE sha256 = (SELECT source_sha256 FROM articles WHERE pmid = 39047240)")
    capsys.readouterr()
    assert main(["--db", str(db), "check"]) == 1
    out = capsys.readouterr().out
    assert "authors: rows repeating a key of (pmid, position): 1 ((39047240, 1))" in out
    assert "articles: rows whose source_sha256 has no raw_documents row" in out and "(39047240)" in out
    assert main(["--db", str(db), "check", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["clean"] and {p["check"] for p in report["problems"]} == {"duplicate_keys", "orphan_source"}
