"""The bundled seed snapshot (PMID 39047240) holds what the seed's PubMed page says, and nothing it does not.

The snapshot is built from ../shared/seeds/000_394b910e158339c1.txt (the seed's PubMed page as text).
Checks that compare against that page skip, saying why, when ../shared is absent; the rest run anywhere.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import pytest
from lxml import etree

REPO = Path(__file__).resolve().parents[1]
SNAP = REPO / "extractors" / "sandbox" / "snapshots" / "39047240"
XML = SNAP / "pubmed" / "seed_network.xml"
SHARED = Path(os.environ.get("LITMETA_SHARED", REPO.parent / "shared"))
PAGE = SHARED / "seeds" / "000_394b910e158339c1.txt"

SEED = "39047240"
SIMILAR = ["40532723", "28901021", "39467525", "40459097", "36161421"]  # page rank order
CITING = ["39321136", "40437045", "39234859", "39910042", "40072099"]  # page order
DOIS = {
    "40532723": "10.1016/S2352-3026(25)00144-9",
    "28901021": "10.1002/14651858.CD008814.pub2",
    "39467525": "10.1159/000542060",
    "40459097": "10.1056/NEJMoa2505133",
    "36161421": "10.1002/14651858.CD015048.pub2",
    "39321136": "10.1158/2643-3230.BCD-24-0124",
    "40437045": "10.1038/s41409-025-02630-1",
    "39234859": "10.3324/haematol.2024.286346",
    "39910042": "10.1038/s41408-025-01217-9",
    "40072099": "10.3390/cells14050371",
}
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@pytest.fixture(scope="module")
def tree() -> etree._ElementTree:
    return etree.parse(str(XML), _parser())


@pytest.fixture(scope="module")
def records(tree) -> dict[str, etree._Element]:
    return {a.findtext("MedlineCitation/PMID"): a for a in tree.getroot().iterfind("PubmedArticle")}


@pytest.fixture(scope="module")
def seed(records) -> etree._Element:
    return records[SEED]


@pytest.fixture(scope="module")
def page() -> list[str]:
    if not PAGE.is_file():
        pytest.skip(f"seed page not found at {PAGE} (../shared is absent; set LITMETA_SHARED to point at it)")
    return PAGE.read_text(encoding="utf-8").splitlines()


def _section(lines: list[str], start: str, end: str) -> list[str]:
    i, j = lines.index(start), lines.index(end)
    return [ln for ln in lines[i + 1 : j] if ln.strip() not in ("", "-")]


def _links() -> list[dict[str, str]]:
    with open(SNAP / "links.tsv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


# --- file shape -------------------------------------------------------------------------------------


def test_xml_declaration_and_doctype(tree):
    head = XML.read_bytes()[:300].decode("ascii")
    assert head.startswith('<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC ')
    assert tree.docinfo.doctype == (
        '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
        '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">'
    )
    assert tree.getroot().tag == "PubmedArticleSet"


def test_valid_against_pubmed_dtd(tree):
    """Validated against the local copy of pubmed_250101.dtd that Biopython ships (never fetched)."""
    entrez = pytest.importorskip(
        "Bio.Entrez", reason="biopython (which ships the PubMed DTD) is not installed"
    )
    dtd_path = Path(entrez.__file__).parent / "DTDs" / "pubmed_250101.dtd"
    if not dtd_path.is_file():
        pytest.skip(f"{dtd_path} not found in this biopython")
    dtd = etree.DTD(str(dtd_path))
    assert dtd.validate(tree), dtd.error_log.filter_from_errors()


def test_eleven_records_seed_first(tree, records):
    pmids = [a.findtext("MedlineCitation/PMID") for a in tree.getroot().iterfind("PubmedArticle")]
    assert len(pmids) == 11
    assert pmids == [SEED, *SIMILAR, *CITING]
    assert len(records) == 11


# --- the seed -------------------------------------------------------------------------------------


def test_seed_ids(seed):
    ids = {i.get("IdType"): i.text for i in seed.iterfind("PubmedData/ArticleIdList/ArticleId")}
    assert ids == {"pubmed": SEED, "doi": "10.1056/NEJMoa2312948", "pmc": "PMC11334054"}
    assert seed.findtext("MedlineCitation/Article/ELocationID[@EIdType='doi']") == "10.1056/NEJMoa2312948"


def test_seed_citation(seed):
    art = seed.find("MedlineCitation/Article")
    assert (
        art.findtext("ArticleTitle")
        == "Blinatumomab for MRD-Negative Acute Lymphoblastic Leukemia in Adults."
    )
    assert art.findtext("Journal/Title") == "The New England journal of medicine"
    assert art.findtext("Journal/ISOAbbreviation") == "N Engl J Med"
    assert art.findtext("Journal/JournalIssue/PubDate/Year") == "2024"
    assert seed.findtext("MedlineCitation/MedlineJournalInfo/MedlineTA") == "N Engl J Med"
    # only what is known: "Litzow et al.", flagged as an incomplete list
    authors = art.findall("AuthorList/Author")
    assert art.find("AuthorList").get("CompleteYN") == "N"
    assert [a.findtext("LastName") for a in authors] == ["Litzow"]
    # nothing the page does not give
    mc = seed.find("MedlineCitation")
    for absent in ("MeshHeadingList", "ChemicalList", "KeywordList", "DateCompleted", "DateRevised"):
        assert mc.find(absent) is None, absent
    assert seed.find("PubmedData/ReferenceList") is None
    assert art.find("Journal/JournalIssue/Volume") is None and art.find("Pagination") is None


def test_seed_abstract(seed):
    ab = seed.find("MedlineCitation/Article/Abstract")
    parts = ab.findall("AbstractText")
    assert [p.get("Label") for p in parts] == ["BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert "(defined as <0.01% leukemic cells" in parts[1].text
    assert parts[3].text.endswith("E1910 ClinicalTrials.gov number, NCT02003222.).")
    assert ab.findtext("CopyrightInformation") == "Copyright \u00a9 2024 Massachusetts Medical Society."


def test_seed_abstract_matches_page(seed, page):
    i = page.index("Abstract")
    expected = [ln.split(": ", 1) for ln in page[i + 1 : i + 5]]
    got = [(p.get("Label"), p.text) for p in seed.iterfind("MedlineCitation/Article/Abstract/AbstractText")]
    assert got == [(label.upper(), text) for label, text in expected]
    assert seed.findtext("MedlineCitation/Article/Abstract/CopyrightInformation") == page[i + 5]
    assert seed.findtext("MedlineCitation/Article/ArticleTitle") == page[0] + "."
    assert page[1:4] == ["- PMID: 39047240", "- PMCID: PMC11334054", "- DOI: 10.1056/NEJMoa2312948"]


def _grants(seed) -> list[tuple[str | None, ...]]:
    return [
        tuple(g.findtext(k) for k in ("GrantID", "Acronym", "Agency", "Country"))
        for g in seed.iterfind("MedlineCitation/Article/GrantList/Grant")
    ]


def test_seed_grants(seed):
    grants = _grants(seed)
    assert len(grants) == 31
    assert grants[0] == ("U10 CA180868", "CA", "NCI NIH HHS", "United States")
    assert grants[-1] == ("P50 GM115279", "GM", "NIGMS NIH HHS", "United States")
    ecog = [g for g in grants if g[2] == "ECOG-ACRIN Cancer Research Group"]
    assert ecog == [
        ("U10CA180820, U10CA180794, U10CA180821, U10CA180888", None, "ECOG-ACRIN Cancer Research Group", None)
    ]
    assert grants.index(ecog[0]) == 25


def test_seed_grants_match_page_lines_in_order(seed, page):
    """PubMed prints a grant as GrantID/Acronym/Agency/Country, leaving absent fields out."""
    lines = [ln[2:] for ln in _section(page, "Grants and funding", "LinkOut - more resources")]
    assert len(lines) == 31
    rendered = ["/".join(f for f in g if f is not None) for g in _grants(seed)]
    assert rendered == lines


def test_seed_databank(seed):
    banks = [
        (b.findtext("DataBankName"), [a.text for a in b.iterfind("AccessionNumberList/AccessionNumber")])
        for b in seed.iterfind("MedlineCitation/Article/DataBankList/DataBank")
    ]
    assert banks == [("ClinicalTrials.gov", ["NCT02003222"])]


# --- the neighbours --------------------------------------------------------------------------------


def test_neighbour_dois(records):
    for pmid, doi in DOIS.items():
        a = records[pmid]
        ids = {i.get("IdType"): i.text for i in a.iterfind("PubmedData/ArticleIdList/ArticleId")}
        assert ids == {"pubmed": pmid, "doi": doi}, pmid  # no invented PMCIDs
        assert a.findtext("MedlineCitation/Article/ELocationID[@EIdType='doi']") == doi
        assert a.find("MedlineCitation/Article/Abstract") is None, pmid  # the page gives no abstracts
        assert a.find("MedlineCitation/Article/AuthorList") is None, pmid


def _render(a: etree._Element) -> str:
    """A record as PubMed's 'Similar articles'/'Cited by' line, up to and including 'PMID: n'."""
    art = a.find("MedlineCitation/Article")
    iso = art.findtext("Journal/ISOAbbreviation")
    ji = art.find("Journal/JournalIssue")
    y, m, d = (ji.findtext(f"PubDate/{k}") for k in ("Year", "Month", "Day"))
    date = " ".join([y] + ([m] if m else []) + ([str(int(d))] if d else []))
    doi = art.findtext("ELocationID[@EIdType='doi']")
    s = (
        f"{art.findtext('ArticleTitle')}{iso}. {date};{ji.findtext('Volume')}({ji.findtext('Issue')}):"
        f"{art.findtext('Pagination/MedlinePgn')}. doi: {doi}."
    )
    ad = art.find("ArticleDate")
    if ad is not None:
        s += f" Epub {ad.findtext('Year')} {MONTHS[int(ad.findtext('Month')) - 1]} {int(ad.findtext('Day'))}."
    return s + f" {iso}. {y}. PMID: {a.findtext('MedlineCitation/PMID')}"


