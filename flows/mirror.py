"""Flow `mirror`: PubMed's baseline and update files from the FTP site into the warehouse, parsed on Dask.

1. list ``{ftp_url}/baseline/`` and ``{ftp_url}/updatefiles/``; what `source_files` says is loaded and
   unchanged (same index date) is skipped without a request;
2. download the rest in the flow's process, at most `PubmedFtp.parallel` at once, md5-checked;
3. parse each downloaded file in a task of its own on the Dask cluster (prefect-dask's `DaskTaskRunner`:
   a LocalCluster of one worker process per core, or the scheduler at ``--dask-address``) into a Parquet
   shard set (`litmeta.extractors.shards`);
4. merge every shard set not loaded yet into DuckDB in one transaction (`litmeta.warehouse.mirror`):
   this process is the only writer.

Every step is recorded in `source_files`, so a re-run after any failure does only what is missing. A file
refused for its md5 (or that the site keeps failing for) does not stop the others; the run then ends
with `FilesRefused` naming them (exit 3).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from litmeta.errors import CouldNotFinish, UsageError
from litmeta.extractors.files import file_sha256
from litmeta.extractors.ftp import FOLDERS, PubmedFtp, RemoteFile
from litmeta.extractors.shards import remove_shards, write_shards
from litmeta.flows.client import DEFAULT_MAX_TRIES, MAX_TRIES_ENV
from litmeta.flows.runs import tracked_run
from litmeta.schemas.shards import ShardSet, read_manifest
from litmeta.warehouse.load import BATCH_RECORDS
from litmeta.warehouse.mirror import (
    MirroredFile,
    file_downloaded,
    files_sharded,
    merge_shards,
    mirrored_files,
)


class FilesRefused(CouldNotFinish):
    """Some files could not be fetched intact (named, with why); the others were loaded."""


class NewBaselineYear(CouldNotFinish):
    """The FTP site lists a baseline of another year than the warehouse's; `--rebuild` loads it."""


@dataclass
class FileWork:
    """One listed file and what is left to do for it: 'download', 'shard', 'merge' or nothing."""

    file: RemoteFile
    todo: str | None
    md5: str | None = None
    shard: ShardSet | None = None


def listed_modified(file: RemoteFile):
    import datetime as dt

    return dt.datetime.strptime(file.modified, "%Y-%m-%d %H:%M") if file.modified else None


def plan(client: PubmedFtp, files: list[RemoteFile], state: dict[str, MirroredFile], downloads: Path,
         shards: Path) -> list[FileWork]:
    """What each file needs, from its `source_files` row: a loaded file whose index date is unchanged
    needs nothing (no request); otherwise its published md5 decides whether what was done still holds."""
    out = []
    for f in files:
        row = state.get(f.name)
        if row and row.loaded_at and row.mtime == listed_modified(f):
            out.append(FileWork(f, None, row.md5))
            continue
        md5 = client.md5(f)
        if row and row.md5 == md5:
            if row.loaded_at:
                out.append(FileWork(f, None, md5))
                continue
            shard = read_manifest(shards / f.name) if row.sharded_at else None
            if shard is not None:
                out.append(FileWork(f, "merge", md5, shard))
                continue
            if row.downloaded_at and (downloads / f.name).is_file():
                out.append(FileWork(f, "shard", md5))
                continue
        out.append(FileWork(f, "download", md5))
    return out


@task(name="shard-file", task_run_name="shard {name}", cache_policy=NO_CACHE)
def shard_file(path: str, name: str, shards: str, sha256: str) -> ShardSet:
    """Parse one downloaded file into its shard set (runs on a Dask worker). Its rows name it by its FTP
    name (deleted_articles.source), the same on every machine."""
    return write_shards(path, name, shards, source_name=name, sha256=sha256, batch_records=BATCH_RECORDS)


def _progress(show: bool) -> Progress:
    return Progress(TextColumn("{task.description:<11}"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), disable=not show, transient=False)


