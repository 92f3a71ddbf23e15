"""Flow `reparse`: every article table derived again from what the warehouse stored, with no HTTP request.

A parser or schema upgrade reaches an existing warehouse this way: each stored answer
(raw_documents) and each loaded file that is still there unchanged (source_files) is parsed again
and loaded with its records' rows rewritten. The warehouse's rules still pick the newest version
of a record, so any order gives the same tables, and running it twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from litmeta.extractors import pmc_xml, pubmed_xml
from litmeta.extractors.files import file_groups, file_sha256, parse_file
from litmeta.flows.runs import tracked_run
from litmeta.schemas import ParsedBatch
from litmeta.warehouse.load import BATCH_RECORDS, LoadInput, LoadStats, load_batches, load_inputs
from litmeta.warehouse.runs import StoredDocument, loaded_files, stored_body, stored_documents

PARSERS = {"pubmed": pubmed_xml, "pmc": pmc_xml}


@task(name="reparse-documents", cache_policy=NO_CACHE)
def reparse_documents(db: str, run_id: str, docs: list[StoredDocument], advance: Callable[[], None]) -> LoadStats:
    def batches() -> Iterator[ParsedBatch]:
        for doc in docs:
            body = stored_body(db, doc.sha256)
            for batch in PARSERS[doc.kind].iter_batches(body, source_name=doc.request, source_sha256=doc.sha256):
                yield replace(batch, partial=True)  # documents share transactions, up to BATCH_RECORDS records
            advance()

    return load_batches(db, run_id, batches(), reparse=True)


@task(name="reparse-files", cache_policy=NO_CACHE)
def reparse_files(db: str, run_id: str, paths: list[Path], advance: Callable[[], None]) -> LoadStats:
    def inputs(group: list[Path]) -> Iterator[LoadInput]:
        for path in group:
            yield LoadInput(parse_file(path, BATCH_RECORDS).batches, last=lambda con: advance())

    total = LoadStats()
    for group in file_groups(paths):  # a large file alone, in its own transactions; small ones together
        if len(group) == 1:
            total.add(load_batches(db, run_id, parse_file(group[0], BATCH_RECORDS).batches, reparse=True))
            advance()
        else:
            total.add(load_inputs(db, run_id, inputs(group), reparse=True))
    return total


@flow(name="reparse")
def reparse(db: str, kinds: list[str], since: dt.datetime | None = None, show_progress: bool = False) -> dict:
    """Parse stored documents and unchanged loaded files again; returns the run summary."""
    params = {"db": db, "kinds": kinds, "since": since}
    with tracked_run("reparse", db, params) as rec:
        docs = stored_documents(db, kinds, since)
        files, gone = [], []
        for path, _kind, sha in loaded_files(db, kinds, since):
            (files if path.is_file() and file_sha256(path) == sha else gone).append(path)
        rec.extra |= {"documents": len(docs), "files": len(files), "files_gone_or_changed": len(gone)}
        progress = Progress(TextColumn("reparse"), BarColumn(), MofNCompleteColumn(), TextColumn("documents and files"),
                            TimeElapsedColumn(), disable=not show_progress)
        with progress:
            job = progress.add_task("reparse", total=len(docs) + len(files))

            def advance() -> None:
                progress.advance(job)

            rec.stats.add(reparse_documents(db, rec.run_id, docs, advance))
            rec.stats.add(reparse_files(db, rec.run_id, files, advance))
        rec.extra["files_not_reparsed"] = [str(p) for p in gone[:20]]
    return rec.extra["summary"]
