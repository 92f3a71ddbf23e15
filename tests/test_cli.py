"""CLI contract: --help with an example for every verb; bad input is one line naming it, exit 2, no traceback."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

from litmeta.flows.cli import build_parser, main
from tests.conftest import (
    BUNDLED_SNAPSHOT,
    REPO,
    litmeta_cmd,
    refusing_server,
    run_cli,
    temporary_prefect_env,
    wait_until_running,
)
from tests.pubmed_fixtures import article, document

VERBS = ["ingest", "network", "refresh", "search", "load", "sql", "export", "serve", "sandbox", "demo", "sources"]


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help_with_an_example(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        main([verb, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and f"litmeta {verb}" in out


def _one_line_error(r: subprocess.CompletedProcess, *needles: str, code: int = 2) -> None:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    last = [ln for ln in r.stderr.strip().splitlines() if ln.strip()][-1]
    for n in needles:
        assert n in last, (n, last)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_pmid_and_relation_and_format(tmp_path):
    db = str(tmp_path / "x.duckdb")
    _one_line_error(run_cli(["--db", db, "ingest", "abc"]), "'abc' is not a PMID")
    _one_line_error(run_cli(["--db", db, "ingest", "-1"]), "is not a PMID")
    _one_line_error(run_cli(["--db", db, "ingest", "39047240;DROP TABLE articles"]), "is not a PMID")
    _one_line_error(run_cli(["--db", db, "network", "39047240", "--relations", "refs,friends"]), "unknown relation friends")
    _one_line_error(run_cli(["--db", db, "export", "--format", "xlsx", "--out", str(tmp_path)]), "xlsx")
    ids = tmp_path / "ids.txt"
    ids.write_text("39047240\n1 OR 1=1\n")
    _one_line_error(run_cli(["--db", db, "ingest", "--from-file", str(ids)]), "line 2", "'1 OR 1=1'")


def test_unreachable_base_url(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/entrez/eutils/"
    r = run_cli(["--db", str(tmp_path / "x.duckdb"), "--eutils-url", url, "ingest", "39047240"], timeout=60)
    _one_line_error(r, "cannot reach", url, "re-run", code=3)
    _one_line_error(run_cli(["--eutils-url", "ftp:/nowhere", "--db", str(tmp_path / "y.duckdb"), "ingest", "1"]),
                    "not an http(s) URL")


def test_bad_db_paths(tmp_path):
    _one_line_error(run_cli(["--db", str(tmp_path), "sql", "SELECT 1"]), "is a directory")
    _one_line_error(run_cli(["--db", str(tmp_path / "missing" / "w.duckdb"), "demo"]), "does not exist")
    _one_line_error(run_cli(["--db", str(tmp_path / "none.duckdb"), "sql", "SELECT 1"]), "no warehouse there yet")
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"not a database" * 100)
    _one_line_error(run_cli(["--db", str(junk), "sql", "SELECT 1"]), str(junk))


def test_unwritable_warehouse(tmp_path, monkeypatch, capsys):
    """An unwritable folder is reported, naming it (os.access is faked: CI runs as root, which writes anywhere)."""
    target = tmp_path / "ro"
    target.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(target) and mode == os.W_OK else real(p, mode))
    assert main(["--db", str(target / "w.duckdb"), "demo"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"litmeta demo: --db {target / 'w.duckdb'}: folder {target} is not writable; choose another path or fix permissions"


def test_sql_is_read_only_and_formats(tmp_path, prefect_api):
    db = tmp_path / "w.duckdb"
    xml = tmp_path / "a.xml"
    xml.write_bytes(document(article(5), article(6, grants=2)))
    r = run_cli(["--db", str(db), "load", str(xml)], prefect_api)
    assert r.returncode == 0, r.stderr
    _one_line_error(run_cli(["--db", str(db), "sql", "DROP TABLE articles"]), "read-only")
    _one_line_error(run_cli(["--db", str(db), "sql", "SELEC nonsense"]), "query failed")
    csv_out = run_cli(["--db", str(db), "sql", "SELECT pmid, count(*) AS n FROM grants GROUP BY pmid ORDER BY pmid",
                       "--format", "csv"])
    assert csv_out.stdout.splitlines() == ["pmid,n", "5,1", "6,2"]
    js = run_cli(["--db", str(db), "sql", "SELECT pmid FROM articles ORDER BY pmid", "--format", "json"])
    assert re.sub(r"\s", "", js.stdout) == '[{"pmid":5},{"pmid":6}]'


def test_locked_warehouse_says_busy(tmp_path):
    """A writer holds the file: sql answers 'busy' within 5 s, exit 3 (retry later)."""
    from litmeta.warehouse.db import connect

    db = tmp_path / "locked.duckdb"
    connect(str(db)).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(db)!r}); print('ok', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        import time

        t = time.monotonic()
        r = run_cli(["--db", str(db), "sql", "SELECT 1"])
        assert time.monotonic() - t < 8  # includes interpreter start-up
        _one_line_error(r, "busy", "retry", code=3)
    finally:
        holder.kill()


def test_load_reports_rejects_with_exit_1(tmp_path, prefect_api):
    xml = tmp_path / "partly.xml"
    bad = article(8).replace('<PMID Version="1">8</PMID>', "")
    xml.write_bytes(document(article(7), bad, article(9)))
    r = run_cli(["--db", str(tmp_path / "w.duckdb"), "load", str(xml)], prefect_api)
    assert r.returncode == 1, r.stderr
    assert f"rejected: {xml}: record 2: record has no PMID" in r.stderr
    missing = run_cli(["--db", str(tmp_path / "w.duckdb"), "load", str(tmp_path / "nope.xml")], prefect_api)
    _one_line_error(missing, "no such file", "nope.xml")
    import gzip

    data = bytearray(gzip.compress(document(article(7))))
    data[10] = 0xFF  # the first deflate block has the reserved type: zlib.error while sniffing the kind
    broken = tmp_path / "invalid.xml.gz"
    broken.write_bytes(bytes(data))
    r = run_cli(["--db", str(tmp_path / "w.duckdb"), "load", str(broken)], prefect_api)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"rejected: {broken}: after 0 uncompressed bytes: gzip stream broken" in r.stderr


def test_parser_accepts_globals_after_the_verb():
    args = build_parser().parse_args(["demo", "--db", "/tmp/x.duckdb"])
    assert args.db == "/tmp/x.duckdb"
    args = build_parser().parse_args(["--db", "/tmp/y.duckdb", "sql", "SELECT 1"])
    assert args.db == "/tmp/y.duckdb"


def test_sandbox_verb_prints_base_url_first(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "litmeta", "sandbox", "--snapshot", str(BUNDLED_SNAPSHOT)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        first = proc.stdout.readline().strip()
        assert re.match(r"^http://127\.0\.0\.1:\d+/entrez/eutils/$", first), first
    finally:
        proc.terminate()
        proc.wait(10)


def test_failed_run_is_one_line_without_traceback(tmp_path, prefect_api):
    """A flow that fails (NCBI refuses the request) ends with one line and exit 2; Prefect's tracebacks stay off."""
    page = b"<html><body><h1>400 Bad Request</h1><p>Invalid id list</p></body></html>"
    db = tmp_path / "w.duckdb"
    with refusing_server(400, lambda path, body: page) as (url, hits):
        r = run_cli(["--db", str(db), "--eutils-url", url, "ingest", "39047240"], prefect_api, timeout=120)
    _one_line_error(r, "litmeta ingest: E-utilities refused the request", "400 Bad Request", "check the PMIDs")
    assert "<h1>" not in r.stderr  # the HTML error page is quoted as text
    assert len(hits) == 1  # refused for good: neither the client nor the Prefect task retried it
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT status FROM ingest_runs").fetchall() == [("failed",)]