def test_neighbours_match_page_lines(records, page):
    sections = {
        "similar": (_section(page, "Similar articles", "Cited by"), SIMILAR),
        "cited by": (_section(page, "Cited by", "References"), CITING),
    }
    for name, (lines, pmids) in sections.items():
        assert [re.search(r"PMID: (\d+)", ln).group(1) for ln in lines] == pmids, name
        for ln, pmid in zip(lines, pmids, strict=True):
            a = records[pmid]
            head = _render(a)
            assert ln.startswith(head), (pmid, ln, head)
            assert re.search(r"doi: (\S+)\. ", ln).group(1) == DOIS[pmid]
            flags = {f.strip() for f in ln[len(head) :].split(".") if f.strip()}
            assert flags <= {"Free PMC article", "No abstract available", "Clinical Trial", "Review"}, flags
            types = {
                t.text for t in a.iterfind("MedlineCitation/Article/PublicationTypeList/PublicationType")
            }
            assert types == {"Journal Article"} | (flags & {"Clinical Trial", "Review"}), pmid
            assert a.findtext("MedlineCitation/MedlineJournalInfo/MedlineTA") == a.findtext(
                "MedlineCitation/Article/Journal/ISOAbbreviation"
            )


# --- links -----------------------------------------------------------------------------------------


