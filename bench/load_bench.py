"""Load benchmark (issue 2, acceptance item 4): litmeta load against a bare lxml walk and pubmed_parser.

A benchmark, not a test. Run from the repository root:

    .venv/bin/python bench/load_bench.py [--records 30000] [--corpus ../shared/corpus/pubmed]
                                         [--out bench/out] [--skip-peer] [--repeat 1]
                                         [--only a,b,c',c] [--repo DIR --label NAME] [--prefect-api URL]

(bench/README.md explains each measurement and option, and has the figures of a run.)

1. Writes (or reuses) a PubmedArticleSet of ``--records`` records, the size of one baseline file, by
   cycling the real <PubmedArticle> records of the corpus with renumbered PMIDs
   (MedlineCitation/PMID and the PubmedData ArticleIdList pubmed id), gzip-compressed like the
   baseline files (pubmed_parser only opens gzip files, and all measurements use the same file).
2. Measures on that file, each in a fresh Python process (so imports, memory and GC state of one
   measurement do not leak into the next):
     (a)  the bare lxml iterparse walk: iterparse(tag="PubmedArticle") + clear + drop previous siblings
          (over gzip.open(path): lxml's iterparse does not decompress a path itself);
     (b)  pubmed_parser.parse_medline_xml parse-only, with defaults (b1) and with
          year_info_only=False, author_list=True, reference_list=True (b2);
     (c)  ``litmeta --db bench/out/bench.duckdb load FILE`` end to end, as a subprocess, with its peak RSS;
     (c') flows.pipeline.load_file in-process into a fresh warehouse (no CLI, no Prefect).
3. Prints records/s, the ratios against the targets and the machine; writes bench/out/load_bench.json.
   ``--repeat N``: N rounds of every measurement, the fastest of each kept, (c)/(b) also per round.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATOR_VERSION = 2  # bump when the generated file would change
PMID_BASE = 90_000_000  # renumbered PMIDs: PMID_BASE + 1 .. PMID_BASE + records (no real PMID is that high yet)
SENTINEL = "__LITMETA_BENCH_PMID__"
DOCTYPE = ('<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
           '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">')
POLL_S = 0.05

TARGET_PEER_RATIO = 1.5  # (c) records/s >= 1.5 x (b) records/s
TARGET_WALK_RATIO = 3.0  # (c) time <= 3 x (a) time
TARGET_RSS = 1 << 30  # peak RSS of (c) < 1 GiB


# -- 1. the benchmark file -----------------------------------------------------------------------
def _hardened_parser():
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.iterdir() if p.is_file() and (p.name.endswith(".xml") or p.name.endswith(".xml.gz")))


def load_templates(corpus: Path) -> tuple[list[list[bytes]], dict]:
    """Each distinct PubmedArticle of the corpus, serialised and split at its PMID occurrences.

    Distinct = first occurrence of each PMID (the same record appears in several source files).
    """
    from lxml import etree

    templates: list[list[bytes]] = []
    seen: set[str] = set()
    info = {"files": 0, "files_skipped": [], "elements": 0, "distinct": 0, "skipped_no_pmid": 0}
    for path in corpus_files(corpus):
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            root = etree.fromstring(data, _hardened_parser())
        except Exception as exc:  # noqa: BLE001 - skip what does not parse, say so
            info["files_skipped"].append(f"{path.name}: {type(exc).__name__}: {str(exc)[:100]}")
            continue
        info["files"] += 1
        for art in root.iter("PubmedArticle"):
            info["elements"] += 1
            pmid_el = art.find("MedlineCitation/PMID")
            pmid = (pmid_el.text or "").strip() if pmid_el is not None else ""
            if not pmid:
                info["skipped_no_pmid"] += 1
                continue
            if pmid in seen:
                continue
            seen.add(pmid)
            pmid_el.text = SENTINEL
            for aid in art.iterfind("PubmedData/ArticleIdList/ArticleId"):
                if aid.get("IdType") == "pubmed":
                    aid.text = SENTINEL
            xml = etree.tostring(art, encoding="UTF-8", with_tail=False).decode("utf-8")
            if xml.startswith("<?xml"):
                xml = xml.split("?>", 1)[1].lstrip()
            templates.append([part.encode("utf-8") for part in xml.split(SENTINEL)])
    info["distinct"] = len(templates)
    return templates, info


def _fingerprint(records: int, corpus: Path) -> dict:
    files = corpus_files(corpus)
    return {
        "generator_version": GENERATOR_VERSION,
        "records": records,
        "pmid_base": PMID_BASE,
        "corpus": str(corpus.resolve()),
        "corpus_files": [[p.name, p.stat().st_size, int(p.stat().st_mtime)] for p in files],
    }


def build_file(records: int, corpus: Path, out: Path) -> tuple[Path, dict]:
    """Write (or reuse) the benchmark file; returns its path and a description."""
    path = out / f"pubmed_bench_{records}.xml.gz"
    meta_path = path.with_name(path.name + ".json")
    fp = _fingerprint(records, corpus)
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fp and meta.get("gz_bytes") == path.stat().st_size:
            meta["cached"] = True
            return path, meta
    started = time.perf_counter()
    templates, info = load_templates(corpus)
    if not templates:
        raise SystemExit(f"no PubmedArticle records found in {corpus}")
    tmp = path.with_name(path.name + ".part")
    raw_bytes = 0
    with gzip.open(tmp, "wb", compresslevel=6) as gz:
        head = f'<?xml version="1.0" encoding="UTF-8"?>\n{DOCTYPE}\n<PubmedArticleSet>\n'.encode()
        gz.write(head)
        raw_bytes += len(head)
        buf: list[bytes] = []
        for i in range(records):
            pmid = str(PMID_BASE + 1 + i).encode()
            parts = templates[i % len(templates)]
            buf.append(pmid.join(parts))
            buf.append(b"\n")
            if len(buf) >= 512:
                chunk = b"".join(buf)
                gz.write(chunk)
                raw_bytes += len(chunk)
                buf.clear()
        tail = b"".join(buf) + b"</PubmedArticleSet>\n"
        gz.write(tail)
        raw_bytes += len(tail)
    tmp.replace(path)
    meta = {
        "fingerprint": fp,
        "path": str(path),
        "records": records,
        "distinct_source_records": info["distinct"],
        "source_elements": info["elements"],
        "source_files": info["files"],
        "source_files_skipped": info["files_skipped"],
        "uncompressed_bytes": raw_bytes,
        "gz_bytes": path.stat().st_size,
        "build_seconds": round(time.perf_counter() - started, 2),
        "built_at": dt.datetime.now().isoformat(timespec="seconds"),
    }
    meta_path.write_text(json.dumps(meta, indent=1))
    meta["cached"] = False
    return path, meta


# -- 2. measurements (each runs in a child process: `load_bench.py --measure WHAT FILE`) ---------
def _own_peak_rss() -> int:
    """This process's peak RSS (VmHWM; ru_maxrss would carry the parent's RSS over fork + exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class _ChildPeaks:
    """Polls the VmHWM of this process's descendants every 50 ms (a parse process of load_file)."""

    def __init__(self) -> None:
        import threading

        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(POLL_S):
            for c in me.children(recursive=True):
                self.peaks[c.pid] = max(self.peaks.get(c.pid, 0), _hwm(c))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.peaks.values(), default=0)


