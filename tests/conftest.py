"""Shared fixtures: where the ../shared corpus is (tests that need it skip when it is absent)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LITMETA_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"


def require_corpus(sub: str = "") -> Path:
    """Return ../shared/corpus[/sub], or skip the test saying why."""
    path = CORPUS / sub if sub else CORPUS
    if not path.is_dir():
        pytest.skip(f"real NCBI corpus not found at {path} (../shared is absent; set LITMETA_SHARED to point at it)")
    return path


@pytest.fixture
def corpus() -> Path:
    return require_corpus()


BUNDLED_SNAPSHOT = REPO / "extractors" / "sandbox" / "snapshots" / "39047240"

# The files that take longest, longest first: xdist hands whole files to its workers in collection
# order (``--dist loadfile --no-loadscope-reorder``), so starting these first lets the workers end together.
LONGEST_FIRST = (
    "test_prefect_runtime.py", "test_integrity_corpus.py", "reliability/test_hostile_input.py",
    "reliability/test_crashes.py", "test_flows_e2e.py", "test_cli.py", "test_mirror.py",
    "reliability/test_faults_citation_sources.py", "reliability/test_faults.py",
    "reliability/test_concurrency.py", "test_prefect_server_starts.py", "test_warehouse_load.py",
    "test_entrez_sandbox.py", "test_network_report.py", "test_structure.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    tests = REPO / "tests"
    items.sort(key=lambda item: rank.get(item.path.relative_to(tests).as_posix()
                                         if item.path.is_relative_to(tests) else "", len(rank)))


SHARED_API_ENV = "LITMETA_TEST_PREFECT_API"  # the API the xdist controller started for its workers


def pytest_configure(config: pytest.Config) -> None:
    """With xdist workers, one Prefect API server for all of them, started here in the controller
    (its workers inherit the environment): a server per worker would boot four times and idle beside them."""
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    import tempfile

    from litmeta.flows.prefect_runtime import TemporaryApi

    home = tempfile.mkdtemp(prefix="litmeta-test-prefect-")
    os.environ.update(PREFECT_HOME=home, PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    api = TemporaryApi().launch()
    api.wait_ready(timeout=120)
    config.stash[_SHARED_API] = api
    os.environ[SHARED_API_ENV] = api.api_url


def pytest_unconfigure(config: pytest.Config) -> None:
    api = config.stash.get(_SHARED_API, None)
    if api is not None:
        api.stop()


_SHARED_API = pytest.StashKey()


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory):
    """One Prefect API server for the session (the controller's, under xdist); returns the env vars for
    CLI subprocesses, and points this process's flows at it."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    shared = os.environ.get(SHARED_API_ENV)
    if shared:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: shared}):
            yield _cli_env(os.environ["PREFECT_HOME"], shared)
        return
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield _cli_env(str(home), PREFECT_API_URL.value())


def _cli_env(home: str, api_url: str) -> dict:
    return {"PREFECT_HOME": home, "PREFECT_API_URL": api_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1"}


def litmeta_cmd() -> list[str]:
    """The installed `litmeta` entry point (or ``python -m flows.cli`` without one)."""
    import sys

    exe = Path(sys.executable).with_name("litmeta")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "litmeta"]


def run_cli(args: list[str], env_extra: dict | None = None, timeout: float = 300, cwd: Path | None = None):
    """Run the installed `litmeta` entry point as a subprocess; returns CompletedProcess (text)."""
    import subprocess

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(litmeta_cmd() + args, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


def temporary_prefect_env(home: Path) -> dict:
    """This process's environment without a Prefect API: a CLI run starts its temporary server (PREFECT_HOME=home)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    return env | {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def wait_until_running(proc, db: Path, timeout: float = 90) -> bool:
    """Poll the warehouse until it shows a 'running' run (True), or ``proc`` ends or time is up (False)."""
    import time

    import duckdb

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.3)
        try:
            with duckdb.connect(str(db), read_only=True) as con:
                if con.execute("SELECT count(*) FROM ingest_runs WHERE status = 'running'").fetchall()[0][0]:
                    return True
        except duckdb.Error:
            pass
    return False


@contextmanager
def refusing_server(status: int, page: Callable[[str, bytes], bytes]) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 answering every GET and POST with ``status`` and the HTML ``page(path, body)``.

    Yields its E-utilities base URL and the list of request paths it received (one per request).
    """
    hits: list[str] = []

    class Refuse(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            hits.append(self.path)
            html = page(self.path, body)
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        do_GET = do_POST = _answer

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/entrez/eutils/", hits
    finally:
        server.shutdown()
        server.server_close()
