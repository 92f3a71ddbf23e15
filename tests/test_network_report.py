"""What users look at: network metrics, views, the digest and its webhook, the HTML report (in a real
browser), the PNG, partitioned and incremental exports, and the one-line refusals of bad input."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

from litmeta.extractors.sandbox import SandboxServer
from tests.conftest import BUNDLED_SNAPSHOT, REPO
from tests.pubmed_fixtures import article, document

pytestmark = pytest.mark.e2e

SEED = 39047240
CITING = [39321136, 40437045, 39234859, 39910042, 40072099]
NEW_CITING = [41000001, 41000002, 41000003]


def q(db, sql: str, params=None):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def tracked(prefect_api, tmp_path_factory):
    """A demo warehouse observed twice: the bundled snapshot (run 1), then with 3 new citing articles
    (run 2, a refresh posting to a webhook), then the same snapshot again (run 3, nothing new)."""
    from litmeta.flows.network import build_network, refresh_seeds

    tmp = tmp_path_factory.mktemp("tracked")
    demo = str(tmp / "demo.duckdb")
    db = str(tmp / "track.duckdb")
    v2 = tmp / "v2"
    shutil.copytree(BUNDLED_SNAPSHOT, v2)
    (v2 / "pubmed" / "new_citing.xml").write_bytes(document(*(
        article(p, title=f"New article {p} citing the seed.", revised="2026-01-01", refs=(SEED,)) for p in NEW_CITING)))
    with (v2 / "links.tsv").open("a") as f:
        for p in NEW_CITING:
            f.write(f"pubmed\t{SEED}\tpubmed_pubmed_citedin\t{p}\t\npubmed\t{p}\tpubmed_pubmed_refs\t{SEED}\t\n")
    posts: list[bytes] = []
    with SandboxServer(BUNDLED_SNAPSHOT) as sb:
        run1 = build_network(seed=SEED, db=db, eutils_url=sb.base_url, depth=1, similar_top=5)["run_id"]
    shutil.copy(db, demo)  # the demo warehouse: one observation of the bundled snapshot
    with webhook(posts) as url, pytest.MonkeyPatch.context() as mp:
        mp.setenv("LITMETA_NOTIFY_URL", url)
        with SandboxServer(v2) as sb:
            second = refresh_seeds(db=db, eutils_url=sb.base_url, notify=True)
            after_second = list(posts)
            third = refresh_seeds(db=db, eutils_url=sb.base_url, notify=True)
    return {"demo": demo, "db": db, "run1": run1, "second": second, "third": third, "posts": posts,
            "posts_after_second": after_second, "url": url}


class _Hook(BaseHTTPRequestHandler):
    posts: list[bytes]

    def do_POST(self) -> None:
        self.posts.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


class webhook:
    """A local webhook receiver collecting POST bodies into ``posts``; yields its URL."""

    def __init__(self, posts: list[bytes]) -> None:
        handler = type("Hook", (_Hook,), {"posts": posts})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_port}/hooks/secret-token"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- metrics and views -------------------------------------------------------------------------
def test_metrics_one_row_per_member_pagerank_sums_to_one_and_recomputation_is_identical(tracked, tmp_path, monkeypatch):
    from litmeta.warehouse import metrics
    from litmeta.warehouse.db import connect

    demo = tracked["demo"]
    latest = q(demo, "SELECT last_refreshed_at FROM seeds WHERE seed_pmid = ?", [SEED])[0][0]
    members = q(demo, "SELECT pmid FROM network_members WHERE seed_pmid = ? AND last_seen = ? ORDER BY 1", [SEED, latest])
    rows = "SELECT * FROM network_metrics WHERE seed_pmid = ? AND observed_at = ? ORDER BY pmid"
    first = q(demo, rows, [SEED, latest])
    assert [(r[1],) for r in first] == members and len(members) == 11
    assert abs(q(demo, "SELECT sum(pagerank) FROM network_metrics WHERE observed_at = ?", [latest])[0][0] - 1) < 1e-6
    seed = q(demo, "SELECT local_cited_by, global_cited_by, global_cited_by_source, pagerank_rank, betweenness "
                   "FROM network_metrics WHERE pmid = ?", [SEED])
    assert seed == [(5, 5, "elink", 1, 0.0)]
    assert q(demo, "SELECT count(DISTINCT community) FROM network_metrics WHERE pmid IN ?", [CITING + [SEED]]) == [(1,)]

    copy = tmp_path / "copy.duckdb"
    shutil.copy(demo, copy)
    with connect(copy) as con:
        metrics.observe_metrics(con, SEED)
    assert q(copy, rows, [SEED, latest]) == first, "two computations on the same warehouse give identical rows"

    monkeypatch.setattr(metrics, "BETWEENNESS_MAX_WORK", 0)
    with connect(copy) as con:
        if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'icite_metrics'"
                           ).fetchall()[0][0]:
            con.execute("CREATE TABLE icite_metrics (pmid BIGINT, observed_at TIMESTAMP, run_id VARCHAR, "
                        "citation_count INTEGER)")
        later = latest + dt.timedelta(seconds=1)  # iCite asked during the observing run, after its timestamp
        con.execute("INSERT INTO icite_metrics (pmid, observed_at, run_id, citation_count) VALUES (?, ?, ?, 9), "
                    "(?, ?, 'a-later-run', 12)", [SEED, later, tracked["run1"], SEED, later + dt.timedelta(hours=1)])
        m = metrics.observe_metrics(con, SEED)
    assert m.betweenness_skipped
    assert q(copy, "SELECT global_cited_by, global_cited_by_source FROM network_metrics WHERE pmid = ?", [SEED]) == [
        (9, "icite")]
    assert q(copy, "SELECT count(*) FROM network_metrics WHERE betweenness IS NOT NULL") == [(0,)]


def test_views_answer_their_documented_example_queries(tracked):
    from litmeta.schemas.docs import VIEW_DOCS, render

    demo = tracked["demo"]
    examples = {name: example for name, _doc, example in VIEW_DOCS}
    assert set(examples) >= {"co_citation", "bibliographic_coupling", "prior_works", "derivative_works"}
    for example in examples.values():
        assert example in render()
        q(demo, example)
    assert q(demo, examples["prior_works"])[0][:2] == (SEED, 5)
    assert sorted(r[0] for r in q(demo, examples["derivative_works"])) == sorted(CITING)
    # the five citing articles each cite only the seed: every pair of them is coupled by exactly one reference
    assert q(demo, "SELECT count(*), min(n_shared), max(n_shared) FROM bibliographic_coupling") == [(10, 1, 1)]


# -- digest and webhook ------------------------------------------------------------------------
def test_digest_lists_exactly_the_new_citing_articles_and_posts_once(tracked, capsys):
    from litmeta.flows.cli import main

    db = tracked["db"]
    seeds = tracked["second"]["seeds"][str(SEED)]
    assert seeds["digest"] == {"news": True, "notified": "sent"}
    assert tracked["third"]["seeds"][str(SEED)]["digest"] == {"news": False, "notified": "not sent: nothing new"}
    assert len(tracked["posts_after_second"]) == 1 and len(tracked["posts"]) == 1, "exactly one POST, for the news"
    posted = json.loads(tracked["posts"][0])
    assert sorted(a["pmid"] for a in posted["new_citing"]) == NEW_CITING
    assert "3 new citing article(s)" in posted["text"]
    assert q(db, "SELECT count(*), min(status) FROM notifications") == [(1, 200)]
    assert tracked["url"].split("/")[-1] not in json.dumps(q(db, "SELECT * FROM notifications"), default=str)

    assert main(["--db", db, "digest", str(SEED), "--format", "json"]) == 0
    nothing = json.loads(capsys.readouterr().out)
    assert not nothing["has_news"] and nothing["new_citing"] == [] and nothing["new_members"] == []
    observations = [r[0] for r in q(db, "SELECT DISTINCT observed_at FROM network_metrics ORDER BY 1")]
    assert len(observations) == 3
    from litmeta.warehouse.digest import digest_of

    d = digest_of(db, SEED, observations[0])  # the first observation as baseline: the news of run 2
    assert sorted(a["pmid"] for a in d.new_citing) == NEW_CITING
    assert sorted(m["pmid"] for m in d.new_members) == NEW_CITING
    assert d.new_edges_total == 3 and d.no_longer_reached == []
    assert any(m["pmid"] == SEED and m["cited_by_before"] == 5 and m["cited_by_now"] == 8 for m in d.rank_moves)
    assert "New citing articles of the seed" in d.markdown() and str(NEW_CITING[0]) in d.text()
    assert main(["--db", db, "digest", str(SEED), "--since", observations[0].date().isoformat(),
                 "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("# litmeta: PMID 39047240 ")

    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def artifacts() -> list[str]:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"litmeta-digest-{SEED}"])))
            return [a.data for a in found]

    digests = asyncio.run(artifacts())  # every refresh published its digest as a markdown artifact
    assert any("3 new citing article(s)" in d for d in digests) and any("nothing new" in d for d in digests)

    with webhook(posts := []) as url:  # the same change is never posted twice to the same webhook
        assert main(["--db", db, "digest", str(SEED), "--notify", url]) == 0
        assert "nothing new" in capsys.readouterr().err and posts == []


# -- report in a real browser --------------------------------------------------------------------
CHROMIUM = Path("/usr/bin/chromium")


def test_report_in_a_headless_browser(tracked, tmp_path):
    from litmeta.warehouse.report import write_report

    out, drawn, total = write_report(tracked["demo"], SEED, tmp_path / "report.html")
    html = out.read_text()
    assert "<script src=" not in html and "<link " not in html, "every script and style inline"
    assert out.stat().st_size < 15_000_000
    assert drawn == total == 11
    if not CHROMIUM.exists():
        pytest.skip(f"no browser: {CHROMIUM} is absent (apt-get install chromium; .ci/run does it)")
    sync_playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").sync_playwright
    shot = tmp_path / "map.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors: list[str] = []
        failed: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("request", lambda r: None if r.url.startswith(("file:", "data:", "blob:")) else failed.append(r.url))
        page.goto(out.as_uri())
        page.wait_for_selector("#map .scatterlayer path.point")
        data = json.loads(page.text_content("#litmeta-data"))
        drawn_points = page.eval_on_selector_all("#map .scatterlayer .trace path.point", "els => els.length")
        labels = page.eval_on_selector_all("#map .scatterlayer .trace text", "els => els.map(e => e.textContent)")
        page.locator("#map").screenshot(path=str(shot))
        page.get_by_text("layout: network").first.click()
        page.get_by_text("layout: timeline").first.click()
        page.wait_for_timeout(300)
        after_switch = page.eval_on_selector_all("#map .scatterlayer .trace path.point", "els => els.length")
        browser.close()
    assert errors == [] and failed == []
    assert drawn_points == len(data["nodes"]) == 11 and after_switch == drawn_points
    assert {"source", "target", "kind"} <= set(data["edges"][0])
    assert set(data["nodes"][0]) >= {"pmid", "title", "year", "first_author", "community", "pagerank", "cited_by"}
    assert "Litzow 2024" in labels
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 20)
    non_white = sum(n for n, c in colours if c != (255, 255, 255))
    assert len(colours) > 20 and non_white > 0.01 * img.width * img.height, "the map is drawn, not blank"
    if os.environ.get("LITMETA_UPDATE_SCREENSHOT") == "1":  # the README's picture (docs/network.md)
        shutil.copy(shot, REPO / "docs" / "report_map.png")


# -- PNG ---------------------------------------------------------------------------------------
def test_png_has_a_legend_and_first_author_year_labels(tracked, tmp_path):
    import matplotlib.pyplot as plt

    from litmeta.flows.cli import main
    from litmeta.warehouse.db import connect
    from litmeta.warehouse.export import network_figure, network_graph

    assert main(["--db", tracked["demo"], "export", "--format", "png", "--out", str(tmp_path)]) == 0
    assert main(["--db", tracked["demo"], "export", "--format", "png", "--out", str(tmp_path), "--seed", str(SEED),
                 "--png-layout", "year"]) == 0
    assert (tmp_path / f"seed_{SEED}.png").read_bytes()[:4] == b"\x89PNG"
    with connect(tracked["demo"], read_only=True) as con:
        g = network_graph(con, SEED)
    for colour, layout in (("relation", "spring"), ("community", "year")):
        fig = network_figure(g, SEED, colour, layout)
        ax = fig.axes[0]
        labels = {t.get_text() for t in ax.texts}
        assert "Litzow 2024" in labels and f"PMID {CITING[0]} 2024" in labels and len(labels) == 11
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == (["seed", "cited_by", "similar"] if colour == "relation" else
                          [f"community {i}" for i in range(1, len(legend) + 1)])
        assert (ax.get_xlabel() == "publication year") == (layout == "year")
        plt.close(fig)


# -- exports -----------------------------------------------------------------------------------
def _read_back(con, out: Path, table) -> str:
    from litmeta.schemas.model import quote

    cols = ", ".join(quote(c) for c in table.column_names)
    path = out / table.name
    if path.is_dir() and not any(path.iterdir()):  # no row to export: an empty folder
        return f"SELECT {cols} FROM {table.name} WHERE false"
    if path.is_dir():
        return (f"SELECT {cols} FROM read_parquet('{path}/**/*.parquet', hive_partitioning = true, "
                "hive_types = {'pub_year': INTEGER})")
    return f"SELECT {cols} FROM '{out / (table.name + '.parquet')}'"


def test_parquet_partitioned_by_pub_year_and_incremental_since_a_run(tracked, tmp_path):
    from litmeta.schemas import ALL_TABLES
    from litmeta.warehouse.export import export_warehouse

    db = tracked["db"]
    full = tmp_path / "full"
    export_warehouse(db, full, ["parquet"])
    assert sorted(p.name for p in (full / "articles").iterdir()) == ["pub_year=2017", "pub_year=2020", "pub_year=2022",
                                                                   "pub_year=2024", "pub_year=2025"]
    assert (full / "authors" / "pub_year=2024").is_dir() and not (full / "citation_edges").is_dir()
    with duckdb.connect(db, read_only=True) as con:
        for t in ALL_TABLES:
            back = _read_back(con, full, t)
            mine = f"SELECT * FROM {t.name}"
            assert con.execute(f"({mine} EXCEPT ALL {back}) UNION ALL ({back} EXCEPT ALL {mine})").fetchall() == [], t.name
            assert con.execute(f"SELECT count(*) FROM ({back})").fetchall() == con.execute(
                f"SELECT count(*) FROM {t.name}").fetchall()

    run2 = q(db, "SELECT run_id FROM ingest_runs ORDER BY started_at")[1][0]
    inc = tmp_path / "inc"
    export_warehouse(db, inc, ["parquet"], since_run=tracked["second"]["run_id"])
    with duckdb.connect(db, read_only=True) as con:
        assert run2 == tracked["second"]["run_id"]
        end = con.execute("SELECT finished_at FROM ingest_runs WHERE run_id = ?", [run2]).fetchall()[0][0]
        tables = {t.name: t for t in ALL_TABLES}
        arts = con.execute(f"SELECT pmid FROM ({_read_back(con, inc, tables['articles'])}) ORDER BY 1").fetchall()
        assert arts == []  # run 3 wrote no article: nothing new to load downstream
        metrics = con.execute(f"SELECT DISTINCT observed_at FROM ({_read_back(con, inc, tables['network_metrics'])})"
                              ).fetchall()
        assert metrics == con.execute("SELECT DISTINCT observed_at FROM network_metrics WHERE observed_at > ?",
                                      [end]).fetchall() and len(metrics) == 1
    inc1 = tmp_path / "inc1"
    export_warehouse(db, inc1, ["parquet"], since_run=q(db, "SELECT run_id FROM ingest_runs ORDER BY started_at")[0][0])
    with duckdb.connect(db, read_only=True) as con:
        back = _read_back(con, inc1, tables["articles"])
        assert [r[0] for r in con.execute(f"SELECT pmid FROM ({back}) ORDER BY 1").fetchall()] == NEW_CITING
        mine = "SELECT * FROM articles WHERE pmid IN ?"
        assert sorted(con.execute(back).fetchall()) == sorted(con.execute(mine, [NEW_CITING]).fetchall())


# -- bad input ---------------------------------------------------------------------------------
def test_bad_input_is_one_line_and_exit_2(tracked, tmp_path, capsys):
    from litmeta.flows.cli import main
    from litmeta.warehouse.db import connect
    from litmeta.warehouse.load import utcnow
    from litmeta.warehouse.network import register_seed

    db = tracked["demo"]
    fresh = tmp_path / "fresh.duckdb"
    with connect(fresh) as con:
        register_seed(con, 123, 1, ["refs"], None, 5, utcnow())
    cases = [
        (["--db", db, "digest", "999"], "not tracked"),
        (["--db", db, "report", "999", "--out", str(tmp_path / "r.html")], "not tracked"),
        (["--db", str(fresh), "digest", "123"], "no observation yet"),
        (["--db", str(fresh), "report", "123", "--out", str(tmp_path / "r.html")], "no observation yet"),
        (["--db", db, "digest", str(SEED), "--since", "2999-01-01"], "after the last observation"),
        (["--db", db, "report", str(SEED), "--out", str(tmp_path / "missing" / "r.html")], "does not exist"),
        (["--db", db, "report", str(SEED), "--out", str(tmp_path)], "is a directory"),
        (["--db", db, "digest", str(SEED), "--notify", "ftp://example.org/x"], "not an http(s) URL"),
        (["--db", db, "export", "--format", "png", "--out", str(tmp_path / "x"), "--since-run", "r"], "--since-run"),
        (["--db", db, "export", "--format", "parquet", "--out", str(tmp_path / "x"), "--since-run", "nope"],
         "no such run"),
    ]
    for argv, says in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "r.html").exists()


def test_a_large_network_is_drawn_with_its_top_n_members_and_says_so(tracked, tmp_path, monkeypatch):
    from litmeta.warehouse import report

    monkeypatch.setattr(report, "EDGE_MAX", 2)
    out, drawn, total = report.write_report(tracked["db"], SEED, tmp_path / "top.html", top=6)
    html = out.read_text()
    data = json.loads(html.split('id="litmeta-data">', 1)[1].split("</script>", 1)[0])
    ranks = q(tracked["db"], "SELECT pmid FROM network_metrics WHERE observed_at = (SELECT max(observed_at) FROM "
                             "network_metrics) ORDER BY pagerank_rank LIMIT 6")
    assert (drawn, total) == (6, 14) and [n["pmid"] for n in data["nodes"]] == [p for (p,) in ranks]
    assert "the top 6 of 14 articles by PageRank (N = 6)" in html
    assert len(data["edges"]) == 2 < data["links"] and f"2 of the {data['links']} among them" in html
    assert all(e["source"] in {n["pmid"] for n in data["nodes"]} for e in data["edges"])
