"""Opening the DuckDB warehouse: clear errors for bad paths and busy files, migrations on open.

DuckDB lets one process write a database file, or several processes read it, not both at once.
litmeta keeps write transactions short and opens the file per unit of work, so a reader that finds
the file busy is told so and when to retry (`WarehouseBusy`) instead of seeing a traceback.

Runs never interleave: every writing run holds the warehouse's writer lock (`writer_lock`, an
flock on ``<db>.lock`` next to the file, released by the kernel even when the process is killed)
for its whole duration; a second writer waits for it (``LITMETA_WRITE_WAIT`` seconds, default 30)
and then refuses, naming the run that holds it. Readers (`litmeta sql`) never take it.

`crash_point` is a test-only hook (docs/reliability.md): ``LITMETA_CRASH_AT=point:n`` kills the
process with SIGKILL the n-th time it passes the named point, so tests can crash a run at a
precise place (during a fetch, inside a load transaction, between batches, ...).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from litmeta.errors import CouldNotFinish, UsageError
from litmeta.warehouse.migrations import migrate

BUSY_MARKERS = ("Could not set lock", "Conflicting lock", "database is locked", "lock on file")
CRASH_ENV = "LITMETA_CRASH_AT"
WRITE_WAIT_ENV = "LITMETA_WRITE_WAIT"
DEFAULT_WRITE_WAIT = 30.0


class WarehouseError(UsageError):
    """A warehouse that cannot be opened or used; the message names the path and what to do."""


class WarehouseBusy(CouldNotFinish, WarehouseError):
    """Another litmeta process is writing the warehouse (exit 3: retry when it has finished)."""


def check_path(path: str | Path, *, must_exist: bool = False) -> Path:
    """Validate a --db path before DuckDB sees it, so errors name the real problem."""
    p = Path(path).expanduser()
    if str(path) == ":memory:":
        return p
    if p.is_dir():
        raise WarehouseError(f"--db {p}: is a directory; give a file path such as {p / 'litmeta.duckdb'}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise WarehouseError(f"--db {p}: folder {parent} does not exist; create it first (mkdir -p {parent})")
    if must_exist and not p.exists():
        raise WarehouseError(f"--db {p}: no warehouse there yet; run 'litmeta load', 'ingest' or 'demo' first")
    if p.exists() and not os.access(p, os.R_OK):
        raise WarehouseError(f"--db {p}: not readable by this user; check its permissions")
    return p


def check_writable(path: str | Path) -> Path:
    """Raise `WarehouseError` unless the warehouse file (or, for a new one, its folder) is writable."""
    p = Path(path).expanduser()
    target = p if p.exists() else (p.parent if str(p.parent) else Path("."))
    if not os.access(target, os.W_OK):
        what = "file" if p.exists() else f"folder {p.parent}"
        raise WarehouseError(f"--db {p}: {what} is not writable; choose another path or fix permissions")
    return p


def _is_busy(exc: Exception) -> bool:
    text = str(exc)
    return any(m in text for m in BUSY_MARKERS)


def connect(
    path: str | Path, *, read_only: bool = False, wait: float = 0.0, migrate_schema: bool = True,
    threads: int | None = None, config: dict | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (creating and migrating it when writable).

    ``wait``: seconds to keep retrying while another process holds the file lock, then raise
    `WarehouseBusy`. Other failures raise `WarehouseError` naming the path.
    ``threads``: DuckDB's worker threads for this connection (default: one per core); ignored when
    this process has the file open already (DuckDB shares one instance per file and process).
    ``config``: more DuckDB settings for the connection (never dropped: such a connection fails instead).
    """
    config = {**(config or {}), **({"threads": threads} if threads else {})}
    if str(path) == ":memory:":
        con = duckdb.connect(":memory:", config=config)
        migrate(con)
        return con
    p = check_path(path, must_exist=read_only)
    if not read_only:
        check_writable(p)
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(p), read_only=read_only, config=config)
            break
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if "threads" in config and "different configuration" in str(exc):
                del config["threads"]  # this process has the file open already: share that instance's threads
                continue
            if _is_busy(exc):
                if time.monotonic() < deadline:
                    time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                    delay = min(delay * 2, 0.5)
                    continue
                raise WarehouseBusy(
                    f"--db {p}: the warehouse is busy (another litmeta process is writing it); "
                    "retry in a few seconds, or when that run has finished"
                ) from None
            raise WarehouseError(f"--db {p}: cannot open: {str(exc).splitlines()[0]}") from None
        except duckdb.Error as exc:
            raise WarehouseError(
                f"--db {p}: not a usable DuckDB warehouse ({str(exc).splitlines()[0]}); "
                "point --db at a litmeta warehouse or a new file"
            ) from None
    if migrate_schema and not read_only and _identity(p) not in _migrated:
        try:
            migrate(con)
            _migrated.add(_identity(p))
        except Exception as exc:
            con.close()
            if _is_busy(exc):  # DuckDB may report a lock conflict only at the first write
                raise WarehouseBusy(f"--db {p}: the warehouse is busy; retry in a few seconds") from None
            raise WarehouseError(f"--db {p}: {str(exc).splitlines()[0]}") from None
    return con


