"""Parsing large PubMed XML files in worker processes, in file order, while the caller loads.

A `ParsePool` owns a `concurrent.futures.ProcessPoolExecutor` and one splitter thread. Files given
to `ParsePool.submit` are cut into pieces of whole records (`litmeta.extractors.record_split`, run in the
splitter thread: gunzip and ``bytes.find``); each piece is parsed in a worker process by the same
hardened parser as in-process parsing (`litmeta.extractors.pubmed_xml.parse_piece`), which returns Arrow
tables. `FileJob.batches` hands the results back in file order, merged into batches of up to
``batch_size`` records, exactly as `litmeta.extractors.pubmed_xml.iter_batches` does in one process.

Memory is bounded: at most ``max_inflight`` bytes are split off and not yet consumed (the XML
of pieces waiting for a worker, the Arrow tables of parsed pieces waiting for the loader), and at
most ``max_queued`` pieces are cut and not parsed yet: the splitter stays a few pieces ahead of the
workers instead of holding unparsed XML that no worker can take yet.
Workers ignore SIGINT, and exit when their parent dies: Ctrl-C reaches the main process, whose
`ParsePool.close` cancels what is queued and waits for the workers to finish their current piece.

Forked workers (the usual case: the pool starts while its process has one thread) get a piece's XML
and give back its result through slots of one shared memory map (`_SharedSlots`), one slot per piece
submitted and not parsed yet (as many as the in-flight budget holds), instead of the executor's
pipes: for 500 MB of XML and the 300 MB of its results, the pipes' copies through the kernel and
wake-ups per 64 KiB cost the workers 0.6-0.9 and the main process 0.2 CPU s more. A piece or result
too big for its slot, a piece that finds no slot free, and every piece of a pool whose workers are
not forked (a fork server or spawned), still go through the pipes. A file whose pool is closed before
it is all read raises `CancelledError` in its reader instead of ending early; one whose pool breaks
(a worker died: killed, e.g. by the out-of-memory killer, or crashed) raises `ParseWorkerDied`,
naming the file and what to do.
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from litmeta.extractors import pubmed_xml
from litmeta.extractors.record_split import Piece, RecordSplitter
from litmeta.extractors.xmlsource import InputError
from litmeta.schemas import ParsedBatch

DEFAULT_PIECE = 2 << 20  # bytes of XML per piece: about 100-200 records
DEFAULT_INFLIGHT = 192 << 20
# Once a file is all cut, the loader takes what is parsed (this many records at least) instead of
# waiting for a full batch. Not earlier: each transaction costs a DuckDB checkpoint, which rewrites
# the tables' partly filled last row groups (smaller batches from 60 % of the bench file on cost
# litmeta 1.5-2 CPU s and about 1 s of `litmeta load`).
FLUSH_MIN_RECORDS = 2000


class ParseWorkerDied(BrokenProcessPool):
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


# the pool's shared slots, in a forked worker (inherited from the pool, see `_SharedSlots`)
_slots_map: mmap.mmap | None = None


def _worker_init(slots_map: mmap.mmap | None = None) -> None:
    global _slots_map
    _slots_map = slots_map
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A worker whose parent died (killed outright) exits instead of waiting forever for work."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


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


class _SharedSlots:
    """Fixed-size slots of one shared anonymous memory map, made before the workers are forked (they inherit it).

    The splitter writes a piece's XML into a free slot; the worker copies it out, parses it, and
    writes its pickled `PieceResult` into the same slot when it fits; the pool reads that back as
    soon as the piece is parsed and frees the slot. Taking and freeing run under the pool's lock.
    """

    def __init__(self, count: int, size: int) -> None:
        self.size = -(-size // mmap.PAGESIZE) * mmap.PAGESIZE  # whole pages
        self.map = mmap.mmap(-1, count * self.size)  # MAP_SHARED | MAP_ANONYMOUS: forked children share it
        self._free = list(range(count - 1, -1, -1))

    def take(self) -> int | None:
        """A free slot (the one freed last: its pages are likely mapped already), or None."""
        return self._free.pop() if self._free else None

    def free(self, slot: int) -> None:
        self._free.append(slot)

    def put(self, slot: int, data: bytes) -> None:
        self.map[slot * self.size:slot * self.size + len(data)] = data

    def get(self, slot: int, nbytes: int) -> bytes:
        return self.map[slot * self.size:slot * self.size + nbytes]


@dataclass(frozen=True)
class _InSlot:
    """A worker's answer when it left its result, pickled (``nbytes``), in the piece's slot."""

    nbytes: int


def _parse_in_slot(slot: int, size: int, nbytes: int, piece: Piece, head: bytes, name: str,
                   source_sha256: str | None, batch_size: int) -> pubmed_xml.PieceResult | _InSlot:
    """`pubmed_xml.parse_piece` (in a worker) of a piece sent without its body: the body's ``nbytes``
    bytes are in shared slot ``slot`` (slots are ``size`` bytes)."""
    assert _slots_map is not None, "a worker of a pool without shared slots"
    start = slot * size
    piece = replace(piece, body=_slots_map[start:start + nbytes])
    result = pubmed_xml.parse_piece(piece, head, name, source_sha256, batch_size)
    data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    fits = len(data) <= size
    if fits:
        _slots_map[start:start + len(data)] = data
    if hasattr(mmap, "MADV_DONTNEED") and start % mmap.PAGESIZE == size % mmap.PAGESIZE == 0:
        # unmap the slot's pages here (the pool keeps them): a worker otherwise ends up mapping every
        # slot, and the same memory counts in its RSS as well as the pool's
        _slots_map.madvise(mmap.MADV_DONTNEED, start, size)
    return _InSlot(len(data)) if fits else result  # a result too big for the slot goes through the pipe


@dataclass
class _Charge:
    """A piece in flight: the bytes it counts against the in-flight limit (its XML until parsed, then its
    Arrow tables), its shared slot while parsed, and its result once read back from that slot."""

    size: int
    released: bool = False
    slot: int | None = None
    result: pubmed_xml.PieceResult | BaseException | None = None
    read: threading.Event = field(default_factory=threading.Event)  # `_parsed` ran: result set


@dataclass
class FileJob:
    """One file's pieces in flight; iterate `batches` once, in the order files were submitted."""

    path: Path
    name: str
    source_sha256: str | Callable[[], str] | None
    batch_size: int
    pool: ParsePool
    items: queue.Queue = field(default_factory=queue.Queue)
    stop: threading.Event = field(default_factory=threading.Event)
    sha_ready: threading.Event = field(default_factory=threading.Event)
    split_done: threading.Event = field(default_factory=threading.Event)  # every piece is queued

    def sha256(self) -> str | None:
        """The file's sha256 (computed in the splitter thread when a function was given for it)."""
        self.sha_ready.wait()
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
        if not (self.split_done.is_set() and merged >= FLUSH_MIN_RECORDS):
            return False
        with self.items.mutex:
            nxt = self.items.queue[0] if self.items.queue else None
        return nxt is not None and nxt[0] == "future" and not nxt[1].done()

    def _results(self) -> Iterator[pubmed_xml.PieceResult]:
        try:
            yield from self._piece_results()
        except ParseWorkerDied:
            raise
        except BrokenProcessPool as exc:
            cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
            raise ParseWorkerDied(self.name, f"{exc}{cause}") from exc

    def _piece_results(self) -> Iterator[pubmed_xml.PieceResult]:
        ended = False
        try:
            while True:
                kind, payload, charge, head = self.pool._take(self)
                if kind == "end":
                    ended = True
                    return
                if kind == "error":
                    yield pubmed_xml.unreadable(self.name, payload)
                    return
                if kind == "stream":  # parsed here: the rest of the input is a stream
                    result = pubmed_xml.parse_piece(payload, head, self.name, self.source_sha256, self.batch_size)
                else:
                    result = payload.result()
                    if isinstance(result, _InSlot):  # `ParsePool._parsed` reads it back
                        charge.read.wait()
                        result, charge.result = charge.result, None
                    self.pool._release(charge)
                    if isinstance(result, BaseException):
                        raise result
                yield result
                if result.broken:
                    return
        finally:
            if not ended:
                self._drain()

    def _drain(self) -> None:
        """Stop splitting this file and drop what is still queued for it (after a break, or when closed)."""
        self.stop.set()
        self.pool._wake()
        while True:
            kind, payload, charge, _head = self.pool._take(self, raising=False)
            if kind == "end":
                return
            if kind == "future":
                payload.cancel()
                self.pool._release(charge)
            elif kind == "stream" and payload.stream is not None:
                payload.stream.close()


