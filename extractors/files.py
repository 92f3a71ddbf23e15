"""Local input files: what kind each is, and its batches, parsed in this process or in a worker pool.

`parse_file` is the one entry point: a large PubMed file (`worth_a_pool`) is parsed in worker
processes (`litmeta.extractors.parallel`), anything else in this process. `prefetch` starts the
pool's parsing of large files before a command does its slower start-up (Prefect), and
`parse_file` then takes up what was started.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from litmeta.errors import UsageError
from litmeta.extractors import pmc_xml, pubmed_xml
from litmeta.extractors.parallel import FileJob, ParsePool, worth_a_pool
from litmeta.extractors.xmlsource import GZIP_ERRORS
from litmeta.schemas import ParsedBatch

PUBMED_ROOTS = (b"<PubmedArticleSet", b"<MedlineCitationSet", b"<PubmedArticle")
PMC_ROOTS = (b"<pmc-articleset", b"<article")


def detect_kind(path: Path) -> str:
    """'pubmed' or 'pmc' from the document's root element; raises UsageError for a path that is no file."""
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
    if any(root in head for root in PUBMED_ROOTS):
        return "pubmed"
    if any(root in head for root in PMC_ROOTS):
        return "pmc"
    if not head.strip():
        raise UsageError(f"{path}: empty file; expected PubMed XML (PubmedArticleSet) or PMC JATS")
    return "pubmed"  # let the parser say precisely what is wrong with it


def file_stamp(path: Path) -> tuple[int, dt.datetime]:
    """(size, modification time in UTC): what tells that a file changed without reading it."""
    st = path.stat()
    return st.st_size, dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc).replace(tzinfo=None)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ParsedFile:
    """One local file being parsed: its kind, sha256, batches, and whether worker processes parse it."""

    path: Path
    kind: str
    sha256: str
    batches: Iterator[ParsedBatch]
    in_workers: bool


# Files whose parsing `prefetch` started, by path.
_PREFETCHED: dict[str, FileJob] = {}


def parse_file(path: Path, batch_records: int) -> ParsedFile:
    """Start parsing ``path`` (batches of up to ``batch_records`` records), or take up its prefetched parse."""
    kind = detect_kind(path)
    job = _PREFETCHED.pop(str(path), None)
    if job is not None:
        return ParsedFile(path, kind, job.sha256() or file_sha256(path), job.batches(), True)
    sha = file_sha256(path)
    if kind == "pubmed" and worth_a_pool(path):
        return ParsedFile(path, kind, sha, _parse_in_pool(path, sha, batch_records), True)
    module = pubmed_xml if kind == "pubmed" else pmc_xml
    return ParsedFile(path, kind, sha, module.iter_batches(path, source_name=str(path), source_sha256=sha), False)


def file_groups(paths: list[Path]) -> list[list[Path]]:
    """``paths`` in order, cut into groups loaded together: a large PubMed file (parsed in worker
    processes) alone, the small files between two large ones in one group."""
    groups: list[list[Path]] = []
    small: list[Path] = []
    for p in paths:
        if worth_a_pool(p) and detect_kind(p) == "pubmed":
            groups += [small, [p]] if small else [[p]]
            small = []
        else:
            small.append(p)
    return groups + [small] if small else groups


def _parse_in_pool(path: Path, sha256: str, batch_records: int) -> Iterator[ParsedBatch]:
    with ParsePool() as pool:
        yield from pool.submit(path, source_name=str(path), source_sha256=sha256, batch_size=batch_records).batches()


@contextmanager
def prefetch(paths: list[Path], batch_records: int) -> Iterator[None]:
    """Start parsing the large PubMed files among ``paths`` in worker processes now; `parse_file` takes them up.

    Call it before anything starts threads (the workers are forked). Leaving the block stops the
    workers and forgets what was not taken up.
    """
    big = [p for p in paths if p.is_file() and worth_a_pool(p) and detect_kind(p) == "pubmed"]
    if not big:
        yield
        return
    pool = ParsePool().start()
    try:
        for p in big:
            _PREFETCHED[str(p)] = pool.submit(p, source_name=str(p), source_sha256=partial(file_sha256, p),
                                              batch_size=batch_records)
        yield
    finally:
        for p in big:
            _PREFETCHED.pop(str(p), None)
        pool.close()