def test_links_tsv():
    text = (SNAP / "links.tsv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "dbfrom\tid\tlinkname\tto_id\tscore"
    rows = _links()
    assert all(r["dbfrom"] == "pubmed" and r["score"] == "" for r in rows)
    similar = [r["to_id"] for r in rows if r["id"] == SEED and r["linkname"] == "pubmed_pubmed"]
    assert similar == SIMILAR  # rank order, and no self link
    citedin = [r["to_id"] for r in rows if r["id"] == SEED and r["linkname"] == "pubmed_pubmed_citedin"]
    assert citedin == CITING
    refs = sorted((r["id"], r["to_id"]) for r in rows if r["linkname"] == "pubmed_pubmed_refs")
    assert refs == sorted((c, SEED) for c in CITING)  # the reverse of cited-by, and nothing else
    assert len(rows) == 15
    assert len({tuple(r.values()) for r in rows}) == len(rows)


def test_every_linked_pmid_has_a_record(records):
    linked = {r["id"] for r in _links()} | {r["to_id"] for r in _links()}
    assert linked == set(records)


# --- meta and the optional PMC file ---------------------------------------------------------------


def test_meta():
    meta = json.loads((SNAP / "meta.json").read_text(encoding="utf-8"))
    assert meta["seed_pmid"] == 39047240
    assert meta["api_keys"] == []
    for key in ("name", "source", "created", "recorded", "reconstructed", "omitted"):
        assert meta[key], key
    omitted = " ".join(meta["omitted"])
    for word in ("MeSH", "score", "References", "Abstracts", "author"):
        assert word.lower() in omitted.lower(), word


def test_pmc_front_matter():
    files = sorted((SNAP / "pmc").glob("*.xml"))
    if not files:
        pytest.skip("no pmc/ file in this snapshot")
    root = etree.parse(str(files[0]), _parser()).getroot()
    assert root.tag == "pmc-articleset"
    ids = {i.get("pub-id-type"): i.text for i in root.iterfind("article/front/article-meta/article-id")}
    assert ids == {"pmcid": "PMC11334054", "pmid": SEED, "doi": "10.1056/NEJMoa2312948"}
    assert root.find("article/body") is None and root.find("article/back") is None