class ParsePool:
    """Worker processes parsing submitted PubMed files piece by piece; use as a context manager."""

    def __init__(self, workers: int | None = None, *, max_inflight: int = DEFAULT_INFLIGHT,
                 piece_bytes: int = DEFAULT_PIECE, max_queued: int | None = None) -> None:
        self.workers = workers or max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
        self.max_inflight = max_inflight
        self.max_queued = max_queued or 4 * self.workers + 4  # a few pieces ahead of each worker
        self._queued = 0  # pieces submitted and not parsed yet
        self.piece_bytes = piece_bytes
        self._executor: ProcessPoolExecutor | None = None
        self._jobs: queue.Queue = queue.Queue()
        self._cond = threading.Condition()
        self._inflight = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._slots: _SharedSlots | None = None
        self.returned: Counter[str] = Counter()  # parsed pieces by how their result came back: "slot", "pipe"

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> ParsePool:
        """Start the workers now (forked while this process has one thread, else from a fork server)."""
        methods = multiprocessing.get_all_start_methods()
        method = "fork" if "fork" in methods and threading.active_count() == 1 else (
            "forkserver" if "forkserver" in methods else "spawn")
        if method == "fork":
            # one slot per piece submitted and not parsed, but no more than the in-flight budget holds:
            # a slot's pages stay in memory once used (on many cores, pieces beyond use the pipes)
            slot = 2 * self.piece_bytes
            self._slots = _SharedSlots(min(self.max_queued, max(1, self.max_inflight // slot)), slot)
        self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method),
                                             initializer=_worker_init,
                                             initargs=(self._slots.map,) if self._slots is not None else ())
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
        if self._slots is not None and not (self._thread is not None and self._thread.is_alive()):
            self._slots.map.close()
            self._slots = None

    # -- work -----------------------------------------------------------------------------------
    def submit(self, path: str | Path, *, source_name: str | None = None,
               source_sha256: str | Callable[[], str] | None = None, batch_size: int = 5000) -> FileJob:
        """Queue a file for splitting and parsing; its batches come from the returned job.

        ``source_sha256`` may be a function computing it: it then runs in the splitter thread.
        """
        if self._executor is None:
            self.start()
        job = FileJob(Path(path), source_name or str(path), source_sha256, batch_size, self)
        self._jobs.put(job)
        return job

    def _split_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self._split(job)
            except InputError as exc:
                job.items.put(("error", exc, 0, b""))
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
                job.items.put(("raise", exc, 0, b""))
            finally:
                job.items.put(("end", None, 0, b""))
                job.split_done.set()

    def _split(self, job: FileJob) -> None:
        try:
            if callable(job.source_sha256):
                job.source_sha256 = job.source_sha256()
        finally:
            job.sha_ready.set()
        splitter = RecordSplitter(job.path, job.name, target=self.piece_bytes)
        pieces = iter(splitter)
        try:
            for piece in pieces:
                if self._stopping(job):
                    return
                if piece.stream is not None:
                    job.items.put(("stream", piece, 0, splitter.head))
                    return
                size = len(piece.body)
                with self._cond:
                    while (self._inflight > 0 and self._inflight + size > self.max_inflight) \
                            or self._queued >= self.max_queued:
                        if self._stopping(job):
                            return
                        self._cond.wait(0.5)
                    self._inflight += size
                    self._queued += 1
                    slots = self._slots
                    # a slot when one is free and the piece fits, else (None) through the pipe
                    charge = _Charge(size, slot=slots.take() if slots is not None and size <= slots.size else None)
                assert self._executor is not None
                args = (splitter.head, job.name, job.source_sha256, job.batch_size)
                try:
                    if charge.slot is not None:
                        assert slots is not None
                        slots.put(charge.slot, piece.body)
                        fut: Future = self._executor.submit(_parse_in_slot, charge.slot, slots.size, size,
                                                            replace(piece, body=b""), *args)
                    else:
                        fut = self._executor.submit(pubmed_xml.parse_piece, piece, *args)
                except RuntimeError as exc:  # shut down meanwhile, or broken (a worker died: the consumer raises it)
                    self._parsed(charge, None)
                    self._release(charge)
                    if isinstance(exc, BrokenProcessPool):
                        raise
                    self._stopping(job)
                    return
                del piece
                fut.add_done_callback(partial(self._parsed, charge))
                job.items.put(("future", fut, charge, b""))
        finally:
            pieces.close()

    def _stopping(self, job: FileJob) -> bool:
        """True when ``job``'s consumer stopped it; raises when the pool was closed under a consumer still
        reading (else the file would end early as if it were all read)."""
        if job.stop.is_set():
            return True
        if self._closed:
            raise CancelledError(f"{job.name}: the parse pool was closed before the file was all read")
        return False

    def _take(self, job: FileJob, raising: bool = True) -> tuple:
        """``job``'s next item; a "raise" item (the splitter failed) is raised, unless not ``raising`` (draining)."""
        while True:
            try:
                item = job.items.get(timeout=0.5)
            except queue.Empty:
                if self._closed and (self._thread is None or not self._thread.is_alive()):
                    return ("end", None, 0, b"")
                continue
            if item[0] == "raise" and raising:
                raise item[1]
            return item

    def _parsed(self, charge: _Charge, fut: Future | None) -> None:
        """A piece was parsed (or cancelled, or not submitted: ``fut`` None): its XML is gone, its Arrow
        tables wait for the loader; a result left in the piece's shared slot is read back, and the slot freed."""
        result = None
        try:
            result = fut.result() if fut is not None and not fut.cancelled() and fut.exception() is None else None
            way = "pipe"
            if isinstance(result, _InSlot):
                assert self._slots is not None and charge.slot is not None
                charge.result = result = pickle.loads(self._slots.get(charge.slot, result.nbytes))
                way = "slot"
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            charge.result, result = exc, None
        finally:
            with self._cond:
                if result is not None:
                    self.returned[way] += 1
                self._queued -= 1
                if charge.slot is not None and self._slots is not None:
                    self._slots.free(charge.slot)
                    charge.slot = None
                self._cond.notify_all()
            charge.read.set()
        if result is None:
            return
        size = sum(t.get_total_buffer_size() for r in result.batches for t in r.tables.values())  # O(columns)
        with self._cond:
            if not charge.released:
                self._inflight += size - charge.size
                charge.size = size
                self._cond.notify_all()

    def _release(self, charge: _Charge) -> None:
        with self._cond:
            if not charge.released:
                charge.released = True
                self._inflight -= charge.size
            self._cond.notify_all()

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()
