"""End-to-end: the real flows against the sandbox server (demo, tracking over time, efficiency, serve)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import duckdb
import pytest

from litmeta.extractors.sandbox import SandboxServer
from litmeta.warehouse.checks import duplicate_keys
from tests.conftest import BUNDLED_SNAPSHOT, CORPUS, run_cli
from tests.pubmed_fixtures import article, document
from tests.test_grant_projects import PAGE, page_project_numbers

pytestmark = pytest.mark.e2e

SEED = 39047240
SIMILAR = [40532723, 28901021, 39467525, 40459097, 36161421]
CITING = [39321136, 40437045, 39234859, 39910042, 40072099]


def q(db: Path, sql: str, params=None):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_demo_twice_reproduces_the_seed_page_and_moves_last_seen(tmp_path, prefect_api):
    db = tmp_path / "demo.duckdb"
    first = run_cli(["demo", "--db", str(db)], prefect_api)
    assert first.returncode == 0, first.stderr
    assert "Blinatumomab for MRD-Negative Acute Lymphoblastic Leukemia in" in first.stdout
    assert "grants 31" in first.stdout
    assert q(db, "SELECT doi, pmcid FROM articles WHERE pmid = ?", [SEED]) == [("10.1056/NEJMoa2312948", "PMC11334054")]
    assert q(db, "SELECT count(*) FROM grants WHERE pmid = ?", [SEED]) == [(31,)]
    assert ("U10 CA180868", "CA", "NCI NIH HHS", "United States") in q(
        db, "SELECT grant_id, acronym, agency, country FROM grants WHERE pmid = ?", [SEED])
    if PAGE.exists():  # the distinct NIH projects of the seed's 31 grant lines, as its page lists them
        assert q(db, "SELECT count(*) FROM grant_projects WHERE pmid = ?", [SEED]) == [(len(page_project_numbers()),)]
    assert [r[0] for r in q(db, "SELECT similar_pmid FROM similar_articles WHERE pmid = ? ORDER BY rank", [SEED])] == SIMILAR
    citing = q(db, "SELECT citing_pmid FROM citation_edges WHERE cited_pmid = ? AND origin = 'elink_citedin'", [SEED])
    assert sorted(r[0] for r in citing) == sorted(CITING)
    last_seen_1 = q(db, "SELECT max(last_seen) FROM citation_edges")[0][0]
    counts_1 = {t: q(db, f"SELECT count(*) FROM {t}")[0][0] for t in
                ("articles", "grants", "citation_edges", "similar_articles", "network_members", "authors")}

    second = run_cli(["--db", str(db), "demo"], prefect_api)
    assert second.returncode == 0, second.stderr
    assert "since the previous run" in second.stdout
    counts_2 = {t: q(db, f"SELECT count(*) FROM {t}")[0][0] for t in counts_1}
    assert counts_2 == counts_1, "a second demo run must not duplicate anything"
    with duckdb.connect(str(db), read_only=True) as con:
        assert duplicate_keys(con) == {}
    assert q(db, "SELECT min(last_seen) FROM citation_edges")[0][0] > last_seen_1, "last_seen moves on re-observation"
    assert q(db, "SELECT count(*) FROM ingest_runs WHERE status = 'completed'")[0][0] == 2
    assert q(db, "SELECT count(*) FROM link_snapshots")[0][0] == 2 * 11


def _snapshot_v2(src: Path, dst: Path) -> int:
    """v1 + one more citing article, minus one similar article of the seed."""
    shutil.copytree(src, dst)
    new = 41000001
    (dst / "pubmed" / "new_citing.xml").write_bytes(
        document(article(new, title="A new article citing the seed.", revised="2026-01-01")))
    lines = (dst / "links.tsv").read_text().splitlines()
    lines = [ln for ln in lines if not (ln.startswith(f"pubmed\t{SEED}\tpubmed_pubmed\t36161421"))]
    lines += [f"pubmed\t{SEED}\tpubmed_pubmed_citedin\t{new}\t", f"pubmed\t{new}\tpubmed_pubmed_refs\t{SEED}\t"]
    (dst / "links.tsv").write_text("\n".join(lines) + "\n")
    return new


def test_refresh_tracks_new_and_vanished_links(tmp_path, prefect_api):
    from litmeta.flows.network import build_network, refresh_seeds

    db = str(tmp_path / "track.duckdb")
    v1 = tmp_path / "v1"
    shutil.copytree(BUNDLED_SNAPSHOT, v1)
    new = _snapshot_v2(v1, tmp_path / "v2")
    with SandboxServer(v1) as sb:
        build_network(seed=SEED, db=db, eutils_url=sb.base_url, depth=1, similar_top=5)
    run1 = q(Path(db), "SELECT started_at FROM ingest_runs")[0][0]
    gone_before = q(Path(db), "SELECT last_seen FROM similar_articles WHERE pmid = ? AND similar_pmid = 36161421", [SEED])
    with SandboxServer(tmp_path / "v2") as sb:
        summary = refresh_seeds(db=db, eutils_url=sb.base_url)
    assert summary["status"] == "completed"
    run2 = q(Path(db), "SELECT started_at FROM ingest_runs WHERE flow = 'refresh_seeds'")[0][0]
    new_pairs = q(Path(db), "SELECT DISTINCT citing_pmid, cited_pmid FROM citation_edges WHERE first_seen >= ?", [run2])
    assert new_pairs == [(new, SEED)], "exactly one new citation edge, first seen at the second run"
    assert q(Path(db), "SELECT min(first_seen) > ? FROM citation_edges WHERE citing_pmid = ?", [run1, new]) == [(True,)]
    gone_after = q(Path(db), "SELECT last_seen FROM similar_articles WHERE pmid = ? AND similar_pmid = 36161421", [SEED])
    assert gone_after == gone_before, "a vanished link keeps its old last_seen"
    kept = q(Path(db), "SELECT last_seen FROM similar_articles WHERE pmid = ? AND similar_pmid = 40532723", [SEED])[0][0]
    assert kept > gone_after[0][0]
    per_member = q(Path(db), "SELECT pmid, count(*) FROM link_snapshots GROUP BY pmid")
    old_members = [p for p, n in per_member if p != new]
    assert all(n == 2 for p, n in per_member if p != new) and len(old_members) == 11
    assert dict(per_member)[new] == 1  # the new member was first observed at the second run
    assert q(Path(db), "SELECT cited_by_count FROM link_snapshots WHERE pmid = ? ORDER BY observed_at", [SEED]) == [(5,), (6,)]


@pytest.mark.corpus
def test_network_depth2_request_budget_on_5000_articles(tmp_path, prefect_api):
    if not (CORPUS / "pubmed").is_dir():
        pytest.skip("synthetic snapshot needs ../shared/corpus/pubmed (absent)")
    from bench.snapshot_gen import generate_snapshot
    from litmeta.flows.network import build_network

    info = generate_snapshot(tmp_path / "syn", 5000, seed=1, corpus_dir=CORPUS / "pubmed")
    seed = info["seed_pmid"]
    db = str(tmp_path / "syn.duckdb")
    with SandboxServer(tmp_path / "syn") as sb:
        summary = build_network(seed=seed, db=db, eutils_url=sb.base_url, depth=2, max_nodes=2000, similar_top=5,
                                sources=("elink",))  # E-utilities' own budget; tests/test_citation_sources.py: iCite's
        requests = sb.stats()["requests"]
    members = q(Path(db), "SELECT count(*) FROM network_members WHERE seed_pmid = ?", [seed])[0][0]
    budget = 2 * math.ceil(members / 200) + 10
    print(f"network depth 2 on 5,000 articles: {members} members, {requests} HTTP requests (budget {budget})")
    assert members == 2000
    assert requests <= budget
    assert summary["http_requests"] == requests
    assert q(Path(db), "SELECT count(*) FROM articles")[0][0] == 2000


def test_serve_registers_deployments_with_schedules(tmp_path, prefect_api):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import DeploymentSort

    db = tmp_path / "serve.duckdb"
    with duckdb.connect(str(db)):
        pass
    db.unlink()
    from litmeta.warehouse.db import connect

    con = connect(str(db))
    con.execute("INSERT INTO saved_searches VALUES ('blinatumomab[tiab]', '{}', now()::TIMESTAMP)").fetchall()
    con.close()
    hook = "http://127.0.0.1:9/hooks/secret-token"
    r = run_cli(["--db", str(db), "serve", "--cron", "15 4 * * *", "--register-only", "--notify", hook], prefect_api)
    assert r.returncode == 0, r.stderr
    assert "registered 2 deployment(s)" in r.stdout

    async def read():
        async with get_client() as client:
            deps = await client.read_deployments(limit=50, sort=DeploymentSort.NAME_ASC)
            return ({d.name: [s.schedule.cron for s in d.schedules] for d in deps},
                    {d.name: d.parameters for d in deps})

    got, params = asyncio.run(read())
    assert params["litmeta-refresh"]["notify"] is True and "secret-token" not in repr(params)
    assert got["litmeta-refresh"] == ["15 4 * * *"]
    assert got["litmeta-search-1"] == ["15 4 * * *"]


def test_exports_of_the_demo_network(tmp_path, prefect_api, monkeypatch):
    """Parquet/CSV of every table and of the seed's network, GraphML and PNG, consistent with the warehouse."""
    import networkx as nx
    import pyarrow.parquet as pq

    from litmeta.schemas import ALL_TABLES

    db = tmp_path / "demo.duckdb"
    assert run_cli(["--db", str(db), "demo"], prefect_api).returncode == 0
    out = tmp_path / "exports"
    r = run_cli(["--db", str(db), "export", "--format", "parquet,csv,graphml,png", "--out", str(out),
                 "--seed", str(SEED)], prefect_api)
    assert r.returncode == 0, r.stderr
    members = pq.read_table(out / f"seed_{SEED}_members.parquet")
    assert sorted(members.column("pmid").to_pylist()) == sorted(
        p for (p,) in q(db, "SELECT pmid FROM network_members WHERE seed_pmid = ?", [SEED]))
    assert len(members) == 11
    similar = pq.read_table(out / f"seed_{SEED}_similar.parquet").to_pylist()
    assert [s["similar_pmid"] for s in similar if s["pmid"] == SEED] == SIMILAR
    assert (out / f"seed_{SEED}_citations.csv").read_text().startswith("citing_pmid,cited_pmid,origins")
    g = nx.read_graphml(out / f"seed_{SEED}.graphml")
    assert g.number_of_nodes() == 11
    cites = {(u, v) for u, v, d in g.edges(data=True) if d["kind"] == "cites"}
    assert {(str(c), str(SEED)) for c in CITING} <= cites
    assert g.nodes[str(SEED)]["doi"] == "10.1056/NEJMoa2312948"
    assert (out / f"seed_{SEED}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    whole = tmp_path / "tables"
    r = run_cli(["--db", str(db), "export", "--format", "parquet", "--out", str(whole)], prefect_api)
    assert r.returncode == 0, r.stderr
    for t in ALL_TABLES:  # article tables are partitioned by pub_year: a folder of pub_year=YYYY folders
        path = whole / t.name if (whole / t.name).is_dir() else whole / f"{t.name}.parquet"
        rows = pq.ParquetDataset(path).read().num_rows if path.is_dir() else pq.read_metadata(path).num_rows
        assert rows == q(db, f"SELECT count(*) FROM {t.name}")[0][0]
    bad = run_cli(["--db", str(db), "export", "--format", "png", "--out", str(whole), "--seed", "123"], prefect_api)
    assert bad.returncode == 2 and "not a tracked seed" in bad.stderr and "Traceback" not in bad.stderr
    from litmeta.warehouse import export as ex

    monkeypatch.setattr(ex, "PNG_MAX_NODES", 5)
    with duckdb.connect(str(db), read_only=True) as con, pytest.raises(ex.ExportError, match="give --seed N"):
        ex.export(con, tmp_path / "too-big", ["png"])
