"""Benchmark of `litmeta mirror`'s two stages: parse-to-shards on Dask, and the one bulk merge (issue 18).

    python bench/mirror_bench.py [--files 8] [--records 30000] [--workers 1,2] [--out DIR]

Generates ``--files`` synthetic baseline files (bench/snapshot_gen.py, real corpus records renumbered),
then measures:

- parse-to-shards wall time of all files on a LocalCluster of 1 and of 2 worker processes (the function the
  mirror's task runs: `litmeta.extractors.shards.write_shards`), its throughput in records/s, and the scaling
  efficiency ``(t_1 / t_2) / 2``;
- peak RSS of each worker process (its VmHWM after the parse);
- the merge: `litmeta.warehouse.mirror.merge_shards` of every shard set into a new warehouse, records/s;
  against today's per-batch load (`litmeta.warehouse.load.load_batches`) of the same records, parsed
  beforehand so that only loading is timed;
- the projected wall time of the full 2026 baseline (1,334 files of 30,000 records) on a 32-core cluster:
  ``T = 1334 * t_file / (32 * efficiency) + 1334 * 30000 / merge_rate`` with ``t_file`` the one-worker parse
  time per file (downloads excluded: they overlap the parse and depend on the network).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # bench.snapshot_gen, run as a script from anywhere

from bench.snapshot_gen import DEFAULT_CORPUS, generate_ftp_files  # noqa: E402

BASELINE_FILES, BASELINE_RECORDS, CORES = 1334, 30_000, 32


def _peak_rss_mib() -> float:
    """This process's own high-water mark (VmHWM): ru_maxrss would carry the RSS its parent had at the fork."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parse_on_dask(files: list[Path], workers: int, shards: Path) -> tuple[float, list[float]]:
    from distributed import LocalCluster

    from litmeta.extractors.files import file_sha256
    from litmeta.extractors.shards import write_shards
    from litmeta.warehouse.load import BATCH_RECORDS

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            cluster.get_client() as client:
        client.run(lambda: __import__("litmeta.extractors.shards"))  # imports are not part of the parse
        shas = [file_sha256(f) for f in files]
        t0 = time.perf_counter()
        futures = [client.submit(write_shards, str(f), f.name, str(shards), f.name, sha, BATCH_RECORDS, pure=False)
                   for f, sha in zip(files, shas, strict=True)]
        client.gather(futures)
        seconds = time.perf_counter() - t0
        rss = list(client.run(_peak_rss_mib).values())
    return seconds, rss


def merge(files: list[Path], shards: Path, db: Path) -> float:
    from litmeta.schemas.shards import read_manifest
    from litmeta.warehouse.db import ensure_warehouse
    from litmeta.warehouse.mirror import merge_shards

    ensure_warehouse(str(db))
    sets = [read_manifest(shards / f.name) for f in files]
    t0 = time.perf_counter()
    merge_shards(str(db), "bench", sets)
    return time.perf_counter() - t0


def load_per_batch(files: list[Path], db: Path) -> float:
    from litmeta.extractors import pubmed_xml
    from litmeta.warehouse.db import ensure_warehouse
    from litmeta.warehouse.load import BATCH_RECORDS, load_batches

    ensure_warehouse(str(db))
    batches = [b for f in files for b in pubmed_xml.iter_batches(f, source_name=f.name, batch_size=BATCH_RECORDS)]
    t0 = time.perf_counter()
    load_batches(str(db), "bench", batches)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--records", type=int, default=BASELINE_RECORDS)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    ap.add_argument("--out", default=None, help="work directory (default: a temporary one, removed after)")
    args = ap.parse_args(argv)
    work = Path(args.out or tempfile.mkdtemp(prefix="mirror-bench-"))
    try:
        t0 = time.perf_counter()
        stamp, made = work / "mirror_bench.json", {"files": args.files, "records": args.records, "corpus": args.corpus}
        if not (stamp.is_file() and json.loads(stamp.read_text()) == made):  # files of an earlier run are reused
            generate_ftp_files(work, args.files, args.records, updates=0, corpus_dir=args.corpus)
            stamp.write_text(json.dumps(made))
        files = sorted((work / "ftp" / "baseline").glob("*.xml.gz"))
        for n in args.workers.split(","):
            shutil.rmtree(work / f"shards{n}", ignore_errors=True)
        for db in ("merge.duckdb", "merge.duckdb.wal", "load.duckdb", "load.duckdb.wal"):
            (work / db).unlink(missing_ok=True)
        records = args.files * args.records
        out: dict = {"files": args.files, "records_per_file": args.records, "generate_s": round(time.perf_counter() - t0, 1),
                     "cpu_count": os.cpu_count(), "parse": {}}
        for n in [int(x) for x in args.workers.split(",")]:
            shards = work / f"shards{n}"
            seconds, rss = parse_on_dask(files, n, shards)
            out["parse"][n] = {"seconds": round(seconds, 2), "records_per_s": round(records / seconds),
                               "peak_rss_mib_per_worker": [round(r) for r in rss]}
        ns = sorted(out["parse"])
        if len(ns) >= 2:
            t1, tn = out["parse"][ns[0]]["seconds"], out["parse"][ns[-1]]["seconds"]
            out["scaling_efficiency"] = round((t1 / tn) / (ns[-1] / ns[0]), 3)
        merge_s = merge(files, work / f"shards{ns[-1]}", work / "merge.duckdb")
        load_s = load_per_batch(files, work / "load.duckdb")
        out["merge"] = {"seconds": round(merge_s, 2), "records_per_s": round(records / merge_s)}
        out["load_per_batch"] = {"seconds": round(load_s, 2), "records_per_s": round(records / load_s)}
        out["merge_vs_load"] = round(load_s / merge_s, 2)
        t_file = out["parse"][ns[0]]["seconds"] / args.files * ns[0]
        eff = out.get("scaling_efficiency", 1.0)
        parse_h = BASELINE_FILES * t_file / (CORES * eff) / 3600
        merge_h = BASELINE_FILES * BASELINE_RECORDS / (records / merge_s) / 3600
        out["projection"] = {
            "formula": "T = 1334 * t_file / (32 * efficiency) + 1334 * 30000 / merge_rate",
            "t_file_s": round(t_file * BASELINE_RECORDS / args.records, 2),
            "hours": round(parse_h * BASELINE_RECORDS / args.records + merge_h, 2),
        }
        print(json.dumps(out, indent=1))
    finally:
        if not args.out:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
