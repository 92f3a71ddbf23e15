"""Parsers build rows by the column names schemas/ declares (`Table.row`), so a column added in schemas/
and not produced by a parser fails here, naming the table and the column."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path

import pytest

from litmeta.extractors import pmc_xml, pubmed_xml
from litmeta.schemas import ALL_TABLES, TABLES, Column
from litmeta.schemas.rows import is_row_builder

REPO = Path(__file__).resolve().parents[1]
FAKE = Column("fake_col", "VARCHAR", "a column no parser produces")

# One record of each kind, with every element that makes a row (each call site that builds one).
PUBMED_FIXTURE = b"""<?xml version="1.0"?>
<PubmedArticleSet>
<PubmedArticle>
<MedlineCitation Status="MEDLINE" Owner="NLM">
<PMID Version="2">101</PMID>
<DateCompleted><Year>2020</Year><Month>04</Month><Day>01</Day></DateCompleted>
<DateRevised><Year>2021</Year><Month>05</Month><Day>02</Day></DateRevised>
<Article PubModel="Print-Electronic">
<Journal><ISSN IssnType="Print">1111-2222</ISSN><ISSN IssnType="Electronic">3333-4444</ISSN>
<JournalIssue><Volume>7</Volume><Issue>3</Issue><PubDate><Year>2020</Year><Month>Mar</Month><Day>9</Day></PubDate></JournalIssue>
<Title>Journal of Fixtures</Title><ISOAbbreviation>J Fixt</ISOAbbreviation></Journal>
<ArticleTitle>The <i>title</i>.</ArticleTitle>
<Pagination><StartPage>10</StartPage><EndPage>19</EndPage></Pagination>
<ELocationID EIdType="pii">S0001</ELocationID>
<Abstract><AbstractText Label="AIM">Test.</AbstractText></Abstract>
<AuthorList><Author ValidYN="Y" EqualContrib="Y"><LastName>Roe</LastName><ForeName>Ann</ForeName><Initials>A</Initials>
<Suffix>Jr</Suffix><Identifier Source="ORCID">0000000218250097</Identifier>
<AffiliationInfo><Affiliation>Lab B.</Affiliation><Identifier>https://ror.org/000</Identifier></AffiliationInfo></Author>
<Author><CollectiveName>The Group</CollectiveName></Author></AuthorList>
<Affiliation>Old-style article affiliation.</Affiliation>
<Language>eng</Language><Language>fre</Language>
<DataBankList><DataBank><DataBankName>ClinicalTrials.gov</DataBankName>
<AccessionNumberList><AccessionNumber>NCT0001</AccessionNumber></AccessionNumberList></DataBank></DataBankList>
<GrantList><Grant><GrantID>R01 X1</GrantID><Acronym>X</Acronym><Agency>Agency</Agency><Country>Country</Country></Grant></GrantList>
<PublicationTypeList><PublicationType UI="D016428">Journal Article</PublicationType></PublicationTypeList>
<VernacularTitle>Le titre.</VernacularTitle>
<ArticleDate DateType="Electronic"><Year>2020</Year><Month>02</Month><Day>03</Day></ArticleDate>
</Article>
<MedlineJournalInfo><Country>England</Country><MedlineTA>J Fixt</MedlineTA><NlmUniqueID>0002</NlmUniqueID>
<ISSNLinking>1111-2222</ISSNLinking></MedlineJournalInfo>
<ChemicalList><Chemical><RegistryNumber>0</RegistryNumber><NameOfSubstance UI="D000001">Water</NameOfSubstance></Chemical></ChemicalList>
<SupplMeshList><SupplMeshName Type="Disease" UI="C000001">A rare disease</SupplMeshName></SupplMeshList>
<CommentsCorrectionsList><CommentsCorrections RefType="CommentIn"><RefSource>Other J. 2021</RefSource><PMID>202</PMID>
</CommentsCorrections></CommentsCorrectionsList>
<MeshHeadingList>
<MeshHeading><DescriptorName UI="D000002" MajorTopicYN="N">Humans</DescriptorName></MeshHeading>
<MeshHeading><DescriptorName UI="D000003" MajorTopicYN="Y">Water</DescriptorName>
<QualifierName UI="Q000001" MajorTopicYN="Y">analysis</QualifierName>
<QualifierName UI="Q000002" MajorTopicYN="N">chemistry</QualifierName></MeshHeading>
</MeshHeadingList>
<OtherID Source="NLM">PMC101</OtherID>
<OtherAbstract Type="Publisher" Language="fre"><AbstractText>Un essai.</AbstractText>
<CopyrightInformation>(c) Press</CopyrightInformation></OtherAbstract>
<KeywordList Owner="NOTNLM"><Keyword MajorTopicYN="N">first</Keyword><Keyword MajorTopicYN="Y">second</Keyword></KeywordList>
<KeywordList Owner="NLM"><Keyword MajorTopicYN="N">third</Keyword></KeywordList>
<CoiStatement>None declared.</CoiStatement>
<InvestigatorList><Investigator ValidYN="Y"><LastName>Doe</LastName><ForeName>Jo</ForeName><Initials>J</Initials>
<Suffix>II</Suffix><Identifier Source="ORCID">0000-0002-1825-0097</Identifier>
<AffiliationInfo><Affiliation>Site C.</Affiliation><Identifier Source="ROR">https://ror.org/001</Identifier></AffiliationInfo>
</Investigator></InvestigatorList>
</MedlineCitation>
<PubmedData>
<History><PubMedPubDate PubStatus="received"><Year>2019</Year><Month>12</Month><Day>1</Day></PubMedPubDate></History>
<PublicationStatus>ppublish</PublicationStatus>
<ArticleIdList><ArticleId IdType="pubmed">101</ArticleId><ArticleId IdType="doi">10.1/fixture</ArticleId>
<ArticleId IdType="pmc">PMC101</ArticleId></ArticleIdList>
<ReferenceList><Reference><Citation>Cited work.</Citation><ArticleIdList><ArticleId IdType="pubmed">303</ArticleId>
<ArticleId IdType="doi">10.1/cited</ArticleId><ArticleId IdType="pmc">PMC303</ArticleId></ArticleIdList></Reference></ReferenceList>
</PubmedData>
</PubmedArticle>
<PubmedBookArticle>
<BookDocument>
<PMID Version="1">102</PMID>
<ArticleIdList><ArticleId IdType="bookaccession">NBK1</ArticleId></ArticleIdList>
<Book><Publisher><PublisherName>Press</PublisherName></Publisher><BookTitle>A Book</BookTitle>
<PubDate><Year>2019</Year></PubDate></Book>
<Language>eng</Language>
<AuthorList Type="authors"><Author><LastName>Poe</LastName><Initials>E</Initials></Author></AuthorList>
<PublicationType UI="D016454">Review</PublicationType>
<KeywordList Owner="NOTNLM"><Keyword>book keyword</Keyword></KeywordList>
<GrantList><Grant><GrantID>G2</GrantID><Agency>Agency</Agency></Grant></GrantList>
<ReferenceList><Reference><Citation>Book ref.</Citation><ArticleIdList><ArticleId IdType="pubmed">404</ArticleId>
</ArticleIdList></Reference></ReferenceList>
</BookDocument>
<PubmedBookData><History><PubMedPubDate PubStatus="pubmed"><Year>2019</Year><Month>1</Month><Day>2</Day></PubMedPubDate></History>
<PublicationStatus>ppublish</PublicationStatus><ArticleIdList><ArticleId IdType="pubmed">102</ArticleId></ArticleIdList>
</PubmedBookData>
</PubmedBookArticle>
</PubmedArticleSet>
"""

PMC_FIXTURE = b"""<?xml version="1.0"?>
<pmc-articleset><article xmlns:xlink="http://www.w3.org/1999/xlink" article-type="research-article">
<front><journal-meta><journal-title-group><journal-title>PMC Fixtures</journal-title></journal-title-group></journal-meta>
<article-meta><article-id pub-id-type="pmid">501</article-id><article-id pub-id-type="pmc">5001</article-id>
<article-id pub-id-type="doi">10.1/pmc</article-id>
<title-group><article-title>A PMC title</article-title></title-group>
<pub-date pub-type="epub"><year>2022</year></pub-date>
<permissions><license xlink:href="https://creativecommons.org/licenses/by/4.0/"/></permissions></article-meta></front>
<back><ref-list><ref id="r1"><element-citation><article-title>Cited</article-title>
<pub-id pub-id-type="pmid">601</pub-id></element-citation></ref></ref-list></back>
</article></pmc-articleset>
"""

PARSERS = (("pubmed_xml", pubmed_xml, PUBMED_FIXTURE), ("pmc_xml", pmc_xml, PMC_FIXTURE))


def check_parsers_fill_every_column() -> None:
    """Each parser, on its fixture, loads every record (none rejected) and gives every table it writes rows
    with the columns that schemas/ declares."""
    for label, module, fixture in PARSERS:
        batches = list(module.iter_batches(fixture, source_name=f"{label} fixture"))
        rejects = [f"{r.record_key}: {r.reason}" for b in batches for r in b.rejects]
        assert not rejects, f"{label}: " + "; ".join(rejects)
        for name in module.TABLE_NAMES:
            tables = [b.tables[name] for b in batches]
            assert sum(t.num_rows for t in tables), f"{label}: the fixture gives no {name} row"
            assert all(t.column_names == TABLES[name].extracted_names for t in tables), name


def test_each_parser_fills_every_column_of_every_table_it_writes():
    check_parsers_fill_every_column()


def test_rows_carry_each_value_in_its_named_column():
    batch = list(pubmed_xml.iter_batches(PUBMED_FIXTURE))[0]
    articles = {a["pmid"]: a for a in batch.tables["articles"].to_pylist()}
    a = articles[101]
    assert (a["title"], a["vernacular_title"], a["journal_title"], a["journal_iso_abbrev"], a["medline_ta"]) == (
        "The title.", "Le titre.", "Journal of Fixtures", "J Fixt", "J Fixt")
    assert (a["issn_print"], a["issn_electronic"], a["issn_linking"], a["pages"], a["pii"], a["pmcid"]) == (
        "1111-2222", "3333-4444", "1111-2222", "10-19", "S0001", "PMC101")
    assert (articles[102]["record_type"], articles[102]["title"], articles[102]["journal_title"]) == (
        "book", "A Book", "Press")
    keywords = [(k["pmid"], k["position"], k["owner"]) for k in batch.tables["keywords"].to_pylist()]
    assert keywords == [(101, 1, "NOTNLM"), (101, 2, "NOTNLM"), (101, 3, "NLM"), (102, 1, "NOTNLM")]
    mesh = [(m["position"], m["qualifier_ui"], m["qualifier_position"]) for m in batch.tables["mesh_headings"].to_pylist()]
    assert mesh == [(1, None, 0), (2, "Q000001", 1), (2, "Q000002", 2)]
    affiliations = [(f["author_position"], f["affiliation"]) for f in batch.tables["affiliations"].to_pylist()]
    assert affiliations == [(1, "Lab B."), (0, "Old-style article affiliation.")]


def test_a_row_is_built_by_keyword_in_schema_column_order():
    for t in ALL_TABLES:
        names = t.extracted_names
        row = t.row(**{n: i for i, n in reversed(list(enumerate(names)))})
        assert type(row) is tuple and row == tuple(range(len(names))), t.name
    with pytest.raises(TypeError, match=r"citation_edges\.row\(\) takes 0 positional arguments"):
        TABLES["citation_edges"].row(1, 2, "pubmed_reflist")


def test_a_missing_or_unknown_column_is_a_type_error_naming_the_table_and_column():
    authors = TABLES["authors"]
    values = dict.fromkeys(authors.extracted_names)
    added = replace(authors, columns=(*authors.columns, FAKE))
    with pytest.raises(TypeError, match=r"authors\.row\(\) missing 1 required keyword-only argument: 'fake_col'"):
        added.row(**values)
    with pytest.raises(TypeError, match=r"authors\.row\(\) got an unexpected keyword argument 'fore_nmae'"):
        authors.row(**values, fore_nmae="Ann")


def _code_names(code: types.CodeType) -> set[str]:
    """Global and attribute names ``code`` and the code nested in it (comprehensions, ...) load."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def test_every_row_the_parsers_build_is_inlined():
    """No parser function calls a row builder at run time: each call was checked at import and compiled
    to a tuple display (`inline_rows`)."""
    for label, module, _ in PARSERS:
        builders = {name: value.table for name, value in vars(module).items() if is_row_builder(value)}
        assert set(builders.values()) == set(module.TABLE_NAMES), label
        classes = [c for c in vars(module).values() if isinstance(c, type) and c.__module__ == module.__name__]
        for scope in (module, *classes):
            for f in (getattr(v, "__func__", v) for v in vars(scope).values()):
                if isinstance(f, types.FunctionType) and f.__module__ == module.__name__:
                    assert not builders.keys() & _code_names(f.__code__), (label, f.__qualname__)


