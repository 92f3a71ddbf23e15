"""Implementations of the CLI verbs: validate, run the verb's flow, print its summary, pick the exit code."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from litmeta.errors import UsageError
from litmeta.extractors.files import file_stamp, prefetch
from litmeta.extractors.sandbox import BUNDLED_SNAPSHOT
from litmeta.flows.prefect_runtime import PrefectRun, prefect_run
from litmeta.warehouse.db import (
    check_path,
    check_writable,
    ensure_warehouse,
    swap_in,
    write_wait,
    writer_lock,
)
from litmeta.warehouse.load import BATCH_RECORDS
from litmeta.warehouse.network import seeds_to_refresh
from litmeta.warehouse.queries import network_summary, rejects_of, run_sql
from litmeta.warehouse.runs import loaded_before


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
    for source, key, reason in rejects_of(db, run_id):
        print(f"rejected: {source}: {key}: {reason}", file=sys.stderr)


@contextmanager
def _writing(db: str, verb: str) -> Iterator[str]:
    """Hold the warehouse's writer lock for the whole command (a second writer waits, then refuses).

    The path is checked and the file opened (created, migrated) first, so a path that cannot be a
    warehouse is refused before anything (not even the lock file) is written next to it.
    """
    ensure_warehouse(db)
    with _write_lock(db, verb):
        yield db


@contextmanager
def _write_lock(db: str, verb: str) -> Iterator[None]:
    """The writer lock of `_writing`, for a warehouse `ensure_warehouse` has already opened."""
    def waiting(holder: str) -> None:
        print(f"litmeta {verb}: waiting up to {write_wait():g} s for the warehouse: another litmeta run is "
              f"writing it ({holder})", file=sys.stderr, flush=True)

    with writer_lock(db, what=f"litmeta {verb}", on_wait=waiting):
        yield


# -- load ----------------------------------------------------------------------------------
def cmd_load(args: argparse.Namespace) -> int:
    missing = [str(f) for f in args.files if not f.exists()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    dirs = [str(f) for f in args.files if f.is_dir()]
    if dirs:
        raise UsageError(f"{dirs[0]}: is a directory; give XML files (e.g. {dirs[0]}/*.xml.gz)")
    db = ensure_warehouse(args.db)  # a path that cannot be a warehouse is refused before anything starts
    files = list(dict.fromkeys(args.files))
    if not args.force:
        before = loaded_before(db, {f: file_stamp(f) for f in files})
        for f, (run_id, at) in before.items():
            print(f"litmeta load: {f}: unchanged since it was loaded at {at:%Y-%m-%d %H:%M:%S} UTC (run {run_id}); "
                  "not read again (--force to load it anyway)")
        files = [f for f in files if f not in before]
        if not files:
            return 0
    # Prefect's temporary server boots and large PubMed files start parsing in worker processes
    # now, while Prefect is imported; the flow's tasks then load what was parsed
    with PrefectRun(args.verbose) as prefect, prefetch(files, BATCH_RECORDS), _write_lock(db, "load"):
        prefect.ready()
        from litmeta.flows.load_files import load_files

        summary = load_files([str(f) for f in files], db, show_progress=sys.stderr.isatty() or sys.stdout.isatty())
    _print_summary(summary, f"litmeta load: {len(files)} file(s) into {db}")
    if summary.get("rejects"):
        _print_rejects(db, summary["run_id"])
    return _exit_code(summary)


# -- sql -----------------------------------------------------------------------------------
def cmd_sql(args: argparse.Namespace) -> int:
    cols, rows = run_sql(args.db, args.query, allow_files=args.allow_files)
    if not cols:
        return 0
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


# -- reparse -------------------------------------------------------------------------------
def cmd_reparse(args: argparse.Namespace) -> int:
    check_path(args.db, must_exist=True)
    kinds = [args.kind] if args.kind else ["pubmed", "pmc"]
    with _writing(args.db, "reparse") as db, prefect_run(args.verbose):
        from litmeta.flows.reparse import reparse

        summary = reparse(db=db, kinds=kinds, since=args.since, show_progress=sys.stderr.isatty())
    print(f"reparsed {summary['documents']} stored document(s) and {summary['files']} file(s)")
    for path in summary["files_not_reparsed"]:
        print(f"not reparsed: {path}: gone or changed since it was loaded", file=sys.stderr)
    return _finish(summary, db, "litmeta reparse")


# -- check ---------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 when the warehouse is clean, 1 with the problems listed."""
    from dataclasses import asdict

    from litmeta.warehouse.checks import check_warehouse

    problems, writer = check_warehouse(args.db)
    if args.format == "json":
        json.dump({"db": args.db, "clean": not problems, "writer": writer,
                   "problems": [asdict(p) for p in problems]}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif problems:
        for p in problems:
            print(f"problem: {p.line()}")
        print(f"{len(problems)} problem(s) in {args.db}")
    else:
        print(f"{args.db}: clean (keys, provenance, children, runs, views)"
              + (f"; a run is writing it now ({writer})" if writer else ""))
    return 1 if problems else 0


def cmd_sources(args: argparse.Namespace) -> int:
    """Per citation source, the edges around the seed (the seed at one end, and inside its network)."""
    from litmeta.warehouse.citation_sources import sources_report

    check_path(args.db, must_exist=True)
    report = sources_report(args.db, args.seed)
    if args.format == "json":
        json.dump(report, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    for scope, r in report["scopes"].items():
        where = "with the seed at one end" if scope == "seed" else "inside the seed's network"
        print(f"citation edges {where} ({r['edges']} distinct pairs):")
        print(f"  {'source':<8} {'edges':>8} {'only it':>8}")
        for name, v in r["sources"].items():
            print(f"  {name:<8} {v['edges']:>8} {v['only']:>8}")
        for pair, n in r["shared"].items():
            print(f"  shared {pair.replace('+', ' & ')}: {n}")
    return 0


# -- sandbox -------------------------------------------------------------------------------
def cmd_sandbox(args: argparse.Namespace) -> int:
    from litmeta.extractors.sandbox import run_sandbox

    snap = args.snapshot or BUNDLED_SNAPSHOT
    if not snap.is_dir():
        raise UsageError(f"--snapshot {snap}: not a directory (expected pubmed/, links.tsv, meta.json)")
    try:
        run_sandbox(snap, port=args.port, faults=args.faults, rate_limit=not args.no_rate_limit)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return 0


# -- network / refresh / ingest / search -------------------------------------------------------
def _reach(url: str, option: str = "--eutils-url / LITMETA_EUTILS_URL") -> None:
    """Fail fast (exit 3, naming the URL) when nothing listens at the E-utilities (or another service's) URL."""
    from litmeta.flows.client import preflight

    preflight(url, option=option)


def _finish(summary: dict, db: str, title: str) -> int:
    _print_summary(summary, title)
    if summary.get("rejects"):
        _print_rejects(db, summary["run_id"])
    return _exit_code(summary)


def _reach_services(args: argparse.Namespace, sources: list[str]) -> None:
    """Fail fast when iCite (if asked) or the PMC ID Converter cannot be reached either."""
    from litmeta.flows.client import service_url

    for name in (["icite"] if "icite" in sources else []) + ["idconv"]:
        _reach(service_url(name, getattr(args, f"{name}_url", None), args.eutils_url),
               f"--{name}-url / LITMETA_{name.upper()}_URL")


def cmd_network(args: argparse.Namespace) -> int:
    check_writable(check_path(args.db))
    _reach(args.eutils_url)
    _reach_services(args, args.sources)
    with _writing(args.db, "network") as db, prefect_run(args.verbose):
        from litmeta.flows.network import build_network

        summary = build_network(
            seed=args.seed, db=db, eutils_url=args.eutils_url, depth=args.depth, relations=tuple(args.relations),
            max_nodes=args.max_nodes, similar_top=args.similar_top, email=args.email, tool=args.tool,
            record_snapshot=args.record_snapshot, sources=tuple(args.sources), icite_url=args.icite_url,
            idconv_url=args.idconv_url, fulltext_links=not args.no_fulltext_links,
        )
        print_network_summary(db, args.seed, summary)
        return _finish(summary, db, f"litmeta network {args.seed}")


def cmd_refresh(args: argparse.Namespace) -> int:
    with _writing(args.db, "refresh") as db:
        if not seeds_to_refresh(db, args.seed):
            raise UsageError(f"no tracked seed{' ' + str(args.seed) if args.seed else 's'} in {db}; "
                             "register one with 'litmeta network SEED'")
        _reach(args.eutils_url)
        _reach_services(args, ["icite"])
        with prefect_run(args.verbose):
            from litmeta.flows.network import refresh_seeds

            summary = refresh_seeds(db=db, eutils_url=args.eutils_url, seed=args.seed, email=args.email,
                                    tool=args.tool, record_snapshot=args.record_snapshot, icite_url=args.icite_url,
                                    idconv_url=args.idconv_url, notify=_notify(args))
        for seed, done in summary.get("seeds", {}).items():
            print_network_summary(db, int(seed), summary)
            if "digest" in done:
                print(f"Digest of {seed}: {'something new' if done['digest']['news'] else 'nothing new'} "
                      f"(litmeta digest {seed}); webhook: {done['digest']['notified']}")
        return _finish(summary, db, "litmeta refresh")


def cmd_ingest(args: argparse.Namespace) -> int:
    check_writable(check_path(args.db))
    _reach(args.eutils_url)
    with _writing(args.db, "ingest") as db, prefect_run(args.verbose):
        from litmeta.flows.ingest import ingest_pmids

        summary = ingest_pmids(pmids=args.pmids, db=db, eutils_url=args.eutils_url, pmc=args.pmc,
                               email=args.email, tool=args.tool, record_snapshot=args.record_snapshot)
        if summary.get("not_found"):
            print(f"not found at NCBI: {summary['not_found']} PMID(s) (see ingest_runs.counts)", file=sys.stderr)
        return _finish(summary, db, f"litmeta ingest: {len(args.pmids)} PMID(s)")


def cmd_search(args: argparse.Namespace) -> int:
    if not args.query.strip():
        raise UsageError("search: the query is empty")
    check_writable(check_path(args.db))
    _reach(args.eutils_url)
    with _writing(args.db, "search") as db, prefect_run(args.verbose):
        from litmeta.flows.ingest import search_ingest

        summary = search_ingest(query=args.query, db=db, eutils_url=args.eutils_url, mindate=args.mindate,
                                maxdate=args.maxdate, max_records=args.max, save=args.save, email=args.email,
                                tool=args.tool, record_snapshot=args.record_snapshot)
        print(f"search matched {summary.get('search_count', 0)} record(s); ingested {summary.get('search_ids', 0)}")
        return _finish(summary, db, "litmeta search")


# -- demo ----------------------------------------------------------------------------------
def print_network_summary(db: str, seed: int, summary: dict) -> None:
    """Seed title, ids and grants; members per relation and hop; what is new since the previous run."""
    from rich.console import Console
    from rich.markup import escape

    c = Console()
    ns = network_summary(db, seed, summary["run_id"])
    if ns.article:
        a = ns.article
        c.print(f"[bold]Seed {seed}[/bold]: {a['title']}")
        c.print(f"  {a['journal'] or ''} {a['year'] or ''}  DOI {a['doi'] or '-'}  PMCID {a['pmcid'] or '-'}  "
                f"grants {ns.grants}")
    else:
        c.print(f"[bold]Seed {seed}[/bold]: record not in the warehouse (not found at the E-utilities server)")
    c.print("Members by hop and relation:")
    for hop, via, n in ns.members_by_hop_via:
        c.print(f"  hop {hop}  {via:<9} {n}")
    since = f"since the previous run ({ns.previous_run:%Y-%m-%d %H:%M:%S})" if ns.previous_run else "(first run)"
    c.print(f"New {since}: {len(ns.new_members)} member(s), {ns.new_edges} citation edge(s)")
    for pmid, via, title in ns.new_members:
        c.print(f"  + {pmid} ({via}) {escape((title or '')[:90])}")


def cmd_demo(args: argparse.Namespace) -> int:
    from litmeta.extractors.sandbox import SandboxServer

    snap = BUNDLED_SNAPSHOT
    with _writing(args.db, "demo") as db, prefect_run(args.verbose), SandboxServer(snap, port=0) as sb:
        from litmeta.flows.network import build_network

        print(f"sandbox: {sb.base_url} serving the bundled snapshot of PMID 39047240 ({snap})")
        summary = build_network(seed=39047240, db=db, eutils_url=sb.base_url, depth=args.depth,
                                relations=("refs", "cited_by", "similar"), max_nodes=None, similar_top=5,
                                email=args.email, tool=args.tool, icite_url=sb.icite_url, idconv_url=sb.idconv_url)
        print_network_summary(db, 39047240, summary)
    print(f"warehouse: {Path(db).resolve()}  (try: litmeta --db {db} sql \"SELECT * FROM seed_network\")")
    return _exit_code(summary)


# -- serve / export ------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    from prefect.client.schemas.schedules import CronSchedule

    for flag, cron in (("--cron", args.cron), ("--mirror-cron", args.mirror_cron)):
        try:
            CronSchedule(cron=cron)
        except Exception:
            raise UsageError(f"{flag} {cron!r}: not a cron expression (e.g. '0 3 * * *' for 03:00 daily)") from None
    from litmeta.flows.serve import run_serve

    db = ensure_warehouse(args.db)
    mirror = None
    if args.mirror:
        downloads, shards = _mirror_dirs(args)
        mirror = {"cron": args.mirror_cron, "ftp_url": args.ftp_url, "downloads": str(downloads),
                  "shards": str(shards), "workers": args.workers, "dask_address": args.dask_address}
    ids = run_serve(db, args.eutils_url, args.cron, args.email, args.tool, args.register_only, mirror,
                    notify=_notify(args))
    if args.register_only:
        print(f"registered {len(ids)} deployment(s) with schedule {args.cron!r}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from litmeta.warehouse.export import FORMATS, export_warehouse

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UsageError(f"--format {args.format!r}: choose from {','.join(FORMATS)}")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a directory")
    if args.since_run and (args.seed is not None or set(formats) - {"parquet", "csv"}):
        raise UsageError("--since-run exports tables (parquet, csv) incrementally; leave out --seed and graphml/png")
    for path in export_warehouse(args.db, args.out, formats, args.seed, since_run=args.since_run,
                                 png_colour=args.png_colour, png_layout=args.png_layout):
        print(path)
    return 0


# -- mirror --------------------------------------------------------------------------------
def _mirror_dirs(args: argparse.Namespace, db: str | None = None) -> tuple[Path, Path]:
    base = Path(str(Path(db or args.db).expanduser().resolve()) + ".mirror")
    return (getattr(args, "downloads", None) or base / "files"), (getattr(args, "shards", None) or base / "shards")


def cmd_mirror(args: argparse.Namespace) -> int:
    from litmeta.flows.client import Unreachable, preflight

    ftp_url = args.ftp_url if args.ftp_url.endswith("/") else args.ftp_url + "/"
    if not ftp_url.startswith(("http://", "https://")):
        raise UsageError(f"--ftp-url {args.ftp_url!r}: not an http(s) URL; e.g. https://ftp.ncbi.nlm.nih.gov/pubmed/")
    baseline, updates = (args.baseline, args.updates) if (args.baseline or args.updates) else (True, True)
    downloads, shards = _mirror_dirs(args)
    try:
        preflight(ftp_url)
    except Unreachable:
        raise Unreachable(f"cannot reach {ftp_url}; check --ftp-url / LITMETA_FTP_URL and the network, "
                          "then re-run the same command") from None
    if args.status:
        return _mirror_status(args.db, ftp_url, baseline, updates, downloads, shards, args.tool, args.email)
    target = check_writable(check_path(args.db))
    if args.rebuild:  # a fresh file beside the warehouse, swapped in once complete
        target = Path(str(target) + ".rebuild")
        downloads, shards = _mirror_dirs(args, str(target))
    with _writing(str(target), "mirror") as db, prefect_run(args.verbose):
        from litmeta.flows.mirror import mirror, task_runner

        flow = mirror.with_options(task_runner=task_runner(args.workers, args.dask_address))
        summary = flow(db=db, ftp_url=ftp_url, baseline=baseline, updates=updates, downloads=str(downloads),
                       shards=str(shards), max_files=args.max_files, email=args.email, tool=args.tool,
                       show_progress=sys.stderr.isatty())
        print(f"mirrored: {summary['files_listed']} file(s) listed, {summary['files_merged']} merged")
        code = _finish(summary, db, "litmeta mirror")
    if args.rebuild:
        if summary.get("files_pending"):
            print(f"litmeta mirror --rebuild: {summary['files_pending']} file(s) still to do; {target} is not "
                  f"swapped in yet: re-run the same command to finish", file=sys.stderr)
            return 3
        swap_in(str(target), args.db)
        print(f"litmeta mirror --rebuild: {target} is complete and is now {args.db}")
    return code


def _mirror_status(db: str, ftp_url: str, baseline: bool, updates: bool, downloads: Path, shards: Path,
                   tool: str, email: str | None) -> int:
    """Print each listed file that is not loaded, and what it waits for; nothing is written."""
    from litmeta.extractors.ftp import FOLDERS, PubmedFtp
    from litmeta.flows.mirror import plan
    from litmeta.warehouse.mirror import mirrored_files

    client = PubmedFtp(ftp_url, tool=tool, email=email)
    listed = sorted(f for folder, on in zip(FOLDERS, (baseline, updates), strict=True) if on
                    for f in client.listing(folder))
    state = mirrored_files(db, read_only=True) if Path(db).exists() else {}
    work = plan(client, listed, state, downloads, shards)
    pending = [w for w in work if w.todo]
    for w in pending:
        print(f"pending: {w.file.folder}/{w.file.name}: {w.todo}")
    print(f"{len(listed)} file(s) listed at {ftp_url}: {len(listed) - len(pending)} loaded, {len(pending)} pending")
    return 0


def _notify(args: argparse.Namespace) -> bool:
    """--notify was given (the URL is in the environment now), or LITMETA_NOTIFY_URL is set."""
    import os

    from litmeta.extractors.webhook import NOTIFY_URL_ENV

    return bool(getattr(args, "notify", None) or os.environ.get(NOTIFY_URL_ENV))


# -- digest / report -------------------------------------------------------------------------
def cmd_digest(args: argparse.Namespace) -> int:
    """Print the digest; with --notify, post it too (once per observation and webhook)."""
    import os

    from litmeta.extractors.webhook import NOTIFY_URL_ENV
    from litmeta.warehouse.digest import digest_of

    digest = digest_of(args.db, args.seed, args.since)
    if args.format == "json":
        json.dump(digest.to_json(), sys.stdout, indent=1, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    elif args.format == "markdown":
        sys.stdout.write(digest.markdown())
    else:
        print(digest.text())
    if args.notify:
        from litmeta.flows.digest import notify_digest

        with _writing(args.db, "digest") as db:
            said = notify_digest(db, digest, os.environ.get(NOTIFY_URL_ENV), None)
        print(f"litmeta digest: webhook {said}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from litmeta.warehouse.report import write_report

    path, drawn, total = write_report(args.db, args.seed, args.out, top=args.top)
    print(f"{path}: {drawn} of {total} article(s) drawn" + (" (top by PageRank)" if drawn < total else ""))
    return 0
