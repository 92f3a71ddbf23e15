"""Concurrency: readers during a write get an answer or a clear "busy"; two writers never interleave.

Acceptance 3 of issue 5. `litmeta sql` on a warehouse locked outright by a writer is covered by
tests/test_cli.py::test_locked_warehouse_says_busy (busy within 5 s, exit 3); here the reads
happen while a real network run writes, batch by batch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from bench.chaos import differing, readers_during_run, two_writers
from litmeta.warehouse.db import WarehouseBusy, lock_path, writer_lock
from tests.conftest import REPO
from tests.reliability.conftest import DEPTH, MAX_NODES

pytestmark = pytest.mark.reliability


@pytest.mark.corpus
def test_sql_during_a_network_run_answers_or_says_busy(syn, reference, prefect_api, tmp_path):
    snap, seed = syn
    db = tmp_path / "concurrent.duckdb"
    r = readers_during_run(snap, seed, db, prefect_api, DEPTH, MAX_NODES, sql_pause=0.5)
    print({k: v for k, v in r.items() if k != "hashes"})
    assert r["run_returncode"] == 0, r["run_stderr_tail"]
    assert r["sql"]["traceback"] == 0 and r["sql"]["other"] == 0, r["odd"]
    assert r["sql"]["answer"] > 0, "readers get in between the run's write batches"
    assert r["sql_busy_latency_max_s"] is None or r["sql_busy_latency_max_s"] < 8, "busy is said within 5 s"
    assert r["polls"]["error"] == 0, r["odd"]
    assert r["polls"]["ok"] > 0
    assert r["articles_seen_monotone"], "readers only ever see committed batches"
    assert r["duplicates"] == {}
    assert differing(r, reference["state"]) == [], "reading during the run changes nothing"


@pytest.mark.corpus
def test_two_writers_never_interleave(syn, prefect_api, tmp_path):
    snap, seed = syn
    db = tmp_path / "writers.duckdb"
    pub = sorted((snap / "pubmed").glob("*.xml"))[0]
    w = two_writers(snap, seed, db, prefect_api, DEPTH, MAX_NODES, ["load", str(pub)])
    print(w)
    assert w["a_returncode"] == 0, w["a_stderr_tail"]
    assert w["a_still_running_when_refused"], "the refusal must have happened while the first run was writing"
    assert w["refused_returncode"] == 3
    assert "Traceback" not in w["refused_stderr"]
    last = w["refused_stderr"].splitlines()[-1]
    assert "another litmeta run is writing the warehouse (pid" in last and "litmeta network" in last, last
    assert "retry when it has finished" in last
    assert w["refused_after_s"] < 15
    assert w["waited_returncode"] == 0, w["waited_stderr"]
    assert "waiting up to 300 s for the warehouse" in w["waited_stderr"]
    assert len(w["runs"]) == 2 and all(status == "completed" for status, _, _ in w["runs"])
    assert w["overlapping_runs"] == [], "the second writer's run starts after the first one finished"


def test_writer_lock_is_exclusive_across_threads_and_processes(tmp_path):
    db = tmp_path / "w.duckdb"
    with writer_lock(db, what="test holder"):
        with writer_lock(db):  # re-entrant in the holding thread (CLI command + its flow)
            pass
        errors = []

        def other_thread():
            try:
                with writer_lock(db, wait=0.3):
                    errors.append("entered")
            except WarehouseBusy as exc:
                errors.append(str(exc))

        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        assert errors and "another run of this process is writing" in errors[0]
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from litmeta.warehouse.db import writer_lock\n"
                f"with writer_lock({str(db)!r}, wait=0.3): pass",
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert probe.returncode == 1 and "WarehouseBusy" in probe.stderr
        assert f"pid {os.getpid()}: test holder" in probe.stderr
    assert lock_path(db).read_text() == "", "released: the holder line is cleared"
    with writer_lock(db, wait=0):
        pass


@pytest.mark.corpus
def test_check_answers_within_5_s_while_a_network_run_writes(syn, prefect_api, tmp_path, capsys):
    """`check` run while another process writes answers within 5 s, timed from the call (not counting
    an interpreter's start-up), and reports the writer."""
    import json
    import time

    from litmeta.extractors.sandbox import SandboxServer
    from litmeta.flows.cli import main
    from tests.conftest import litmeta_cmd

    snap, seed = syn
    db = tmp_path / "w.duckdb"
    with SandboxServer(snap) as sb:
        run = subprocess.Popen(litmeta_cmd() + ["--db", str(db), "--eutils-url", sb.base_url, "network",
                                                str(seed), "--depth", str(DEPTH), "--max-nodes", str(MAX_NODES)],
                               env={**os.environ, **prefect_api}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
        try:
            answers = []
            while run.poll() is None:
                if db.exists():
                    capsys.readouterr()
                    t = time.monotonic()
                    code = main(["--db", str(db), "check", "--format", "json"])
                    seconds = time.monotonic() - t
                    out = capsys.readouterr()
                    answers.append((seconds, code, out.out, out.err))
                time.sleep(0.2)
            assert run.wait(timeout=300) == 0, run.stderr.read()[-2000:]
        finally:
            if run.poll() is None:
                run.kill()
    during = [a for a in answers if a[1] == 0 and json.loads(a[2])["writer"]]
    assert during, f"no check answered while the run wrote: {[(round(a[0], 1), a[1], a[3][-200:]) for a in answers]}"
    assert all(a[0] < 5 for a in answers), [round(a[0], 1) for a in answers]
    assert all(a[1] == 0 for a in answers), [a[2][-500:] + a[3][-500:] for a in answers if a[1]]
    assert main(["--db", str(db), "check"]) == 0
