"""Plain (Prefect-free) steps the flows orchestrate: parse inputs, load batches, keep run records.

Each write opens the warehouse for one batch and closes it again (`litmeta.warehouse.db.session`), so a
reader (`litmeta sql`) or a second writer gets in between batches instead of failing.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from litmeta.extractors import pmc_xml, pubmed_xml
from litmeta.extractors.parallel import FileJob, ParsePool, worth_a_pool
from litmeta.extractors.xmlsource import GZIP_ERRORS
from litmeta.schemas import ParsedBatch, Reject
from litmeta.warehouse.db import crash_point, session
from litmeta.warehouse.load import BATCH_RECORDS, BatchLoader, LoadStats, record_rejects, utcnow
from litmeta.warehouse.runs import file_sha256, finish_run, mark_interrupted, start_run, store_raw_document


class UsageError(Exception):
    """Bad input from the user (exit code 2); the message names it."""


def detect_kind(path: Path) -> str:
    """'pubmed' or 'pmc' from the document's root element; raises UsageError for anything else."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
            if head[:2] == b"\x1f\x8b":
                fh.seek(0)
                try:
                    head = gzip.GzipFile(fileobj=fh).read(4096)
                except (*GZIP_ERRORS, OSError):
                    return "pubmed"  # the parser reports the broken gzip with the file name
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory; give XML files (e.g. {path}/*.xml.gz)") from None
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except PermissionError:
        raise UsageError(f"{path}: not readable (permission denied)") from None
    if b"<PubmedArticleSet" in head or b"<MedlineCitationSet" in head or b"<PubmedArticle" in head:
        return "pubmed"
    if b"<pmc-articleset" in head or b"<article" in head:
        return "pmc"
    if not head.strip():
        raise UsageError(f"{path}: empty file; expected PubMed XML (PubmedArticleSet) or PMC JATS")
    return "pubmed"  # let the parser say precisely what is wrong with it


# DuckDB threads of the loader while parse workers (one per core) run: more would only compete with
# them, and with two, how a commit cuts its rows into row groups depends on thread timing, so the
# file's last checkpoint sometimes merges and rewrites them (bench file: 0.2-0.8 CPU s for the same
# batches, file 109-147 MB). With one: the same work every time, about 0.3 CPU s less on average.
LOADER_THREADS_BESIDE_WORKERS = 1


def pooled(path: Path, kind: str) -> bool:
    """Whether `parse_file` parses ``path`` in worker processes (a large PubMed file)."""
    return kind == "pubmed" and worth_a_pool(path)


def parse_file(path: Path, kind: str, sha256: str) -> Iterator[ParsedBatch]:
    """The batches of one file: in this process, or in worker processes for a large PubMed file."""
    if pooled(path, kind):
        return _parse_in_pool(path, sha256)
    module = pubmed_xml if kind == "pubmed" else pmc_xml
    return module.iter_batches(path, source_name=str(path), source_sha256=sha256)


def _parse_in_pool(path: Path, sha256: str) -> Iterator[ParsedBatch]:
    with ParsePool() as pool:
        yield from pool.submit(path, source_name=str(path), source_sha256=sha256, batch_size=BATCH_RECORDS).batches()


# Files whose parsing a command started early (`prefetch`), so that it runs while Prefect starts.
_PREFETCHED: dict[str, FileJob] = {}


@contextmanager
def prefetch(paths: list[Path]) -> Iterator[None]:
    """Start parsing the large PubMed files among ``paths`` in worker processes now; `load_file` picks them up.

    Call it before anything starts threads (the workers are forked). Leaving the block stops the
    workers and forgets what was not loaded.
    """
    big = [p for p in paths if p.is_file() and worth_a_pool(p) and detect_kind(p) == "pubmed"]
    if not big:
        yield
        return
    pool = ParsePool().start()
    try:
        for p in big:
            _PREFETCHED[str(p)] = pool.submit(p, source_name=str(p), source_sha256=partial(file_sha256, p),
                                          batch_size=BATCH_RECORDS)
        yield
    finally:
        for p in big:
            _PREFETCHED.pop(str(p), None)
        pool.close()


@dataclass
class RunRecorder:
    """Writes the ingest_runs row of one run and adds up what it did."""

    db: str
    run_id: str
    flow: str
    parameters: dict
    stats: LoadStats = field(default_factory=LoadStats)
    extra: dict = field(default_factory=dict)
    http_requests: int = 0

    def start(self) -> None:
        with session(self.db) as con:
            mark_interrupted(con)  # the caller holds the writer lock: a 'running' row is a dead run
            start_run(con, self.run_id, self.flow, self.parameters)

    def finish(self, failed: bool = False, interrupted: bool = False) -> dict:
        counts = {**self.stats.as_dict(), **self.extra}
        status = ("interrupted" if interrupted else "failed" if failed
                  else "completed_with_rejects" if self.stats.rejects else "completed")
        with session(self.db) as con:
            finish_run(con, self.run_id, status, counts, self.http_requests)
        return {"run_id": self.run_id, "status": status, "http_requests": self.http_requests, **counts}


def load_batches(db: str, run_id: str, batches: Iterator[ParsedBatch],
                 on_batch: Callable[[ParsedBatch, LoadStats], None] | None = None,
                 threads: int | None = None) -> LoadStats:
    """Load the batches, each in a short write session and transaction; returns the summed stats.

    A batch handed out early (`ParsedBatch.partial`: the last ones of a large file, while its last
    pieces are parsed) shares its transaction with the batches after it, until that holds
    BATCH_RECORDS records: the end of a file then costs one DuckDB checkpoint instead of one per batch.
    ``on_batch`` is called for each batch once written (progress; its transaction commits after).
    ``threads``: DuckDB's threads in those sessions (default: one per core).
    """
    total = LoadStats()
    it = iter(batches)
    batch = next(it, None)
    while batch is not None:
        with session(db, threads=threads) as con:
            loader = BatchLoader(con, run_id)
            with loader.transaction():
                records = 0
                while batch is not None:
                    stats = loader.add(batch)
                    if on_batch:
                        on_batch(batch, stats)
                    records += batch.n_records
                    if not batch.partial or records >= BATCH_RECORDS:
                        break
                    batch = next(it, None)  # the last pieces are being parsed: wait in the transaction
        crash_point("between-batches")  # test-only hook (LITMETA_CRASH_AT)
        total.add(loader.stats)
        batch = next(it, None)
    return total


def load_file(db: str, run_id: str, path: Path,
              on_batch: Callable[[ParsedBatch, LoadStats], None] | None = None) -> LoadStats:
    """Parse and load one local file (PubMed or PMC, .xml or .xml.gz)."""
    kind = detect_kind(path)
    job = _PREFETCHED.pop(str(path), None)
    sha = job.sha256() if job is not None else None
    sha = sha or file_sha256(path)
    with session(db) as con:
        store_raw_document(con, kind=f"file_{kind}", request=str(path.resolve()), body=None, run_id=run_id, sha256=sha)
    batches = job.batches() if job is not None else parse_file(path, kind, sha)
    in_workers = job is not None or pooled(path, kind)
    return load_batches(db, run_id, batches, on_batch, threads=LOADER_THREADS_BESIDE_WORKERS if in_workers else None)


def reject_input(db: str, run_id: str, source: str, reason: str) -> None:
    """Record an input that could not be read at all."""
    with session(db) as con:
        record_rejects(con, run_id, [Reject(source, "file", reason)], utcnow())


def store_documents(db: str, run_id: str, docs: list) -> int:
    """Keep every fetched response in raw_documents (compressed, request without api_key)."""
    if not docs:
        return 0
    with session(db) as con:
        for d in docs:
            store_raw_document(con, kind=d.kind, request=d.request, body=d.body, run_id=run_id,
                               n_records=d.n_records, sha256=d.sha256, fetched_at=d.fetched_at)
    return len(docs)


def fetch_and_load_pubmed(client, db: str, run_id: str, pmids: list[int]) -> tuple[LoadStats, list[int]]:
    """efetch ``pmids`` in batches, parse each answer, load it; returns (stats, ids NCBI did not return)."""
    total = LoadStats()
    not_found: list[int] = []
    if not pmids:
        return total, not_found
    for fetched in client.efetch_pubmed(pmids):
        for doc in fetched.documents:
            total.add(load_batches(db, run_id, pubmed_xml.iter_batches(
                doc.body, source_name=doc.request, source_sha256=doc.sha256)))
        not_found.extend(fetched.missing)
    return total, not_found


def fetch_and_load_pmc(client, db: str, run_id: str, pmcids: list[str]) -> LoadStats:
    total = LoadStats()
    if not pmcids:
        return total
    for fetched in client.efetch_pmc(pmcids):
        for doc in fetched.documents:
            total.add(load_batches(db, run_id, pmc_xml.iter_batches(
                doc.body, source_name=doc.request, source_sha256=doc.sha256)))
    return total
