"""Secrets: with --api-key (or NCBI_API_KEY) set, the key is written nowhere.

Acceptance 5 of issue 5. The key is sent (the sandbox counts requests under it), then searched for
in: stdout/stderr of every command (with -v), error messages (unreachable URL, a server refusing
the request, a server echoing the request back), Prefect flow runs (parameters), task runs, logs
and artifacts read back through the Prefect API and the Prefect database file itself, every table
of the warehouse (ingest_runs.parameters, raw_documents.request and bodies, rejects, ...), the
recorded snapshots (--record-snapshot) and the lock file.
"""

from __future__ import annotations

import gzip
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import BUNDLED_SNAPSHOT, refusing_server
from tests.conftest import run_cli as _run_cli
from tests.reliability.conftest import dump_text

pytestmark = pytest.mark.reliability

KEY = "litmetaSECRETk3y0123456789abcdef0123"
EMAIL = "reliability@example.org"


def _echo(path: str, body: bytes) -> bytes:
    """An error page echoing the request back (URL and body: the api_key too)."""
    return b"<html><body>Bad request: " + path.encode() + b" " + body + b"</body></html>"


def run_cli(args, env):
    t = time.monotonic()
    r = _run_cli(args, env)
    print(f"{time.monotonic() - t:5.1f} s  exit {r.returncode}  litmeta {' '.join(args[-3:])}")
    return r


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _files_text(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            out[str(p)] = data.decode("utf-8", "replace")
    return out


def _prefect_records(api_url: str) -> dict[str, str]:
    """Flow runs (with parameters), task runs, logs and artifacts, read back through the Prefect API.

    (Plain POSTs to the filter endpoints: this Prefect client's read_* helpers send filter bodies
    its server rejects or that match nothing.)
    """
    import httpx

    out, counts = {}, []
    for what, sort in (
        ("flow_runs", "START_TIME_DESC"),
        ("task_runs", "EXPECTED_START_TIME_DESC"),
        ("logs", "TIMESTAMP_DESC"),
        ("artifacts", "CREATED_DESC"),
    ):
        r = httpx.post(f"{api_url}/{what}/filter", json={"limit": 200, "offset": 0, "sort": sort}, timeout=30)
        r.raise_for_status()
        out[what] = r.text
        counts.append(f"{len(r.json())} {what.replace('_', ' ')}")
    out["_counts"] = ", ".join(counts)
    return out


def _prefect_database_files() -> dict[str, bytes]:
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    url = PREFECT_API_DATABASE_CONNECTION_URL.value() or ""
    path = Path(url.split("///", 1)[-1]) if "sqlite" in url else None
    if path is None or not path.exists():
        return {}
    return {str(p): p.read_bytes() for p in path.parent.glob(path.name + "*")}


def test_the_api_key_is_written_nowhere(tmp_path, prefect_api):
    from litmeta.extractors.sandbox import SandboxServer

    prefect_api = {**prefect_api, "PREFECT_LOGGING_LEVEL": "DEBUG"}  # -v shows everything Prefect logs

    db = tmp_path / "w.duckdb"
    snaps = tmp_path / "snapshots"
    runs: dict[str, object] = {}
    faults = "500=0.1,reset=0.1,truncate=0.1,error200=0.1,seed=6"  # retries: their log lines name requests
    with SandboxServer(BUNDLED_SNAPSHOT, api_keys=(KEY,), faults=faults) as sb:
        url = sb.base_url
        runs["ingest --api-key"] = run_cli(
            [
                "-v",
                "--api-key",
                KEY,
                "--email",
                EMAIL,
                "--db",
                str(db),
                "--eutils-url",
                url,
                "--record-snapshot",
                str(snaps / "ingest"),
                "ingest",
                "39047240",
                "--pmc",
            ],
            prefect_api,
        )
        env = {**prefect_api, "NCBI_API_KEY": KEY, "NCBI_EMAIL": EMAIL}
        runs["network NCBI_API_KEY"] = run_cli(
            [
                "-v",
                "--db",
                str(db),
                "--eutils-url",
                url,
                "--record-snapshot",
                str(snaps / "network"),
                "network",
                "39047240",
            ],
            env,
        )
        runs["search NCBI_API_KEY"] = run_cli(
            ["-v", "--db", str(db), "--eutils-url", url, "search", "blinatumomab", "--save"], env
        )
        stats = sb.stats()
    for name, r in runs.items():
        assert r.returncode == 0, (name, r.stderr[-2000:])
        print(name, r.stdout.splitlines()[-1])
    assert "retry" in runs["ingest --api-key"].stderr + runs["network NCBI_API_KEY"].stderr, (
        "retries were logged"
    )
    keyed = [c for c in stats["clients"] if c.startswith("key:")]
    assert keyed and len(stats["clients"][keyed[0]]) >= 10, "the key was sent (the sandbox counted it)"

    # error paths, each with the key set
    dead = f"http://127.0.0.1:{_free_port()}/entrez/eutils/"
    runs["unreachable"] = run_cli(
        ["-v", "--api-key", KEY, "--db", str(db), "--eutils-url", dead, "ingest", "1"], prefect_api
    )
    for status in (400,):
        with refusing_server(status, _echo) as (echo, _hits):
            runs[f"echo {status}"] = run_cli(
                ["-v", "--api-key", KEY, "--db", str(db), "--eutils-url", echo, "network", "39047240"],
                prefect_api,
            )
    assert runs["unreachable"].returncode == 3 and "cannot reach" in runs["unreachable"].stderr
    for status in (400,):
        r = runs[f"echo {status}"]
        assert r.returncode == 2 and f"http_{status}" in r.stderr, r.stderr[-1500:]
        assert "api_key=***" in r.stderr, "the echoed key is redacted, not dropped silently"

    haystacks: dict[str, str] = {}
    for name, r in runs.items():
        haystacks[f"{name}: stdout"] = r.stdout
        haystacks[f"{name}: stderr"] = r.stderr
    records = _prefect_records(prefect_api["PREFECT_API_URL"])
    print("Prefect API:", records.pop("_counts"))
    haystacks.update({f"Prefect {k}": v for k, v in records.items()})
    assert '"seed":39047240' in records["flow_runs"].replace(" ", ""), "flow run parameters were read"
    assert "# litmeta build_network" in records["artifacts"], "the run summaries were read"
    haystacks["warehouse"] = dump_text(db)
    haystacks.update(_files_text(snaps))
    haystacks.update(_files_text(Path(prefect_api["PREFECT_HOME"])))
    haystacks[str(db) + ".lock"] = Path(str(db) + ".lock").read_text()
    assert any("meta.json" in k for k in haystacks) and any("/pubmed/" in k for k in haystacks)
    leaks = [name for name, text in haystacks.items() if KEY in text]
    prefect_db = _prefect_database_files()
    leaks += [name for name, data in prefect_db.items() if KEY.encode() in data]
    print(
        f"searched {len(haystacks)} outputs/records/files ({sum(map(len, haystacks.values())) / 1e6:.1f} MB) "
        f"and {len(prefect_db)} Prefect database file(s) for the key"
    )
    assert prefect_db, "the Prefect database was found and searched"
    assert leaks == [], f"the api_key leaked into: {leaks}"