def test_ctrl_c_during_a_run_exits_promptly_and_marks_it_interrupted(tmp_path):
    """Ctrl-C in a terminal (SIGINT to the process group, Prefect's temporary server included) mid-run:
    exit 130 within seconds with one line saying to re-run, and the run is 'interrupted' in ingest_runs."""
    import signal
    import time

    import duckdb

    from litmeta.extractors.sandbox import SandboxServer

    db = tmp_path / "w.duckdb"
    env = temporary_prefect_env(tmp_path / "prefect-home")
    with SandboxServer(BUNDLED_SNAPSHOT, faults="slow=1.0,seed=1") as sb:  # every answer takes 1-3 s
        proc = subprocess.Popen(litmeta_cmd() + ["--db", str(db), "--eutils-url", sb.base_url, "network", "39047240"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
                                start_new_session=True)
        running = wait_until_running(proc, db)
        assert running, "the network run never started"
        os.killpg(proc.pid, signal.SIGINT)
        t0 = time.monotonic()
        try:
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        waited = time.monotonic() - t0
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    assert waited < 10, f"took {waited:.1f} s to stop after Ctrl-C"
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "litmeta network: interrupted; re-run the same command to finish " \
        "(loads are idempotent)"
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT status FROM ingest_runs").fetchall() == [("interrupted",)]
