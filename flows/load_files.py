"""Flow `load_files`: local PubMed XML (baseline/update, .xml/.xml.gz) and PMC JATS files into the warehouse."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from litmeta.extractors.files import file_groups
from litmeta.flows.pipeline import load_local_files
from litmeta.flows.runs import tracked_run
from litmeta.warehouse.load import LoadStats


@task(name="load-files", cache_policy=NO_CACHE)
def load_files_task(db: str, run_id: str, paths: list[Path], progress: Progress | None = None) -> LoadStats:
    label = paths[0].name + (f" and {len(paths) - 1} more files" if len(paths) > 1 else "")
    job = progress.add_task(label, total=None) if progress else None

    def tick(batch, stats):
        if progress is not None:
            progress.update(job, advance=batch.n_records)

    stats = load_local_files(db, run_id, paths, on_batch=tick)
    if progress is not None:
        progress.update(job, total=progress.tasks[job].completed)
    return stats


@flow(name="load_files")
def load_files(paths: list[str], db: str, show_progress: bool = False) -> dict:
    """Load local files; returns the run summary (counts per table, rejects)."""
    with tracked_run("load_files", db, {"paths": paths, "db": db}) as rec:
        progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("records"),
            TimeElapsedColumn(), disable=not show_progress, transient=False,
        )
        with progress:
            for group in file_groups([Path(p) for p in paths]):
                rec.stats.add(load_files_task(db, rec.run_id, group, progress))
        rec.extra["files"] = len(paths)
    return rec.extra["summary"]