_MODULE = """from litmeta.schemas import TABLES
from litmeta.schemas.rows import inline_rows

EDGE = TABLES["citation_edges"].row


class Parser:
    @staticmethod
    @inline_rows
    def edges(pmid, cited):
        return [EDGE({call}) for c in cited]
"""


def _import(path: Path, call: str):
    path.write_text(_MODULE.format(call=call))
    spec = importlib.util.spec_from_file_location(f"rows_fixture_{abs(hash(call))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_inline_rows_builds_the_rows_of_the_keyword_calls_without_calling(tmp_path):
    module = _import(tmp_path / "inlined.py", 'citing_pmid=pmid, cited_pmid=c, origin="pubmed_reflist"')
    rows = module.Parser.edges(1, [2, 3])
    assert rows == [TABLES["citation_edges"].row(citing_pmid=1, cited_pmid=c, origin="pubmed_reflist") for c in (2, 3)]
    assert rows == [(1, 2, "pubmed_reflist"), (1, 3, "pubmed_reflist")]
    assert "EDGE" not in _code_names(module.Parser.edges.__code__)
    assert module.Parser.edges.__qualname__ == "Parser.edges"
    assert module.Parser.edges.__code__.co_filename == str(tmp_path / "inlined.py")


@pytest.mark.parametrize(("call", "message"), [
    ("citing_pmid=pmid, cited_pmid=c", r"citation_edges\.row\(\) missing 1 required keyword-only argument: 'origin'"),
    ('citing_pmid=pmid, cited_pmid=c, origin="x", orign="y"', r"citation_edges\.row\(\) got an unexpected keyword argument 'orign'"),
    ('cited_pmid=c, citing_pmid=pmid, origin="x"', r"citation_edges\.row\(\) names the columns out of the table's order"),
    ('pmid, c, "x"', r"citation_edges\.row\(\) takes every column by keyword"),
])
def test_inline_rows_fails_the_import_naming_the_line_the_table_and_the_column(tmp_path, call, message):
    with pytest.raises(TypeError, match=message) as failed:
        _import(tmp_path / "bad.py", call)
    assert str(failed.value).startswith(f"{tmp_path / 'bad.py'}:11: ")


# Run in a fresh process: the table is changed in schemas/ before the parsers are imported (reloaded).
_ADD_COLUMN = """
import importlib, runpy, sys
from dataclasses import replace
from litmeta.schemas import batch, tables
from litmeta.extractors import pmc_xml, pubmed_xml
test = runpy.run_path(sys.argv[1])
original = dict(tables.TABLES)
for name in sys.argv[2:]:
    tables.TABLES.update(original)
    tables.TABLES[name] = replace(original[name], columns=(*original[name].columns, test["FAKE"]))
    batch._row_type.cache_clear()
    try:
        importlib.reload(pubmed_xml), importlib.reload(pmc_xml)
        test["check_parsers_fill_every_column"]()
        print(f"{name}: passed")
    except (TypeError, AssertionError) as exc:
        print(f"{name}: failed: {type(exc).__name__}: {exc}".replace("\\n", " "))
"""


def test_a_column_added_in_schemas_and_not_produced_by_a_parser_fails_naming_it():
    written = sorted({n for _, module, _ in PARSERS for n in module.TABLE_NAMES})
    r = subprocess.run([sys.executable, "-c", _ADD_COLUMN, __file__, *written], capture_output=True, text=True,
                       timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in r.stdout.splitlines())
    assert sorted(lines) == written, r.stdout
    for name in written:
        assert lines[name].startswith("failed: TypeError: "), (name, lines[name])
        assert f"{name}.row() missing 1 required keyword-only argument: 'fake_col'" in lines[name], lines[name]
