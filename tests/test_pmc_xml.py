"""extractors.pmc_xml: JATS (pmc-articleset and single .nxml) -> pmc_articles, reference_entries, citation_edges."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
from lxml import etree

from litmeta.extractors.pmc_xml import (
    iter_batches,
    joined_text,
    normalize_doi,
    normalize_pmcid,
    normalize_pmid,
)
from litmeta.schemas.tables import TABLES
from tests.conftest import CORPUS, require_corpus

XLINK = 'xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:mml="http://www.w3.org/1998/Math/MathML"'

ARTICLE_1 = f"""<article {XLINK} article-type="research-article">
  <front>
    <journal-meta>
      <journal-id journal-id-type="nlm-ta">Test J</journal-id>
      <journal-title-group><journal-title>Journal of <italic>Tests</italic></journal-title></journal-title-group>
    </journal-meta>
    <article-meta>
      <article-id pub-id-type="pmid">111</article-id>
      <article-id pub-id-type="pmc">1001</article-id>
      <article-id pub-id-type="doi">10.1000/one</article-id>
      <title-group><article-title>CO<sub>2</sub> and H<sup>+</sup>
        <italic>in vivo</italic></article-title></title-group>
      <pub-date pub-type="pmc-release"><day>1</day><month>1</month><year>2021</year></pub-date>
      <pub-date pub-type="epub"><day>5</day><month>6</month><year>2020</year></pub-date>
      <permissions>
        <license license-type="open-access" xlink:href="https://creativecommons.org/licenses/by/4.0/">
          <license-p>CC BY</license-p></license>
      </permissions>
    </article-meta>
  </front>
  <body><p>Text <xref ref-type="bibr" rid="r1">1</xref>.</p></body>
  <back>
    <ref-list>
      <title>References</title>
      <ref id="r1"><label>1.</label>
        <element-citation publication-type="journal">
          <person-group><name><surname>Smith</surname><given-names>A</given-names></name></person-group>
          <article-title>First   <italic>cited</italic> work</article-title>
          <pub-id pub-id-type="pmid">222</pub-id>
          <pub-id pub-id-type="doi"> 10.1000/ref1 </pub-id>
        </element-citation>
      </ref>
      <ref id="r2"><label>2.</label>
        <mixed-citation publication-type="journal">Jones B. Second work. 2001.
          <pub-id pub-id-type="pmcid">PMC999</pub-id></mixed-citation>
      </ref>
      <ref-list>
        <title>Data references</title>
        <ref id="r3">
          <citation-alternatives>
            <mixed-citation>Brown C. Third work (mixed).</mixed-citation>
            <element-citation><article-title>Third work (element)</article-title>
              <pub-id pub-id-type="pmid">333</pub-id></element-citation>
          </citation-alternatives>
          <nlm-citation><pub-id pub-id-type="pmc">4444</pub-id></nlm-citation>
        </ref>
      </ref-list>
      <ref id="r4"><element-citation><article-title>Cites 222 again</article-title>
        <pub-id pub-id-type="pmid">222</pub-id></element-citation></ref>
    </ref-list>
  </back>
</article>"""

ARTICLE_2 = f"""<article {XLINK} article-type="review-article">
  <front>
    <journal-meta><journal-title>Old Style Journal</journal-title></journal-meta>
    <article-meta>
      <article-id pub-id-type="pmcid">PMC1002</article-id>
      <article-id pub-id-type="pmid">112</article-id>
      <title-group><article-title>Second</article-title></title-group>
      <pub-date pub-type="collection"><year>2019</year></pub-date>
      <permissions>
        <license><ali:license_ref xmlns:ali="http://www.niso.org/schemas/ali/1.0/">https://creativecommons.org/licenses/by-nc/4.0/</ali:license_ref>
          <license-p>Some licence text.</license-p></license>
      </permissions>
    </article-meta>
  </front>
  <back><ref-list><ref id="x1"><mixed-citation>Only ref. <pub-id pub-id-type="pmid">222</pub-id></mixed-citation></ref></ref-list></back>
</article>"""

NO_PMCID = f"""<article {XLINK} article-type="letter">
  <front><article-meta>
    <article-id pub-id-type="pmid">113</article-id>
    <article-id pub-id-type="publisher-id">xyz</article-id>
    <title-group><article-title>Lost</article-title></title-group>
  </article-meta></front>