def measure_walk(path: Path) -> dict:
    """(a) iterparse on PubmedArticle + clear + delete previous siblings, nothing else."""
    from lxml import etree

    t0 = time.perf_counter()
    n = 0
    with gzip.open(path, "rb") as fh:
        for _event, elem in etree.iterparse(fh, events=("end",), tag="PubmedArticle"):
            n += 1
            elem.clear()
            parent = elem.getparent()
            while elem.getprevious() is not None:
                del parent[0]
    return {"records": n, "seconds": time.perf_counter() - t0}


def measure_peer(path: Path, fair: bool) -> dict:
    """(b) pubmed_parser.parse_medline_xml, parse-only (the dicts are produced and dropped)."""
    import inspect

    import pubmed_parser

    kwargs = {}
    if fair:
        params = inspect.signature(pubmed_parser.parse_medline_xml).parameters
        wanted = {"year_info_only": False, "author_list": True, "reference_list": True}
        kwargs = {k: v for k, v in wanted.items() if k in params}
    t0 = time.perf_counter()
    result = pubmed_parser.parse_medline_xml(str(path), **kwargs)
    n = 0
    if isinstance(result, list):  # older releases return a list, 0.5.x a generator
        n = len(result)
        del result
    else:
        for _ in result:
            n += 1
    return {"records": n, "seconds": time.perf_counter() - t0, "kwargs": kwargs,
            "version": getattr(pubmed_parser, "__version__", None)}


