"""extractors.eutils_results against real NCBI documents from ../shared/corpus, with Bio.Entrez as oracle.

Bio.Entrez.read is used offline: its DTD download is patched to fail, and old documents whose
DOCTYPE names an http:// DTD (which Biopython 1.88 refuses outright) get https:// so that the
bundled DTDs are used. Documents Bio.Entrez still cannot read offline are skipped by the oracle
comparison but must still parse with lxml.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from litmeta.extractors import eutils_results as R
from tests.conftest import require_corpus

pytestmark = pytest.mark.corpus


@pytest.fixture
def bio_read(monkeypatch):
    from Bio import Entrez
    from Bio.Entrez import Parser

    def offline(*a, **k):
        raise OSError("offline: no DTD downloads")

    monkeypatch.setattr(Parser, "urlopen", offline)

    def read(body: bytes):
        body = body.replace(b'"http://www.ncbi.nlm.nih.gov', b'"https://www.ncbi.nlm.nih.gov').replace(
            b'"http://eutils.ncbi.nlm.nih.gov', b'"https://eutils.ncbi.nlm.nih.gov'
        )
        try:
            return Entrez.read(io.BytesIO(body), validate=False)
        except Exception:
            return None

    return read


def files(sub: str) -> list[Path]:
    return sorted(p for p in require_corpus(sub).glob("*.xml"))


def test_esearch_matches_bio_entrez(bio_read):
    compared = 0
    for f in files("esearch"):
        body = f.read_bytes()
        root = R.parse_xml(body)
        if R.error_texts(root):
            continue
        page = R.parse_esearch(root)
        bio = bio_read(body)
        if bio is None:
            continue
        compared += 1
        assert page.count == int(bio["Count"]), f
        assert page.ids == [int(i) for i in bio["IdList"]], f
        assert page.webenv == (bio.get("WebEnv") or None), f
        assert page.query_key == (bio.get("QueryKey") or None), f
        if bio.get("QueryTranslation"):
            assert page.query_translation == bio["QueryTranslation"].strip(), f
    assert compared >= 10


def test_elink_matches_bio_entrez(bio_read):
    compared = links = 0
    for f in files("elink"):
        body = f.read_bytes()
        root = R.parse_xml(body)
        if root.tag != "eLinkResult":
            continue
        sets = R.parse_elink(root)
        bio = bio_read(body)
        if bio is None:
            continue
        compared += 1
        assert len(sets) == len(bio), f
        for mine, theirs in zip(sets, bio, strict=True):
            assert mine.ids == [int(i) for i in theirs.get("IdList", [])], f
            expected: dict[str, list[tuple[int, int | None]]] = {}
            for lsd in theirs.get("LinkSetDb", []):
                lst = expected.setdefault(lsd["LinkName"], [])
                for link in lsd["Link"]:
                    lst.append((int(link["Id"]), int(link["Score"]) if "Score" in link else None))
            assert mine.links == expected, f
            links += sum(len(v) for v in expected.values())
    assert compared >= 20 and links > 1000


def test_scored_similar_lists_source_first():
    body = (require_corpus("elink") / "biopython__elink1__v392ec9a.xml").read_bytes()
    (ls,) = R.parse_elink(R.parse_xml(body))
    sims = ls.links["pubmed_pubmed"]
    assert ls.ids == [9298984] and sims[0] == (9298984, 2147483647) and sims[1] == (8794856, 65259341)


def test_epost_and_errors():
    ok = R.parse_xml((require_corpus("epost") / "biopython__epost1.xml").read_bytes())
    assert R.parse_epost(ok) == ("MCID_692851c130aec64bed0a8c2a", "1")
    bad = R.parse_xml((require_corpus("epost") / "biopython__epost3.xml").read_bytes())
    assert R.error_texts(bad) == [
        "Empty ID list; Nothing to store",
        "Some IDs have invalid value and were omitted. Maximum ID value 18446744073709551615",
    ]
    # an empty <ERROR/> is not an error
    assert R.error_texts(R.parse_xml(b"<eSearchResult><Count>1</Count><ERROR/></eSearchResult>")) == []


def test_esummary_v1_matches_bio_entrez(bio_read):
    compared = 0
    for f in files("esummary"):
        body = f.read_bytes()
        try:
            root = R.parse_xml(body)
        except R.MalformedResponse:
            continue
        if root.tag != "eSummaryResult" or root.find("DocSum") is None:
            continue
        mine = R.parse_esummary(root)
        bio = bio_read(body)
        if bio is None:
            continue
        compared += 1
        assert [d["Id"] for d in mine] == [str(d["Id"]) for d in bio], f
        for m, b in zip(mine, bio, strict=True):
            for key in ("Title", "Source", "AuthorList"):
                if key in b:
                    want = [str(x) for x in b[key]] if isinstance(b[key], list) else str(b[key])
                    assert m[key] == want, (f, key)
    assert compared >= 3


def test_efetch_body_checks_on_real_records():
    pubmed = files("pubmed")
    assert pubmed
    total = 0
    for f in pubmed:
        body = f.read_bytes()
        if R.root_tag(body) != "PubmedArticleSet":
            continue
        assert R.is_complete(body, "PubmedArticleSet"), f
        pmids = R.pubmed_pmids(body)
        n_articles = body.count(b"<PubmedArticle>") + body.count(b"<PubmedArticle ")
        n_books = body.count(b"<PubmedBookArticle>") + body.count(b"<PubmedBookArticle ")
        assert len(pmids) == n_articles + n_books, f
        total += len(pmids)
        cut = body[: len(body) // 2]
        assert not R.is_complete(cut, "PubmedArticleSet")
    assert total > 50
    for f in files("pmc"):
        body = f.read_bytes()
        if R.root_tag(body) == "pmc-articleset":
            assert R.is_complete(body) and R.pmc_ids(body), f


def test_body_sniffing():
    assert R.looks_like_html(b"<!DOCTYPE html>\n<html>") and R.looks_like_html(b"  <HTML><body>")
    assert not R.looks_like_html(b'<?xml version="1.0"?>\n<eSearchResult/>')
    assert (
        R.root_tag(b'<?xml version="1.0"?>\n<!-- c -->\n<!DOCTYPE x [<!ENTITY a "b">]>\n<Root a="1">')
        == "Root"
    )
    assert R.is_complete(b"<?xml version='1.0'?><PubmedArticleSet/>\n")
    assert R.has_error_element(b"<eFetchResult><ERROR>boom</ERROR></eFetchResult>")
    assert not R.has_error_element(b"<x><ERROR/><ERROR> </ERROR></x>")
    with pytest.raises(R.MalformedResponse):
        R.parse_xml(b"<eLinkResult><LinkSet>")


def test_hardened_parser_does_not_expand_entities_or_fetch():
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE eSearchResult [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<eSearchResult><Count>1</Count><QueryTranslation>&x;</QueryTranslation></eSearchResult>"
    )
    page = R.parse_esearch(R.parse_xml(evil))
    assert page.query_translation in (None, "")
