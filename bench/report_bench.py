"""Metrics, views and report of a 10,000-member depth-2 network: time, peak RSS, report size.

    python bench/report_bench.py [--n 10000] [--refs-mean 60] [--out bench/out/report_bench]

Setup (not measured): a synthetic snapshot (bench/snapshot_gen.py, ``--refs-mean`` references per
article, so 10,000 articles give about 600,000 distinct citation pairs), its records loaded into a
new warehouse with litmeta's loader, and one observation of the depth-2 network around the
snapshot's seed written with litmeta's own observation writer (members by breadth-first hop over
references and citing articles, capped at ``--members`` closest first, their top 5 similar
articles, link counts). Measured, in a child process of its own (so its peak RSS is theirs alone):
``store_metrics`` (PageRank, Louvain, betweenness or its skip), the seed's rows of the views
(prior_works, derivative_works, co_citation, bibliographic_coupling) and ``write_report``. Prints
one JSON line and writes it to ``<out>/report_bench.json``; figures go to bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIMILAR_TOP = 5


def build(out: Path, n: int, refs_mean: int, members_cap: int) -> dict:
    """Snapshot, loaded records and one observation of the seed's depth-2 network; returns facts."""
    import pyarrow as pa

    sys.path.insert(0, str(REPO))
    from bench import snapshot_gen
    from litmeta.extractors.pubmed_xml import iter_batches
    from litmeta.schemas import TABLES
    from litmeta.warehouse.db import connect
    from litmeta.warehouse.load import BatchLoader, utcnow
    from litmeta.warehouse.network import register_seed, write_observation
    from litmeta.warehouse.runs import start_run

    snap = out / "snapshot"
    if not (snap / "meta.json").exists():
        snapshot_gen.REFS_MEAN = refs_mean  # the generator's mean references per article
        snapshot_gen.generate_snapshot(snap, n=n, seed=1)
    meta = json.loads((snap / "meta.json").read_text())
    seed = meta["seed_pmid"]
    db = out / "bench.duckdb"
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    run_id = "report-bench"
    refs: dict[int, list[int]] = {}
    cited_by: dict[int, list[int]] = {}
    similar: dict[int, list[tuple[int, int]]] = {}
    for line in (snap / "links.tsv").read_text().splitlines()[1:]:
        _db, a, linkname, b, score = line.split("\t")
        a, b = int(a), int(b)
        if linkname == "pubmed_pubmed_refs":
            refs.setdefault(a, []).append(b)
        elif linkname == "pubmed_pubmed_citedin":
            cited_by.setdefault(a, []).append(b)
        elif linkname == "pubmed_pubmed" and len(similar.setdefault(a, [])) < SIMILAR_TOP:
            similar[a].append((b, int(score)))
    hop = {seed: (0, "seed")}
    todo = deque([seed])
    while todo and len(hop) < members_cap:
        p = todo.popleft()
        if hop[p][0] == 2:
            continue
        for via, nbrs in (("refs", refs.get(p, [])), ("cited_by", cited_by.get(p, []))):
            for q in nbrs:
                if q not in hop and len(hop) < members_cap:
                    hop[q] = (hop[p][0] + 1, via)
                    todo.append(q)
    members = sorted(hop)
    t = {name: TABLES[name] for name in ("network_members", "citation_edges", "similar_articles", "link_snapshots")}
    edges = sorted({(a, b) for a in members for b in refs.get(a, [])}
                   | {(c, a) for a in members for c in cited_by.get(a, [])})
    tables = {
        "network_members": pa.table({"seed_pmid": [seed] * len(members), "pmid": members,
                                     "hop": [hop[p][0] for p in members], "via": [hop[p][1] for p in members]},
                                    schema=t["network_members"].arrow_schema),
        "citation_edges": pa.table({"citing_pmid": [a for a, _ in edges], "cited_pmid": [b for _, b in edges],
                                    "origin": ["elink_refs"] * len(edges)}, schema=t["citation_edges"].arrow_schema),
        "similar_articles": pa.table({
            "pmid": [p for p in members for _ in similar.get(p, [])],
            "similar_pmid": [s for p in members for s, _ in similar.get(p, [])],
            "score": [sc for p in members for _, sc in similar.get(p, [])],
            "rank": [r for p in members for r in range(1, len(similar.get(p, [])) + 1)]},
            schema=t["similar_articles"].arrow_schema),
        "link_snapshots": pa.table({
            "pmid": members, "run_id": [""] * len(members), "seed_pmid": [seed] * len(members),
            "observed_at": pa.array([None] * len(members), pa.timestamp("us")),
            "cited_by_count": [len(cited_by.get(p, [])) for p in members],
            "references_count": [len(refs.get(p, [])) for p in members],
            "similar_count": [len(similar.get(p, [])) for p in members]}, schema=t["link_snapshots"].arrow_schema),
    }
    con = connect(db)
    start_run(con, run_id, "report_bench", {"n": n})
    loader = BatchLoader(con, run_id)
    for f in sorted((snap / "pubmed").glob("*.xml")):
        for batch in iter_batches(f.read_bytes(), source_name=str(f)):
            loader.load(batch)
    register_seed(con, seed, 2, ["refs", "cited_by", "similar"], members_cap, SIMILAR_TOP, utcnow())
    con.close()
    write_observation(str(db), run_id, seed, tables, utcnow())
    return {"db": str(db), "seed": seed, "run_id": run_id, "articles": n, "members": len(members),
            "member_citation_pairs": len(edges), "snapshot_citation_pairs": meta["links"]["pubmed_pubmed_refs"]}