# Warehouse files this process has migrated (by device and inode: a file replaced at the same path is
# checked again). A writing run holds the writer lock, so no other litmeta can migrate it meanwhile.
_migrated: set[tuple[int, int]] = set()


def _identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def ensure_warehouse(path: str | Path, wait: float = 30.0) -> str:
    """Create (or open) and migrate the warehouse at ``path``, so a path that cannot be one is refused
    with a clear `WarehouseError` before a run writes anything next to it; returns ``path``."""
    connect(path, wait=wait).close()
    return str(path)


@contextmanager
def session(path: str | Path, *, read_only: bool = False, wait: float = 30.0,
            threads: int | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for one unit of work, closed afterwards so other processes can get in."""
    con = connect(path, read_only=read_only, wait=wait, threads=threads)
    try:
        yield con
    finally:
        con.close()


# -- the run-level writer lock ---------------------------------------------------------------
_locks_guard = threading.Lock()
_locks: dict[str, list] = {}  # lock path -> [RLock, fd or None, depth]


def lock_path(path: str | Path) -> Path:
    p = Path(path).expanduser().resolve()
    return p.with_name(p.name + ".lock")


def write_wait() -> float:
    try:
        return max(0.0, float(os.environ.get(WRITE_WAIT_ENV, DEFAULT_WRITE_WAIT)))
    except ValueError:
        return DEFAULT_WRITE_WAIT


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 300, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "another litmeta process"


@contextmanager
def writer_lock(path: str | Path, what: str = "litmeta", wait: float | None = None,
                on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the warehouse's writer lock for a whole run (re-entrant within a thread).

    Waits up to ``wait`` seconds (default ``LITMETA_WRITE_WAIT``, 30) for another run to finish,
    calling ``on_wait(holder)`` once when it has to wait, then raises `WarehouseBusy` naming it.
    """
    if str(path) == ":memory:":
        yield
        return
    wait = write_wait() if wait is None else wait
    deadline = time.monotonic() + wait
    lp = lock_path(path)
    with _locks_guard:
        entry = _locks.setdefault(str(lp), [threading.RLock(), None, 0])
    rlock = entry[0]
    if not rlock.acquire(timeout=max(wait, 0.001)):
        raise WarehouseBusy(f"--db {path}: another run of this process is writing the warehouse; "
                            "retry when it has finished")
    try:
        if entry[2] == 0:
            try:
                fd = os.open(lp, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise WarehouseError(f"--db {path}: cannot create the lock file {lp}: {exc.strerror or exc}") from None
            told = False
            delay = 0.05
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holder = _holder(fd)
                    if time.monotonic() >= deadline:
                        os.close(fd)
                        raise WarehouseBusy(
                            f"--db {path}: another litmeta run is writing the warehouse ({holder}); "
                            f"waited {wait:g} s; retry when it has finished (or set {WRITE_WAIT_ENV} to wait longer)"
                        ) from None
                    if not told and on_wait is not None:
                        on_wait(holder)
                        told = True
                    time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                    delay = min(delay * 2, 0.5)
            since = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}: {what}, since {since}\n".encode(), 0)
            entry[1] = fd
        entry[2] += 1
        try:
            yield
        finally:
            entry[2] -= 1
            if entry[2] == 0 and entry[1] is not None:
                fd, entry[1] = entry[1], None
                try:
                    os.ftruncate(fd, 0)
                    fcntl.flock(fd, fcntl.LOCK_UN)
                finally:
                    os.close(fd)
    finally:
        rlock.release()


def writer_running(path: str | Path) -> str | None:
    """Who holds the writer lock of the warehouse at ``path`` now (its holder line), or None.

    Probes with a shared lock, released at once, so a writer starting meanwhile only waits a moment.
    """
    try:
        fd = os.open(lock_path(path), os.O_RDONLY)
    except OSError:
        return None  # no lock file: no run has written here
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


# -- test-only crash hook ----------------------------------------------------------------------
_crash_counts: Counter = Counter()


def swap_in(new: str | Path, old: str | Path) -> None:
    """Replace the warehouse file ``old`` by the complete warehouse ``new`` (`litmeta mirror --rebuild`), under
    ``old``'s writer lock: one rename, so a reader opens either the old file or the new one."""
    new_p, old_p = check_path(new, must_exist=True), check_path(old)
    with writer_lock(old_p, what="litmeta mirror --rebuild: swapping in the rebuilt warehouse"):
        with session(new_p):  # opened and closed: its WAL, if any, is checkpointed into the file first
            pass
        os.replace(new_p, old_p)


def crash_point(name: str) -> None:
    """``LITMETA_CRASH_AT=name:n[,name2:m]`` SIGKILLs this process the n-th time it passes ``name``.

    Points: 'fetch' (an HTTP answer received, not yet stored), 'load-txn' (a load transaction
    written, before its COMMIT), 'between-batches' (a batch committed, the next not begun),
    'after-records' (a network's records loaded, its observation not yet written), 'edges'
    (inside the observation transaction, before its COMMIT) and 'mirror-merge' (the mirror's merge
    transaction written, before its COMMIT). A no-op when the variable is unset.
    """
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    for item in spec.split(","):
        point, _, n = item.strip().partition(":")
        if point == name:
            _crash_counts[name] += 1
            if _crash_counts[name] == int(n or 1):
                os.kill(os.getpid(), signal.SIGKILL)
            return
