"""One exit code per outcome: 0 done, 1 rejects, 2 bad input, 3 could not finish, 4 a bug (traceback in a log)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import duckdb
import pytest

from litmeta.flows.cli import main
from tests.conftest import refusing_server, run_cli
from tests.pubmed_fixtures import article, document


def _last_line(r) -> str:
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    return [ln for ln in r.stderr.strip().splitlines() if ln.strip()][-1]


def test_bad_pmid_is_2(tmp_path):
    r = run_cli(["--db", str(tmp_path / "w.duckdb"), "ingest", "39047240x"])
    assert r.returncode == 2 and "is not a PMID" in _last_line(r)


def test_a_record_with_rejects_is_1(tmp_path, prefect_api):
    xml = tmp_path / "a.xml"
    xml.write_bytes(document(article(11), article(12).replace('<PMID Version="1">12</PMID>', "")))
    r = run_cli(["--db", str(tmp_path / "w.duckdb"), "load", str(xml)], prefect_api)
    assert r.returncode == 1 and "rejected:" in r.stderr, r.stderr[-2000:]


def test_a_port_that_refuses_connections_is_3(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/entrez/eutils/"
    r = run_cli(["--db", str(tmp_path / "w.duckdb"), "--eutils-url", url, "ingest", "39047240"], timeout=60)
    last = _last_line(r)
    assert r.returncode == 3 and url in last and "re-run" in last, last


def test_a_server_answering_500_to_everything_is_3_within_the_retry_budget(tmp_path, prefect_api):
    page = b"<html><body><h1>500 Internal Server Error</h1></body></html>"
    db = tmp_path / "w.duckdb"
    with refusing_server(500, lambda path, body: page) as (url, hits):
        t = time.monotonic()
        r = run_cli(["--db", str(db), "--eutils-url", url, "--max-tries", "2", "ingest", "39047240"], prefect_api,
                    timeout=180)
        took = time.monotonic() - t
    last = _last_line(r)
    assert r.returncode == 3, r.stderr[-2000:]
    assert url in last and "re-run" in last and "500" in last, last
    assert len(hits) == 2 * 2  # two tries per request, the task tried twice (it can succeed on retry)
    assert took < 90, took
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT status FROM ingest_runs").fetchall() == [("failed",)]


def test_a_bug_in_a_parser_is_4_with_the_traceback_in_a_log_and_no_rejects(tmp_path, monkeypatch, capsys, prefect_api):
    from litmeta.extractors import pubmed_xml

    def broken(*args, **kwargs):
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

    monkeypatch.setattr(pubmed_xml.PubmedParser, "_medline", broken)
    monkeypatch.setenv("LITMETA_LOG_DIR", str(tmp_path / "logs"))
    xml = tmp_path / "a.xml"
    xml.write_bytes(document(article(21), article(22)))
    db = tmp_path / "w.duckdb"
    assert main(["--db", str(db), "load", str(xml)]) == 4
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("litmeta load: internal error (TypeError: unsupported operand") and "please report it" in err
    (log,) = (tmp_path / "logs").glob("litmeta-error-*.log")
    assert str(log) in err
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in broken" in text
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM rejects").fetchall() == [(0,)]
        assert con.execute("SELECT status FROM ingest_runs").fetchall() == [("failed",)]


@pytest.mark.parametrize("code", [0, 1, 2, 3, 4])
def test_every_exit_code_is_documented(code):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    from litmeta.flows.cli import EXIT_CODES

    assert f"  {code}  " in EXIT_CODES and f"{code} " in readme.split("Exit codes", 1)[1][:1200]