def measure_inproc(path: Path, db: Path, repo: Path = ROOT) -> dict:
    """(c') flows.pipeline.load_file on a freshly created warehouse: parse + load, no CLI, no Prefect."""
    sys.path.insert(0, str(repo))
    t_import = time.perf_counter()
    from litmeta.flows.pipeline import load_file
    from litmeta.warehouse.db import connect
    from litmeta.warehouse.runs import start_run

    t0 = time.perf_counter()
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    con = connect(db)
    start_run(con, "bench-inproc", "bench", {"path": str(path)})
    con.close()
    peaks = _ChildPeaks()
    t1 = time.perf_counter()
    stats = load_file(str(db), "bench-inproc", path)
    t2 = time.perf_counter()
    return {"children_peak_rss": peaks.stop(),"records": stats.records_new + stats.records_updated + stats.records_unchanged,
            "seconds": t2 - t1, "setup_seconds": t1 - t0, "import_seconds": t0 - t_import,
            "rejects": stats.rejects, "rows": dict(stats.rows)}


def _child_main(what: str, path: Path, db: Path | None, repo: Path) -> None:
    if what == "walk":
        res = measure_walk(path)
    elif what == "peer":
        res = measure_peer(path, fair=False)
    elif what == "peer_fair":
        res = measure_peer(path, fair=True)
    elif what == "inproc":
        assert db is not None
        res = measure_inproc(path, db, repo)
    else:
        raise SystemExit(f"unknown measurement {what!r}")
    res["peak_rss"] = _own_peak_rss()
    print("RESULT " + json.dumps(res))


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_child(what: str, path: Path, db: Path | None = None, repo: Path = ROOT) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--measure", what, str(path), "--repo", str(repo)]
    if db is not None:
        cmd += ["--db", str(db)]
    before = _children_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            res["cpu_seconds"] = _children_cpu() - before
            return res
    raise RuntimeError(f"measurement {what} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def _proc_kib(pid: int, file: str, field: str) -> int:
    """A ``field: N kB`` line of ``/proc/PID/FILE`` in bytes, 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/{file}") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _pss(pid: int) -> int:
    """A process's proportional set size (a page shared with other processes counted by share)."""
    return _proc_kib(pid, "smaps_rollup", "Pss:")


def _hwm(p) -> int:
    """Peak RSS (VmHWM) of one process."""
    return _proc_kib(p.pid, "status", "VmHWM:")


SETTLE_S = 3.0


def _settle() -> None:
    """Before a measurement: the previous one's writes flushed to disk (a warehouse of about 600 MB) and a
    pause, so that its writeback and the kernel's memory scans do not run during the next one."""
    os.sync()
    time.sleep(SETTLE_S)


def measure_cli(path: Path, db: Path, repo: Path = ROOT, prefect_api: str | None = None, pss: bool = False) -> dict:
    """(c) `litmeta --db DB load FILE` as a subprocess; wall clock and peak RSS.

    Peak RSS: the litmeta process's own high-water mark (VmHWM, polled every 50 ms, so at most the
    last 50 ms before exit are unobserved), and the largest observed sum of current RSS over its
    process tree (litmeta + the Prefect temporary API server it starts as a child process + a
    parser process, if the load starts one), with each child's own VmHWM.
    With ``repo`` other than this checkout, runs ``python -m litmeta`` from that checkout instead.
    ``prefect_api``: the flow reports to this running Prefect server (PREFECT_API_URL) instead of the
    temporary server litmeta starts otherwise. ``pss``: also the peak of the tree's summed PSS
    (proportional set size: a page shared by the forked processes counts once), read at every poll
    from ``smaps_rollup``, which walks each process's page tables and slows the run (0.3-0.4 s here):
    a pass for memory, not for time.
    """
    import psutil

    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    if repo.resolve() == ROOT and (ROOT / ".venv" / "bin" / "litmeta").exists():
        cmd = [str(ROOT / ".venv" / "bin" / "litmeta")]
    else:  # another checkout, or a worktree without its own venv: its code, this interpreter
        cmd = [sys.executable, "-m", "litmeta"]
    cmd += ["--db", str(db), "load", str(path)]
    log = db.with_name("litmeta_load.log")
    cpu_before = _children_cpu()
    t0 = time.perf_counter()
    with open(log, "wb") as out:
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        if prefect_api:
            env["PREFECT_API_URL"] = prefect_api
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=repo, env=env)
        ps = psutil.Process(proc.pid)
        own_hwm = 0
        tree_peak = 0
        tree_pss_peak = 0
        child_hwm: dict[int, int] = {}
        child_cmd: dict[int, str] = {}
        while True:
            done = proc.poll() is not None
            if done:
                break
            try:
                own_hwm = max(own_hwm, _hwm(ps))
                total = ps.memory_info().rss
                for c in ps.children(recursive=True):
                    try:
                        total += c.memory_info().rss
                        # every poll: a child's command line changes at exec (the Prefect server is
                        # forked from litmeta, then exec's python); an exiting one has none left
                        cmdline = " ".join(c.cmdline())
                        if cmdline or c.pid not in child_cmd:
                            child_cmd[c.pid] = cmdline
                        child_hwm[c.pid] = max(_hwm(c), child_hwm.get(c.pid, 0))
                    except psutil.Error:
                        pass
                tree_peak = max(tree_peak, total)
                if pss:
                    tree_pss_peak = max(tree_pss_peak, sum(_pss(q.pid) for q in [ps, *ps.children(recursive=True)]))
            except psutil.Error:
                pass
            time.sleep(POLL_S)
        seconds = time.perf_counter() - t0
    cpu_seconds = _children_cpu() - cpu_before
    tail = log.read_text(errors="replace")[-2000:]
    counts = {}
    try:
        import duckdb

        with duckdb.connect(str(db), read_only=True) as con:
            counts["articles"] = con.execute("SELECT count(*) FROM articles").fetchall()[0][0]
            counts["authors"] = con.execute("SELECT count(*) FROM authors").fetchall()[0][0]
            counts["reference_entries"] = con.execute("SELECT count(*) FROM reference_entries").fetchall()[0][0]
    except Exception as exc:  # noqa: BLE001
        counts["error"] = str(exc)[:200]
    return {"records": counts.get("articles"), "seconds": seconds, "cpu_seconds": cpu_seconds, "prefect_api": prefect_api,
            "exit_code": proc.returncode, "command": " ".join(cmd),
            "peak_rss_litmeta": own_hwm, "peak_rss_tree_sum": tree_peak, "peak_pss_tree_sum": tree_pss_peak,
            # parser processes: every descendant but Prefect's server (the parse pool's workers are forked
            # copies of litmeta, whatever its command line looks like); they run at once, so their peaks add up
            "peak_rss_parse_child": sum(h for pid, h in child_hwm.items() if not _prefect_server(child_cmd[pid])),
            "peak_rss_prefect_server": max((h for pid, h in child_hwm.items() if _prefect_server(child_cmd[pid])), default=0),
            "children": [{"cmd": child_cmd[pid][:160], "peak_rss": h} for pid, h in child_hwm.items()],
            "counts": counts, "output_tail": tail}


