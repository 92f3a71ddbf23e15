"""The rest of the PubMed record: investigators, supplementary MeSH, other abstracts and ids, identifiers.

Values land in their columns, rows are replaced with their record, a bad record leaves none of them,
hostile markup is not expanded, and migration 4 gives an older warehouse the new tables.
"""

from __future__ import annotations

from litmeta.extractors.pubmed_xml import iter_batches
from litmeta.warehouse.db import connect
from litmeta.warehouse.load import BatchLoader
from litmeta.warehouse.migrations import migrate

NEW_TABLES = ("investigators", "investigator_affiliations", "person_identifiers", "affiliation_identifiers",
              "supplementary_mesh", "other_abstracts", "other_ids")


def record(pmid: str = "7", revised: str = "2021", investigators: int = 2, doctype: str = "", extra: str = "") -> bytes:
    invs = "".join(
        f'<Investigator ValidYN="{"N" if i == 2 else "Y"}"><LastName>Inv{i}</LastName><ForeName>F{i}</ForeName>'
        f'<Initials>F</Initials><Identifier Source="ORCID">https://orcid.org/0000-0002-1825-009{i}</Identifier>'
        f'<Identifier Source="Other">x{i}</Identifier>'
        f'<AffiliationInfo><Affiliation>Site {i}.</Affiliation><Identifier Source="ROR">https://ror.org/0{i}</Identifier>'
        f'<Identifier Source="ISNI">0000 0004 {i}</Identifier></AffiliationInfo></Investigator>'
        for i in range(1, investigators + 1))
    return f"""<?xml version="1.0"?>{doctype}
<PubmedArticleSet><PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{pmid}</PMID>
<DateRevised><Year>{revised}</Year><Month>01</Month><Day>01</Day></DateRevised>
<Article><Journal><Title>J</Title></Journal><ArticleTitle>T</ArticleTitle>
<AuthorList><Author><LastName>Roe</LastName><AffiliationInfo><Affiliation>Lab.</Affiliation>
<Identifier Source="GRID">grid.1.2</Identifier><Identifier Source="ROR">https://ror.org/03</Identifier></AffiliationInfo>
</Author></AuthorList></Article>
<MedlineJournalInfo><NlmUniqueID>1</NlmUniqueID></MedlineJournalInfo>
<SupplMeshList><SupplMeshName Type="Disease" UI="C536330">Polycystic liver disease</SupplMeshName>
<SupplMeshName Type="Protocol" UI="C000002">A protocol</SupplMeshName></SupplMeshList>
<OtherID Source="NLM">PMC12345</OtherID><OtherID Source="KIE">KIE/1</OtherID>
<OtherAbstract Type="Publisher" Language="fre"><AbstractText Label="BUT">Un <i>essai</i>.</AbstractText>
<AbstractText>Suite.</AbstractText><CopyrightInformation>(c) Press</CopyrightInformation></OtherAbstract>
<OtherAbstract Type="NASA" Language="eng"><AbstractText>NASA text.</AbstractText></OtherAbstract>
{extra}<InvestigatorList>{invs}</InvestigatorList>
</MedlineCitation></PubmedArticle></PubmedArticleSet>""".encode()


def _load(con, *docs: bytes):
    loader = BatchLoader(con, "rest")
    batches = [b for d in docs for b in iter_batches(d, source_name="rest.xml")]
    for b in batches:
        loader.load(b)
    return batches


def _rows(con, table: str) -> list[tuple]:
    return con.execute(f"SELECT * EXCLUDE (pmid) FROM {table} ORDER BY ALL").fetchall()


