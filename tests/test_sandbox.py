"""Tests of the E-utilities sandbox server (extractors/sandbox) on a hand-made snapshot."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from Bio import Entrez

from litmeta.extractors.sandbox import RETSTART_CAP_ERROR, FaultSpec, SandboxServer, Snapshot, SnapshotError
from tests.conftest import REPO, require_corpus

API_KEY = "sekrit-key-0123456789"
BIG_TERM = "big result set"
BIG_N = 10_050


# ---------------------------------------------------------------------- snapshot fixture
def article(pmid: int, title: str, edat: tuple[int, int, int], pub_year: int, doi: str | None = None) -> str:
    doi_id = f'<ArticleId IdType="doi">{doi}</ArticleId>' if doi else ""
    eloc = f'<ELocationID EIdType="doi" ValidYN="Y">{doi}</ELocationID>' if doi else ""
    y, m, d = edat
    return f"""<PubmedArticle>
  <MedlineCitation Status="MEDLINE" Owner="NLM">
    <PMID Version="1">{pmid}</PMID>
    <DateRevised><Year>2024</Year><Month>01</Month><Day>02</Day></DateRevised>
    <Article PubModel="Print">
      <Journal>
        <ISSN IssnType="Print">1234-5678</ISSN>
        <JournalIssue CitedMedium="Print"><Volume>7</Volume><Issue>2</Issue>
          <PubDate><Year>{pub_year}</Year><Month>Mar</Month></PubDate></JournalIssue>
        <Title>Journal of Sandbox Tests</Title><ISOAbbreviation>J Sandbox Tests</ISOAbbreviation>
      </Journal>
      <ArticleTitle>{title}</ArticleTitle>
      <Pagination><MedlinePgn>1-9</MedlinePgn></Pagination>{eloc}
      <Abstract><AbstractText>Abstract of {pmid}.</AbstractText></Abstract>
      <AuthorList CompleteYN="Y">
        <Author ValidYN="Y"><LastName>Doe</LastName><ForeName>Jane</ForeName><Initials>J</Initials></Author>
        <Author ValidYN="Y"><CollectiveName>Sandbox Consortium</CollectiveName></Author>
      </AuthorList>
      <Language>eng</Language>
      <PublicationTypeList><PublicationType UI="D016428">Journal Article</PublicationType></PublicationTypeList>
    </Article>
    <MedlineJournalInfo><Country>England</Country><MedlineTA>J Sandbox Tests</MedlineTA><NlmUniqueID>0000001</NlmUniqueID></MedlineJournalInfo>
  </MedlineCitation>
  <PubmedData>
    <History><PubMedPubDate PubStatus="entrez"><Year>{y}</Year><Month>{m}</Month><Day>{d}</Day><Hour>6</Hour><Minute>0</Minute></PubMedPubDate></History>
    <PublicationStatus>ppublish</PublicationStatus>
    <ArticleIdList><ArticleId IdType="pubmed">{pmid}</ArticleId>{doi_id}</ArticleIdList>
  </PubmedData>
</PubmedArticle>
"""


BOOK = """<PubmedBookArticle>
  <BookDocument>
    <PMID Version="1">200</PMID>
    <ArticleIdList><ArticleId IdType="bookaccession">NBK1</ArticleId></ArticleIdList>
    <Book><Publisher><PublisherName>Sandbox Press</PublisherName></Publisher>
      <BookTitle book="sandbox">The Sandbox Book</BookTitle><PubDate><Year>2018</Year></PubDate></Book>
    <ArticleTitle>A chapter</ArticleTitle>
  </BookDocument>
  <PubmedBookData><History><PubMedPubDate PubStatus="entrez"><Year>2018</Year><Month>5</Month><Day>1</Day></PubMedPubDate></History>
    <PublicationStatus>ppublish</PublicationStatus>
    <ArticleIdList><ArticleId IdType="pubmed">200</ArticleId></ArticleIdList></PubmedBookData>
