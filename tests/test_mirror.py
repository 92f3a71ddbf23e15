"""litmeta mirror end to end on the sandbox's FTP tree: equal to `litmeta load`, nothing redone on a re-run,
download faults, a refused md5, a Dask worker killed, litmeta killed mid-merge (issue 18, acceptance 1-3)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from bench.snapshot_gen import generate_snapshot
from litmeta.extractors.sandbox import FaultSpec, SandboxServer
from litmeta.flows.cli import main
from litmeta.warehouse.checks import content_hashes
from litmeta.warehouse.db import session
from tests.conftest import require_corpus, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.corpus]

RECORDS = 300  # per baseline file: 4 baseline files, 2 update files
FAULTS = "reset=0.08,truncate=0.08,md5=0.04,500=0.03,502=0.03,503=0.03,slow=0.04"  # the download faults
SLOW = (0.05, 0.3)  # seconds a 'slow' answer waits here (the sandbox's default, 1-3 s, only costs test time)


def faults(spec: str) -> FaultSpec:
    return dataclasses.replace(FaultSpec.parse(spec), slow_range=SLOW)
# What tells where a copy of a file came from: the FTP name and URL for the mirror, the local path for load.
PROVENANCE = {"source_files", "raw_documents"}


@pytest.fixture(scope="module")
def snap(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mirror") / "snap"
    generate_snapshot(out, 5, seed=2, corpus_dir=require_corpus("pubmed"), ftp_files=4, ftp_records=RECORDS,
                      ftp_updates=2)
    return out


@pytest.fixture(scope="module")
def cluster():
    """One local Dask cluster for the module's runs (`--dask-address`): starting one costs seconds."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        yield c


@pytest.fixture(scope="module")
def sandbox(snap):
    with SandboxServer(snap) as sb:
        yield sb


def mirror(db: Path, ftp_url: str, *args: str) -> int:
    return main(["--db", str(db), "--ftp-url", ftp_url, "mirror", *args])


def hashes(db: Path, skip: set[str] = frozenset()) -> dict[str, str]:
    with session(db, read_only=True) as con:
        return {k: v for k, v in content_hashes(con).items() if k not in skip}


def rows(db: Path, sql: str) -> list[tuple]:
    with session(db, read_only=True) as con:
        return con.execute(sql).fetchall()


