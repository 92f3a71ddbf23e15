"""Prefect for a CLI run (flows.prefect_runtime): the temporary API server litmeta starts, or the configured API."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from tests.conftest import run_cli

REPO = Path(__file__).resolve().parent.parent
SEED_XML = REPO / "extractors" / "sandbox" / "snapshots" / "39047240" / "pubmed" / "seed_network.xml"


def _servers_of(home: Path) -> list[int]:
    """Pids of Prefect API servers (uvicorn create_app) running with PREFECT_HOME=home."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if b"prefect.server.api.server:create_app" in cmd and f"PREFECT_HOME={home}".encode() in env.split(b"\0"):
            pids.append(int(pid))
    return pids


def test_no_temporary_server_when_an_api_is_configured(monkeypatch):
    from flows.prefect_runtime import PrefectRun

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    with PrefectRun(verbose=True) as run:
        assert run.api is None


def test_load_runs_its_flow_on_the_temporary_server_and_stops_it(tmp_path):
    """Without PREFECT_API_URL, the flow run is recorded by the temporary server litmeta started
    (Prefect's database under PREFECT_HOME), and no server outlives the command."""
    home = tmp_path / "prefect-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    r = run_cli(["--db", str(tmp_path / "w.duckdb"), "load", str(SEED_XML)], env, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "records new 11" in r.stdout
    with sqlite3.connect(home / "prefect.db") as con:
        runs = con.execute("SELECT f.name, r.state_type FROM flow_run r JOIN flow f ON f.id = r.flow_id").fetchall()
    assert runs == [("load_files", "COMPLETED")]
    assert _servers_of(home) == []