</PubmedBookArticle>
"""

PMC_ARTICLE = """<?xml version="1.0" ?>
<!DOCTYPE pmc-articleset PUBLIC "-//NLM//DTD ARTICLE SET 2.0//EN" "https://dtd.nlm.nih.gov/ncbi/pmc/articleset/nlm-articleset-2.0.dtd">
<pmc-articleset><article article-type="research-article"><front><journal-meta><journal-id>x</journal-id></journal-meta>
<article-meta><article-id pub-id-type="pmid">101</article-id><article-id pub-id-type="pmc">5001</article-id>
<title-group><article-title>PMC article</article-title></title-group></article-meta></front></article></pmc-articleset>
"""

SET_HEAD = '<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n<PubmedArticleSet>\n'

#: pmid -> (entrez date, publication year); PMIDs 101..110, entrez 2016..2024 (108 and 109 share a day)
RECORDS = {
    101: ((2016, 2, 1), 2015),
    102: ((2017, 3, 1), 2017),
    103: ((2018, 4, 1), 2018),
    104: ((2019, 5, 1), 2019),
    105: ((2020, 6, 1), 2020),
    106: ((2021, 7, 1), 2021),
    107: ((2022, 8, 1), 2022),
    108: ((2023, 9, 1), 2023),
    109: ((2023, 9, 1), 2023),
    110: ((2024, 10, 1), 2024),
}


def write_snapshot(root: Path) -> Path:
    (root / "pubmed").mkdir(parents=True)
    (root / "pmc").mkdir()
    first = [
        article(p, f"Title {p}", e, y, doi=f"10.1000/t{p}" if p % 2 else None)
        for p, (e, y) in RECORDS.items()
        if p <= 105
    ]
    rest = [article(p, f"Title {p}", e, y) for p, (e, y) in RECORDS.items() if p > 105]
    (root / "pubmed" / "a.xml").write_text(SET_HEAD + "".join(first) + "</PubmedArticleSet>\n")
    with gzip.open(root / "pubmed" / "b.xml.gz", "wt") as fh:
        fh.write(SET_HEAD + "".join(rest) + BOOK + "</PubmedArticleSet>\n")
    (root / "pmc" / "p.xml").write_text(PMC_ARTICLE)
    links = [
        ("101", "pubmed_pubmed", "102", "900"),
        ("101", "pubmed_pubmed", "103", "800"),
        ("101", "pubmed_pubmed", "104", ""),
        ("102", "pubmed_pubmed", "103", "950"),
        ("102", "pubmed_pubmed", "105", "700"),
        ("101", "pubmed_pubmed_citedin", "105", ""),
        ("101", "pubmed_pubmed_citedin", "106", ""),
        ("102", "pubmed_pubmed_citedin", "106", ""),
        ("102", "pubmed_pubmed_citedin", "107", ""),
        ("105", "pubmed_pubmed_refs", "101", ""),
        ("106", "pubmed_pubmed_refs", "102", ""),
        ("106", "pubmed_pubmed_refs", "101", ""),
        ("101", "pubmed_pmc_refs", "5001", ""),
    ]
    (root / "links.tsv").write_text(
        "dbfrom\tid\tlinkname\tto_id\tscore\n"
        + "".join(f"pubmed\t{a}\t{n}\t{b}\t{s}\n" for a, n, b, s in links)
    )
    rows = ["term\tpmid\tdate\n"]
    rows += [f"heart  attack\t{p}\t\n" for p in RECORDS]
    rows.append("heart attack\t999\t2021/06/01\n")  # no record: dated by the date column
    rows += [f"{BIG_TERM}\t{1_000_000 + k}\t\n" for k in range(BIG_N)]
    (root / "searches.tsv").write_text("".join(rows))
    (root / "meta.json").write_text(json.dumps({"source": "hand-made test snapshot", "api_keys": [API_KEY]}))
    return root


@pytest.fixture(scope="module")
def snap_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_snapshot(tmp_path_factory.mktemp("snapshot"))


@pytest.fixture(scope="module")
def sb(snap_dir: Path):
    with SandboxServer(snap_dir, rate_limit=False) as server:
        yield server


def call(server: SandboxServer, endpoint: str, method: str = "GET", **params) -> requests.Response:
    url = server.base_url + endpoint + ".fcgi"
    if method == "POST":
        return requests.post(url, data=params, timeout=10)
    return requests.get(url, params=params, timeout=10)


def bio(resp: requests.Response):
    """Parse with Biopython, validating against its bundled DTDs (offline)."""
    assert resp.status_code == 200, resp.text
    return Entrez.read(io.BytesIO(resp.content), validate=True)


def pmids_in(xml: str) -> list[int]:
    from lxml import etree

    root = etree.fromstring(
        xml.encode(), etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    )
    return [
        int(p)
        for p in root.xpath(
            "/PubmedArticleSet/*/MedlineCitation/PMID/text() | /PubmedArticleSet/*/BookDocument/PMID/text()"
        )
    ]


# ---------------------------------------------------------------------- snapshot loading
def test_snapshot_index(snap_dir: Path) -> None:
    snap = Snapshot.load(snap_dir)
    assert sorted(snap.pubmed) == [*RECORDS, 200]
    assert list(snap.pmc) == [5001]
    assert snap.pubmed[103].startswith(b"<PubmedArticle>") and snap.pubmed[103].endswith(b"</PubmedArticle>")
    assert snap.pubmed_dates[103].edat == 20180401 and snap.pubmed_dates[103].pdat == 20180301
    assert snap.link_targets("pubmed", 101, "pubmed_pubmed") == [(102, 900), (103, 800), (104, None)]
    assert snap.search("heart attack")[:2] == [101, 102]
    assert snap.search("no such thing") is None
    assert snap.api_keys == {API_KEY}


def test_bad_snapshot_dir(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="nope"):
        Snapshot.load(tmp_path / "nope")
    with pytest.raises(SnapshotError, match=str(tmp_path)):
        Snapshot.load(tmp_path)  # exists but holds nothing a snapshot has


# ---------------------------------------------------------------------- efetch
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_efetch_request_order_unknown_left_out(sb: SandboxServer, method: str) -> None:
    r = call(sb, "efetch", method, db="pubmed", id="105,101,424242,200,101,103", retmode="xml")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/xml")
    assert r.text.startswith('<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC')
    assert "pubmed_250101.dtd" in r.text.splitlines()[1]
    assert pmids_in(r.text) == [105, 101, 200, 103]  # request order, once each, unknown dropped


def test_efetch_repeated_id_params_and_pmc(sb: SandboxServer) -> None:
    r = requests.get(
        sb.base_url + "efetch.fcgi", params=[("db", "pubmed"), ("id", "102"), ("id", "110,107")], timeout=10
    )
    assert pmids_in(r.text) == [102, 110, 107]
    r = call(sb, "efetch", db="pmc", id="PMC5001,77")
    assert "<pmc-articleset><article" in r.text and r.text.count("<article ") == 1
    r = call(sb, "efetch", db="pubmed", id="1,2")
    assert pmids_in(r.text) == []  # all unknown: an empty set, not an error


# ---------------------------------------------------------------------- esearch / history
def test_esearch_order_paging_history_and_efetch(sb: SandboxServer) -> None:
    rec = bio(call(sb, "esearch", db="pubmed", term="heart attack", retmax=3, usehistory="y"))
    assert rec["Count"] == "11"
    # newest entrez date first; 108/109 share a day -> PMID desc; 999 is dated 2021/06/01
    assert rec["IdList"] == ["110", "109", "108"]
    assert rec["RetMax"] == "3" and rec["RetStart"] == "0"
    page2 = bio(call(sb, "esearch", "POST", db="pubmed", term="heart   attack", retstart=3, retmax=4))
    assert page2["IdList"] == ["107", "106", "999", "105"]
    webenv, key = rec["WebEnv"], rec["QueryKey"]
    r = call(sb, "efetch", db="pubmed", WebEnv=webenv, query_key=key, retstart=2, retmax=3)
    assert pmids_in(r.text) == [108, 107, 106]
    r = call(sb, "efetch", db="pubmed", WebEnv=webenv, query_key=key)  # default retmax 10000
    assert pmids_in(r.text) == [110, 109, 108, 107, 106, 105, 104, 103, 102, 101]


def test_esearch_date_filters(sb: SandboxServer) -> None:
    edat = bio(
        call(
            sb,
            "esearch",
            db="pubmed",
            term="heart attack",
            datetype="edat",
            mindate="2021",
            maxdate="2023/09",
        )
    )
    assert edat["IdList"] == ["109", "108", "107", "106", "999"]
    pdat = bio(call(sb, "esearch", db="pubmed", term="heart attack", mindate="2015", maxdate="2015/12/31"))
    assert pdat["IdList"] == ["101"]  # datetype defaults to pdat (101: published 2015, entered 2016)
    # splitting by date partitions the set
    total = 0
    for lo, hi in [("2000", "2018/12/31"), ("2019/01/01", "2021/06/30"), ("2021/07/01", "2030")]:
        total += int(
            bio(
                call(sb, "esearch", db="pubmed", term="heart attack", datetype="edat", mindate=lo, maxdate=hi)
            )["Count"]
        )
    assert total == 11


def test_esearch_unknown_term_and_errors(sb: SandboxServer) -> None:
    rec = bio(call(sb, "esearch", db="pubmed", term="zzz unknown"))
    assert (
        rec["Count"] == "0" and rec["IdList"] == [] and rec["ErrorList"]["PhraseNotFound"] == ["zzz unknown"]
    )
    r = call(sb, "esearch", db="fleegle", term="x")
    assert r.status_code == 200 and "<ERROR>Invalid db name specified: fleegle</ERROR>" in r.text
    r = call(sb, "efetch", db="pubmed", WebEnv="MCID_nope", query_key=1)
    assert r.status_code == 200 and "<eFetchResult>" in r.text and "<ERROR>" in r.text
    r = call(sb, "elink", dbfrom="pubmed", WebEnv="MCID_nope", query_key=1)
    assert r.status_code == 200 and "<ERROR>" in r.text
    r = call(sb, "efetch", db="pubmed")
    assert "<ERROR>Empty id list - nothing todo</ERROR>" in r.text
    r = call(sb, "esearch", db="pubmed", term="heart attack", retmode="json")
    assert r.status_code == 200 and "<ERROR>The sandbox serves retmode=xml only</ERROR>" in r.text


def test_retstart_cap(sb: SandboxServer) -> None:
    r = call(sb, "esearch", db="pubmed", term=BIG_TERM, retstart=9999, retmax=10)
    assert r.status_code == 200
    assert f"<eSearchResult>\n\t<ERROR>{RETSTART_CAP_ERROR}</ERROR>\n</eSearchResult>" in r.text.replace(
        "&apos;", "'"
    )
    assert (
        "'retstart' cannot be larger than 9998. For PubMed, ESearch can only retrieve the first 9,999 records"
        in r.text
    )
    with pytest.raises(RuntimeError, match="cannot be larger than 9998"):
        bio(r)
    # even a small result set refuses it
    assert (
        "cannot be larger than 9998"
        in call(sb, "esearch", db="pubmed", term="heart attack", retstart=10000).text
    )
    # retstart + retmax past the cap: ids only up to position 9,999
    rec = bio(call(sb, "esearch", db="pubmed", term=BIG_TERM, retstart=9990, retmax=100, usehistory="y"))
    assert rec["Count"] == str(BIG_N) and len(rec["IdList"]) == 9 and rec["RetMax"] == "9"
    # efetch from the history server has the same cap
    r = call(
        sb, "efetch", db="pubmed", WebEnv=rec["WebEnv"], query_key=rec["QueryKey"], retstart=9999, retmax=5
    )
    assert "<eFetchResult>" in r.text and "cannot be larger than 9998" in r.text


def test_epost_and_history(sb: SandboxServer) -> None:
    rec = bio(call(sb, "epost", "POST", db="pubmed", id="103,101,103"))
    assert rec["QueryKey"] == "1"
    rec2 = bio(call(sb, "epost", db="pubmed", id="110", WebEnv=rec["WebEnv"]))
    assert rec2["WebEnv"] == rec["WebEnv"] and rec2["QueryKey"] == "2"
    assert pmids_in(call(sb, "efetch", db="pubmed", WebEnv=rec["WebEnv"], query_key=1).text) == [103, 101]
    assert pmids_in(call(sb, "efetch", db="pubmed", WebEnv=rec["WebEnv"], query_key=2).text) == [110]
    assert (
        "<ERROR>Unable to obtain query #3</ERROR>"
        in call(sb, "efetch", db="pubmed", WebEnv=rec["WebEnv"], query_key=3).text
    )


# ---------------------------------------------------------------------- elink
def test_elink_repeated_ids_vs_comma_list(sb: SandboxServer) -> None:
    url = sb.base_url + "elink.fcgi"
    base = [("dbfrom", "pubmed"), ("db", "pubmed"), ("linkname", "pubmed_pubmed_citedin")]
    per_id = bio(requests.get(url, params=[*base, ("id", "101"), ("id", "102"), ("id", "999")], timeout=10))
    assert [ls["IdList"] for ls in per_id] == [["101"], ["102"], ["999"]]
    assert [[lk["Id"] for lk in ls["LinkSetDb"][0]["Link"]] for ls in per_id[:2]] == [
        ["105", "106"],
        ["106", "107"],
    ]
    assert per_id[2]["LinkSetDb"] == []  # no links: a LinkSet with just the IdList
    merged = bio(requests.post(url, data=[*base, ("id", "101,102")], timeout=10))
    assert len(merged) == 1 and merged[0]["IdList"] == ["101", "102"]
    assert [lk["Id"] for lk in merged[0]["LinkSetDb"][0]["Link"]] == [
        "105",
        "106",
        "107",
    ]  # merged, deduplicated


def test_elink_all_pubmed_links_and_scores(sb: SandboxServer) -> None:
    rec = bio(call(sb, "elink", dbfrom="pubmed", db="pubmed", id="101", cmd="neighbor"))
    names = [db["LinkName"] for db in rec[0]["LinkSetDb"]]
    assert names == ["pubmed_pubmed", "pubmed_pubmed_citedin"]
    assert all("Score" not in lk for db in rec[0]["LinkSetDb"] for lk in db["Link"])
    scored = bio(call(sb, "elink", dbfrom="pubmed", db="pubmed", id="101", cmd="neighbor_score"))
    links = scored[0]["LinkSetDb"][0]["Link"]
    assert scored[0]["LinkSetDb"][0]["LinkName"] == "pubmed_pubmed"
    assert links == [{"Id": "102", "Score": "900"}, {"Id": "103", "Score": "800"}, {"Id": "104"}]
    both = bio(call(sb, "elink", dbfrom="pubmed", db="pubmed", id="101,102", cmd="neighbor_score"))
    assert [lk["Id"] for lk in both[0]["LinkSetDb"][0]["Link"]] == [
        "103",
        "102",
        "105",
        "104",
    ]  # by best score
    pmc = bio(call(sb, "elink", dbfrom="pubmed", db="pmc", id="101", linkname="pubmed_pmc_refs"))
    assert pmc[0]["LinkSetDb"][0]["DbTo"] == "pmc" and pmc[0]["LinkSetDb"][0]["Link"] == [{"Id": "5001"}]


def test_elink_neighbor_history(sb: SandboxServer) -> None:
    url = sb.base_url + "elink.fcgi"
    params = [
        ("dbfrom", "pubmed"),
        ("db", "pubmed"),
        ("cmd", "neighbor_history"),
        ("linkname", "pubmed_pubmed_refs"),
    ]
    rec = bio(requests.get(url, params=[*params, ("id", "105"), ("id", "106")], timeout=10))
    assert rec[0]["WebEnv"] == rec[1]["WebEnv"]
    hist = [ls["LinkSetDbHistory"][0] for ls in rec]
    assert [h["LinkName"] for h in hist] == ["pubmed_pubmed_refs"] * 2
    fetched = [
        pmids_in(call(sb, "efetch", db="pubmed", WebEnv=rec[0]["WebEnv"], query_key=h["QueryKey"]).text)
        for h in hist
    ]
    assert fetched == [[101], [102, 101]]
    # ids taken from the history server give one merged LinkSet
    post = bio(call(sb, "epost", db="pubmed", id="101,102"))
    rec = bio(
        call(
            sb,
            "elink",
            dbfrom="pubmed",
            linkname="pubmed_pubmed_citedin",
            WebEnv=post["WebEnv"],
            query_key=post["QueryKey"],
        )
    )
    assert len(rec) == 1 and rec[0]["IdList"] == ["101", "102"]


# ---------------------------------------------------------------------- esummary / einfo
def test_esummary_and_einfo(sb: SandboxServer) -> None:
    docs = bio(call(sb, "esummary", db="pubmed", id="101,102"))
    assert [d["Id"] for d in docs] == ["101", "102"]
    d = docs[0]
    assert d["Title"] == "Title 101" and d["Source"] == "J Sandbox Tests" and d["PubDate"] == "2015 Mar"
    assert d["AuthorList"] == ["Doe J", "Sandbox Consortium"] and d["DOI"] == "10.1000/t101"
    assert d["ArticleIds"]["pubmed"] == ["101"] and d["HasAbstract"] == 1 and d["PmcRefCount"] == 1
    assert "DOI" not in docs[1]  # like NCBI: no DOI item when the record has none
    with pytest.raises(RuntimeError, match="cannot get document summary"):
        bio(call(sb, "esummary", db="pubmed", id="101,4242"))
    assert bio(call(sb, "einfo"))["DbList"] == ["pubmed", "pmc"]
    assert bio(call(sb, "einfo", db="pubmed"))["DbInfo"][0]["Count"] == "11"


# ---------------------------------------------------------------------- rate limit
def _burst(server: SandboxServer, n: int, **extra) -> list[requests.Response]:
    with requests.Session() as s:
        return [
            s.get(server.base_url + "einfo.fcgi", params={"tool": "t", "email": "e@x", **extra}, timeout=10)
            for _ in range(n)
        ]


def test_rate_limit_without_key(snap_dir: Path) -> None:
    with SandboxServer(snap_dir) as server:
        got = _burst(server, 5)
        assert [r.status_code for r in got] == [200, 200, 200, 429, 429]
        r = got[3]
        assert r.headers["Content-Type"] == "application/json" and "Retry-After" not in r.headers
        assert r.text == '{"error":"API rate limit exceeded","count":"4"}'
        assert got[4].json() == {"error": "API rate limit exceeded", "count": "5"}
        stats = server.stats()
        assert stats["rate_limited"] == 2 and stats["status"] == {"200": 3, "429": 2}
        time.sleep(1.05)
        assert _burst(server, 1)[0].status_code == 200  # the window slid on


def test_rate_limit_with_listed_key(snap_dir: Path) -> None:
    with SandboxServer(snap_dir) as server:
        got = _burst(server, 11, api_key=API_KEY)
        assert [r.status_code for r in got] == [200] * 10 + [429]
        assert got[10].json()["count"] == "11"
        # an unlisted key counts as no key
        assert [r.status_code for r in _burst(server, 4, api_key="not-listed")] == [200, 200, 200, 429]
        stats_text = requests.get(server.base_url.replace("/entrez/eutils/", "/_stats"), timeout=10).text
        assert API_KEY not in stats_text and "not-listed" not in stats_text
        assert all(API_KEY not in r.text for r in got)
        labels = list(server.stats()["clients"])
        assert any(label.startswith("key:") for label in labels)


def test_rate_limit_off(snap_dir: Path) -> None:
    with SandboxServer(snap_dir, rate_limit=False) as server:
        assert {r.status_code for r in _burst(server, 12)} == {200}


# ---------------------------------------------------------------------- faults
def _outcomes(snap_dir: Path, spec: str, n: int = 40) -> tuple[list[str], dict]:
    out = []
    with SandboxServer(snap_dir, faults=spec, rate_limit=False) as server:
        for _ in range(n):
            try:
                r = requests.get(
                    server.base_url + "efetch.fcgi", params={"db": "pubmed", "id": "101,102,103"}, timeout=10
                )
            except requests.ConnectionError:
                out.append("reset")
                continue
            if r.status_code != 200:
                out.append(str(r.status_code))
            elif "<ERROR>" in r.text:
                out.append("error200")
            elif not r.text.rstrip().endswith("</PubmedArticleSet>"):
                assert int(r.headers["Content-Length"]) == len(r.content)
                out.append("truncate")
            else:
                assert pmids_in(r.text) == [101, 102, 103]
                out.append("ok")
        return out, server.stats()


def test_faults_reproducible(snap_dir: Path) -> None:
    spec = "429=0.1,500=0.1,502=0.1,truncate=0.1,error200=0.1,reset=0.1,seed=7"
    first, stats = _outcomes(snap_dir, spec)
    second, _ = _outcomes(snap_dir, spec)
    assert first == second
    assert {"ok", "429", "500", "502", "truncate", "error200", "reset"} <= set(first)
    other, _ = _outcomes(snap_dir, spec.replace("seed=7", "seed=8"))
    assert other != first
    faults = {k: first.count(k) for k in ("429", "500", "502", "truncate", "error200", "reset")}
    assert stats["faults"] == {k: v for k, v in faults.items() if v}
    assert stats["requests"] == 40 and stats["rate_limited"] == 0


def test_fault_error200_bodies(snap_dir: Path) -> None:
    with SandboxServer(snap_dir, faults="error200=1,seed=1", rate_limit=False) as server:
        assert "<eFetchResult>" in call(server, "efetch", db="pubmed", id="101").text
        assert "Unable to obtain query #1" in call(server, "efetch", db="pubmed", id="101").text
        assert "<ERROR>Search Backend failed:" in call(server, "esearch", db="pubmed", term="x").text
        assert "<eLinkResult>" in call(server, "elink", dbfrom="pubmed", id="101").text
        with pytest.raises(RuntimeError):
            bio(call(server, "elink", dbfrom="pubmed", id="101"))
        assert (
            requests.get(server.base_url.replace("/entrez/eutils/", "/_stats"), timeout=10).status_code == 200
        )


@pytest.mark.parametrize(
    "spec, message",
    [
        ("500=0.1,bogus=0.2", "bogus"),
        ("500=abc", "500=abc"),
        ("500=1.5", "500=1.5"),
        ("seed=x", "seed=x"),
        ("500", "'500'"),
        ("500=0.6,502=0.6", "add up"),
    ],
)
def test_fault_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultSpec.parse(spec)


def test_fault_spec_draw_is_pure() -> None:
    spec = FaultSpec.parse("500=0.3,truncate=0.2,seed=3")
    assert [spec.draw(i) for i in range(50)] == [spec.draw(i) for i in range(50)]
    assert FaultSpec.parse("").draw(0) is None


# ---------------------------------------------------------------------- stats
def test_stats_counts_and_reset(snap_dir: Path) -> None:
    with SandboxServer(snap_dir, rate_limit=False) as server:
        stats_url = server.base_url.replace("/entrez/eutils/", "/_stats")
        call(server, "efetch", db="pubmed", id="101,102,103")
        call(server, "efetch", "POST", db="pubmed", id="104")
        requests.get(
            server.base_url + "elink.fcgi",
            params=[("dbfrom", "pubmed"), ("id", "101"), ("id", "102")],
            timeout=10,
        )
        call(server, "esearch", db="pubmed", term="heart attack")
        stats = requests.get(stats_url, timeout=10).json()
        assert stats["requests"] == 4
        assert stats["by_endpoint"] == {"efetch": 2, "elink": 1, "esearch": 1}
        assert stats["ids_requested"]["efetch"] == 4 and stats["ids_requested"]["elink"] == 2
        assert stats["status"] == {"200": 4} and stats["faults"] == {} and stats["rate_limited"] == 0
        (stamps,) = stats["clients"].values()
        assert len(stamps) == 4 and stamps == sorted(stamps)
        assert requests.post(stats_url + "/reset", timeout=10).json()["reset"] is True
        assert server.stats()["requests"] == 0
        call(server, "einfo")
        assert requests.get(stats_url, params={"reset": 1}, timeout=10).json()["requests"] == 1
        assert server.stats()["requests"] == 0
        call(server, "einfo")
        server.reset_stats()
        assert server.stats()["by_endpoint"] == {}


def test_long_get_gets_414(sb: SandboxServer) -> None:
    ids = ",".join(str(30_000_000 + i) for i in range(1000))
    assert call(sb, "efetch", db="pubmed", id=ids).status_code == 414
    assert call(sb, "efetch", "POST", db="pubmed", id=ids).status_code == 200


# ---------------------------------------------------------------------- program
def test_module_cli_prints_base_url_first(snap_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "litmeta.extractors.sandbox", "--snapshot", str(snap_dir), "--no-rate-limit"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("http://127.0.0.1:") and first.endswith("/entrez/eutils/")
        assert bio(requests.get(first + "einfo.fcgi", timeout=10))["DbList"] == ["pubmed", "pmc"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_module_cli_bad_snapshot(tmp_path: Path) -> None:
    bad = tmp_path / "missing-snapshot"
    res = subprocess.run(
        [sys.executable, "-m", "litmeta.extractors.sandbox", "--snapshot", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 2 and str(bad) in res.stderr and res.stdout == ""


# ---------------------------------------------------------------------- real documents (acceptance 6)
def _read_real(path: Path):
    with open(path, "rb") as fh:
        return Entrez.read(fh, validate=True)


def _keys(obj) -> set[str]:
    return set(obj.keys())


@pytest.mark.corpus
def test_structure_matches_real_esearch(sb: SandboxServer) -> None:
    corpus = require_corpus("esearch")
    plain = _read_real(corpus / "biopython__esearch1.xml")
    ours = bio(call(sb, "esearch", db="pubmed", term="heart attack"))
    assert _keys(ours) == _keys(plain)
    with_history = _read_real(corpus / "biopython__esearch2.xml")
    ours = bio(call(sb, "esearch", db="pubmed", term="heart attack", usehistory="y"))
    assert _keys(ours) == _keys(with_history)
    not_found = _read_real(corpus / "biopython__esearch8.xml")
    ours = bio(call(sb, "esearch", db="pubmed", term="abcXYZ"))
    assert _keys(ours) == _keys(not_found)
    assert _keys(ours["ErrorList"]) == _keys(not_found["ErrorList"])
    assert _keys(ours["WarningList"]) == _keys(not_found["WarningList"])


@pytest.mark.corpus
def test_structure_matches_real_elink(sb: SandboxServer) -> None:
    corpus = require_corpus("elink")
    for name, ids in [
        ("biopython__elink4.xml", "101"),
        ("eutils__test_elink.xml", "101"),
        ("biopython__elink3.xml", "101,102"),
    ]:
        real = _read_real(corpus / name)
        ours = bio(call(sb, "elink", dbfrom="pubmed", db="pubmed", id=ids, linkname="pubmed_pubmed"))
        assert len(ours) == len(real) == 1, name
        assert _keys(ours[0]) == _keys(real[0]), name
        assert _keys(ours[0]["LinkSetDb"][0]) == _keys(real[0]["LinkSetDb"][0]), name
        assert _keys(ours[0]["LinkSetDb"][0]["Link"][0]) == _keys(real[0]["LinkSetDb"][0]["Link"][0]), name
        assert len(ours[0]["IdList"]) == len(real[0]["IdList"]), name
    # neighbor_score adds only a Score to each Link
    real = _read_real(corpus / "biopython__elink1.xml")
    ours = bio(call(sb, "elink", dbfrom="pubmed", db="pubmed", id="101", cmd="neighbor_score"))
    assert _keys(ours[0]) == _keys(real[0]) and _keys(ours[0]["LinkSetDb"][0]) == _keys(
        real[0]["LinkSetDb"][0]
    )
    assert _keys(ours[0]["LinkSetDb"][0]["Link"][0]) == _keys(real[0]["LinkSetDb"][0]["Link"][0]) | {"Score"}


@pytest.mark.corpus
def test_structure_matches_real_epost_and_esummary(sb: SandboxServer) -> None:
    real = _read_real(require_corpus("epost") / "biopython__epost1.xml")
    assert _keys(bio(call(sb, "epost", db="pubmed", id="101,102"))) == _keys(real)
    real = _read_real(require_corpus("esummary") / "biopython__esummary1.xml")
    ours = bio(call(sb, "esummary", db="pubmed", id="102,104"))  # records without a DOI, like the real ones
    assert _keys(ours[0]) == _keys(real[0])