def file_gets(stats: dict) -> int:
    """Requests for the files themselves (not indexes or .md5 files)."""
    return sum(n for path, n in stats["ftp"].items() if path.endswith(".xml.gz"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory, sandbox, prefect_api) -> Path:
    """The clean run: `litmeta mirror --workers 2` (a LocalCluster litmeta starts and stops)."""
    db = tmp_path_factory.mktemp("clean") / "m.duckdb"
    sandbox.reset_stats()
    assert mirror(db, sandbox.ftp_url, "--workers", "2") == 0
    assert file_gets(sandbox.stats()) == 6
    return db


def test_equal_to_load_and_nothing_redone(clean, snap, sandbox, cluster, tmp_path, monkeypatch):
    files = sorted((snap / "ftp" / "baseline").glob("*.xml.gz")) + sorted((snap / "ftp" / "updatefiles").glob("*.xml.gz"))
    assert len(files) == 6
    # litmeta load of the same six files, in order, named as the mirror names them (by file name)
    for f in files:
        (tmp_path / f.name).symlink_to(f)
    monkeypatch.chdir(tmp_path)
    loaded = tmp_path / "load.duckdb"
    assert main(["--db", str(loaded), "load", *[f.name for f in files]]) == 0
    want = hashes(loaded, PROVENANCE)
    assert hashes(clean, PROVENANCE) == want
    assert rows(clean, "SELECT sha256, kind FROM raw_documents ORDER BY 1") == \
        rows(loaded, "SELECT sha256, kind FROM raw_documents ORDER BY 1")
    # the update files' revisions and deletions are in: titles revised, DeleteCitation PMIDs gone
    assert rows(clean, "SELECT count(*) FROM articles WHERE title LIKE '%(revised 2026-01-02)'")[0][0] > 0
    n_deleted = rows(clean, "SELECT count(*) FROM deleted_articles")[0][0]
    assert n_deleted > 0 and rows(clean, "SELECT count(*) FROM articles WHERE pmid IN "
                                         "(SELECT pmid FROM deleted_articles)") == [(0,)]
    before = rows(clean, "SELECT path, md5, downloaded_at, sharded_at, loaded_at FROM source_files ORDER BY 1")
    assert len(before) == 6 and all(r[1] and r[2] and r[3] and r[4] for r in before)

    # re-run: nothing downloaded (not even a .md5: the index dates are unchanged), parsed or merged
    sandbox.reset_stats()
    hashes_before = hashes(clean)
    assert mirror(clean, sandbox.ftp_url, "--dask-address", cluster.scheduler_address) == 0
    assert sandbox.stats()["ftp"] == {"baseline/": 1, "updatefiles/": 1}
    assert rows(clean, "SELECT path, md5, downloaded_at, sharded_at, loaded_at FROM source_files ORDER BY 1") == before
    assert hashes(clean) == hashes_before


def test_status_prints_pending(clean, sandbox, tmp_path, capsys):
    assert mirror(clean, sandbox.ftp_url, "--status") == 0
    assert "6 loaded, 0 pending" in capsys.readouterr().out
    assert mirror(tmp_path / "new.duckdb", sandbox.ftp_url, "--status", "--updates") == 0
    out = capsys.readouterr().out
    assert "pending: updatefiles/pubmed26n0005.xml.gz: download" in out and "0 loaded, 2 pending" in out
    assert not (tmp_path / "new.duckdb").exists()


def test_download_faults_equal_the_clean_run(clean, snap, cluster, tmp_path, prefect_api):
    """Every download fault kind at once: the run's warehouse equals the clean run's (seed 1); for seeds
    1-3 every file arrives byte for byte, which is all the parse and the merge see."""
    from litmeta.extractors.ftp import PubmedFtp

    served: dict[str, int] = {}
    for seed in (1, 2, 3):
        with SandboxServer(snap, faults=faults(f"{FAULTS},seed={seed}")) as sb:
            if seed == 1:
                db = tmp_path / "faults.duckdb"
                codes = [mirror(db, sb.ftp_url, "--dask-address", cluster.scheduler_address)]
                while codes[-1] == 3 and len(codes) < 3:  # a file whose md5 was faulted twice is refused: re-run
                    codes.append(mirror(db, sb.ftp_url, "--dask-address", cluster.scheduler_address))
                assert codes[-1] == 0, codes
                assert hashes(db, {"source_files", "raw_documents"}) == hashes(clean, {"source_files", "raw_documents"})
                assert rows(db, "SELECT count(*) FROM source_files WHERE loaded_at IS NOT NULL") == [(6,)]
            else:
                client = PubmedFtp(sb.ftp_url, backoff_base=0.01, rate_limit_backoff=0.01, max_tries=30, rate=100)
                for f in client.listing("baseline") + client.listing("updatefiles"):
                    d = client.download(f, tmp_path / str(seed))
                    assert d.path.read_bytes() == (snap / "ftp" / f.folder / f.name).read_bytes()
            for kind, n in sb.stats()["ftp_faults"].items():
                served[kind] = served.get(kind, 0) + n
    assert sum(served.values()) >= 5, served  # each kind alone: test_each_download_fault_kind_is_survived


@pytest.mark.parametrize("kind", ["reset", "truncate", "md5", "500", "503", "slow"])
def test_each_download_fault_kind_is_survived(snap, kind, tmp_path):
    """The FTP client alone against one fault kind at a high rate: every file arrives intact."""
    from litmeta.extractors.ftp import Md5Refused, PubmedFtp

    rate = {"md5": 0.3}.get(kind, 0.5)
    with SandboxServer(snap, faults=faults(f"{kind}={rate},seed=5")) as sb:
        client = PubmedFtp(sb.ftp_url, backoff_base=0.001, rate_limit_backoff=0.001, max_tries=30,
                           rate=100)  # the sandbox, not NCBI
        files = client.listing("baseline") + client.listing("updatefiles")
        refused = []
        for f in files:
            try:
                d = client.download(f, tmp_path)
            except Md5Refused:
                refused.append(f.name)
                continue
            assert d.path.read_bytes() == (snap / "ftp" / f.folder / f.name).read_bytes()
        served = sb.stats()["ftp_faults"].get(kind, 0)
    assert len(files) == 6 and served >= 2 and len(refused) < 2


def test_always_wrong_md5_is_refused_by_name_and_the_others_load(snap, cluster, tmp_path, prefect_api, capsys):
    import shutil

    bad = tmp_path / "snap"
    shutil.copytree(snap, bad, ignore=shutil.ignore_patterns("pubmed"))
    (bad / "ftp" / "baseline" / "pubmed26n0002.xml.gz.md5").write_text(f"MD5(pubmed26n0002.xml.gz)= {'0' * 32}\n")
    db = tmp_path / "m.duckdb"
    with SandboxServer(bad) as sb:
        assert mirror(db, sb.ftp_url, "--dask-address", cluster.scheduler_address) == 3
        gets = sb.stats()["ftp"]
    err = capsys.readouterr().err
    assert "pubmed26n0002.xml.gz: refused" in err and "downloaded twice" in err
    assert gets["baseline/pubmed26n0002.xml.gz"] == 2
    assert rows(db, "SELECT path FROM source_files WHERE loaded_at IS NOT NULL ORDER BY 1") == [
        (f"pubmed26n000{i}.xml.gz",) for i in (1, 3, 4, 5, 6)]
    refused = hashlib.sha256((snap / "ftp" / "baseline" / "pubmed26n0002.xml.gz").read_bytes()).hexdigest()
    assert rows(db, f"SELECT count(*) FROM articles WHERE source_sha256 = '{refused}'") == [(0,)]
    assert rows(db, "SELECT count(*) FROM articles")[0][0] > 3 * RECORDS


def _kill_a_busy_worker(address: str, stop: threading.Event, killed: list) -> None:
    """SIGKILL the first worker process seen holding a task (its parse is rescheduled elsewhere)."""
    from distributed import Client

    with Client(address, timeout=10) as c:
        pids = c.run(os.getpid)
        while not stop.is_set():
            for worker, keys in c.processing().items():
                if keys and worker in pids:
                    os.kill(pids[worker], signal.SIGKILL)
                    killed.append(worker)
                    return
            time.sleep(0.002)


def test_worker_killed_then_litmeta_killed_mid_merge_then_rerun_equals_the_clean_run(
        clean, sandbox, cluster, tmp_path, prefect_api):
    """One run loses a Dask worker while it parses (its files are rescheduled: every file is sharded), then
    litmeta itself is SIGKILLed inside the merge transaction; the warehouse opens, and a re-run only merges."""
    db = tmp_path / "m.duckdb"
    args = ["--db", str(db), "--ftp-url", sandbox.ftp_url, "mirror", "--dask-address", cluster.scheduler_address]
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_a_busy_worker, args=(cluster.scheduler_address, stop, killed))
    killer.start()
    try:
        r = run_cli(args, prefect_api | {"LITMETA_CRASH_AT": "mirror-merge:1"})
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was seen busy"
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    # the merge's transaction never committed; every file is sharded (the lost worker's too), none loaded
    assert rows(db, "SELECT count(*) FROM articles") == [(0,)]
    assert rows(db, "SELECT count(*) FROM source_files WHERE sharded_at IS NOT NULL AND loaded_at IS NULL") == [(6,)]
    sandbox.reset_stats()
    assert mirror(db, sandbox.ftp_url, "--dask-address", cluster.scheduler_address) == 0
    assert file_gets(sandbox.stats()) == 0  # the re-run only merged
    assert hashes(db, {"source_files"}) == hashes(clean, {"source_files"})
    assert rows(db, "SELECT status FROM ingest_runs ORDER BY started_at") == [("interrupted",), ("completed",)]


