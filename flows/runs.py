"""What every flow does around its work: an ingest_runs row, a markdown artifact, a summary."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from litmeta.warehouse.db import writer_lock
from litmeta.warehouse.runs import RunRecorder


def current_run_id() -> str:
    """The Prefect flow run id, or a fresh uuid outside Prefect."""
    rid = flow_run.get_id()
    return str(rid) if rid else str(uuid.uuid4())


def summary_markdown(flow: str, summary: dict, seconds: float) -> str:
    rows = summary.get("rows", {})
    lines = [
        f"# litmeta {flow}",
        "",
        f"- status: **{summary.get('status')}**",
        f"- records new / updated / unchanged: {summary.get('records_new', 0)} / "
        f"{summary.get('records_updated', 0)} / {summary.get('records_unchanged', 0)}",
        f"- edges new: {summary.get('edges_new', 0)}",
        f"- rejects: {summary.get('rejects', 0)}",
        f"- HTTP requests: {summary.get('http_requests', 0)}",
        f"- duration: {seconds:.1f} s",
    ]
    for k, v in summary.items():
        if k not in {"status", "records_new", "records_updated", "records_unchanged", "edges_new", "rejects",
                     "http_requests", "rows", "run_id"} and isinstance(v, (int, float, str)):
            lines.append(f"- {k.replace('_', ' ')}: {v}")
    if rows:
        lines += ["", "| table | rows written |", "|---|---|"] + [f"| {t} | {n} |" for t, n in rows.items()]
    return "\n".join(lines) + "\n"


@contextmanager
def tracked_run(flow: str, db: str, parameters: dict) -> Iterator[RunRecorder]:
    """Record the run in ingest_runs (status running → completed/failed) and publish an artifact.

    The whole run holds the warehouse's writer lock, so two runs never interleave their writes.
    A run killed outright stays 'running' (finished_at NULL) until the next run marks it 'interrupted'.
    """
    rec = RunRecorder(db=db, run_id=current_run_id(), flow=flow, parameters=parameters)
    started = time.monotonic()
    with writer_lock(db, what=f"{flow} run {rec.run_id}"):
        rec.start()
        try:
            yield rec
        except KeyboardInterrupt:
            rec.finish(interrupted=True)
            raise
        except BaseException:
            rec.finish(failed=True)
            raise
        summary = rec.finish()
    rec.extra["summary"] = summary
    create_markdown_artifact(
        markdown=summary_markdown(flow, summary, time.monotonic() - started),
        key=f"litmeta-{flow.replace('_', '-')}",
        description=f"litmeta {flow} run summary",
    )
