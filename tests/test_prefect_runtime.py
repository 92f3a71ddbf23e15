"""Prefect for a CLI run (litmeta.flows.prefect_runtime): the temporary API server litmeta starts, or the configured API."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from tests.conftest import litmeta_cmd, run_cli, temporary_prefect_env, wait_until_running

REPO = Path(__file__).resolve().parent.parent
SEED_XML = REPO / "extractors" / "sandbox" / "snapshots" / "39047240" / "pubmed" / "seed_network.xml"


def _servers_of(home: Path) -> list[int]:
    """Pids of Prefect API servers (``python -m litmeta.flows.prefect_server``) running with PREFECT_HOME=home."""

    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if b"flows.prefect_server" in cmd and f"PREFECT_HOME={home}".encode() in env.split(b"\0"):
            pids.append(int(pid))
    return pids


def test_no_temporary_server_when_an_api_is_configured(monkeypatch):
    from litmeta.flows.prefect_runtime import PrefectRun

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    with PrefectRun(verbose=True) as run:
        assert run.api is None


def test_load_runs_its_flow_on_the_temporary_server_and_stops_it(tmp_path):
    """Without PREFECT_API_URL, the flow run is recorded by the temporary server litmeta started
    (Prefect's database under PREFECT_HOME), and no server outlives the command."""
    home = tmp_path / "prefect-home"
    env = temporary_prefect_env(home)
    r = run_cli(["--db", str(tmp_path / "w.duckdb"), "load", str(SEED_XML)], env, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "records new 11" in r.stdout
    with sqlite3.connect(home / "prefect.db") as con:
        runs = con.execute("SELECT f.name, r.state_type FROM flow_run r JOIN flow f ON f.id = r.flow_id").fetchall()
        tasks = con.execute("SELECT state_type FROM task_run").fetchall()  # recorded from events, as the server stops
    assert runs == [("load_files", "COMPLETED")]
    assert tasks == [("COMPLETED",)]
    assert _servers_of(home) == []


def test_temporary_server_stops_when_litmeta_is_killed(tmp_path):
    """kill -9 of litmeta mid-run (no cleanup runs in it) still stops the server it started."""
    import signal
    import subprocess
    import time

    from litmeta.extractors.sandbox import BUNDLED_SNAPSHOT, SandboxServer

    home = tmp_path / "prefect-home"
    db = tmp_path / "w.duckdb"
    with SandboxServer(BUNDLED_SNAPSHOT, faults="slow=1.0,seed=1") as sb:  # every answer takes 1-3 s
        proc = subprocess.Popen(litmeta_cmd() + ["--db", str(db), "--eutils-url", sb.base_url, "network", "39047240"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=temporary_prefect_env(home),
                                cwd=REPO)
        try:
            running = wait_until_running(proc, db)
            assert running, "the network run never started"
            assert _servers_of(home), "no temporary server while the flow runs"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
        deadline = time.monotonic() + 15
        while _servers_of(home) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert _servers_of(home) == []


def _server_of_a_running_flow(home: Path, proc, timeout: float = 90) -> int:
    """The pid of the temporary server (PREFECT_HOME=home) once a flow run is RUNNING in Prefect's database
    (the run's client has reached the server); ``proc`` must still run."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(home / "prefect.db", timeout=1) as con:
                running = con.execute("SELECT count(*) FROM flow_run WHERE state_type = 'RUNNING'").fetchone()[0]
        except sqlite3.Error:
            running = 0
        if running and (servers := _servers_of(home)):
            return servers[0]
        time.sleep(0.05)
    raise AssertionError("no flow run was running while the command ran")


def test_what_the_watcher_restarts_and_when_it_gives_up(monkeypatch, capfd):
    """Decisions of `TemporaryApi._watch` with fake server processes: a server killed or failing is
    restarted (up to the limit, then one line says so); one stopped on purpose (exit 0, SIGINT, SIGTERM:
    the terminal's Ctrl-C) is not; a second watch() or a relaunch leaves one watcher for the live server."""
    import signal
    import threading
    import time

    import litmeta.flows.prefect_runtime as rt

    class Fake:
        def __init__(self) -> None:
            self.code = None

        def poll(self):
            return self.code

        def terminate(self) -> None:
            self.code = -signal.SIGTERM

        wait = kill = lambda self, timeout=None: None

    spawned: list[Fake] = []

    def spawn(self) -> None:
        self.proc = Fake()
        spawned.append(self.proc)

    monkeypatch.setattr(rt.TemporaryApi, "_spawn", spawn)
    monkeypatch.setattr(rt.TemporaryApi, "_healthy", lambda self: True)
    monkeypatch.setattr(rt, "WATCH_POLL_S", 0.01)

    def settle() -> None:
        time.sleep(0.2)

    assert [rt._stopped_on_purpose(c) for c in (0, -signal.SIGINT, -signal.SIGTERM, -signal.SIGKILL, 1, 3)] == \
        [True, True, True, False, False, False]
    api = rt.TemporaryApi().launch()
    api.watch(restarts=2)
    api.watch(restarts=2)  # one watcher per launch
    spawned[-1].code = -signal.SIGKILL
    settle()
    assert len(spawned) == 2  # restarted once, not once per watch()
    spawned[-1].code = 1
    settle()
    spawned[-1].code = -signal.SIGKILL
    settle()
    assert len(spawned) == 3
    err = capfd.readouterr().err
    assert err.count("restarting it on port") == 2 and "(exit code 1)" in err
    assert "died again during the run (killed by SIGKILL); not restarted" in err
    api.stop()

    api = rt.TemporaryApi().launch()
    api.watch()
    api.launch()  # a relaunch without stop(): the first watcher stops
    api.watch()
    settle()
    assert sum(t.name == "litmeta-prefect-watch" for t in threading.enumerate()) == 1
    spawned[-1].code = -signal.SIGINT  # Ctrl-C
    settle()
    assert len(spawned) == 5 and "restarting" not in capfd.readouterr().err
    api.stop()
    settle()
    assert not any(t.name == "litmeta-prefect-watch" for t in threading.enumerate())


def test_load_survives_its_temporary_server_being_killed(tmp_path):
    """`litmeta load` whose Prefect server is killed mid-run finishes: exit 0, everything loaded, one line
    about the restart (without it, the run's calls retried against the dead port for minutes, then failed)."""
    import signal
    import subprocess

    from tests.pubmed_fixtures import article, document

    home = tmp_path / "prefect-home"
    path = tmp_path / "big.xml"
    path.write_bytes(document(*(article(70000 + i, refs=tuple(range(1, 120))) for i in range(2000))))
    db = tmp_path / "w.duckdb"
    proc = subprocess.Popen(litmeta_cmd() + ["--db", str(db), "load", str(path)], env=temporary_prefect_env(home),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        os.kill(_server_of_a_running_flow(home, proc), signal.SIGKILL)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert "records new 2000" in out
    assert "server died during the run (killed by SIGKILL); restarting it" in err
    assert "Traceback" not in err
    assert _servers_of(home) == []