def measure(db: str, seed: int, run_id: str, html: Path) -> dict:
    """The measured steps (run in a child process)."""
    from litmeta.warehouse.db import connect
    from litmeta.warehouse.metrics import store_metrics
    from litmeta.warehouse.report import write_report

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    metrics = store_metrics(db, seed, run_id)
    t1 = time.perf_counter()
    views = {}
    with connect(db, read_only=True) as con:
        for name, sql in {
            "prior_works": "SELECT * FROM prior_works WHERE seed_pmid = ? ORDER BY n_citing_members DESC LIMIT 15",
            "derivative_works": "SELECT * FROM derivative_works WHERE seed_pmid = ? ORDER BY n_cited_members DESC LIMIT 15",
            "co_citation": "SELECT * FROM co_citation WHERE pmid_a = $1 UNION ALL "
                           "SELECT * FROM co_citation WHERE pmid_b = $1 ORDER BY n_citing DESC LIMIT 15",
            "bibliographic_coupling": "SELECT * FROM bibliographic_coupling WHERE pmid_a = $1 UNION ALL "
                                      "SELECT * FROM bibliographic_coupling WHERE pmid_b = $1 "
                                      "ORDER BY n_shared DESC LIMIT 15",
        }.items():
            s = time.perf_counter()
            con.execute(sql, [seed]).fetchall()
            views[name] = round(time.perf_counter() - s, 2)
    t2 = time.perf_counter()
    _path, drawn, total = write_report(db, seed, html)
    t3 = time.perf_counter()
    return {"metrics_s": round(t1 - t0, 2), "views_s": round(t2 - t1, 2), "views": views,
            "report_s": round(t3 - t2, 2), "total_s": round(t3 - t0, 2),
            "total_cpu_s": round(time.process_time() - cpu0, 2), "drawn": drawn, "members_in_report": total,
            "report_bytes": html.stat().st_size, "betweenness": metrics["betweenness"],
            "communities": metrics["communities"],
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="synthetic articles (default 10000)")
    ap.add_argument("--refs-mean", type=int, default=60, help="mean references per article (default 60)")
    ap.add_argument("--members", type=int, default=10_000, help="member cap (default 10000)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "report_bench")
    ap.add_argument("--measure", nargs=3, metavar=("DB", "SEED", "RUN_ID"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    html = args.out / "report.html"
    if args.measure:
        db, seed, run_id = args.measure
        print(json.dumps(measure(db, int(seed), run_id, html)))
        return 0
    s = time.perf_counter()
    facts = build(args.out, args.n, args.refs_mean, args.members)
    facts["setup_s"] = round(time.perf_counter() - s, 1)
    child = subprocess.run([sys.executable, __file__, "--out", str(args.out), "--measure", facts["db"],
                            str(facts["seed"]), facts["run_id"]], capture_output=True, text=True, check=True)
    result = {**facts, **json.loads(child.stdout.strip().splitlines()[-1]),
              "load_average_1min": round(os.getloadavg()[0], 2), "cores": os.cpu_count(),
              "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    (args.out / "report_bench.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
