"""Differential test: our parser + warehouse against Biopython's parse of every real PubmedArticle.

For each file in ../shared/corpus/pubmed the records are loaded into a fresh in-memory warehouse
and, per PMID, the counts of authors, affiliations, grants, MeSH descriptors and qualifiers,
publication types, chemicals, keywords, article ids, databank accessions, references, investigators
(and their affiliations), supplementary MeSH concepts, other abstracts, other ids, author and
investigator identifiers and affiliation identifiers must equal those of `Bio.Entrez.read` on the same record; title and abstract text must equal Biopython's with
markup removed and whitespace normalised.

Biopython needs a bundled DTD: the DOCTYPE is pointed at pubmed_250101.dtd (bundled) so that it
never tries the network (the real files declare older DTDs, all compatible for these elements).
"""

from __future__ import annotations

import gzip
import io
import re
from collections import Counter
from pathlib import Path

import pytest
from Bio import Entrez

from litmeta.extractors.pubmed_xml import iter_batches
from litmeta.schemas import ALL_TABLES
from litmeta.warehouse.db import connect
from litmeta.warehouse.load import BatchLoader
from tests.conftest import require_corpus

pytestmark = pytest.mark.corpus

DOCTYPE = (b'<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
           b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">')
BUNDLED = Path(Entrez.__file__).parent / "DTDs"
TAG = re.compile(r"</?[A-Za-z][\w:.-]*(\s[^<>]*)?/?>")  # markup Biopython keeps; not a literal '<' in text


def _norm(text: str | None) -> str:
    return " ".join(TAG.sub("", text or "").split())


def _bio_parse(data: bytes, dtd: str) -> list[dict]:
    doctype = DOCTYPE.replace(b"pubmed_250101.dtd", dtd.encode())
    data = re.sub(rb"<!DOCTYPE[^>]*>", b"", data, count=1)
    data = re.sub(rb"(<\?xml[^>]*\?>)?\s*", lambda m: (m.group(1) or b'<?xml version="1.0"?>') + b"\n" + doctype + b"\n",
                  data, count=1)
    parsed = Entrez.read(io.BytesIO(data), validate=False)
    records = parsed.get("PubmedArticle", []) if isinstance(parsed, dict) else parsed  # older DTDs: a plain list
    return [r for r in records if "MedlineCitation" in r]


def _bio_records(data: bytes) -> list[dict]:
    """Biopython's parse against the newest bundled PubMed DTD (files often declare an older DTD than
    their content follows, and Biopython silently drops elements its DTD lacks); pre-2014 content
    that the newest DTD refuses is parsed against the DTD the file declares."""
    try:
        return _bio_parse(data, "pubmed_250101.dtd")
    except (ValueError, RuntimeError):
        declared = re.search(rb"<!DOCTYPE[^>]*/([a-z_0-9]+\.dtd)\"", data)
        name = declared.group(1).decode() if declared else "pubmed_250101.dtd"
        return _bio_parse(data, name if (BUNDLED / name).exists() else "pubmed_250101.dtd")


def _count_refs(reflists) -> int:
    n = 0
    for rl in reflists or []:
        n += len(rl.get("Reference", []))
        n += _count_refs(rl.get("ReferenceList", []))
    return n


def _flatten(items) -> list:
    """Biopython gives InvestigatorList as a list, or as a list holding one list (some DTDs)."""
    out = []
    for item in items or []:
        out.extend(_flatten(item) if isinstance(item, list) else [item])
    return out


def _bio_facts(rec: dict) -> dict:
    mc, pd = rec["MedlineCitation"], rec.get("PubmedData", {})
    art = mc["Article"]
    authors = art.get("AuthorList", [])
    investigators = _flatten(mc.get("InvestigatorList"))
    people = [*authors, *investigators]
    abstract = art.get("Abstract", {}).get("AbstractText", [])
    if isinstance(abstract, str):  # older DTDs declare a single AbstractText, not a list
        abstract = [abstract]
    paras = []
    for p in abstract:
        label = getattr(p, "attributes", {}).get("Label")
        text = _norm(str(p))
        paras.append(f"{label}: {text}" if label else text)
    return {
        "authors": len(authors),
        "affiliations": sum(len(a.get("AffiliationInfo", [])) for a in authors) + ("Affiliation" in art),
        "grants": len(art.get("GrantList", [])),
        "mesh": len(mc.get("MeshHeadingList", [])),
        "qualifiers": sum(len(h.get("QualifierName", [])) for h in mc.get("MeshHeadingList", [])),
        "pubtypes": len({pt.attributes.get("UI") or str(pt) for pt in art.get("PublicationTypeList", [])}),
        "chemicals": len(mc.get("ChemicalList", [])),
        "keywords": sum(len(kl) for kl in mc.get("KeywordList", [])),
        "ids": len({(i.attributes.get("IdType"), str(i).strip()) for i in pd.get("ArticleIdList", [])}),
        "databanks": len({(db.get("DataBankName"), str(acc)) for db in art.get("DataBankList", [])
                          for acc in db.get("AccessionNumberList", [])}),
        "references": _count_refs(pd.get("ReferenceList", [])),
        "investigators": len(investigators),
        "investigator_affiliations": sum(len(i.get("AffiliationInfo", [])) + ("Affiliation" in i) for i in investigators),
        "supplementary_mesh": len(mc.get("SupplMeshList", [])),
        "other_abstracts": len(mc.get("OtherAbstract", [])),
        "other_ids": len(mc.get("OtherID", [])),
        "person_identifiers": sum(len(p.get("Identifier", [])) for p in people),
        "affiliation_identifiers": sum(len(ai.get("Identifier", [])) for p in people for ai in p.get("AffiliationInfo", [])),
        "title": _norm(str(art.get("ArticleTitle", ""))),
        "abstract": _norm(" ".join(paras)),
    }


# Per fact, (pmid, value) of every record of the warehouse that has one; a record without rows counts 0.
FACT_SQL = {
    "authors": "SELECT pmid, count(*) FROM authors GROUP BY pmid",
    "affiliations": "SELECT pmid, count(*) FROM affiliations GROUP BY pmid",
    "grants": "SELECT pmid, count(*) FROM grants GROUP BY pmid",
    "mesh": "SELECT pmid, count(DISTINCT position) FROM mesh_headings GROUP BY pmid",
    "qualifiers": "SELECT pmid, count(*) FILTER (qualifier_position > 0) FROM mesh_headings GROUP BY pmid",
    "pubtypes": "SELECT pmid, count(*) FROM publication_types GROUP BY pmid",
    "chemicals": "SELECT pmid, count(*) FROM chemicals GROUP BY pmid",
    "keywords": "SELECT pmid, count(*) FROM keywords GROUP BY pmid",
    "ids": "SELECT pmid, count(*) FROM article_ids GROUP BY pmid",
    "databanks": "SELECT pmid, count(*) FROM databanks GROUP BY pmid",
    "references": "SELECT citing_pmid, count(*) FROM reference_entries WHERE origin = 'pubmed' GROUP BY citing_pmid",
    "investigators": "SELECT pmid, count(*) FROM investigators GROUP BY pmid",
    "investigator_affiliations": "SELECT pmid, count(*) FROM investigator_affiliations GROUP BY pmid",
    "supplementary_mesh": "SELECT pmid, count(*) FROM supplementary_mesh GROUP BY pmid",
    "other_abstracts": "SELECT pmid, count(*) FROM other_abstracts GROUP BY pmid",
    "other_ids": "SELECT pmid, count(*) FROM other_ids GROUP BY pmid",
    "person_identifiers": "SELECT pmid, count(*) FROM person_identifiers GROUP BY pmid",
    "affiliation_identifiers": "SELECT pmid, count(*) FROM affiliation_identifiers GROUP BY pmid",
    "title": "SELECT pmid, coalesce(title, '') FROM articles",
    "abstract": "SELECT pmid, coalesce(abstract, '') FROM articles",
}
TEXT_FACTS = ("title", "abstract")  # None when the record was not loaded


def _files() -> list[Path]:
    root = require_corpus("pubmed")
    out = []
    for f in sorted(root.iterdir()):
        data = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
        if b"<PubmedArticle>" in data or b"<PubmedArticle " in data:
            out.append(f)
    return out


def test_every_corpus_pubmed_article_matches_biopython() -> None:
    files = _files()
    checked = 0
    mismatches: list[str] = []
    totals: Counter = Counter()
    con = connect(":memory:")  # one warehouse, emptied before each file (each file is compared on its own)
    for f in files:
        data = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
        bio = {int(str(r["MedlineCitation"]["PMID"])): _bio_facts(r) for r in _bio_records(data)}
        for t in ALL_TABLES:
            if t.name != "schema_migrations":
                con.execute(f"DELETE FROM {t.name}")
        loader = BatchLoader(con, "differential")
        for batch in iter_batches(f):
            loader.load(batch)
        ours = {name: dict(con.execute(sql).fetchall()) for name, sql in FACT_SQL.items()}
        for pmid, facts in bio.items():
            totals.update({k: v for k, v in facts.items() if isinstance(v, int)})
            for name in FACT_SQL:
                value = ours[name].get(pmid, None if name in TEXT_FACTS else 0)
                if name == "abstract":
                    value = _norm(value)
                if value != facts[name]:
                    mismatches.append(f"{f.name} PMID {pmid} {name}: ours {value!r} != biopython {facts[name]!r}")
            checked += 1
    con.close()
    assert checked >= 350, f"only {checked} PubmedArticle records found in the corpus"
    # the corpus holds each rare element, so each comparison above compared something
    for name in ("investigators", "supplementary_mesh", "other_abstracts", "other_ids", "person_identifiers",
                 "affiliation_identifiers"):
        assert totals[name] > 0, name
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:40])