</article>"""

NO_PMID = f"""<article {XLINK} article-type="abstract">
  <front><article-meta>
    <article-id pub-id-type="pmc">1004</article-id>
    <permissions><license><license-p>Free to <bold>read</bold>.</license-p></license></permissions>
  </article-meta></front>
  <back><ref-list><ref id="a"><mixed-citation>A. <pub-id pub-id-type="pmid">5</pub-id></mixed-citation></ref>
    <ref id="b"><mixed-citation>B.</mixed-citation></ref></ref-list></back>
</article>"""


def articleset(*articles: str) -> bytes:
    head = (
        '<?xml version="1.0" ?>\n<!DOCTYPE pmc-articleset PUBLIC "-//NLM//DTD ARTICLE SET 2.0//EN" '
        '"https://dtd.nlm.nih.gov/ncbi/pmc/articleset/nlm-articleset-2.0.dtd">\n<pmc-articleset>'
    )
    return (head + "".join(articles) + "</pmc-articleset>\n").encode()


def parse_all(source, **kw):
    batches = list(iter_batches(source, **kw))
    rows = {name: [r for b in batches for r in b.tables[name].to_pylist()] for name in TABLES_USED}
    rejects = [r for b in batches for r in b.rejects]
    return batches, rows, rejects


TABLES_USED = ("pmc_articles", "reference_entries", "citation_edges")


def test_articleset_two_articles():
    batches, rows, rejects = parse_all(
        articleset(ARTICLE_1, ARTICLE_2), source_name="efetch pmc", source_sha256="ab" * 32
    )
    assert rejects == []
    assert len(batches) == 1
    b = batches[0]
    assert b.kind == "pmc" and b.source == "efetch pmc" and b.n_records == 2
    for name in TABLES_USED:
        assert b.tables[name].schema == TABLES[name].arrow_schema

    a1, a2 = rows["pmc_articles"]
    assert a1["pmcid"] == "PMC1001" and a1["pmid"] == 111 and a1["doi"] == "10.1000/one"
    assert a1["article_type"] == "research-article"
    assert a1["title"] == "CO2 and H+ in vivo"
    assert a1["journal_title"] == "Journal of Tests"
    assert a1["pub_year"] == 2020  # pmc-release is skipped, epub taken
    assert a1["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert a1["n_references"] == 4
    assert len(a1["content_sha256"]) == 64 and a1["source_sha256"] == "ab" * 32

    assert a2["pmcid"] == "PMC1002" and a2["pmid"] == 112 and a2["doi"] is None
    assert a2["journal_title"] == "Old Style Journal" and a2["pub_year"] == 2019
    assert a2["license"] == "https://creativecommons.org/licenses/by-nc/4.0/"
    assert a2["n_references"] == 1

    refs = [r for r in rows["reference_entries"] if r["citing_pmid"] == 111]
    assert [r["position"] for r in refs] == [1, 2, 3, 4]
    assert {r["origin"] for r in rows["reference_entries"]} == {"pmc"}
    r1, r2, r3, r4 = refs
    assert r1["citation"] == "Smith A First cited work 222 10.1000/ref1"
    assert (r1["cited_pmid"], r1["cited_doi"], r1["cited_pmcid"]) == (222, "10.1000/ref1", None)
    assert r2["citation"] == "Jones B. Second work. 2001. PMC999"
    assert (r2["cited_pmid"], r2["cited_doi"], r2["cited_pmcid"]) == (None, None, "PMC999")
    # several citation elements: one row, text of the first, pub-ids from all
    assert r3["citation"] == "Brown C. Third work (mixed)."
    assert (r3["cited_pmid"], r3["cited_pmcid"]) == (333, "PMC4444")
    assert r4["cited_pmid"] == 222

    edges = {(e["citing_pmid"], e["cited_pmid"], e["origin"]) for e in rows["citation_edges"]}
    assert len(rows["citation_edges"]) == len(edges)  # deduplicated within an article
    assert edges == {(111, 222, "pmc_reflist"), (111, 333, "pmc_reflist"), (112, 222, "pmc_reflist")}


def test_article_without_pmcid_is_rejected_others_load():
    _, rows, rejects = parse_all(articleset(ARTICLE_1, NO_PMCID, ARTICLE_2), source_name="f.xml")
    assert [a["pmcid"] for a in rows["pmc_articles"]] == ["PMC1001", "PMC1002"]
    assert len(rejects) == 1
    rej = rejects[0]
    assert rej.source == "f.xml" and rej.record_key == "113"
    assert "PMC id" in rej.reason
    assert rej.excerpt.startswith("<article") and len(rej.excerpt) <= 200


def test_article_without_any_id_is_keyed_by_position():
    bare = "<article><front><article-meta><title-group><article-title>x</article-title></title-group></article-meta></front></article>"
    _, rows, rejects = parse_all(articleset(ARTICLE_1, bare))
    assert len(rows["pmc_articles"]) == 1
    assert [(r.record_key, "no PMC id" in r.reason) for r in rejects] == [("article 2", True)]


def test_unparseable_ids_are_rejected():
    bad_pmcid = ARTICLE_2.replace("PMC1002", "PMCabc")
    bad_pmid = ARTICLE_2.replace(">112<", ">11x2<")
    _, rows, rejects = parse_all(articleset(bad_pmcid, bad_pmid, ARTICLE_1))
    assert [a["pmcid"] for a in rows["pmc_articles"]] == ["PMC1001"]
    assert [r.record_key for r in rejects] == ["112", "PMC1002"]
    assert "unparseable PMC id" in rejects[0].reason and "unparseable PMID" in rejects[1].reason


def test_article_without_pmid_keeps_article_skips_references():
    _, rows, rejects = parse_all(articleset(NO_PMID, ARTICLE_2))
    assert rejects == []
    a = rows["pmc_articles"][0]
    assert a["pmcid"] == "PMC1004" and a["pmid"] is None and a["n_references"] == 2
    assert a["license"] == "Free to read."
    assert {r["citing_pmid"] for r in rows["reference_entries"]} == {112}
    assert {e["citing_pmid"] for e in rows["citation_edges"]} == {112}


def test_truncated_input_keeps_earlier_articles():
    data = articleset(ARTICLE_1, ARTICLE_2)
    cut = data[: data.index(b'article-type="review-article"') + 300]  # inside the second article
    batches, rows, rejects = parse_all(cut, source_name="cut.xml")
    assert [a["pmcid"] for a in rows["pmc_articles"]] == ["PMC1001"]
    assert len(rows["reference_entries"]) == 4
    assert len(rejects) == 1 and rejects[0].source == "cut.xml"
    assert rejects[0].record_key.startswith("line ")
    assert "cut.xml" in rejects[0].reason
    assert batches[-1].rejects == rejects


def test_invalid_utf8_and_truncated_gzip(tmp_path: Path):
    bad = articleset(ARTICLE_1, ARTICLE_2).replace(b">Second<", b">Sec\xffond<")
    _, rows, rejects = parse_all(bad, source_name="bad.xml")
    assert [a["pmcid"] for a in rows["pmc_articles"]] == ["PMC1001"]
    assert len(rejects) == 1 and "UTF-8" in rejects[0].reason

    gz = gzip.compress(articleset(ARTICLE_1, ARTICLE_2))
    path = tmp_path / "set.xml.gz"
    path.write_bytes(gz[: len(gz) - 40])
    _, rows, rejects = parse_all(path)
    assert len(rejects) == 1 and str(path) in rejects[0].reason
    assert len(rows["pmc_articles"]) <= 2


def test_sources_path_gzip_fileobj_and_namespaced_single_article(tmp_path: Path):
    ns_article = ARTICLE_1.replace(
        "<article ", '<article xmlns="https://jats.nlm.nih.gov/ns/archiving/1.3/" ', 1
    ).replace('pub-id-type="pmc">1001', 'pub-id-type="pmc-uid">1001')
    nxml = tmp_path / "one.nxml"
    nxml.write_text(ns_article, encoding="utf-8")
    gz = tmp_path / "one.xml.gz"
    gz.write_bytes(gzip.compress(nxml.read_bytes()))
    results = []
    for src in (nxml, str(gz), io.BufferedReader(io.BytesIO(nxml.read_bytes()))):
        batches, rows, rejects = parse_all(src)
        assert rejects == [] and len(batches) == 1
        results.append((rows["pmc_articles"], rows["reference_entries"], rows["citation_edges"]))
    assert results[0] == results[1] == results[2]
    arts, refs, edges = results[0]
    assert arts[0]["pmcid"] == "PMC1001" and arts[0]["title"] == "CO2 and H+ in vivo"
    assert arts[0]["license"].startswith("https://creativecommons.org")
    assert [r["position"] for r in refs] == [1, 2, 3, 4] and len(edges) == 2


def test_oai_envelope():
    oai = (
        '<?xml version="1.0" encoding="UTF-8"?><OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
        "<GetRecord><record><metadata>"
        + ARTICLE_2.replace("<article ", '<article xmlns="https://jats.nlm.nih.gov/ns/archiving/1.3/" ', 1)
        + "</metadata></record></GetRecord></OAI-PMH>"
    ).encode()
    _, rows, rejects = parse_all(oai)
    assert rejects == []
    assert [(a["pmcid"], a["pmid"]) for a in rows["pmc_articles"]] == [("PMC1002", 112)]
    assert len(rows["reference_entries"]) == 1


def test_same_article_same_content_hash_in_set_and_alone():
    (a_set,) = parse_all(articleset(ARTICLE_1))[1]["pmc_articles"]
    (a_one,) = parse_all(ARTICLE_1.encode())[1]["pmc_articles"]
    assert a_set == a_one


def test_batches_and_duplicates():
    a3 = ARTICLE_2.replace("PMC1002", "PMC1003").replace(">112<", ">114<")
    batches = list(iter_batches(articleset(ARTICLE_1, ARTICLE_2, a3), batch_size=2))
    assert [b.n_records for b in batches] == [2, 1]
    assert [b.rows("pmc_articles") for b in batches] == [2, 1]
    # an exact multiple of batch_size: no trailing empty batch
    assert [b.n_records for b in iter_batches(articleset(ARTICLE_1, ARTICLE_2), batch_size=2)] == [2]
    # the same PMCID twice in a batch: one row, the last one wins
    changed = ARTICLE_2.replace("<article-title>Second<", "<article-title>Second, revised<")
    _, rows, _ = parse_all(articleset(ARTICLE_2, changed))
    assert [(a["pmcid"], a["title"]) for a in rows["pmc_articles"]] == [("PMC1002", "Second, revised")]
    assert len(rows["reference_entries"]) == 1


def test_nested_article_element_rejects_the_outer_one():
    nested = ARTICLE_2.replace("<back>", "<body><article><front/></article></body><back>")
    _, rows, rejects = parse_all(articleset(ARTICLE_1, nested, ARTICLE_2.replace("PMC1002", "PMC1003")))
    assert [a["pmcid"] for a in rows["pmc_articles"]] == ["PMC1001", "PMC1003"]
    assert [(r.record_key, "nested" in r.reason) for r in rejects] == [("article 2", True)]


def test_missing_file_is_a_reject(tmp_path: Path):
    batches = list(iter_batches(tmp_path / "nope.xml"))
    assert len(batches) == 1 and batches[0].n_records == 0
    assert [r.record_key for r in batches[0].rejects] == ["open"]


def test_empty_articleset_gives_one_empty_batch():
    batches = list(iter_batches(articleset(), source_name="empty"))
    assert len(batches) == 1 and batches[0].n_records == 0 and batches[0].rejects == []
    assert all(t.num_rows == 0 for t in batches[0].tables.values())


def test_external_entities_are_not_expanded(tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    doc = (
        f'<?xml version="1.0"?><!DOCTYPE article [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        + ARTICLE_2.replace("<article-title>Second", "<article-title>Second &xxe;")
    ).encode()
    _, rows, rejects = parse_all(doc)
    assert rejects == []
    assert "TOPSECRET" not in (rows["pmc_articles"][0]["title"] or "")


def test_joined_text_keeps_word_boundaries():
    mixed = etree.fromstring(
        "<mixed-citation><string-name><surname>Buniello</surname><given-names>A.</given-names></string-name>, "
        "<string-name><surname>Ng</surname><given-names>B</given-names></string-name> (<year>2020</year>)."
        "<source>J Test</source><volume>3</volume>:<fpage>1</fpage>\u2013<lpage>9</lpage>; "
        "CO<sub>2</sub> <italic>in</italic>vivo <mml:math xmlns:mml='http://www.w3.org/1998/Math/MathML'>"
        "<mml:mi>x</mml:mi><mml:mn>2</mml:mn></mml:math></mixed-citation>"
    )
    assert joined_text(mixed) == "Buniello A., Ng B (2020). J Test 3:1\u20139; CO2 invivo x2"
    assert joined_text(None) is None and joined_text(etree.fromstring("<x> </x>")) is None


def test_normalizers():
    assert normalize_pmcid("PMC123") == normalize_pmcid("pmc123") == normalize_pmcid(" 123 ") == "PMC123"
    assert normalize_pmcid("PMCabc") is None and normalize_pmcid("0") is None
    assert normalize_pmid("PMID: 42") == 42 and normalize_pmid("4x2") is None and normalize_pmid("0") is None
    assert normalize_doi("https://doi.org/10.1/X") == "10.1/X" and normalize_doi("doi:10.1/x") == "10.1/x"
    assert normalize_doi("  ") is None


# --------------------------------------------------------------------------------------------
# corpus: every real JATS file in ../shared/corpus/pmc, checked against an independent xpath read


def _corpus_files() -> list:
    d = CORPUS / "pmc"
    files = sorted(p for p in d.iterdir() if p.is_file()) if d.is_dir() else []
    return files or [None]


def _lx(path: str) -> str:
    """An xpath step matching an element by local name (namespaced and plain JATS alike)."""
    return f"*[local-name()='{path}']"


def _oracle(path: Path) -> list[dict]:
    tree = etree.parse(str(path))  # lxml defaults: no DTD loading, no network
    out = []
    for art in tree.xpath(f"//{_lx('article')}[not(ancestor::{_lx('article')})]"):
        meta = f"./{_lx('front')}/{_lx('article-meta')}/{_lx('article-id')}"

        def ids(kinds, meta=meta, art=art):
            cond = " or ".join(f"@pub-id-type='{k}'" for k in kinds)
            return [v.strip() for v in art.xpath(f"{meta}[{cond}]/text()")]

        pmcids = ids(["pmcid"]) + ids(["pmc"])
        pmcid = pmcids[0] if pmcids else None
        if pmcid and not pmcid.upper().startswith("PMC"):
            pmcid = "PMC" + pmcid
        pmids, dois = ids(["pmid"]), ids(["doi"])
        refs = art.xpath(f".//{_lx('ref-list')}//{_lx('ref')}")
        cited = art.xpath(f".//{_lx('ref-list')}//{_lx('ref')}//{_lx('pub-id')}[@pub-id-type='pmid']/text()")
        out.append(
            {
                "pmcid": pmcid,
                "pmid": int(pmids[0]) if pmids else None,
                "doi": dois[0] if dois else None,
                "n_refs": len(refs),
                "cited": {int(c.strip()) for c in cited},
            }
        )
    return out


@pytest.mark.corpus
@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.name if p else "absent")
def test_corpus_file_matches_independent_xpath(path: Path | None):
    if path is None:
        require_corpus("pmc")
        pytest.skip("no files in the PMC corpus")
    batches, rows, rejects = parse_all(path)
    expected = _oracle(path)
    assert expected, f"{path.name}: the oracle found no article"
    assert rejects == [], [r.message() for r in rejects]
    assert sum(b.n_records for b in batches) == len(expected)
    by_pmcid = {a["pmcid"]: a for a in rows["pmc_articles"]}
    assert len(by_pmcid) == len(expected)
    for exp in expected:
        got = by_pmcid[exp["pmcid"]]
        assert (got["pmid"], got["doi"]) == (exp["pmid"], exp["doi"])
        assert got["n_references"] == exp["n_refs"]
        if exp["pmid"] is None:
            continue
        refs = [r for r in rows["reference_entries"] if r["citing_pmid"] == exp["pmid"]]
        assert len(refs) == exp["n_refs"]
        assert [r["position"] for r in refs] == list(range(1, exp["n_refs"] + 1))
        edges = {e["cited_pmid"] for e in rows["citation_edges"] if e["citing_pmid"] == exp["pmid"]}
        assert edges == exp["cited"]