def test_new_baseline_year_is_refused_then_rebuilt_and_swapped_in(clean, snap, cluster, tmp_path, prefect_api, capsys):
    """pubmed27 listed on a pubmed26 warehouse: refused with what to do; --rebuild builds it in DB.rebuild,
    a run cut short (--max-files, like a missed night) leaves DB as it was, the next run does only the rest
    (one file) and swaps the complete file in."""
    import shutil

    new = tmp_path / "snap27"
    for folder in ("baseline", "updatefiles"):
        (new / "ftp" / folder).mkdir(parents=True)
        for f in (snap / "ftp" / folder).glob("*.xml.gz"):
            name = f.name.replace("pubmed26", "pubmed27")
            (new / "ftp" / folder / name).write_bytes(f.read_bytes())
            (new / "ftp" / folder / (name + ".md5")).write_text(
                f"MD5({name})= {hashlib.md5(f.read_bytes()).hexdigest()}\n")
    (new / "meta.json").write_text("{}")
    db = tmp_path / "m.duckdb"
    shutil.copy(clean, db)
    address = ["--dask-address", cluster.scheduler_address]
    with SandboxServer(new) as sb:
        assert mirror(db, sb.ftp_url, "--updates", *address) == 3
        assert "new baseline year (pubmed27; this warehouse holds pubmed26)" in capsys.readouterr().err
        assert mirror(db, sb.ftp_url, "--rebuild", "--max-files", "5", *address) == 3
        assert "1 file(s) still to do" in capsys.readouterr().err
        assert rows(db, "SELECT count(*) FROM source_files WHERE path LIKE 'pubmed27%'") == [(0,)]
        sb.reset_stats()
        assert mirror(db, sb.ftp_url, "--rebuild", *address) == 0
        assert file_gets(sb.stats()) == 1  # only the update file the first run did not reach
    assert not Path(str(db) + ".rebuild").exists()
    assert rows(db, "SELECT count(*) FROM source_files WHERE path LIKE 'pubmed27%' AND loaded_at IS NOT NULL") == [(6,)]
    assert rows(db, "SELECT count(*) FROM source_files WHERE path LIKE 'pubmed26%'") == [(0,)]
    names_differ = PROVENANCE | {"deleted_articles"}  # deleted_articles.source is the deleting file's name
    assert hashes(db, names_differ) == hashes(clean, names_differ)
    assert rows(db, "SELECT pmid FROM deleted_articles ORDER BY 1") == rows(clean, "SELECT pmid FROM deleted_articles ORDER BY 1")


def test_serve_schedules_the_nightly_mirror(tmp_path, prefect_api):
    import asyncio

    from prefect.client.orchestration import get_client

    db = tmp_path / "serve.duckdb"
    assert main(["--db", str(db), "serve", "--register-only", "--mirror", "--mirror-cron", "30 5 * * *"]) == 0

    async def read():
        async with get_client() as client:
            d = await client.read_deployment_by_name("mirror/litmeta-mirror-updates")
            return [s.schedule.cron for s in d.schedules], d.parameters

    crons, params = asyncio.run(read())
    assert crons == ["30 5 * * *"]
    assert params["updates"] is True and params["baseline"] is False and params["db"] == str(db.resolve())