def _prefect_server(cmdline: str) -> bool:
    """Whether a child's command line is Prefect's API server (``python -m flows.prefect_server`` now;
    ``python -m uvicorn --factory ...:create_app`` before, as ``--repo`` may run)."""
    return "flows.prefect_server" in cmdline or ("--factory" in cmdline and ":create_app" in cmdline)


# -- 3. report -------------------------------------------------------------------------------------
def machine() -> dict:
    model = None
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as fh:
            mem = int(fh.readline().split()[1]) * 1024
    except OSError:
        pass
    versions = {}
    for mod in ("lxml", "duckdb", "pyarrow", "prefect", "pubmed_parser"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod.replace("_", "-")) if mod != "pubmed_parser" else version("pubmed_parser")
        except Exception:  # noqa: BLE001
            versions[mod] = None
    return {"cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)), "cpu_model": model,
            "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "mem_total": mem, "python": platform.python_version(), "platform": platform.platform(),
            "versions": versions}


def _mib(n: int | None) -> str:
    return "-" if not n else f"{n / 2**20:,.0f} MiB"


def _best(runs: list[dict]) -> dict:
    return min(runs, key=lambda r: r["seconds"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=30_000)
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus" / "pubmed")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--skip-peer", action="store_true", help="skip pubmed_parser (b)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="N rounds, each running every measurement once; report the fastest of each")
    ap.add_argument("--only", help="comma list of measurements to run: a,b,c',c (default: all)")
    ap.add_argument("--repo", type=Path, default=ROOT,
                    help="litmeta checkout whose code (c) and (c') run, e.g. a scratch worktree with a patch applied")
    ap.add_argument("--label", default="", help="results go to OUT/load_bench[-LABEL].json")
    ap.add_argument("--prefect-api", metavar="URL",
                    help="(c) reports to this running Prefect server (e.g. from 'prefect server start') instead of "
                         "the temporary one litmeta starts: the set-up of a scheduled deployment")
    ap.add_argument("--pss", action="store_true",
                    help="then one more (c), untimed, for the peak proportional memory (PSS) of its whole process tree")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("file", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.measure:
        _child_main(args.measure, args.file, args.db, args.repo)
        return 0

    if not args.corpus.is_dir():
        print(f"load_bench: corpus {args.corpus} not found (give --corpus DIR)", file=sys.stderr)
        return 2
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    path, meta = build_file(args.records, args.corpus, out)
    how = "cached" if meta["cached"] else f"built in {meta['build_seconds']} s"
    print(f"file: {path} ({how})")
    print(f"  {meta['records']:,} records cycled from {meta['distinct_source_records']} distinct source records "
          f"({meta['source_elements']} PubmedArticle elements in {meta['source_files']} files, "
          f"{len(meta['source_files_skipped'])} files skipped); "
          f"{meta['uncompressed_bytes'] / 1e6:,.0f} MB uncompressed, {meta['gz_bytes'] / 1e6:,.1f} MB gzip")
    for skipped in meta["source_files_skipped"]:
        print(f"  skipped: {skipped}")

    results: dict[str, dict] = {}
    plan = [("a", "walk"), ("b1", "peer"), ("b2", "peer_fair"), ("c_prime", "inproc"), ("c", "cli")]
    if not args.skip_peer:
        import importlib.util

        if importlib.util.find_spec("pubmed_parser") is None:
            print("  pubmed_parser is not installed (pip install -e '.[bench]'): skipping (b)", file=sys.stderr)
            args.skip_peer = True
    if args.skip_peer:
        plan = [p for p in plan if not p[0].startswith("b")]
    if args.only:
        wanted = {w.strip().replace("'", "_prime") for w in args.only.split(",")}
        wanted |= {"b1", "b2"} if "b" in wanted else set()
        plan = [p for p in plan if p[0] in wanted]
    repo = args.repo.resolve()
    # rounds: every measurement once per round, so that the repeats of each meet the same moments
    # of a shared machine (all of (b), then all of (c) would compare different moments)
    runs: dict[str, list[dict]] = {key: [] for key, _ in plan}
    rounds = max(1, args.repeat)
    for i in range(rounds):
        for key, what in plan:
            _settle()
            if what == "cli":
                r = measure_cli(path, out / "bench.duckdb", repo, args.prefect_api)
            elif what == "inproc":
                r = run_child(what, path, out / "bench_inproc.duckdb", repo)
            else:
                r = run_child(what, path)
            r["records_per_s"] = (r["records"] or 0) / r["seconds"]
            runs[key].append(r)
            print(f"  round {i + 1}/{rounds} ({key}) {what}: {r['records']} records in {r['seconds']:.2f} s "
                  f"= {r['records_per_s']:,.0f} rec/s (CPU {r['cpu_seconds']:.1f} s)", flush=True)
    for key, key_runs in runs.items():
        best = _best(key_runs)
        best["all_seconds"] = [round(r["seconds"], 3) for r in key_runs]
        results[key] = best
    if runs.get("c") and runs.get("b1"):  # (c) against (b) within each round
        results["round_ratios"] = [round(b["seconds"] / c["seconds"], 3)
                                   for b, c in zip(runs["b1"], runs["c"], strict=True)]
    if args.pss:
        r = measure_cli(path, out / "bench.duckdb", repo, args.prefect_api, pss=True)
        results["c_pss"] = r
        print(f"  (c) memory pass: peak summed PSS of the process tree {_mib(r['peak_pss_tree_sum'])} "
              f"(summed RSS {_mib(r['peak_rss_tree_sum'])}); {r['seconds']:.2f} s, not a timing", flush=True)

    write_report(args, argv, out, meta, results)
    return 0


LABELS = {
    "a": "(a)  lxml iterparse walk",
    "b1": "(b)  pubmed_parser, defaults",
    "b2": "(b') pubmed_parser, full*",
    "c_prime": "(c') load_file, no CLI/Prefect",
    "c": "(c)  litmeta load (CLI)",
}


def write_report(args: argparse.Namespace, argv: list[str] | None, out: Path, meta: dict, results: dict) -> None:
    a, b, c, cp = (results.get(k) for k in ("a", "b1", "c", "c_prime"))
    if c and (c["exit_code"] != 0 or c["records"] != args.records):
        print(f"WARNING: litmeta load exit {c['exit_code']}, {c['records']} articles in the warehouse "
              f"(expected {args.records}):\n{c['output_tail']}", file=sys.stderr)
    ratios: dict[str, float] = {}
    targets: dict[str, bool] = {}
    if c and b:
        ratios["c_over_b_rate"] = c["records_per_s"] / b["records_per_s"]
        ratios["c_over_b_full_rate"] = c["records_per_s"] / results["b2"]["records_per_s"]
        targets["c_rate_ge_1.5x_b"] = ratios["c_over_b_rate"] >= TARGET_PEER_RATIO
    if cp and b:
        ratios["c_prime_over_b_rate"] = cp["records_per_s"] / b["records_per_s"]
    if c and a:
        ratios["c_over_a_time"] = c["seconds"] / a["seconds"]
        targets["c_time_le_3x_a"] = ratios["c_over_a_time"] <= TARGET_WALK_RATIO
    if cp and a:
        ratios["c_prime_over_a_time"] = cp["seconds"] / a["seconds"]
    if c:
        targets["c_peak_rss_lt_1GiB"] = c["peak_rss_litmeta"] + c["peak_rss_parse_child"] < TARGET_RSS
    mach = machine()

    print()
    print(f"{'measurement':32} {'seconds':>8} {'rec/s':>7} {'CPU s':>7} {'peak RSS':>10}")
    for key, label in LABELS.items():
        r = results.get(key)
        if not r:
            continue
        rss = r.get("peak_rss", r.get("peak_rss_litmeta"))
        print(f"{label:32} {r['seconds']:8.2f} {r['records_per_s']:7,.0f} {r['cpu_seconds']:7.1f} {_mib(rss):>10}")
    if "b2" in results:
        print(f"  * {results['b2']['kwargs']}")
    if cp:
        extra = f" + parse child {_mib(cp['children_peak_rss'])}" if cp.get("children_peak_rss") else ""
        print(f"  (c') peak RSS: measuring process {_mib(cp['peak_rss'])}{extra}")
    if c:
        print(f"  (c) peak RSS: litmeta process {_mib(c['peak_rss_litmeta'])} (own VmHWM, polled every 50 ms)"
              + (f" + parse child {_mib(c['peak_rss_parse_child'])}" if c["peak_rss_parse_child"] else "")
              + (f"; Prefect server at {c['prefect_api']} (not litmeta's);" if c.get("prefect_api") else
                 f"; Prefect temporary server {_mib(c['peak_rss_prefect_server'])};")
              + f" whole tree, peak of summed RSS {_mib(c['peak_rss_tree_sum'])}")
        if cp:
            print(f"  (c) - (c') = {c['seconds'] - cp['seconds']:.1f} s: CLI start, Prefect import and temporary "
                  f"server, flow/task runs, summary; (c') warehouse setup {cp['setup_seconds']:.2f} s (not timed)")
    print()
    print(f"{'ratio':40} {'value':>7}   {'target':8} met")
    if "c_over_b_rate" in ratios:
        print(f"{'(c) rec/s / (b) rec/s':40} {ratios['c_over_b_rate']:6.2f}x   >= {TARGET_PEER_RATIO}x   "
              f"{'yes' if targets['c_rate_ge_1.5x_b'] else 'NO'}")
        print(f"{'(c) rec/s / (b) rec/s, full*':40} {ratios['c_over_b_full_rate']:6.2f}x")
        if len(results.get("round_ratios", ())) > 1:
            print(f"{'(c) rec/s / (b) rec/s, round by round':40} "
                  + ", ".join(f"{x:.2f}x" for x in results["round_ratios"]))
    if "c_prime_over_b_rate" in ratios:
        print(f"{'(c) rec/s / (b) rec/s, no CLI/Prefect':40} {ratios['c_prime_over_b_rate']:6.2f}x")
    if "c_over_a_time" in ratios:
        print(f"{'(c) time / (a) time':40} {ratios['c_over_a_time']:6.2f}x   <= {TARGET_WALK_RATIO}x   "
              f"{'yes' if targets['c_time_le_3x_a'] else 'NO'}")
    if "c_prime_over_a_time" in ratios:
        print(f"{'(c) time / (a) time, no CLI/Prefect':40} {ratios['c_prime_over_a_time']:6.2f}x")
    if c:
        total = c["peak_rss_litmeta"] + c["peak_rss_parse_child"]
        print(f"{'(c) peak RSS, litmeta (+ parse child)':40} {_mib(total):>7}   < 1 GiB   "
              f"{'yes' if targets['c_peak_rss_lt_1GiB'] else 'NO'}")
    print()
    print(f"machine: {mach['cores']} cores ({mach['cores_usable']} usable), {mach['cpu_model']}, "
          f"{_mib(mach['mem_total'])} RAM, Python {mach['python']}; {mach['versions']}")
    print(f"load average at the end: {mach['loadavg']} (other processes on the machine inflate wall times)")

    report = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "bench/load_bench.py", *(argv if argv is not None else sys.argv[1:])]),
        "repo": str(args.repo.resolve()),
        "file": {k: v for k, v in meta.items() if k != "fingerprint"},
        "results": results,
        "ratios": ratios,
        "targets": targets,
        "machine": mach,
    }
    dest = out / (f"load_bench-{args.label}.json" if args.label else "load_bench.json")
    dest.write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {dest}")

if __name__ == "__main__":
    sys.exit(main())