def test_each_value_lands_in_its_column():
    con = connect(":memory:")
    _load(con, record())
    assert _rows(con, "investigators") == [
        (1, "Inv1", "F1", "F", None, "0000-0002-1825-0091", True),
        (2, "Inv2", "F2", "F", None, "0000-0002-1825-0092", False)]
    assert _rows(con, "investigator_affiliations") == [(1, 1, "Site 1."), (2, 1, "Site 2.")]
    assert _rows(con, "person_identifiers") == [
        ("investigator", 1, 1, "ORCID", "https://orcid.org/0000-0002-1825-0091"), ("investigator", 1, 2, "Other", "x1"),
        ("investigator", 2, 1, "ORCID", "https://orcid.org/0000-0002-1825-0092"), ("investigator", 2, 2, "Other", "x2")]
    assert _rows(con, "affiliation_identifiers") == [
        ("author", 1, 1, 1, "GRID", "grid.1.2"), ("author", 1, 1, 2, "ROR", "https://ror.org/03"),
        ("investigator", 1, 1, 1, "ROR", "https://ror.org/01"), ("investigator", 1, 1, 2, "ISNI", "0000 0004 1"),
        ("investigator", 2, 1, 1, "ROR", "https://ror.org/02"), ("investigator", 2, 1, 2, "ISNI", "0000 0004 2")]
    assert con.execute("SELECT identifier FROM affiliations").fetchall() == [("grid.1.2",)]  # first, as before
    assert _rows(con, "supplementary_mesh") == [
        (1, "C536330", "Polycystic liver disease", "Disease"), (2, "C000002", "A protocol", "Protocol")]
    assert _rows(con, "other_ids") == [(1, "NLM", "PMC12345"), (2, "KIE", "KIE/1")]
    assert _rows(con, "other_abstracts") == [
        (1, "Publisher", "fre", "BUT: Un essai.\nSuite.", "(c) Press"), (2, "NASA", "eng", "NASA text.", None)]


def test_a_newer_record_replaces_the_rows_and_a_reload_changes_nothing():
    con = connect(":memory:")
    _load(con, record(investigators=3))
    _load(con, record(investigators=1, revised="2022"))
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in NEW_TABLES}
    assert counts == {"investigators": 1, "investigator_affiliations": 1, "person_identifiers": 2,
                      "affiliation_identifiers": 4, "supplementary_mesh": 2, "other_abstracts": 2, "other_ids": 2}
    before = {t: _rows(con, t) for t in NEW_TABLES}
    _load(con, record(investigators=3))  # older: skipped
    _load(con, record(investigators=1, revised="2022"))  # the same: unchanged
    assert {t: _rows(con, t) for t in NEW_TABLES} == before


def test_a_malformed_record_is_rejected_whole_and_the_next_loads():
    bad = record(pmid="x7").replace(b"</PubmedArticleSet>", b"") + record(pmid="8")[len(b'<?xml version="1.0"?>\n<PubmedArticleSet>'):]
    con = connect(":memory:")
    batches = _load(con, bad)
    assert [r.reason for b in batches for r in b.rejects] == ["PMID 'x7' is not a positive integer"]
    for t in NEW_TABLES:
        assert {r[0] for r in con.execute(f"SELECT DISTINCT pmid FROM {t}").fetchall()} == {8}, t


def test_entities_in_the_new_elements_are_not_expanded(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    doctype = (f'<!DOCTYPE PubmedArticleSet [<!ENTITY x SYSTEM "file://{secret}"><!ENTITY y "BIG">'
               '<!ENTITY z "&y;&y;&y;&y;&y;&y;&y;&y;">]>')
    con = connect(":memory:")
    batches = _load(con, record(doctype=doctype, extra='<OtherID Source="E">&x;&z;</OtherID>'))
    stored = " ".join(str(v) for t in NEW_TABLES for row in _rows(con, t) for v in row)
    assert "SECRET" not in stored and "BIG" not in stored
    assert all("SECRET" not in r.excerpt for b in batches for r in b.rejects)


def test_migration_4_adds_the_new_tables_to_an_older_warehouse(tmp_path):
    db = tmp_path / "old.duckdb"
    con = connect(db)
    for t in (*NEW_TABLES, "full_text_links"):
        con.execute(f"DROP TABLE {t}")
    con.execute("DELETE FROM schema_migrations WHERE version = 4")
    con.close()
    con = connect(db, migrate_schema=False)
    assert migrate(con) == [4]
    assert con.execute("SELECT count(*) FROM schema_migrations WHERE version = 4").fetchall() == [(1,)]
    assert migrate(con) == []
    _load(con, record())
    assert con.execute("SELECT count(*) FROM investigators").fetchall() == [(2,)]
