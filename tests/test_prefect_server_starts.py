"""Prefect's temporary server started more than once in a process, or not at all: what litmeta says."""

from __future__ import annotations

import sqlite3

from tests.conftest import run_cli, temporary_prefect_env
from tests.test_prefect_runtime import REPO, SEED_XML, _servers_of


def test_two_runs_in_one_process_report_everything_to_their_own_server(tmp_path):
    """Prefect's event sender (it carries task-run states) is drained before each temporary server stops,
    so a second command in the same process does not send to the first, stopped, server."""
    import subprocess
    import sys

    home = tmp_path / "prefect-home"
    code = ("import sys; from litmeta.flows.cli import main\n"
            f"for db in ('{tmp_path / 'a.duckdb'}', '{tmp_path / 'b.duckdb'}'):\n"
            f"    assert main(['--db', db, 'load', '{SEED_XML}']) == 0\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=temporary_prefect_env(home), capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Unable to connect" not in r.stderr
    with sqlite3.connect(home / "prefect.db") as con:
        flows = con.execute("SELECT state_type FROM flow_run").fetchall()
        tasks = con.execute("SELECT state_type FROM task_run").fetchall()
    assert flows == [("COMPLETED",), ("COMPLETED",)]
    assert tasks == [("COMPLETED",), ("COMPLETED",)]


def test_a_temporary_server_that_cannot_start_is_one_line_and_exit_2(tmp_path):
    env = temporary_prefect_env(tmp_path / "prefect-home") | {
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/prefect.db"}
    r = run_cli(["--db", str(tmp_path / "w.duckdb"), "load", str(SEED_XML)], env, timeout=180)
    assert r.returncode == 2, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("litmeta load: Prefect's temporary API server exited with code"), last
    assert "PREFECT_API_URL" in last


def test_a_server_exiting_with_code_3_is_relaunched_only_when_its_port_was_taken():
    """uvicorn's exit code 3 means the port was taken or the app failed to start: a new port helps only the first."""
    import socket

    import pytest

    from litmeta.flows.prefect_runtime import PrefectUnavailable, TemporaryApi

    class Exited:
        def poll(self) -> int:
            return 3

    launches = []
    api = TemporaryApi()
    api.launch = lambda: launches.append(1) or setattr(api, "proc", Exited())  # type: ignore[method-assign]
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        api.port, api.proc = holder.getsockname()[1], Exited()
        with pytest.raises(PrefectUnavailable, match="exited with code 3"):
            api.wait_ready(timeout=5, relaunches=2)
    assert len(launches) == 2  # the port was in use: a new one, twice, then the last exit is reported
    launches.clear()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    api.port, api.proc = free, Exited()
    with pytest.raises(PrefectUnavailable, match="exited with code 3"):
        api.wait_ready(timeout=5, relaunches=2)
    assert launches == []  # the app itself failed: starting it again would fail the same way


def test_invalid_prefect_settings_are_one_line_naming_the_variable(tmp_path):
    """A bad PREFECT_* value: a last line naming the variable and its value (after Prefect's own
    print of the validation error), exit 2, no traceback, nothing loaded and no server left behind;
    `serve` says the same."""
    home = tmp_path / "prefect-home"
    env = temporary_prefect_env(home) | {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "often"}
    db = tmp_path / "w.duckdb"
    r = run_cli(["--db", str(db), "load", str(SEED_XML)], env, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1] == (
        "litmeta load: Prefect's settings are not valid (FlowsSettings.heartbeat_frequency: Input should be a "
        "valid integer, unable to parse string as an integer); fix or unset the environment variable "
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY='often'"), r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert _servers_of(home) == []
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (0,)
    r = run_cli(["--db", str(db), "serve", "--register-only"],
                env | {"PREFECT_LOGGING_LEVEL": "LOUD", "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "180"}, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1] == (
        "litmeta serve: Prefect's settings are not valid (LoggingSettings.level: Input should be 'DEBUG', 'INFO', "
        "'WARNING', 'ERROR' or 'CRITICAL'); fix or unset the environment variable PREFECT_LOGGING_LEVEL='LOUD'")
    assert "Traceback" not in r.stderr
