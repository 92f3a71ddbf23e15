"""The steps the flows run, wired from extractors and warehouse calls: fetch or read, parse, load.

Each write opens the warehouse for one batch (or for a group of small files) and closes it again
(`litmeta.warehouse.load`), so a reader (`litmeta sql`) or a second writer gets in between them instead
of failing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from litmeta.extractors import pmc_xml, pubmed_xml
from litmeta.extractors.entrez import EntrezClient
from litmeta.extractors.files import ParsedFile, file_stamp, parse_file
from litmeta.schemas import ParsedBatch
from litmeta.warehouse.load import BATCH_RECORDS, LoadInput, LoadStats, load_batches, load_inputs
from litmeta.warehouse.runs import mark_file_loaded, record_file

# DuckDB threads of the loader while parse workers (one per core) hold the cores: more would only
# compete with them, and make how a commit cuts row groups depend on thread timing.
LOADER_THREADS_BESIDE_WORKERS = 1


def _file_input(run_id: str, path: Path) -> tuple[ParsedFile, LoadInput]:
    """Start parsing ``path``; its batches, recorded (raw_documents, source_files) with its first rows and
    marked loaded with its last."""
    size, mtime = file_stamp(path)
    parsed = parse_file(path, BATCH_RECORDS)
    read = {"records": 0, "deletions": 0}

    def counted() -> Iterator[ParsedBatch]:
        for batch in parsed.batches:
            read["records"] += batch.n_records
            read["deletions"] += len(batch.deleted_pmids)
            yield batch

    return parsed, LoadInput(
        counted(),
        first=lambda con: record_file(con, run_id, parsed.kind, path, parsed.sha256, size, mtime),
        last=lambda con: mark_file_loaded(con, path, read["records"], read["deletions"]))


def load_file(db: str, run_id: str, path: Path,
              on_batch: Callable[[ParsedBatch, LoadStats], None] | None = None) -> LoadStats:
    """Parse and load one local file (PubMed or PMC, .xml or .xml.gz)."""
    parsed, item = _file_input(run_id, path)
    threads = LOADER_THREADS_BESIDE_WORKERS if parsed.in_workers else None
    return load_batches(db, run_id, item.batches, on_batch, threads=threads, first=item.first, last=item.last,
                        short_batch_ends_input=not parsed.in_workers)


def load_local_files(db: str, run_id: str, paths: list[Path],
                     on_batch: Callable[[ParsedBatch, LoadStats], None] | None = None) -> LoadStats:
    """Parse and load local files in order: one file alone (`load_file`), or small ones several to a
    session (`litmeta.warehouse.load.load_inputs`; `file_groups` makes such groups)."""
    if len(paths) == 1:
        return load_file(db, run_id, paths[0], on_batch)
    return load_inputs(db, run_id, (_file_input(run_id, p)[1] for p in paths), on_batch)


def fetch_and_load_pubmed(client: EntrezClient, db: str, run_id: str,
                          pmids: list[int]) -> tuple[LoadStats, list[int]]:
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


def fetch_and_load_pmc(client: EntrezClient, db: str, run_id: str, pmcids: list[str]) -> LoadStats:
    """efetch PMC JATS for ``pmcids``, parse and load each answer."""
    total = LoadStats()
    if not pmcids:
        return total
    for fetched in client.efetch_pmc(pmcids):
        for doc in fetched.documents:
            total.add(load_batches(db, run_id, pmc_xml.iter_batches(
                doc.body, source_name=doc.request, source_sha256=doc.sha256)))
    return total
