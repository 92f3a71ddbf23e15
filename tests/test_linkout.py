"""elink LinkOut answers (IdUrlList, cmd=prlinks/llinks) into full_text_links, with Bio.Entrez as the oracle.

Bio.Entrez.read runs offline: its DTD download is patched to fail, and each document's DOCTYPE is pointed
at the bundled eLink_101123.dtd (several declare eLink_020511.dtd, which Biopython does not bundle; the
IdUrlList elements are the same in both).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import pytest

from litmeta.extractors.eutils_results import MalformedResponse, parse_xml
from litmeta.extractors.linkout import full_text_link_rows, parse_id_url_list
from litmeta.warehouse.db import connect
from litmeta.warehouse.network import merge_full_text_links
from tests.conftest import require_corpus

DOCTYPE = (b'<!DOCTYPE eLinkResult PUBLIC "-//NLM//DTD eLinkResult, 23 November 2010//EN" '
           b'"https://www.ncbi.nlm.nih.gov/entrez/query/DTD/eLink_101123.dtd">')


def _documents() -> list[Path]:
    return sorted(f for f in require_corpus("elink").glob("*.xml") if b"<IdUrlList" in f.read_bytes())


def _bio_links(body: bytes) -> list[tuple[str, int, str, str, str]]:
    """(dbfrom, id, provider, category, url) of every ObjUrl, as Bio.Entrez.read gives them."""
    from Bio import Entrez

    body = re.sub(rb"<!DOCTYPE[^>]*>", DOCTYPE, body, count=1)
    out = []
    for ls in Entrez.read(io.BytesIO(body), validate=False):
        for s in ls.get("IdUrlList", {}).get("IdUrlSet", []):
            for o in s.get("ObjUrl", []):
                out.append((str(ls["DbFrom"]), int(s["Id"]), " ".join(str(o["Provider"]["Name"]).split()),
                            "; ".join(o.get("Category", [])) or None, str(o["Url"]).strip()))
    return out


@pytest.mark.corpus
def test_corpus_idurllists_parse_as_biopython_does(monkeypatch):
    from Bio.Entrez import Parser

    def offline(*a, **k):
        raise OSError("offline: no DTD downloads")

    monkeypatch.setattr(Parser, "urlopen", offline)
    docs = _documents()
    assert len(docs) >= 10
    compared = 0
    for f in docs:
        body = f.read_bytes()
        sets = parse_id_url_list(parse_xml(body))
        bio = _bio_links(body)
        ours = [(s.dbfrom, s.id, link.provider, "; ".join(link.categories) or None, link.url)
                for s in sets for link in s.links]
        assert ours == bio, f.name
        # the table: PubMed sets only, one row per (pmid, provider, url), the first listed kept
        first: dict[tuple[int, str, str], tuple] = {}
        for dbfrom, pmid, provider, category, url in bio:
            if dbfrom == "pubmed":
                first.setdefault((pmid, provider, url), (pmid, provider, category, url))
        rows = full_text_link_rows(sets).to_pylist()
        assert [(r["pmid"], r["provider"], r["category"], r["url"]) for r in rows] == list(first.values()), f.name
        compared += len(rows)
    assert compared > 1000


def test_rows_carry_every_field_and_load_idempotently():
    body = b"""<?xml version="1.0"?><eLinkResult><LinkSet><DbFrom>pubmed</DbFrom><IdUrlList>
    <IdUrlSet><Id>101</Id><ObjUrl><Url>https://pub.example/101?a=1&amp;b=2</Url><LinkName>Full text</LinkName>
    <SubjectType>publishers/providers</SubjectType><Category>Full Text Sources</Category>
    <Attribute>free resource</Attribute><Attribute>full-text online</Attribute>
    <Provider><Name>Example  Press</Name><NameAbbr>EXP</NameAbbr><Id>42</Id><Url>https://pub.example</Url></Provider>
    </ObjUrl></IdUrlSet>
    <IdUrlSet><Id>102</Id><Info>No links</Info></IdUrlSet></IdUrlList></LinkSet>
    <LinkSet><DbFrom>protein</DbFrom><IdUrlList><IdUrlSet><Id>7</Id><ObjUrl><Url>https://x/7</Url>
    <Provider><Name>P</Name></Provider></ObjUrl></IdUrlSet></IdUrlList></LinkSet></eLinkResult>"""
    sets = parse_id_url_list(parse_xml(body))
    assert [(s.dbfrom, s.id, len(s.links), s.info) for s in sets] == [
        ("pubmed", 101, 1, None), ("pubmed", 102, 0, "No links"), ("protein", 7, 1, None)]
    table = full_text_link_rows(sets)
    assert table.to_pylist() == [{
        "pmid": 101, "provider": "Example Press", "url": "https://pub.example/101?a=1&b=2",
        "category": "Full Text Sources", "attributes": '["free resource", "full-text online"]',
        "subject_type": "publishers/providers", "link_name": "Full text", "provider_abbr": "EXP", "provider_id": "42"}]
    con = connect(":memory:")
    t1, t2 = dt.datetime(2026, 1, 1), dt.datetime(2026, 2, 1)
    assert merge_full_text_links(con, table, t1) == 1
    assert merge_full_text_links(con, table, t2) == 0
    assert con.execute("SELECT count(*), min(first_seen), max(last_seen), any_value(attributes->>'$[1]') "
                       "FROM full_text_links").fetchall() == [(1, t1, t2, "full-text online")]


@pytest.mark.parametrize("body, message", [
    (b"<eSearchResult><Count>0</Count></eSearchResult>", "expected eLinkResult"),
    (b"<eLinkResult><LinkSet><DbFrom>pubmed</DbFrom><IdUrlList><IdUrlSet><Id>12a</Id></IdUrlSet>"
     b"</IdUrlList></LinkSet></eLinkResult>", "not a number"),
    (b"<eLinkResult><LinkSet><DbFrom>pubmed</DbFrom><IdUrlList><IdUrlSet><Id>1</Id><ObjUrl>"
     b"<Provider><Name>P</Name></Provider></ObjUrl></IdUrlSet></IdUrlList></LinkSet></eLinkResult>", "without Url"),
    (b"<eLinkResult><LinkSet><DbFrom>pubmed</DbFrom><IdUrlList><IdUrlSet><Id>1</Id><ObjUrl><Url>u</Url>"
     b"</ObjUrl></IdUrlSet></IdUrlList></LinkSet></eLinkResult>", "without Provider/Name"),
    (b"<eLinkResult><LinkSet><DbFrom>pubmed</DbFrom><IdUrlList><IdUrlSet><Id>1</Id>", "not well-formed"),
])
def test_malformed_answers_are_malformed_responses(body, message):
    with pytest.raises(MalformedResponse, match=message):
        parse_id_url_list(parse_xml(body))


def test_entities_are_not_expanded(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    body = (f'<?xml version="1.0"?><!DOCTYPE eLinkResult [<!ENTITY x SYSTEM "file://{secret}">]>'
            "<eLinkResult><LinkSet><DbFrom>pubmed</DbFrom><IdUrlList><IdUrlSet><Id>1</Id><ObjUrl><Url>u&x;</Url>"
            "<Provider><Name>P</Name></Provider></ObjUrl></IdUrlSet></IdUrlList></LinkSet></eLinkResult>").encode()
    try:
        sets = parse_id_url_list(parse_xml(body))
    except MalformedResponse:
        return  # refused outright: also safe
    assert "SECRET" not in sets[0].links[0].url
