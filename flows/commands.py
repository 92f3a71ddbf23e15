"""Implementations of the CLI verbs: validate, run the verb's flow, print its summary, pick the exit code."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import duckdb

from flows.pipeline import UsageError
from warehouse.db import WarehouseBusy, WarehouseError, check_path, connect


def _exit_code(summary: dict) -> int:
    return 1 if summary.get("rejects") else 0


def _print_summary(summary: dict, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False)
    t = Table(title=title, show_header=True)
    t.add_column("table")
    t.add_column("rows written", justify="right")
    for name, n in summary.get("rows", {}).items():
        t.add_row(name, str(n))
    console.print(t)
    console.print(
        f"records new {summary.get('records_new', 0)}, updated {summary.get('records_updated', 0)}, "
        f"unchanged {summary.get('records_unchanged', 0)}, skipped older {summary.get('records_skipped_older', 0)}, "
        f"deleted {summary.get('deleted', 0)}; edges new {summary.get('edges_new', 0)}; "
        f"rejects {summary.get('rejects', 0)}; HTTP requests {summary.get('http_requests', 0)}"
    )


def _print_rejects(db: str, run_id: str) -> None:
    with connect(db, read_only=True, wait=10) as con:
        rows = con.execute(
            "SELECT source, record_key, reason FROM rejects WHERE run_id = ? ORDER BY source, record_key LIMIT 50",
            [run_id]).fetchall()
    for source, key, reason in rows:
        print(f"rejected: {source}: {key}: {reason}", file=sys.stderr)


def _writable_db(db: str) -> str:
    check_path(db)
    con = connect(db, wait=30)  # creates and migrates; fails early with a clear message
    con.close()
    return db


# -- load ----------------------------------------------------------------------------------
def cmd_load(args: argparse.Namespace) -> int:
    from flows.load_files import load_files

    missing = [str(f) for f in args.files if not f.exists()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    dirs = [str(f) for f in args.files if f.is_dir()]
    if dirs:
        raise UsageError(f"{dirs[0]}: is a directory; give XML files (e.g. {dirs[0]}/*.xml.gz)")
    db = _writable_db(args.db)
    summary = load_files([str(f) for f in args.files], db, show_progress=sys.stderr.isatty() or sys.stdout.isatty())
    _print_summary(summary, f"litmeta load: {len(args.files)} file(s) into {db}")
    if summary.get("rejects"):
        _print_rejects(db, summary["run_id"])
    return _exit_code(summary)


# -- sql -----------------------------------------------------------------------------------
def cmd_sql(args: argparse.Namespace) -> int:
    try:
        con = connect(args.db, read_only=True, wait=4.5)
    except WarehouseBusy as exc:
        raise WarehouseBusy(str(exc).replace("retry in a few seconds", "retry in 5-10 seconds")) from None
    try:
        try:
            cur = con.execute(args.query)
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            if "read-only" in first or "read only" in first:
                raise WarehouseError(f"sql is read-only: {first}") from None
            raise UsageError(f"query failed: {first}") from None
        if cur.description is None:
            return 0
        cols = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        con.close()
    out = sys.stdout
    if args.format == "csv":
        w = csv.writer(out)
        w.writerow(cols)
        w.writerows(rows)
    elif args.format == "json":
        json.dump([dict(zip(cols, r, strict=True)) for r in rows], out, default=str, ensure_ascii=False, indent=1)
        out.write("\n")
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(*cols)
        for r in rows:
            t.add_row(*("NULL" if v is None else str(v) for v in r))
        Console(width=200).print(t)
        print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return 0


# -- sandbox -------------------------------------------------------------------------------
def bundled_snapshot() -> Path:
    return Path(__file__).resolve().parent.parent / "extractors" / "sandbox" / "snapshots" / "39047240"


def cmd_sandbox(args: argparse.Namespace) -> int:
    from extractors.sandbox import run_sandbox

    snap = args.snapshot or bundled_snapshot()
    if not snap.is_dir():
        raise UsageError(f"--snapshot {snap}: not a directory (expected pubmed/, links.tsv, meta.json)")
    try:
        run_sandbox(snap, port=args.port, faults=args.faults, rate_limit=not args.no_rate_limit)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return 0
