"""iCite and the PMC ID Converter beside elink, end to end on a synthetic snapshot (issue 16, lines 1, 2, 4).

Test size: 300 synthetic articles (the issue's 5,000 / 2,000-member figures are the same properties at a
larger size; bench/chaos.py --citation-sources runs that size). Expected figures are computed from the
snapshot files themselves (links.tsv, icite.jsonl, idconv.tsv, the records), never from litmeta.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest
from lxml import etree

from litmeta.extractors.sandbox import SandboxServer
from tests.conftest import require_corpus

pytestmark = pytest.mark.corpus

N = 300


def q(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def snapshot_truth(root: Path) -> dict:
    """Citation pairs per source as the snapshot files state them."""
    from bench.citation_sources import source_pairs

    pairs = source_pairs(root)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    recs = [etree.fromstring(etree.tostring(el), parser) for f in sorted((root / "pubmed").glob("*.xml"))
            for el in etree.parse(str(f), parser).getroot().iterfind("PubmedArticle")]
    doi_pmid = {a.text.strip().lower(): int(r.findtext("MedlineCitation/PMID")) for r in recs
                for a in r.iterfind("PubmedData/ArticleIdList/ArticleId[@IdType='doi']")}
    reflist: set[tuple[int, int]] = set()
    for r in recs:
        pmid = int(r.findtext("MedlineCitation/PMID"))
        for a in r.iterfind("PubmedData/ReferenceList/Reference/ArticleIdList/ArticleId"):
            t, v = a.get("IdType"), (a.text or "").strip()
            cited = int(v) if t == "pubmed" else doi_pmid.get(v.lower()) if t == "doi" else None
            if cited is not None:
                reflist.add((pmid, cited))
    return {**pairs, "reflist": reflist, "doi_pmid": doi_pmid}


@pytest.fixture(scope="module")
def built(tmp_path_factory, prefect_api):
    from bench.snapshot_gen import generate_snapshot
    from litmeta.flows.network import build_network

    corpus = require_corpus("pubmed")
    work = tmp_path_factory.mktemp("citation-sources")
    info = generate_snapshot(work / "snap", N, seed=5, corpus_dir=corpus, citation_sources=True)
    seed, db = info["seed_pmid"], work / "both.duckdb"
    with SandboxServer(work / "snap") as sb:
        summary = build_network(seed=seed, db=str(db), eutils_url=sb.base_url, depth=1, similar_top=5,
                                icite_url=sb.icite_url, idconv_url=sb.idconv_url)
        stats = sb.stats()
    return {"root": work / "snap", "seed": seed, "db": db, "summary": summary, "stats": stats, "work": work}


def test_network_holds_every_citing_article_either_source_lists(built):
    truth, seed = snapshot_truth(built["root"]), built["seed"]
    citing = {c for c, d in truth["elink"] | truth["icite"] if d == seed}
    icite_only = {c for c, d in truth["icite"] - truth["elink"] if d == seed}
    assert icite_only, "the snapshot should have citing articles only iCite knows"
    members = {r[0] for r in q(built["db"], "SELECT pmid FROM network_members WHERE seed_pmid = ?", [seed])}
    assert citing <= members
    origins = dict(q(built["db"], "SELECT origin, count(*) FROM citation_edges GROUP BY 1"))
    assert origins.get("icite_refs") and origins.get("icite_citedby")
    assert q(built["db"], "SELECT count(DISTINCT pmid) FROM icite_metrics")[0][0] == built["summary"]["seeds"][
        str(seed)]["icite_records"] > 0


def test_sources_report_equals_the_snapshot(built):
    from litmeta.flows.cli import main
    from litmeta.warehouse.citation_sources import sources_report

    truth, seed = snapshot_truth(built["root"]), built["seed"]
    at = {k: {p for p in truth[k] if seed in p} for k in ("elink", "icite", "reflist")}
    r = sources_report(str(built["db"]), seed)["scopes"]["seed"]
    print(f"around seed {seed}: elink {len(at['elink'])}, iCite {len(at['icite'])}, shared "
          f"{len(at['elink'] & at['icite'])}, elink only {len(at['elink'] - at['icite'])}, iCite only "
          f"{len(at['icite'] - at['elink'])}")
    for name in at:
        others = set().union(*(v for k, v in at.items() if k != name))
        assert r["sources"][name] == {"edges": len(at[name]), "only": len(at[name] - others)}, name
    assert r["shared"]["elink+icite"] == len(at["elink"] & at["icite"])
    assert r["shared"]["icite+reflist"] == len(at["icite"] & at["reflist"])
    assert r["edges"] == len(at["elink"] | at["icite"] | at["reflist"])
    assert main(["--db", str(built["db"]), "sources", str(seed), "--format", "json"]) == 0
    assert main(["--db", str(built["db"]), "sources", str(seed)]) == 0
    assert main(["--db", str(built["db"]), "sources", "12345"]) == 2, "not a tracked seed: bad usage"


def test_request_budgets(built):
    st, seed = built["stats"], built["seed"]
    hops = q(built["db"], "SELECT hop, count(*) FROM network_members WHERE seed_pmid = ? GROUP BY 1", [seed])
    asked = sum(n for _, n in hops)
    # a hop's members are known only once the previous hop is answered: one batch series per hop
    assert st["by_endpoint"]["icite"] == sum(math.ceil(n / 200) for _, n in hops) <= math.ceil(asked / 200) + 1
    assert st["ids_requested"]["icite"] == asked
    unresolved_before = built["summary"]["ids_asked"]
    assert 0 < st["by_endpoint"]["idconv"] <= math.ceil(unresolved_before / 200)
    print(f"iCite: {st['by_endpoint']['icite']} requests for {asked} PMIDs; ID converter: "
          f"{st['by_endpoint']['idconv']} for {unresolved_before} ids; esearch {st['by_endpoint'].get('esearch')}")


def test_icite_client_asks_ceil_n_over_200(built):
    from litmeta.extractors.icite import ICiteClient

    pmids = [int(json.loads(line)["pmid"]) for line in (built["root"] / "icite.jsonl").read_text().splitlines()]
    pmids += [99_000_001, 99_000_002]  # iCite does not know these: absent from data, not an error
    with SandboxServer(built["root"]) as sb, ICiteClient(sb.icite_url) as client:
        got = {p for b in client.pubs(pmids) for p in b.records}
        assert sb.stats()["by_endpoint"]["icite"] == math.ceil(len(pmids) / 200)
    assert got == set(pmids[:-2])


def test_doi_only_references_are_resolved_and_the_rest_counted(built):
    db, root = built["db"], built["root"]
    doi_pmid = {}
    for line in (root / "icite.jsonl").read_text().splitlines():
        d = json.loads(line)
        doi_pmid[d["doi"].lower()] = d["pmid"]
    refs = q(db, "SELECT citing_pmid, lower(cited_doi) FROM reference_entries WHERE cited_pmid IS NULL "
                 "AND cited_doi IS NOT NULL AND citing_pmid IN (SELECT pmid FROM network_members)")
    total = q(db, "SELECT count(*) FROM reference_entries WHERE citing_pmid IN (SELECT pmid FROM network_members)")[0][0]
    share = len(refs) / total
    assert 0.15 < share < 0.25, f"about a fifth of the references carry only a DOI ({share:.2%})"
    resolvable = [(c, d) for c, d in refs if d in doi_pmid]
    unresolvable = [(c, d) for c, d in refs if d not in doi_pmid]
    assert unresolvable, "the snapshot holds DOIs no service knows"
    edges = {(c, p): by for c, p, by in q(db, "SELECT citing_pmid, cited_pmid, resolved_by FROM citation_edges "
                                             "WHERE origin = 'pubmed_reflist' AND resolved_by IS NOT NULL")}
    missing = [(c, d) for c, d in resolvable if (c, doi_pmid[d]) not in edges]
    assert missing == [], f"{len(missing)} of {len(resolvable)} resolvable DOI-only references have no edge"
    assert set(edges.values()) == {"idconv", "esearch"}
    in_pmc = {ln.split("\t")[1].lower() for ln in (root / "idconv.tsv").read_text().splitlines()[1:]}
    by = dict(q(db, "SELECT id_value, resolved_by FROM id_map WHERE status = 'resolved'"))
    assert all((by[d] == "idconv") == (d in in_pmc) for _, d in resolvable)
    status = dict(q(db, "SELECT id_value, status FROM id_map"))
    assert {status[d] for _, d in unresolvable} == {"unresolved"}
    assert set(p for _, p in edges) <= set(doi_pmid.values()), "an edge only to an article the snapshot holds"
    s = built["summary"]
    assert s["references_unresolved"] == len(unresolvable) and s["references_resolved"] == len(resolvable)


def test_elink_only_sources_and_refresh_reobserves_icite(built):
    """--sources elink asks iCite nothing; a refresh of the both-sources seed observes iCite again."""
    from litmeta.flows.network import build_network, refresh_seeds

    db, seed = built["work"] / "elink.duckdb", built["seed"]
    with SandboxServer(built["root"]) as sb:
        build_network(seed=seed, db=str(db), eutils_url=sb.base_url, depth=1, sources=("elink",),
                      icite_url=sb.icite_url, idconv_url=sb.idconv_url)
        assert "icite" not in sb.stats()["by_endpoint"]
        assert q(db, "SELECT count(*) FROM citation_edges WHERE origin LIKE 'icite%'")[0][0] == 0
        sb.reset_stats()
        before = q(built["db"], "SELECT count(*), count(DISTINCT run_id) FROM icite_metrics")[0]
        summary = refresh_seeds(db=str(built["db"]), eutils_url=sb.base_url, icite_url=sb.icite_url,
                                idconv_url=sb.idconv_url)
        assert summary["status"] == "completed" and sb.stats()["by_endpoint"]["icite"] >= 1
        unresolved = q(built["db"], "SELECT count(*) FROM id_map WHERE status = 'unresolved'")[0][0]
        assert sb.stats()["ids_requested"]["idconv"] == unresolved, "only ids found nowhere are asked again"
    after = q(built["db"], "SELECT count(*), count(DISTINCT run_id) FROM icite_metrics")[0]
    assert after == (2 * before[0], 2)


def test_every_stored_icite_answer_rebuilds_its_rows(built):
    """raw_documents holds every iCite answer: parsing them again gives the metrics and edges stored."""
    import gzip

    from litmeta.extractors.icite import icite_tables, parse_pubs

    rows = q(built["db"], "SELECT sha256, request, body FROM raw_documents WHERE kind = 'icite'")
    assert rows
    metrics = defaultdict(int)
    edges = set()
    for sha, request, body in rows:
        records, _ = parse_pubs(gzip.decompress(body), request)
        t = icite_tables(records.values(), sha)
        for pmid in t["icite_metrics"].column("pmid").to_pylist():
            metrics[pmid] += 1
        edges |= set(zip(*(t["citation_edges"].column(c).to_pylist() for c in ("citing_pmid", "cited_pmid",
                                                                                  "origin")), strict=True))
    run = q(built["db"], "SELECT min(run_id) FROM icite_metrics")[0][0]
    stored = {r[0] for r in q(built["db"], "SELECT pmid FROM icite_metrics WHERE run_id = ?", [run])}
    assert stored <= set(metrics)
    have = set(q(built["db"], "SELECT citing_pmid, cited_pmid, origin FROM citation_edges WHERE origin LIKE 'icite%'"))
    assert have == edges
