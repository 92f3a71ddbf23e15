"""Opening the DuckDB warehouse: clear errors for bad paths and busy files, migrations on open.

DuckDB lets one process write a database file, or several processes read it, not both at once.
litmeta keeps write transactions short and opens the file per unit of work, so a reader that finds
the file busy is told so and when to retry (`WarehouseBusy`) instead of seeing a traceback.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from warehouse.migrations import migrate

BUSY_MARKERS = ("Could not set lock", "Conflicting lock", "database is locked", "lock on file")


class WarehouseError(Exception):
    """A warehouse that cannot be opened or used; the message names the path and what to do."""


class WarehouseBusy(WarehouseError):
    """Another litmeta process is writing the warehouse."""


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


def _is_busy(exc: Exception) -> bool:
    text = str(exc)
    return any(m in text for m in BUSY_MARKERS)


def connect(
    path: str | Path, *, read_only: bool = False, wait: float = 0.0, migrate_schema: bool = True
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (creating and migrating it when writable).

    ``wait``: seconds to keep retrying while another process holds the file lock, then raise
    `WarehouseBusy`. Other failures raise `WarehouseError` naming the path.
    """
    if str(path) == ":memory:":
        con = duckdb.connect(":memory:")
        migrate(con)
        return con
    p = check_path(path, must_exist=read_only)
    if not read_only:
        target = p if p.exists() else p.parent
        if not os.access(target, os.W_OK):
            what = "file" if p.exists() else f"folder {p.parent}"
            raise WarehouseError(f"--db {p}: {what} is not writable; choose another path or fix permissions")
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(p), read_only=read_only)
            break
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
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
    if migrate_schema and not read_only:
        try:
            migrate(con)
        except Exception:
            con.close()
            raise
    return con


@contextmanager
def session(path: str | Path, *, read_only: bool = False, wait: float = 30.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for one unit of work, closed afterwards so other processes can get in."""
    con = connect(path, read_only=read_only, wait=wait)
    try:
        yield con
    finally:
        con.close()
