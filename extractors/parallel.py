"""Parsing large PubMed XML files in worker processes, in file order, while the caller loads.

The protocol:

- Who sends what. `ParsePool.submit` queues a file for the pool's splitter thread, which cuts it
  into pieces of whole records (`litmeta.extractors.record_split`) and submits each, as bytes, to a
  `concurrent.futures.ProcessPoolExecutor`, with the name of a file in the pool's spool (a private
  temporary directory). The worker parses the piece as in-process parsing does
  (`litmeta.extractors.pubmed_xml.parse_piece`), writes the pickled `PieceResult` to that file (its
  tables as Arrow IPC streams, one buffer per batch: `ParsedBatch.__reduce__`) and returns the
  file's size. The reader loads the file (the tables read in place from that buffer) and deletes
  it. Results stay out of the executor's pipe: a worker killed while writing a large message there
  leaves the executor waiting forever for the rest, instead of reporting the pool broken.
- Order. The splitter queues each piece's future on its file's queue, in file order, then an end
  mark; `FileJob.batches` takes them in that order in the caller's thread and merges the results
  into batches of up to ``batch_size`` records, exactly as `litmeta.extractors.pubmed_xml.iter_batches` does.
- Budget. At most ``max_inflight`` bytes are split off and not yet read by the caller (a piece
  counts its XML until parsed, then its result file): the splitter waits for room before it sends
  a piece (one bigger than the whole budget goes alone). It also cuts a piece only once the one
  sent ``2 * workers + 2`` pieces earlier is parsed, so that XML waiting for a worker stays a few
  pieces' worth and the budget is left to results waiting for the caller.
- Failures reach the reader at their place in the file: an unreadable input ends with a reject, as
  in one process; a worker that dies (killed, e.g. by the out-of-memory killer, or crashed), or a
  spool that fails, raises `ParseWorkerDied` naming the file; a pool closed before a file is all
  read raises `CancelledError` naming the file instead of ending it early. Workers ignore SIGINT
  (Ctrl-C is the main process's: `ParsePool.close` cancels the queued pieces, waits for those being
  parsed and removes the spool) and exit, removing the spool, when their parent dies.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import pickle
import queue
import shutil
import signal
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from litmeta.errors import CouldNotFinish
from litmeta.extractors import pubmed_xml
from litmeta.extractors.record_split import Piece, RecordSplitter
from litmeta.extractors.xmlsource import InputError
from litmeta.schemas import ParsedBatch

DEFAULT_PIECE = 2 << 20  # bytes of XML per piece: about 100-200 records
DEFAULT_INFLIGHT = 192 << 20
# Once a file is all cut, the loader takes what is parsed (this many records at least) instead of
# waiting for a full batch. Not earlier: each transaction costs a DuckDB checkpoint, which rewrites
# the tables' partly filled last row groups.
FLUSH_MIN_RECORDS = 2000


class ParseWorkerDied(BrokenProcessPool, CouldNotFinish):
    """The parse pool broke while a file was being parsed: a worker process died (killed, or crashed),
    or, rarely, a result could not be read back (``reason``, the pool's own message, says which)."""

    def __init__(self, name: str, reason: str = "") -> None:
        self.name, self.reason = name, reason
        what = ("a parse worker process died while parsing it (killed, e.g. by the kernel's out-of-memory "
                "killer, or crashed)" if not reason or "terminated abruptly" in reason
                else f"parsing it in worker processes failed ({reason})")
        super().__init__(f"{name}: {what}; what was loaded before stays: re-run the same command to "
                         "finish (loads are idempotent)")

    def __reduce__(self) -> tuple:
        return (type(self), (self.name, self.reason))


def _worker_init(spool: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    threading.Thread(target=_exit_with_parent, args=(os.getppid(), spool), daemon=True).start()


def _exit_with_parent(parent: int, spool: str) -> None:
    """A worker whose parent died (killed outright) removes the spool and exits instead of waiting forever for work."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            shutil.rmtree(spool, ignore_errors=True)
            os._exit(1)


def _parse_to_file(path: str, piece: Piece, head: bytes, name: str, source_sha256: str | None,
                   batch_size: int) -> int:
    """In a worker: `pubmed_xml.parse_piece`, its result written, pickled, to ``path``; returns the file's size."""
    result = pubmed_xml.parse_piece(piece, head, name, source_sha256, batch_size)
    with open(path, "wb") as fh:
        pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return fh.tell()


def _noop() -> int:
    return os.getpid()


def worth_a_pool(path: str | Path, min_bytes: int = 24 << 20) -> bool:
    """Whether ``path`` is big enough for worker processes to pay off (uncompressed size, estimated for .gz)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
    except OSError:
        return False
    return size * (5 if gz else 1) >= min_bytes


def _closed_under(name: str) -> CancelledError:
    return CancelledError(f"{name}: the parse pool was closed before the file was all read")


def _finished(result: pubmed_xml.PieceResult | None = None, error: BaseException | None = None) -> Future:
    """A future already holding ``result`` (or ``error``): what the splitter itself has to say."""
    fut: Future = Future()
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)
    return fut


@dataclass(eq=False)
class _Sent:
    """One entry of a file's queue: a piece's result to come, and the bytes it counts against the budget.

    ``path`` set: a worker parses the piece and writes the result there (``future`` gives its size);
    else ``future`` holds what the splitter itself had to say (a result, or an error).
    """

    future: Future
    path: str | None = None
    size: int = 0
    settled: bool = False  # no longer counted: taken by the reader, or dropped

    def discard(self) -> None:
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


@dataclass
class FileJob:
    """One file's pieces in flight; iterate `batches` once, in the order files were submitted."""

    path: Path
    name: str
    source_sha256: str | Callable[[], str] | None
    batch_size: int
    pool: ParsePool
    _queue: queue.Queue = field(default_factory=queue.Queue, init=False, repr=False)  # _Sent in file order, then None
    _peeked: list = field(default_factory=list, init=False, repr=False)  # an entry taken off the queue early
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)  # the reader left
    _sha_ready: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _split_done: threading.Event = field(default_factory=threading.Event, init=False, repr=False)  # all queued

    def sha256(self) -> str | None:
        """The file's sha256 (computed in the splitter thread when a function was given for it)."""
        self._sha_ready.wait()
        return None if callable(self.source_sha256) else self.source_sha256

    def batches(self) -> Iterator[ParsedBatch]:
        """The file's batches in file order (see `litmeta.extractors.pubmed_xml.iter_batches`).

        Batches hold up to ``batch_size`` records, but once the file is all cut, what is merged
        (FLUSH_MIN_RECORDS at least) is handed out as soon as the next piece is not parsed yet: the
        loader then loads while the workers finish the last pieces.
        """
        return pubmed_xml.ordered_batches(self._results(), self.name, self.batch_size, flush=self._would_wait)

    def _would_wait(self, merged: int) -> bool:
        """The file is all cut, ``merged`` records make a batch worth a transaction, and the next
        piece in file order is still being parsed."""
        if not (merged >= FLUSH_MIN_RECORDS and self._split_done.is_set()):
            return False
        if not self._peeked:
            self._peeked.append(self._queue.get())  # all is queued: this does not wait
        nxt = self._peeked[0]
        return nxt is not None and not nxt.future.done()

    def _take(self) -> _Sent | None:
        return self._peeked.pop() if self._peeked else self._queue.get()

    def _results(self) -> Iterator[pubmed_xml.PieceResult]:
        ended = False
        try:
            while (sent := self._take()) is not None:
                try:
                    result = self._result(sent)
                finally:
                    self.pool._settle(sent)
                yield result
                if result.broken:
                    return
            ended = True
        finally:
            if not ended:
                self._drain()

    def _result(self, sent: _Sent) -> pubmed_xml.PieceResult:
        try:
            result = sent.future.result()
            if sent.path is None:
                return result
            with open(sent.path, "rb") as fh:
                return pickle.load(fh)
        except CancelledError as exc:
            raise _closed_under(self.name) from exc
        except BrokenProcessPool as exc:
            if isinstance(exc, ParseWorkerDied):
                raise
            cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
            raise ParseWorkerDied(self.name, f"{exc}{cause}") from exc
        except OSError as exc:
            if sent.path is None:  # the splitter's own
                raise
            if isinstance(exc, FileNotFoundError) and self.pool._closed:  # gone with the spool
                raise _closed_under(self.name) from None
            raise ParseWorkerDied(self.name, f"passing a parsed piece through {os.path.dirname(sent.path)} "
                                  f"failed: {exc}") from exc
        finally:
            sent.discard()

    def _drain(self) -> None:
        """Stop splitting this file and drop what is queued for it (after a break, or when the reader left)."""
        self._stop.set()
        self.pool._wake()
        while (sent := self._take()) is not None:
            sent.future.cancel()
            self.pool._settle(sent)
            if sent.future.done():  # else `ParsePool._parsed` deletes its file
                sent.discard()


class ParsePool:
    """Worker processes parsing submitted PubMed files piece by piece; use as a context manager."""

    def __init__(self, workers: int | None = None, *, max_inflight: int = DEFAULT_INFLIGHT,
                 piece_bytes: int = DEFAULT_PIECE) -> None:
        self.workers = workers or max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
        self.max_inflight = max_inflight
        self.piece_bytes = piece_bytes
        self._executor: ProcessPoolExecutor | None = None
        self._jobs: queue.Queue = queue.Queue()  # FileJob, then None when closed
        self._cond = threading.Condition()  # guards _inflight and _closed
        self._inflight = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._spool: str | None = None  # the directory of result files
        self._names = itertools.count()
        # the last pieces sent: the splitter cuts the next once the oldest is parsed, so that XML waiting
        # for a worker stays a few pieces' worth and the budget is left to results waiting for the reader
        self._last_sent: deque[Future] = deque(maxlen=2 * self.workers + 2)

    @property
    def inflight(self) -> int:
        """Bytes counted against the budget now: XML of pieces not parsed, result files not read yet."""
        with self._cond:
            return self._inflight

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> ParsePool:
        """Start the workers now (forked while this process has one thread, else from a fork server)."""
        methods = multiprocessing.get_all_start_methods()
        method = "fork" if "fork" in methods and threading.active_count() == 1 else (
            "forkserver" if "forkserver" in methods else "spawn")
        self._spool = tempfile.mkdtemp(prefix="litmeta-parse-")
        self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method),
                                             initializer=_worker_init, initargs=(self._spool,))
        self._executor.submit(_noop)  # launches every worker before any other thread of ours exists
        self._thread = threading.Thread(target=self._split_loop, name="litmeta-split", daemon=True)
        self._thread.start()
        return self

    def __enter__(self) -> ParsePool:
        return self if self._executor is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Cancel what is queued, let the workers finish their current piece, and stop them."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._jobs.put(None)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._spool is not None:
            shutil.rmtree(self._spool, ignore_errors=True)

    # -- work -----------------------------------------------------------------------------------
    def submit(self, path: str | Path, *, source_name: str | None = None,
               source_sha256: str | Callable[[], str] | None = None, batch_size: int = 5000) -> FileJob:
        """Queue a file for splitting and parsing; its batches come from the returned job.

        ``source_sha256`` may be a function computing it: it then runs in the splitter thread.
        """
        if self._closed:
            raise RuntimeError("the parse pool is closed")
        if self._executor is None:
            self.start()
        job = FileJob(Path(path), source_name or str(path), source_sha256, batch_size, self)
        self._jobs.put(job)
        return job

    def _split_loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._split(job)
            except InputError as exc:  # the file could not be opened: a reject, as in one process
                job._queue.put(_Sent(_finished(pubmed_xml.unreadable(job.name, exc))))
            except BaseException as exc:  # noqa: BLE001 - handed to the reader, which raises it
                job._queue.put(_Sent(_finished(error=exc)))
            finally:
                job._queue.put(None)
                job._split_done.set()

    def _split(self, job: FileJob) -> None:
        try:
            if callable(job.source_sha256):
                job.source_sha256 = job.source_sha256()
        finally:
            job._sha_ready.set()
        if self._stopping(job):
            return
        splitter = RecordSplitter(job.path, job.name, target=self.piece_bytes)
        pieces = iter(splitter)
        try:
            for piece in pieces:
                args = (splitter.head, job.name, job.source_sha256, job.batch_size)
                if piece.stream is not None:  # the rest of the input is not cut: stream-parsed here
                    try:
                        if not self._stopping(job):
                            job._queue.put(_Sent(_finished(pubmed_xml.parse_piece(piece, *args))))
                    finally:
                        piece.stream.close()
                    return
                if len(self._last_sent) == self._last_sent.maxlen:
                    wait([self._last_sent[0]])
                assert self._executor is not None and self._spool is not None
                sent = _Sent(Future(), os.path.join(self._spool, f"{next(self._names)}.pickle"), len(piece.body))
                if not self._reserve(job, sent.size):
                    return
                try:
                    sent.future = self._executor.submit(_parse_to_file, sent.path, piece, *args)
                except RuntimeError:  # closed meanwhile (CancelledError), or broken: a worker died
                    self._settle(sent)
                    self._stopping(job)
                    raise
                del piece
                sent.future.add_done_callback(partial(self._parsed, sent))
                self._last_sent.append(sent.future)
                job._queue.put(sent)
        finally:
            pieces.close()

    def _stopping(self, job: FileJob) -> bool:
        """True when ``job``'s reader left; raises when the pool was closed under a reader still
        reading (else the file would end early as if it were all read)."""
        if job._stop.is_set():
            return True
        if self._closed:
            raise _closed_under(job.name)
        return False

    def _reserve(self, job: FileJob, size: int) -> bool:
        """Wait until ``size`` bytes fit in the budget (or nothing is in flight) and count them;
        False when ``job``'s reader left meanwhile."""
        with self._cond:
            while self._inflight > 0 and self._inflight + size > self.max_inflight:
                if self._stopping(job):
                    return False
                self._cond.wait()
            if self._stopping(job):
                return False
            self._inflight += size
            return True

    def _parsed(self, sent: _Sent, fut: Future) -> None:
        """A piece was parsed: from now on it counts its result file instead of its XML (the file is
        deleted instead if the reader dropped the piece meanwhile)."""
        if fut.cancelled() or fut.exception() is not None:
            return
        with self._cond:
            dropped = sent.settled
            if not dropped:
                self._inflight += fut.result() - sent.size
                sent.size = fut.result()
                self._cond.notify_all()
        if dropped:
            sent.discard()

    def _settle(self, sent: _Sent) -> None:
        with self._cond:
            if not sent.settled:
                sent.settled = True
                self._inflight -= sent.size
                self._cond.notify_all()

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()
