"""The citation sources at full size: a 5,000-article synthetic snapshot with iCite and ID-converter files.

    python bench/citation_sources.py [--n 5000] [--max-nodes 2000] [--out DIR]

1. ``network SEED --depth 1`` with both sources: every citing article either source lists for the seed is a
   member; `litmeta sources` counts around the seed equal the snapshot's (links.tsv, icite.jsonl);
2. requests counted by the sandbox's /_stats: the depth-2, ``--max-nodes``-member network with both sources
   against elink alone; iCite's and the ID converter's own counts;
3. the share of the members' reference entries that carry a DOI and no PMID, and how many stay unresolved.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def source_pairs(root: Path) -> dict[str, set[tuple[int, int]]]:
    """(citing, cited) pairs per source as a snapshot's own files state them: links.tsv (elink), icite.jsonl."""
    elink: set[tuple[int, int]] = set()
    for line in (root / "links.tsv").read_text().splitlines()[1:]:
        _, src, name, dst, _ = line.split("\t")
        if name == "pubmed_pubmed_refs":
            elink.add((int(src), int(dst)))
        elif name == "pubmed_pubmed_citedin":
            elink.add((int(dst), int(src)))
    icite: set[tuple[int, int]] = set()
    for line in (root / "icite.jsonl").read_text().splitlines():
        d = json.loads(line)
        icite |= {(c, d["pmid"]) for c in d["cited_by"]} | {(d["pmid"], r) for r in d["references"]}
    return {"elink": elink, "icite": icite}


def _truth(root: Path, seed: int) -> dict[str, set[tuple[int, int]]]:
    pairs = source_pairs(root)
    return {name: {p for p in found if seed in p} for name, found in pairs.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--max-nodes", type=int, default=2000)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    import duckdb

    from bench.chaos import _prefect_env
    from bench.snapshot_gen import DEFAULT_CORPUS, generate_snapshot
    from litmeta.extractors.sandbox import SandboxServer
    from litmeta.warehouse.citation_sources import sources_report

    work = a.out or Path(tempfile.mkdtemp(prefix="litmeta-cs-"))
    snap = work / f"snapshot_{a.n}_cs"
    if not (snap / "meta.json").exists():
        generate_snapshot(snap, a.n, seed=1, corpus_dir=DEFAULT_CORPUS, citation_sources=True)
    seed = json.loads((snap / "meta.json").read_text())["seed_pmid"]
    harness, _ = _prefect_env(work / "prefect-home")
    ok = True
    with harness:
        from litmeta.flows.network import build_network

        def run(name: str, depth: int, max_nodes: int | None, sources: tuple[str, ...]) -> tuple[Path, dict, dict]:
            db = work / f"{name}.duckdb"
            db.unlink(missing_ok=True)
            with SandboxServer(snap) as sb:
                t0 = time.monotonic()
                summary = build_network(seed=seed, db=str(db), eutils_url=sb.base_url, depth=depth,
                                        max_nodes=max_nodes, sources=sources, icite_url=sb.icite_url,
                                        idconv_url=sb.idconv_url)
                stats = sb.stats()
            stats["seconds"] = round(time.monotonic() - t0, 1)
            return db, summary, stats

        db, summary, st = run("depth1_both", 1, None, ("elink", "icite"))
        truth = _truth(snap, seed)
        with duckdb.connect(str(db), read_only=True) as con:
            members = {r[0] for r in con.execute("SELECT pmid FROM network_members WHERE seed_pmid = ?",
                                                 [seed]).fetchall()}
        citing = {c for c, d in truth["elink"] | truth["icite"] if d == seed}
        r = sources_report(str(db), seed)["scopes"]["seed"]
        same = (r["sources"]["elink"]["edges"] == len(truth["elink"])
                and r["sources"]["icite"]["edges"] == len(truth["icite"])
                and r["shared"]["elink+icite"] == len(truth["elink"] & truth["icite"]))
        ok &= citing <= members and same
        print(f"1. depth 1, both sources, seed {seed}: {len(members)} members; citing articles listed by elink or "
              f"iCite: {len(citing)}, all members: {citing <= members}; around the seed elink "
              f"{len(truth['elink'])}, iCite {len(truth['icite'])}, shared {len(truth['elink'] & truth['icite'])}; "
              f"litmeta sources equal: {same}; {st['requests']} requests, {st['seconds']} s")

        _, _, e = run("depth2_elink", 2, a.max_nodes, ("elink",))
        db2, s2, b = run("depth2_both", 2, a.max_nodes, ("elink", "icite"))
        extra = b["requests"] - e["requests"]
        ok &= extra <= 30
        with duckdb.connect(str(db2), read_only=True) as con:
            hops = con.execute("SELECT hop, count(*) FROM network_members WHERE seed_pmid = ? GROUP BY 1",
                               [seed]).fetchall()
            refs = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE cited_pmid IS NULL AND cited_doi IS NOT NULL) "
                "FROM reference_entries WHERE citing_pmid IN (SELECT pmid FROM network_members)").fetchall()[0]
        icite_bound = sum(math.ceil(n / 200) for _, n in hops)
        print(f"2. depth 2, {a.max_nodes} members: elink alone {e['requests']} requests ({e['by_endpoint']}), "
              f"{e['seconds']} s; both sources {b['requests']} ({b['by_endpoint']}), {b['seconds']} s: "
              f"{extra} more (budget 30); iCite {b['by_endpoint'].get('icite')} requests for "
              f"{b['ids_requested'].get('icite')} PMIDs (per-hop ceil(n/200) sum {icite_bound}); ID converter "
              f"{b['by_endpoint'].get('idconv')} for {s2.get('ids_asked')} ids (ceil(u/200) = "
              f"{math.ceil((s2.get('ids_asked') or 0) / 200)})")
        print(f"3. members' reference entries: {refs[0]}, with a DOI and no PMID in the record: {refs[1]} "
              f"({refs[1] / max(1, refs[0]):.1%}); resolved {s2.get('references_resolved')}, unresolved "
              f"{s2.get('references_unresolved')}, ambiguous {s2.get('references_ambiguous')}")
    print("all checks hold" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
