"""Flow `load_files`: local PubMed XML (baseline/update, .xml/.xml.gz) and PMC JATS files into the warehouse."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from litmeta.flows.pipeline import load_file
from litmeta.flows.runs import tracked_run
from litmeta.warehouse.load import LoadStats


@task(name="load-file", cache_policy=NO_CACHE)
def load_file_task(db: str, run_id: str, path: str, progress: Progress | None = None) -> LoadStats:
    label = Path(path).name
    job = progress.add_task(label, total=None) if progress else None

    def tick(batch, stats):
        if progress is not None:
            progress.update(job, advance=batch.n_records)

    stats = load_file(db, run_id, Path(path), on_batch=tick)
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
            for path in paths:
                rec.stats.add(load_file_task(db, rec.run_id, path, progress))
        rec.extra["files"] = len(paths)
    return rec.extra["summary"]
