"""The `litmeta` command line: one verb per flow, global options with environment variables.

Exit codes (`EXIT_CODES`, mapped from the error classes of `litmeta.errors` by `exit_code`): 0 done,
1 done with rejects (listed), 2 bad usage or bad input (nothing written), 3 could not finish for a
reason outside the input (re-run to finish), 4 internal error (traceback in a named log file).
Secrets: `--api-key` is handed to the E-utilities client through the environment (NCBI_API_KEY),
never as a flow parameter, so it reaches no Prefect run record, artifact or warehouse row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import signal
import sys
import textwrap
import threading
from pathlib import Path

from litmeta.errors import RERUN_HINT, CouldNotFinish, UsageError
from litmeta.extractors.entrez import DEFAULT_BASE_URL as DEFAULT_EUTILS
from litmeta.extractors.entrez import RELATION_LINKNAMES
from litmeta.extractors.ftp import DEFAULT_FTP_URL as DEFAULT_FTP

RELATIONS = tuple(RELATION_LINKNAMES)
CITATION_SOURCES = ("elink", "icite")
PMID_RE = re.compile(r"^[1-9][0-9]{0,9}$")
EXIT_OK, EXIT_REJECTS, EXIT_USAGE, EXIT_COULD_NOT_FINISH, EXIT_INTERNAL = 0, 1, 2, 3, 4
EXIT_CODES = """exit codes:
  0  done
  1  done, with rejects (listed; also in the rejects table)
  2  bad usage or bad input: nothing written; the message names it
  3  could not finish (a service unreachable or still failing, the warehouse busy, a worker killed):
     what was loaded stays; re-run the same command later to finish
  4  internal error: the message names the log file holding the traceback"""
LOG_DIR_ENV = "LITMETA_LOG_DIR"
RUN_VERBS = frozenset({"load", "ingest", "network", "refresh", "search", "demo", "serve", "reparse", "mirror"})  # verbs that run Prefect flows


def pmid(value: str) -> int:
    v = value.strip()
    if not PMID_RE.match(v):
        raise argparse.ArgumentTypeError(f"{value!r} is not a PMID (a positive whole number such as 39047240)")
    return int(v)


def relations(value: str) -> list[str]:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    bad = [p for p in parts if p not in RELATIONS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(
            f"unknown relation {', '.join(bad) or repr(value)}; choose from {','.join(RELATIONS)}")
    return parts


def sources(value: str) -> list[str]:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    bad = [p for p in parts if p not in CITATION_SOURCES]
    if bad or not parts:
        raise argparse.ArgumentTypeError(
            f"unknown source {', '.join(bad) or repr(value)}; choose from {','.join(CITATION_SOURCES)}")
    return parts


def date_arg(value: str) -> dt.datetime:
    try:
        return dt.datetime.combine(dt.date.fromisoformat(value.strip()), dt.time())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD, e.g. 2026-11-01)") from None


def since_arg(value: str) -> str | dt.datetime:
    """--since of digest: 'last' (the previous observation) or a date."""
    return "last" if value.strip() == "last" else date_arg(value)


def positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return int(value)


def _epilog(example: str) -> str:
    return "example:\n" + textwrap.indent(example.strip(), "  ") + "\n\n" + EXIT_CODES


def _add_globals(p: argparse.ArgumentParser, defaults: bool) -> None:
    """Global options; accepted before or after the verb (after it, they override)."""

    def d(value):
        return value if defaults else argparse.SUPPRESS

    p.add_argument("--db", default=d(os.environ.get("LITMETA_DB", "./litmeta.duckdb")),
                   help="warehouse file (env LITMETA_DB; default ./litmeta.duckdb)")
    p.add_argument("--eutils-url", default=d(os.environ.get("LITMETA_EUTILS_URL", DEFAULT_EUTILS)),
                   help="E-utilities base URL (env LITMETA_EUTILS_URL; default NCBI)")
    p.add_argument("--icite-url", default=d(os.environ.get("LITMETA_ICITE_URL")),
                   help="NIH iCite API base URL (env LITMETA_ICITE_URL; default iCite's, or the sandbox's beside "
                        "a non-NCBI --eutils-url)")
    p.add_argument("--idconv-url", default=d(os.environ.get("LITMETA_IDCONV_URL")),
                   help="PMC ID Converter URL (env LITMETA_IDCONV_URL; default NCBI's, or the sandbox's beside "
                        "a non-NCBI --eutils-url)")
    p.add_argument("--api-key", default=d(None), help="NCBI API key (env NCBI_API_KEY): 10 requests/s instead of 3")
    p.add_argument("--email", default=d(os.environ.get("NCBI_EMAIL")), help="contact e-mail sent to NCBI (env NCBI_EMAIL)")
    p.add_argument("--tool", default=d(os.environ.get("LITMETA_TOOL", "litmeta")), help="tool name sent to NCBI")
    p.add_argument("--max-tries", type=positive, metavar="N", default=d(None),
                   help="tries per HTTP request before a run gives up (env LITMETA_MAX_TRIES; default 10)")
    p.add_argument("--record-snapshot", metavar="DIR", default=d(None),
                   help="write everything fetched as a snapshot directory the sandbox can serve back")
    p.add_argument("--ftp-url", default=d(os.environ.get("LITMETA_FTP_URL", DEFAULT_FTP)),
                   help="PubMed FTP tree for 'mirror' (env LITMETA_FTP_URL; default NCBI's)")
    p.add_argument("-v", "--verbose", action="store_true", default=d(False), help="show Prefect's run logs")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="litmeta",
        description="PubMed/PMC metadata into a DuckDB warehouse; citation networks around seed articles.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_epilog("litmeta demo                      # offline: bundled seed snapshot -> ./litmeta.duckdb\n"
                       "litmeta network 39047240 --depth 1\n"
                       "litmeta sql 'SELECT count(*) FROM articles'"),
    )
    _add_globals(p, defaults=True)
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, help_: str, example: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_, epilog=_epilog(example),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_globals(sp, defaults=False)
        return sp

    s = verb("ingest", "fetch PubMed records (and PMC full text with --pmc) and load them",
             "litmeta ingest 39047240 39321136 --pmc\nlitmeta ingest --from-file pmids.txt")
    s.add_argument("pmids", nargs="*", type=pmid, metavar="PMID")
    s.add_argument("--from-file", type=Path, help="file with one PMID per line ('#' starts a comment)")
    s.add_argument("--pmc", action="store_true", help="also fetch PMC JATS where a PMCID exists")

    s = verb("network", "register a seed and build/refresh its citation network",
             "litmeta network 39047240 --depth 2 --relations refs,cited_by,similar --max-nodes 2000 --similar-top 5")
    s.add_argument("seed", type=pmid, metavar="SEED")
    s.add_argument("--depth", type=positive, default=1, help="hops from the seed (default 1)")
    s.add_argument("--relations", type=relations, default=list(RELATIONS),
                   help="comma list of refs,cited_by,similar (default all)")
    s.add_argument("--max-nodes", type=positive, default=None, help="cap on members (closest hop first)")
    s.add_argument("--similar-top", type=positive, default=5, help="similar articles taken per member (default 5)")
    s.add_argument("--sources", type=sources, default=list(CITATION_SOURCES),
                   help="comma list of citation sources to expand over: elink,icite (default both)")
    s.add_argument("--no-fulltext-links", action="store_true",
                   help="do not fetch the members' LinkOut links (elink llinks) into full_text_links")

    s = verb("sources", "per citation source, the edges it reports around a seed, those only it reports, the overlap",
             "litmeta sources 39047240\nlitmeta sources 39047240 --format json")
    s.add_argument("seed", type=pmid, metavar="SEED")
    s.add_argument("--format", choices=("table", "json"), default="table")

    s = verb("refresh", "re-observe every tracked seed (the scheduled job)", "litmeta refresh\nlitmeta refresh --seed 39047240")
    s.add_argument("--seed", type=pmid, default=None, help="only this seed")
    s.add_argument("--notify", metavar="URL", default=None,
                   help="POST each seed's JSON digest to this webhook when the refresh found something new "
                        "(env LITMETA_NOTIFY_URL; Slack-compatible 'text' field)")

    s = verb("search", "esearch PubMed (history server) and ingest the hits; sets over 10,000 are split by date",
             "litmeta search 'blinatumomab[tiab] AND leukemia' --mindate 2020 --maxdate 2024 --max 500")
    s.add_argument("query")
    s.add_argument("--mindate", default=None, help="YYYY, YYYY/MM or YYYY/MM/DD (entrez date)")
    s.add_argument("--maxdate", default=None)
    s.add_argument("--max", type=positive, default=None, help="ingest at most N hits")
    s.add_argument("--save", action="store_true", help="save the search so 'litmeta serve' schedules it")

    s = verb("load", "load local PubMed XML (baseline/update, .xml/.xml.gz; DeleteCitation honoured) or PMC JATS",
             "litmeta load pubmed25n0001.xml.gz pubmed25n1275.xml.gz\nlitmeta load article.nxml")
    s.add_argument("files", nargs="+", type=Path, metavar="FILE")
    s.add_argument("--force", action="store_true",
                   help="read files again that were loaded before and have not changed (same size and mtime)")

    s = verb("mirror", "PubMed's baseline and update files from the FTP site, md5-checked, parsed on Dask, merged",
             "litmeta mirror --baseline --updates --workers 2\nlitmeta mirror --updates --dask-address tcp://10.0.0.5:8786"
             "\nlitmeta mirror --status")
    s.add_argument("--baseline", action="store_true", help="the annual baseline files (default: both, when neither is given)")
    s.add_argument("--updates", action="store_true", help="the daily update files")
    engine = s.add_mutually_exclusive_group()
    engine.add_argument("--workers", type=positive, default=None,
                        help="worker processes of the local Dask cluster (default one per core)")
    engine.add_argument("--dask-address", default=None, metavar="ADDR",
                        help="an existing Dask scheduler, e.g. tcp://HOST:8786 (docs/scale.md)")
    s.add_argument("--shards", type=Path, default=None, metavar="DIR",
                   help="Parquet shards, on a path every worker sees (default: DB.mirror/shards)")
    s.add_argument("--downloads", type=Path, default=None, metavar="DIR",
                   help="downloaded files (default: DB.mirror/files)")
    s.add_argument("--max-files", type=positive, default=None, metavar="N", help="do at most N files this run")
    s.add_argument("--rebuild", action="store_true",
                   help="load into a fresh file DB.rebuild and swap it in for DB when complete (a new baseline year)")
    s.add_argument("--status", action="store_true", help="print what is pending and exit (no download, no writes)")

    s = verb("sql", "read-only SQL on the warehouse (and nothing else: no files, no configuration changes)",
             "litmeta sql \"SELECT agency, count(*) n FROM grants GROUP BY 1 ORDER BY n DESC LIMIT 5\" --format csv")
    s.add_argument("query")
    s.add_argument("--format", choices=("table", "csv", "json"), default="table")
    s.add_argument("--allow-files", action="store_true",
                   help="let the query use DuckDB's file functions (read_csv, read_parquet, COPY ... TO, ...)")

    s = verb("reparse", "derive every article table again from the stored documents and files, with no HTTP request",
             "litmeta reparse\nlitmeta reparse --kind pubmed --since 2026-11-01")
    s.add_argument("--kind", choices=("pubmed", "pmc"), default=None, help="only PubMed or only PMC records (default both)")
    s.add_argument("--since", type=date_arg, default=None, metavar="DATE",
                   help="only documents fetched, and files loaded, on or after DATE (YYYY-MM-DD)")

    s = verb("check", "read-only integrity report: duplicate keys, orphan provenance, runs left running, broken views",
             "litmeta check\nlitmeta check --format json")
    s.add_argument("--format", choices=("table", "json"), default="table")

    s = verb("export", "export tables, or one seed's network, for downstream tools",
             "litmeta export --format parquet --out exports/\nlitmeta export --format graphml --out net/ --seed 39047240")
    s.add_argument("--format", default="parquet", help="comma list of parquet,csv,graphml,png")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--seed", type=pmid, default=None)
    s.add_argument("--since-run", metavar="RUN_ID", default=None,
                   help="parquet/csv of tables: only rows written after that run (incremental downstream loads)")
    s.add_argument("--png-colour", choices=("relation", "community"), default="relation",
                   help="PNG: colour articles by how they were reached, or by citation community")
    s.add_argument("--png-layout", choices=("spring", "year"), default="spring",
                   help="PNG: a force layout, or x = publication year")

    s = verb("digest", "what changed around a seed between two observations (text, json, markdown; webhook)",
             "litmeta digest 39047240\nlitmeta digest 39047240 --since 2026-11-01 --format markdown\n"
             "litmeta digest 39047240 --format json --notify https://hooks.slack.com/services/...")
    s.add_argument("seed", type=pmid, metavar="SEED")
    s.add_argument("--since", type=since_arg, default="last", metavar="DATE|last",
                   help="compare with the last observation on or before DATE (YYYY-MM-DD), or with the previous "
                        "observation ('last', the default)")
    s.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    s.add_argument("--notify", metavar="URL", default=None,
                   help="also POST the JSON digest to this webhook, unless nothing is new or it was sent there before")

    s = verb("report", "one self-contained HTML page of a seed's network: map, timeline, growth, prior/derivative works",
             "litmeta report 39047240 --out report.html")
    s.add_argument("seed", type=pmid, metavar="SEED")
    s.add_argument("--out", type=Path, required=True, metavar="FILE.html")
    s.add_argument("--top", type=positive, default=None, metavar="N",
                   help="draw at most N articles, the top by PageRank (default 500)")

    s = verb("serve", "run Prefect deployments with schedules (refresh daily by default)",
             "litmeta serve --cron '0 3 * * *'")
    s.add_argument("--cron", default="0 3 * * *", help="cron schedule for refresh and saved searches (default daily 03:00)")
    s.add_argument("--mirror", action="store_true",
                   help="also schedule 'litmeta mirror --updates' (PubMed's update files, docs/scale.md)")
    s.add_argument("--mirror-cron", default="0 5 * * *", help="its cron schedule (default daily 05:00)")
    s.add_argument("--workers", type=positive, default=None, help="for --mirror: local Dask worker processes")
    s.add_argument("--dask-address", default=None, help="for --mirror: an existing Dask scheduler")
    s.add_argument("--notify", metavar="URL", default=None,
                   help="scheduled refreshes POST each seed's digest to this webhook when something is new")
    s.add_argument("--register-only", action="store_true",
                   help="create the deployments and their schedules, then exit (a worker or another serve runs them)")

    s = verb("sandbox", "E-utilities-compatible server on 127.0.0.1, fed from a snapshot directory",
             "litmeta sandbox --snapshot snapshots/39047240 --port 8765 --faults 429=0.1,500=0.05,seed=7")
    s.add_argument("--snapshot", type=Path, default=None, help="snapshot directory (default: the bundled seed snapshot)")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--faults", default=None, help="e.g. 429=0.1,500=0.05,502=0.05,truncate=0.05,error200=0.05,reset=0.02,slow=0.05,seed=7")
    s.add_argument("--no-rate-limit", action="store_true", help="do not answer 429 above 3 requests/s")

    s = verb("demo", "offline main job: sandbox on the bundled seed snapshot, network 39047240, summary",
             "litmeta demo\nlitmeta demo --db /tmp/demo.duckdb")
    s.add_argument("--depth", type=positive, default=1)
    return p


def _configure_env(args: argparse.Namespace) -> None:
    if args.api_key:
        os.environ["NCBI_API_KEY"] = args.api_key
    args.api_key = None  # from here on only the environment holds it
    if args.max_tries:
        os.environ["LITMETA_MAX_TRIES"] = str(args.max_tries)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # offline: no telemetry attempts
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if not args.verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_LEVEL", "WARNING")
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # Dask's config, read by its workers too


def _check_url(url: str, option: str = "--eutils-url") -> str:
    if not re.match(r"^https?://[^\s/]+", url):
        raise UsageError(f"{option} {url!r}: not an http(s) URL; e.g. {DEFAULT_EUTILS}")
    return url if url.endswith("/") else url + "/"


def _read_pmid_file(path: Path) -> list[int]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"--from-file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--from-file {path}: not a UTF-8 text file of PMIDs") from None
    out = []
    for n, line in enumerate(lines, 1):
        v = line.split("#", 1)[0].strip()
        if not v:
            continue
        if not PMID_RE.match(v):
            raise UsageError(f"--from-file {path} line {n}: {v[:40]!r} is not a PMID")
        out.append(int(v))
    return out


def run(args: argparse.Namespace) -> int:
    from litmeta.flows import commands

    verb = args.verb
    if getattr(args, "notify", None):
        from litmeta.extractors.webhook import NOTIFY_URL_ENV, check_url

        os.environ[NOTIFY_URL_ENV] = check_url(args.notify)
        args.notify = True  # from here on only the environment holds the URL (a secret)
    if verb == "serve":
        from litmeta.flows.prefect_runtime import load_prefect, quiet_run_errors

        load_prefect()  # invalid Prefect settings: exit 2 naming them (the other run verbs: PrefectRun.ready)
        if not args.verbose:
            quiet_run_errors()  # the other run verbs do it in prefect_run, after their input checks
    if verb in {"ingest", "network", "refresh", "search", "demo"}:
        args.eutils_url = _check_url(args.eutils_url)
        for name in ("icite_url", "idconv_url"):
            if getattr(args, name, None):
                setattr(args, name, _check_url(getattr(args, name), "--" + name.replace("_", "-")))
    if verb == "ingest":
        ids = list(args.pmids) + (_read_pmid_file(args.from_file) if args.from_file else [])
        if not ids:
            raise UsageError("ingest: give PMIDs or --from-file FILE")
        args.pmids = list(dict.fromkeys(ids))
    return getattr(commands, f"cmd_{verb}")(args)


def exit_code(exc: BaseException) -> int:
    """The exit code of a failure: 3 could not finish, 2 bad usage or input, 4 anything else (a bug)."""
    from concurrent.futures.process import BrokenProcessPool

    if isinstance(exc, (CouldNotFinish, BrokenProcessPool)):
        return EXIT_COULD_NOT_FINISH
    if isinstance(exc, UsageError):
        return EXIT_USAGE
    return EXIT_INTERNAL


def _message(exc: BaseException, code: int, args: argparse.Namespace) -> str:
    """The one line printed for a failure; for a bug, after its traceback went to a log file."""
    from litmeta.extractors.errors import EntrezError, EntrezPermanentError

    text = str(exc) or type(exc).__name__
    if isinstance(exc, EntrezPermanentError):
        return f"E-utilities refused the request: {text}; check the PMIDs/query and --eutils-url"
    if isinstance(exc, EntrezError):
        text = f"E-utilities at {getattr(args, 'eutils_url', '')}: {text}"
    if code == EXIT_COULD_NOT_FINISH:
        return text if "re-run" in text else f"{text}; {RERUN_HINT}"
    if code == EXIT_USAGE:
        return text
    log = internal_error_log(exc, args)
    return (f"internal error ({type(exc).__name__}: {text.splitlines()[0][:200]}); nothing loaded before it is "
            f"lost; the traceback is in {log}; please report it")


def internal_error_log(exc: BaseException, args: argparse.Namespace) -> Path:
    """Write ``exc``'s traceback to a new file in LITMETA_LOG_DIR (default: the warehouse's folder,
    else the temporary folder); returns its path."""
    import datetime as dt
    import tempfile
    import traceback

    name = f"litmeta-error-{dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
    text = (f"litmeta {args.verb}: {' '.join(sys.argv[1:]) if sys.argv else ''}\n\n"
            + "".join(traceback.format_exception(exc)))
    for folder in (os.environ.get(LOG_DIR_ENV), str(Path(getattr(args, "db", ".")).expanduser().parent),
                   tempfile.gettempdir()):
        if not folder:
            continue
        path = Path(folder) / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return path.resolve()
        except OSError:
            continue
    raise exc


def main(argv: list[str] | None = None) -> int:
    """The `litmeta` command: parse ``argv`` (default: the command line), run the verb, return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_env(args)
    previous = _on_interrupt(args.verb) if args.verb in RUN_VERBS else None
    try:
        return run(args)
    except Exception as exc:  # noqa: BLE001 - every failure ends in one line and its exit code
        code = exit_code(exc)
        print(f"litmeta {args.verb}: {_message(exc, code, args)}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        _say_interrupted(args.verb)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


INTERRUPT_GRACE_S = 5.0
_REPORTED = threading.Event()  # the interruption message was printed


def _say_interrupted(verb: str) -> None:
    """Print the interruption line, once, on a line of its own: Prefect may have left its line
    unfinished (its API log sender writes a failure to reach the stopped server without a newline)."""
    if not _REPORTED.is_set():
        _REPORTED.set()
        print(f"\nlitmeta {verb}: interrupted; re-run the same command to finish (loads are idempotent)",
              file=sys.stderr, flush=True)


def _on_interrupt(verb: str):
    """Ctrl-C: stop the run (KeyboardInterrupt), and leave within INTERRUPT_GRACE_S seconds whatever happens.

    The terminal's SIGINT also stops Prefect's temporary server (same process group), after which
    Prefect keeps trying to report the crashed run to it; the run's own state is already written
    (ingest_runs says 'interrupted', committed batches stay), so litmeta exits instead of waiting.
    A second Ctrl-C exits at once. Returns the previous handler (restored by the caller).
    """
    def hard_exit() -> None:
        _say_interrupted(verb)
        os._exit(130)

    def handler(signum, frame) -> None:
        signal.signal(signal.SIGINT, lambda *_: hard_exit())
        timer = threading.Timer(INTERRUPT_GRACE_S, hard_exit)
        timer.daemon = True
        timer.start()
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, handler)


if __name__ == "__main__":
    sys.exit(main())