@flow(name="mirror")
def mirror(db: str, ftp_url: str, baseline: bool = True, updates: bool = True, downloads: str = "",
           shards: str = "", max_files: int | None = None, email: str | None = None, tool: str = "litmeta",
           show_progress: bool = False) -> dict:
    """Mirror the listed files into the warehouse ``db``; returns the run summary."""
    params = {"db": db, "ftp_url": ftp_url, "baseline": baseline, "updates": updates, "downloads": downloads,
              "shards": shards, "max_files": max_files}
    with tracked_run("mirror", db, params) as rec:
        client = PubmedFtp(ftp_url, tool=tool, email=email,
                           max_tries=int(os.environ.get(MAX_TRIES_ENV) or DEFAULT_MAX_TRIES))
        dl_dir, shard_dir = Path(downloads), Path(shards)
        folders = [f for f, on in zip(FOLDERS, (baseline, updates), strict=True) if on]
        listed = sorted(f for folder in folders for f in client.listing(folder))
        state = mirrored_files(db)
        check_year(listed, state)
        work = [w for w in plan(client, listed, state, dl_dir, shard_dir) if w.todo]
        pending_after = 0
        if max_files is not None:
            work, pending_after = work[:max_files], max(0, len(work) - max_files)
        refused: list[str] = []
        with _progress(show_progress) as progress:
            progress.add_task("listed", total=len(listed), completed=len(listed), rate="")
            bars = {k: progress.add_task(k, total=len(work), rate="") for k in ("downloaded", "sharded", "merged")}
            futures = {}
            started, fetched, parsed = time.monotonic(), 0, 0

            def submit(w: FileWork, sha256: str | None = None) -> None:
                local = dl_dir / w.file.name
                futures[w.file.name] = shard_file.submit(str(local.resolve()), w.file.name, str(shard_dir),
                                                         sha256 or file_sha256(local))

            with ThreadPoolExecutor(client.parallel) as pool:
                fetching = {pool.submit(client.download, w.file, dl_dir, w.md5): w
                            for w in work if w.todo == "download"}
                for w in work:
                    if w.todo != "download":
                        progress.advance(bars["downloaded"])
                    if w.todo == "shard":
                        submit(w)
                for done in as_completed(fetching):
                    w = fetching[done]
                    try:
                        d = done.result()
                    except CouldNotFinish as exc:  # refused for its md5, or the site kept failing for it
                        refused.append(str(exc))
                        w.todo = None
                        continue
                    file_downloaded(db, rec.run_id, w.file.name, client.url(w.file.folder, w.file.name), d.md5,
                                    d.sha256, d.size, listed_modified(w.file))
                    fetched += d.size
                    progress.update(bars["downloaded"], advance=1,
                                    rate=f"{fetched / 1e6 / max(1e-3, time.monotonic() - started):.1f} MB/s")
                    submit(w, d.sha256)
            try:
                for w in work:
                    fut = futures.get(w.file.name)
                    if fut is not None:
                        w.shard = _shard_result(fut, w.file.name)
                        parsed += w.shard.records
                    if w.todo:
                        progress.update(bars["sharded"], advance=1,
                                        rate=f"{parsed / max(1e-3, time.monotonic() - started):.0f} records/s")
            finally:  # what was sharded stays recorded, whatever failed after
                files_sharded(db, [w.shard for w in work if w.file.name in futures and w.shard is not None])
            ready = [w.shard for w in work if w.todo and w.shard is not None]
            merge_started = time.monotonic()
            stats = merge_shards(db, rec.run_id, ready)
            for shard in ready:  # merged and committed: the warehouse holds the rows now
                remove_shards(shard)
            merged = sum(s.records for s in ready)
            progress.update(bars["merged"], advance=len(ready),
                            rate=f"{merged / max(1e-3, time.monotonic() - merge_started):.0f} records/s")
        rec.stats.add(stats)
        rec.http_requests = client.requests
        rec.extra.update(files_listed=len(listed), files_merged=len(ready), files_refused=len(refused),
                         files_pending=pending_after + len(refused),
                         ftp_retries=client.retries)
        if refused:
            raise FilesRefused("; ".join(refused))
    return rec.extra["summary"]


def task_runner(workers: int | None, address: str | None):
    """prefect-dask's runner: the cluster at ``address``, else a LocalCluster of ``workers`` worker processes
    (default one per core), one thread each (the parser holds the GIL), started and stopped with the flow."""
    import logging

    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise UsageError("litmeta mirror runs on Dask: install the 'mirror' extra "
                         "(pip install 'litmeta[mirror]': prefect-dask and distributed)") from None

    level = os.environ.get("DASK_LOGGING__DISTRIBUTED")
    if level:  # the scheduler and nannies of a LocalCluster log in this process
        logging.getLogger("distributed").setLevel(level.upper())
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers or os.cpu_count() or 1, "threads_per_worker": 1,
                                          "processes": True, "dashboard_address": ":0"})


def _shard_result(future, name: str) -> ShardSet:
    """The shard set of a parse task; a worker lost for good (the cluster gave up on it) is exit 3."""
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker as exc:
        raise CouldNotFinish(f"{name}: the Dask workers parsing it died ({exc}); re-run to finish") from None


def check_year(listed: list[RemoteFile], state: dict[str, MirroredFile]) -> None:
    """Refuse to mix baseline years in one warehouse: a new year's files are loaded with ``--rebuild``."""
    import re

    held = {int(m.group(1)) for n in state if (m := re.match(r"^pubmed(\d{2})n", n))}
    new = {f.year for f in listed}
    if held and new and max(new) > max(held):
        raise NewBaselineYear(
            f"the FTP site lists a new baseline year (pubmed{max(new)}; this warehouse holds pubmed{max(held)}): "
            f"run 'litmeta mirror --baseline --updates --rebuild' to load it into a fresh warehouse file that "
            "replaces this one when complete")
