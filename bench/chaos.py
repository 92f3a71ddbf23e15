"""Chaos runs: faults, crashes and concurrent use on a synthetic snapshot, with figures printed.

    python bench/chaos.py [--n 5000] [--depth 2] [--max-nodes 2000] [--fault-seeds 1,2,3]
                          [--parts faults,crashes,concurrency] [--corpus ../shared/corpus/pubmed]
                          [--out DIR] [--json FILE]

What it does (docs/reliability.md has the figures of a run):

- faults: ``network SEED --depth D --max-nodes N`` in-process through the sandbox, once clean and
  once per fault seed with every fault kind at once (`FAULT_SPEC`); each warehouse is compared
  table by table with the clean one (`litmeta.warehouse.checks.content_hashes`: run ids and timestamps
  left out) and checked for duplicate keys. A run that still fails (retries exhausted) is run
  again until it completes, as the nightly job would be. Prints faults served (the sandbox's
  ``/_stats``), client requests and retries, records and edges compared.
- crashes: the same network run as a ``litmeta`` subprocess killed with SIGKILL at each of
  `CRASH_POINTS` (``LITMETA_CRASH_AT``, see `litmeta.warehouse.db.crash_point`), then run again; prints
  what the killed run left (the file opens, its ingest_runs row is unfinished), what the re-run
  fetched (records already loaded are not fetched again) and whether it ends equal to the clean run.
- concurrency: ``litmeta sql`` issued back to back while a network run writes (answers vs
  "busy", latency, never a traceback), read-only polls in-process, and two writers at once (the
  second waits for the first, or refuses clearly when told not to wait).

The functions are also what tests/reliability uses, on smaller snapshots.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FAULT_SPEC = "429=0.15,500=0.05,502=0.05,truncate=0.05,error200=0.05,reset=0.05,slow=0.05"
#: (point, n): SIGKILL the n-th time the run passes the point (litmeta.warehouse.db.crash_point)
CRASH_POINTS = (
    ("fetch", 3),  # an elink answer of hop 1 received, not yet stored
    ("load-txn", 2),  # inside the load transaction of the 2nd records batch, before COMMIT
    ("between-batches", 1),  # 1st records batch committed, the 2nd not begun
    ("after-records", 1),  # every record loaded, the observation (edges, members) not written
    ("edges", 1),  # inside the observation transaction, before COMMIT
)
CRASH_ENV = "LITMETA_CRASH_AT"


# -- looking at a warehouse ------------------------------------------------------------------
def warehouse_state(db: str | Path) -> dict:
    """Content hashes, duplicate keys, `litmeta check` problems, row counts and ingest_runs of a
    warehouse (opened read-only)."""
    import duckdb

    from litmeta.warehouse.checks import content_hashes, duplicate_keys, integrity_problems

    with duckdb.connect(str(db), read_only=True) as con:
        one = lambda sql: con.execute(sql).fetchall()[0][0]  # noqa: E731
        return {
            "hashes": content_hashes(con),
            "duplicates": duplicate_keys(con),
            "problems": [p.line() for p in integrity_problems(con, writer_alive=False)],
            "articles": one("SELECT count(*) FROM articles"),
            "citation_edges": one("SELECT count(*) FROM citation_edges"),
            "similar_articles": one("SELECT count(*) FROM similar_articles"),
            "network_members": one("SELECT count(*) FROM network_members"),
            "runs": [
                {
                    "run_id": r[0],
                    "status": r[1],
                    "started_at": r[2],
                    "finished_at": r[3],
                    "http_requests": r[4],
                }
                for r in con.execute(
                    "SELECT run_id, status, started_at, finished_at, http_requests FROM ingest_runs ORDER BY started_at"
                ).fetchall()
            ],
        }


def differing(a: dict, b: dict) -> list[str]:
    """Tables whose content hashes differ between two `warehouse_state`/`content_hashes` results."""
    a, b = a.get("hashes", a), b.get("hashes", b)
    return sorted(t for t in set(a) | set(b) if a.get(t) != b.get(t))


def load_snapshot_seed(snapshot_dir: str | Path) -> int:
    return int(json.loads((Path(snapshot_dir) / "meta.json").read_text())["seed_pmid"])


# -- running litmeta ---------------------------------------------------------------------------
def litmeta_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("litmeta")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "litmeta"]


def run_litmeta(
    args: list[str], env: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        litmeta_cmd() + args,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )


def start_litmeta(args: list[str], env: dict | None = None) -> subprocess.Popen:
    """Start ``litmeta ARGS`` in the background (output captured as text)."""
    return subprocess.Popen(
        litmeta_cmd() + args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )


def network_args(db: str | Path, url: str, seed: int, depth: int, max_nodes: int) -> list[str]:
    return [
        "--db",
        str(db),
        "--eutils-url",
        url,
        "network",
        str(seed),
        "--depth",
        str(depth),
        "--max-nodes",
        str(max_nodes),
    ]


def run_network_inprocess(
    snapshot_dir: str | Path,
    db: str | Path,
    seed: int,
    depth: int,
    max_nodes: int,
    faults: str | None = None,
    max_attempts: int = 4,
) -> dict:
    """build_network in this process through a sandbox (with ``faults``); re-run until it completes.

    Returns the figures: attempts, sandbox stats, client stats of every attempt, the summary.
    """
    import litmeta.flows.network as fnet
    from litmeta.extractors.sandbox import SandboxServer

    clients = []
    originals = {name: getattr(fnet, name) for name in ("make_client", "make_icite_client", "make_idconv_client")}

    def capturing(make):
        def made(*a, **k):
            c = make(*a, **k)
            clients.append(c)
            return c
        return made

    for name, make in originals.items():  # every client of the run: E-utilities, iCite, ID converter
        setattr(fnet, name, capturing(make))
    failures: list[str] = []
    summary: dict = {}
    t0 = time.monotonic()
    try:
        with SandboxServer(snapshot_dir, faults=faults) as sb:
            for _ in range(max_attempts):
                try:
                    summary = fnet.build_network(
                        seed=seed,
                        db=str(db),
                        eutils_url=sb.base_url,
                        depth=depth,
                        max_nodes=max_nodes,
                        similar_top=5,
                        icite_url=sb.icite_url,
                        idconv_url=sb.idconv_url,
                    )
                    break
                except Exception as exc:  # retries exhausted: the flow failed; run it again
                    failures.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            stats = sb.stats()
    finally:
        for name, make in originals.items():
            setattr(fnet, name, make)
    cstats = [c.stats.as_dict() for c in clients]
    retries_by_reason: dict[str, int] = {}
    for s in cstats:
        for k, v in s["retries_by_reason"].items():
            retries_by_reason[k] = retries_by_reason.get(k, 0) + v
    return {
        "seconds": round(time.monotonic() - t0, 1),
        "attempts": len(failures) + (1 if summary else 0),
        "failed_attempts": failures,
        "completed": bool(summary),
        "status": summary.get("status"),
        "server_requests": stats["requests"],
        "faults_served": dict(sorted(stats["faults"].items())),
        "faults_by_endpoint": stats.get("faults_by_endpoint", {}),
        "server_by_endpoint": stats["by_endpoint"],
        "rate_limited": stats["rate_limited"],
        "client_requests": sum(s["requests"] for s in cstats),
        "client_retries": sum(s["retries"] for s in cstats),
        "retries_by_reason": dict(sorted(retries_by_reason.items())),
        "summary_http_requests": summary.get("http_requests"),
    }


# -- faults ------------------------------------------------------------------------------------
def fault_runs(
    snapshot_dir: Path,
    seed: int,
    work: Path,
    depth: int,
    max_nodes: int,
    fault_seeds: list[int],
    spec: str = FAULT_SPEC,
) -> dict:
    clean_db = work / "clean.duckdb"
    clean = run_network_inprocess(snapshot_dir, clean_db, seed, depth, max_nodes)
    reference = warehouse_state(clean_db)
    out = {"clean": {**clean, **_counts(reference)}, "faulted": []}
    for k in fault_seeds:
        db = work / f"faults_{k}.duckdb"
        fig = run_network_inprocess(snapshot_dir, db, seed, depth, max_nodes, faults=f"{spec},seed={k}")
        state = warehouse_state(db)
        fig.update(_counts(state))
        fig.update(
            fault_seed=k,
            differing_tables=differing(state, reference),
            duplicates=state["duplicates"],
            tables_compared=len(reference["hashes"]),
        )
        out["faulted"].append(fig)
    return out


def _counts(state: dict) -> dict:
    return {k: state[k] for k in ("articles", "citation_edges", "similar_articles", "network_members")}


# -- crashes -----------------------------------------------------------------------------------
def crash_and_resume(
    snapshot_dir: Path,
    seed: int,
    db: Path,
    point: str,
    n: int,
    env: dict,
    depth: int,
    max_nodes: int,
    reference: dict | None = None,
) -> dict:
    """Kill ``litmeta network`` at ``point:n`` with SIGKILL, look at what it left, run it again."""
    from litmeta.extractors.sandbox import SandboxServer

    fig: dict = {"point": f"{point}:{n}"}
    with SandboxServer(snapshot_dir) as sb:
        args = network_args(db, sb.base_url, seed, depth, max_nodes)
        t0 = time.monotonic()
        killed = run_litmeta(args, {**env, CRASH_ENV: f"{point}:{n}"})
        fig["killed_after_s"] = round(time.monotonic() - t0, 1)
        fig["killed_returncode"] = killed.returncode
        fig["killed_by_sigkill"] = killed.returncode == -signal.SIGKILL
        fig["killed_stderr_tail"] = killed.stderr[-500:]
        s1 = sb.stats()
        fig["killed_efetch_ids"] = s1["ids_requested"].get("efetch", 0)
        try:
            left = warehouse_state(db)
            fig["opens_after_kill"] = True
            fig["left"] = {
                **_counts(left),
                "duplicates": left["duplicates"],
                "problems": left["problems"],
                "runs": [(r["status"], r["finished_at"] is None) for r in left["runs"]],
            }
        except Exception as exc:  # the point of the exercise: this must not happen
            fig["opens_after_kill"] = False
            fig["open_error"] = f"{type(exc).__name__}: {exc}"
        sb.reset_stats()
        t0 = time.monotonic()
        rerun = run_litmeta(args, env)
        fig["rerun_s"] = round(time.monotonic() - t0, 1)
        fig["rerun_returncode"] = rerun.returncode
        fig["rerun_stderr_tail"] = rerun.stderr[-500:]
        s2 = sb.stats()
        fig["rerun_efetch_ids"] = s2["ids_requested"].get("efetch", 0)
        fig["rerun_requests"] = s2["requests"]
    final = warehouse_state(db)
    fig["final"] = {
        **_counts(final),
        "duplicates": final["duplicates"],
        "problems": final["problems"],
        "runs": [(r["status"], r["finished_at"] is None) for r in final["runs"]],
    }
    if reference is not None:
        fig["differing_tables"] = differing(final, reference)
    return fig


# -- concurrency -------------------------------------------------------------------------------
def _classify_sql(r: subprocess.CompletedProcess) -> str:
    if "Traceback" in r.stderr or "Traceback" in r.stdout:
        return "traceback"
    if r.returncode == 0:
        return "answer"
    if r.returncode == 2 and "busy" in r.stderr and "retry" in r.stderr:
        return "busy"
    return "other"


def readers_during_run(
    snapshot_dir: Path,
    seed: int,
    db: Path,
    env: dict,
    depth: int,
    max_nodes: int,
    poll_interval: float = 0.05,
    sql_pause: float = 0.0,
) -> dict:
    """Start a network run and query the warehouse while it writes (CLI sql and in-process polls).

    ``sql_pause``: seconds between two `litmeta sql` processes (each start-up costs a core for a while)."""
    import duckdb

    from litmeta.extractors.sandbox import SandboxServer
    from litmeta.warehouse.db import WarehouseBusy, connect

    sql = {"answer": 0, "busy": 0, "traceback": 0, "other": 0}
    latencies: list[float] = []
    busy_latencies: list[float] = []
    odd: list[str] = []
    polls = {"ok": 0, "busy": 0, "error": 0, "not_yet": 0}
    counts_seen: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                con = connect(str(db), read_only=True, wait=0)
            except WarehouseBusy:
                polls["busy"] += 1
            except Exception as exc:
                if "no warehouse there yet" in str(exc):
                    polls["not_yet"] += 1
                else:
                    polls["error"] += 1
                    odd.append(f"poll: {type(exc).__name__}: {exc}")
            else:
                try:
                    counts_seen.append(con.execute("SELECT count(*) FROM articles").fetchall()[0][0])
                    polls["ok"] += 1
                except duckdb.Error as exc:
                    polls["error"] += 1
                    odd.append(f"poll query: {exc}")
                finally:
                    con.close()
            stop.wait(poll_interval)

    with SandboxServer(snapshot_dir) as sb:
        proc = start_litmeta(network_args(db, sb.base_url, seed, depth, max_nodes), env)
        while not Path(db).exists() and proc.poll() is None:
            time.sleep(0.05)
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        t_run = time.monotonic()
        while proc.poll() is None:
            t0 = time.monotonic()
            r = run_litmeta(
                ["--db", str(db), "sql", "SELECT count(*) AS n FROM articles", "--format", "csv"],
                env,
                timeout=60,
            )
            latencies.append(time.monotonic() - t0)
            kind = _classify_sql(r)
            sql[kind] += 1
            if kind == "busy":
                busy_latencies.append(latencies[-1])
            if kind in ("traceback", "other"):
                odd.append(f"sql rc={r.returncode}: {r.stderr[-300:]}")
            time.sleep(sql_pause)
        run_s = time.monotonic() - t_run
        stop.set()
        poller.join(10)
        out, err = proc.communicate()
    final = warehouse_state(db)
    monotone = all(a <= b for a, b in zip(counts_seen, counts_seen[1:], strict=False))
    return {
        "run_returncode": proc.returncode,
        "run_stderr_tail": err[-500:],
        "run_s": round(run_s, 1),
        "sql": sql,
        "sql_latency_max_s": round(max(latencies), 2) if latencies else None,
        "sql_latency_median_s": round(sorted(latencies)[len(latencies) // 2], 2) if latencies else None,
        "sql_busy_latency_max_s": round(max(busy_latencies), 2) if busy_latencies else None,
        "polls": polls,
        "articles_seen_monotone": monotone,
        "duplicates": final["duplicates"],
        "hashes": final["hashes"],
        "odd": odd[:10],
    }


def two_writers(
    snapshot_dir: Path, seed: int, db: Path, env: dict, depth: int, max_nodes: int, second: list[str]
) -> dict:
    """A network run (A) plus, while it writes, ``second`` (a write verb's args) told not to wait (C)
    and told to wait (B): C must refuse clearly, B must run after A; their runs never overlap."""
    from litmeta.extractors.sandbox import SandboxServer
    from litmeta.warehouse.db import lock_path

    with SandboxServer(snapshot_dir) as sb:
        a = start_litmeta(network_args(db, sb.base_url, seed, depth, max_nodes), env)
        lock = lock_path(db)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and a.poll() is None:
            if lock.exists() and lock.read_text().strip():
                break
            time.sleep(0.05)
        b = start_litmeta(["--db", str(db)] + second, {**env, "LITMETA_WRITE_WAIT": "300"})
        t0 = time.monotonic()
        c = run_litmeta(["--db", str(db)] + second, {**env, "LITMETA_WRITE_WAIT": "1"})
        c_s = time.monotonic() - t0
        a_running_after_c = a.poll() is None
        b_out, b_err = b.communicate(timeout=900)
        a_out, a_err = a.communicate()
    runs = warehouse_state(db)["runs"]
    ordered = sorted(runs, key=lambda r: r["started_at"])
    overlaps = [
        (x["run_id"], y["run_id"])
        for x, y in zip(ordered, ordered[1:], strict=False)
        if x["finished_at"] is None or y["started_at"] < x["finished_at"]
    ]
    return {
        "a_returncode": a.returncode,
        "a_stderr_tail": a_err[-500:],
        "refused_returncode": c.returncode,
        "refused_stderr": c.stderr.strip()[-600:],
        "refused_after_s": round(c_s, 2),
        "a_still_running_when_refused": a_running_after_c,
        "waited_returncode": b.returncode,
        "waited_stderr": b_err.strip()[-600:],
        "runs": [(r["status"], str(r["started_at"]), str(r["finished_at"])) for r in ordered],
        "overlapping_runs": overlaps,
    }


# -- main --------------------------------------------------------------------------------------
def _prefect_env(home: Path):
    os.environ["PREFECT_HOME"] = str(home)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    return prefect_test_harness(server_startup_timeout=120), PREFECT_API_URL


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=5000, help="articles in the synthetic snapshot (default 5000)")
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--max-nodes", type=int, default=2000)
    p.add_argument("--fault-seeds", default="1,2,3")
    p.add_argument("--parts", default="faults,crashes,concurrency")
    p.add_argument("--corpus", default=None, help="PubMed corpus folder (default ../shared/corpus/pubmed)")
    p.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--citation-sources", action="store_true",
                   help="a snapshot with iCite and ID-converter files (faults then hit all three services)")
    a = p.parse_args(argv)
    from bench.snapshot_gen import DEFAULT_CORPUS, generate_snapshot

    work = a.out or Path(tempfile.mkdtemp(prefix="litmeta-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    parts = {x.strip() for x in a.parts.split(",") if x.strip()}
    snap = work / f"snapshot_{a.n}{'_cs' if a.citation_sources else ''}"
    if not (snap / "meta.json").exists():
        generate_snapshot(snap, a.n, seed=1, corpus_dir=a.corpus or DEFAULT_CORPUS,
                          citation_sources=a.citation_sources)
    seed = load_snapshot_seed(snap)
    print(
        f"snapshot: {a.n} synthetic articles, seed PMID {seed}; network --depth {a.depth} --max-nodes {a.max_nodes}"
    )
    harness, api_url = _prefect_env(work / "prefect-home")
    figures: dict = {"n": a.n, "depth": a.depth, "max_nodes": a.max_nodes, "seed_pmid": seed}
    ok = True
    with harness:
        env = {
            "PREFECT_HOME": os.environ["PREFECT_HOME"],
            "PREFECT_API_URL": api_url.value(),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
        }
        reference = None
        if "faults" in parts or "crashes" in parts:
            seeds = [int(s) for s in a.fault_seeds.split(",") if s.strip()] if "faults" in parts else []
            f = fault_runs(snap, seed, work, a.depth, a.max_nodes, seeds)
            figures["faults"] = f
            reference = warehouse_state(work / "clean.duckdb")
            c = f["clean"]
            print(
                f"\nclean run: {c['articles']} records, {c['citation_edges']} citation edges, "
                f"{c['similar_articles']} similar pairs, {c['network_members']} members; "
                f"{c['client_requests']} HTTP requests, {c['seconds']} s"
            )
            if seeds:
                print(f"\nfaults ({FAULT_SPEC}):")
                for r in f["faulted"]:
                    same = not r["differing_tables"] and not r["duplicates"]
                    ok &= same and r["completed"]
                    print(
                        f"  seed={r['fault_seed']}: faults served {sum(r['faults_served'].values())} "
                        f"{r['faults_served']}; requests {r['client_requests']} (clean {c['client_requests']}), "
                        f"retries {r['client_retries']} {r['retries_by_reason']}; attempts {r['attempts']}; "
                        f"{r['seconds']} s"
                    )
                    print(
                        f"          records {r['articles']} vs {c['articles']}, edges {r['citation_edges']} vs "
                        f"{c['citation_edges']}, similar {r['similar_articles']} vs {c['similar_articles']}; "
                        f"{r['tables_compared'] - len(r['differing_tables'])}/{r['tables_compared']} tables equal"
                        f"{' ' + str(r['differing_tables']) if r['differing_tables'] else ''}; duplicate keys "
                        f"{r['duplicates'] or 'none'} -> {'EQUAL' if same else 'DIFFERENT'}"
                    )
        if "crashes" in parts:
            print("\ncrashes (SIGKILL, then the same command again):")
            figures["crashes"] = []
            for point, n in CRASH_POINTS:
                db = work / f"crash_{point}.duckdb"
                for f_ in (db, Path(str(db) + ".wal")):
                    f_.unlink(missing_ok=True)
                r = crash_and_resume(snap, seed, db, point, n, env, a.depth, a.max_nodes, reference)
                figures["crashes"].append(r)
                good = (
                    r["killed_by_sigkill"]
                    and r["opens_after_kill"]
                    and r["rerun_returncode"] == 0
                    and not r["differing_tables"]
                    and not r["final"]["duplicates"]
                )
                ok &= good
                left = r.get("left", {})
                print(
                    f"  {r['point']:<18} killed after {r['killed_after_s']} s (rc {r['killed_returncode']}); "
                    f"file opens: {r['opens_after_kill']}; left {left.get('articles')} records, "
                    f"{left.get('network_members')} members, runs {left.get('runs')}"
                )
                print(
                    f"  {'':<18} re-run: {r['rerun_s']} s, rc {r['rerun_returncode']}, fetched "
                    f"{r['rerun_efetch_ids']} records (killed run fetched {r['killed_efetch_ids']}); final runs "
                    f"{r['final']['runs']}; {'EQUAL to clean' if not r['differing_tables'] else r['differing_tables']}"
                )
        if "concurrency" in parts:
            db = work / "concurrent.duckdb"
            db.unlink(missing_ok=True)
            r = readers_during_run(snap, seed, db, env, a.depth, a.max_nodes)
            figures["readers"] = r
            ok &= r["run_returncode"] == 0 and not r["sql"]["traceback"] and not r["sql"]["other"]
            print(
                f"\nreaders during a {r['run_s']} s network run: litmeta sql answered {r['sql']['answer']}, "
                f"busy {r['sql']['busy']}, traceback {r['sql']['traceback']}, other {r['sql']['other']} "
                f"(latency median {r['sql_latency_median_s']} s, max {r['sql_latency_max_s']} s); in-process "
                f"read-only polls: {r['polls']}; counts monotone: {r['articles_seen_monotone']}; "
                f"duplicates {r['duplicates'] or 'none'}"
            )
            db2 = work / "two_writers.duckdb"
            db2.unlink(missing_ok=True)
            pub = sorted((snap / "pubmed").glob("*.xml"))[0]
            w = two_writers(snap, seed, db2, env, a.depth, a.max_nodes, ["load", str(pub)])
            figures["two_writers"] = w
            ok &= (
                w["a_returncode"] == 0
                and w["refused_returncode"] == 2
                and w["waited_returncode"] == 0
                and not w["overlapping_runs"]
            )
            print(
                f"two writers: told not to wait -> exit {w['refused_returncode']} after {w['refused_after_s']} s: "
                f"{w['refused_stderr'].splitlines()[-1] if w['refused_stderr'] else ''}"
            )
            print(
                f"             told to wait -> exit {w['waited_returncode']}; runs {w['runs']}; overlapping "
                f"{w['overlapping_runs'] or 'none'}"
            )
    if a.json:
        a.json.write_text(json.dumps(figures, indent=1, default=str))
    if a.out is None:
        shutil.rmtree(work, ignore_errors=True)
    print("\nall equal, no duplicates, no tracebacks" if ok else "\nSOME CHECKS FAILED (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
