"""Loading rules: idempotency, load order, newer-wins, deletions, edges, rejects (no Prefect needed)."""

from __future__ import annotations

import gzip
import hashlib
import random
from contextlib import contextmanager
from pathlib import Path

import pytest
from lxml import etree

from litmeta.extractors import pmc_xml, pubmed_xml
from litmeta.extractors.files import detect_kind
from litmeta.warehouse import load as loading
from litmeta.warehouse.checks import content_hashes, duplicate_keys
from litmeta.warehouse.db import connect
from litmeta.warehouse.load import BatchLoader, load_batches
from tests.conftest import CORPUS, require_corpus
from tests.pubmed_fixtures import article, document


def load_paths(con, paths: list[Path], run_id: str = "r") -> BatchLoader:
    loader = BatchLoader(con, run_id)
    for p in paths:
        module = pubmed_xml if detect_kind(p) == "pubmed" else pmc_xml
        for batch in module.iter_batches(p):
            loader.load(batch)
    return loader


def load_bytes(con, data: bytes, run_id: str = "r", name: str = "mem.xml") -> BatchLoader:
    loader = BatchLoader(con, run_id)
    for batch in pubmed_xml.iter_batches(data, source_name=name):
        loader.load(batch)
    return loader


def corpus_files() -> list[Path]:
    files = sorted((require_corpus("pubmed")).iterdir()) + sorted((CORPUS / "pmc").iterdir())
    return [f for f in files if f.is_file()]


@pytest.mark.corpus
def test_loading_twice_or_in_another_order_gives_identical_tables(tmp_path):
    files = corpus_files()
    a = connect(":memory:")
    load_paths(a, files)
    first = content_hashes(a)
    load_paths(a, files, run_id="again")
    assert content_hashes(a) == first, "loading the same files twice changed table contents"

    shuffled = files[:]
    random.Random(7).shuffle(shuffled)
    b = connect(":memory:")
    load_paths(b, shuffled)
    assert content_hashes(b) == first
    assert duplicate_keys(a) == {}
    assert a.execute("SELECT count(*) FROM articles").fetchall()[0][0] > 900
    assert a.execute("SELECT count(*) FROM pmc_articles").fetchall()[0][0] >= 20


def test_newer_record_wins_and_older_never_overwrites():
    con = connect(":memory:")
    new = document(article(1001, revised="2024-05-01", title="New title."))
    old = document(article(1001, revised="2020-01-01", title="Old title."))
    v2 = document(article(1001, version=2, revised="2019-01-01", title="Version two."))
    load_bytes(con, new)
    stats = load_bytes(con, old).stats
    assert stats.records_skipped_older == 1
    assert con.execute("SELECT title FROM articles WHERE pmid = 1001").fetchall() == [("New title.",)]
    load_bytes(con, v2)
    assert con.execute("SELECT title, version FROM articles WHERE pmid = 1001").fetchall() == [("Version two.", 2)]
    # one set of child rows, the newest record's
    assert con.execute("SELECT count(*) FROM grants WHERE pmid = 1001").fetchall()[0][0] == 1


def test_update_replaces_child_rows_and_keeps_first_seen():
    con = connect(":memory:")
    load_bytes(con, document(article(7, revised="2024-01-01", grants=3)))
    first_seen = con.execute("SELECT first_seen FROM articles WHERE pmid = 7").fetchall()[0][0]
    stats = load_bytes(con, document(article(7, revised="2024-02-01", grants=1))).stats
    assert stats.records_updated == 1
    assert con.execute("SELECT count(*) FROM grants WHERE pmid = 7").fetchall()[0][0] == 1
    assert con.execute("SELECT first_seen FROM articles WHERE pmid = 7").fetchall()[0][0] == first_seen
    again = load_bytes(con, document(article(7, revised="2024-02-01", grants=1))).stats
    assert again.records_unchanged == 1 and again.records_updated == 0


def test_delete_citation_removes_rows_and_is_a_tombstone():
    con = connect(":memory:")
    load_bytes(con, document(article(11, refs=(5, 6)), article(12)))
    assert con.execute("SELECT count(*) FROM citation_edges WHERE citing_pmid = 11").fetchall()[0][0] == 2
    load_bytes(con, document(deleted=(11,)), name="update.xml")
    for table, col in (("articles", "pmid"), ("grants", "pmid"), ("authors", "pmid"),
                       ("reference_entries", "citing_pmid"), ("citation_edges", "citing_pmid")):
        assert con.execute(f"SELECT count(*) FROM {table} WHERE {col} = 11").fetchall()[0][0] == 0, table
    assert con.execute("SELECT pmid, source FROM deleted_articles").fetchall() == [(11, "update.xml")]
    # the baseline loaded again (any order) does not bring it back
    stats = load_bytes(con, document(article(11, refs=(5, 6)), article(12))).stats
    assert stats.records_skipped_deleted == 1
    assert con.execute("SELECT count(*) FROM articles WHERE pmid = 11").fetchall()[0][0] == 0


def test_reflist_edges_keep_first_seen_and_move_last_seen():
    con = connect(":memory:")
    load_bytes(con, document(article(21, refs=(1, 2))))
    (f1, l1), = con.execute("SELECT first_seen, last_seen FROM citation_edges WHERE cited_pmid = 1").fetchall()
    load_bytes(con, document(article(21, revised="2025-01-01", refs=(2, 3))))
    rows = dict((r[0], r[1:]) for r in con.execute(
        "SELECT cited_pmid, first_seen, last_seen FROM citation_edges ORDER BY 1").fetchall())
    assert set(rows) == {1, 2, 3}
    assert rows[1] == (f1, l1), "an edge not seen again keeps its old last_seen"
    assert rows[2][0] == f1 and rows[2][1] > l1
    assert duplicate_keys(con) == {}


def test_parser_flattens_markup_and_normalises_orcid():
    con = connect(":memory:")
    load_bytes(con, document(article(31, title="CO<sub>2</sub> and <i>E. coli</i> at 10<sup>-3</sup>.")))
    title, abstract = con.execute("SELECT title, abstract FROM articles WHERE pmid = 31").fetchall()[0]
    assert title == "CO2 and E. coli at 10-3."
    assert abstract == "BACKGROUND: x2 is big.\nRESULTS: Done."
    assert con.execute("SELECT orcid FROM authors WHERE pmid = 31").fetchall() == [("0000-0002-1825-009X",)]
    assert con.execute("SELECT pub_year, pub_month, pub_date_text FROM articles").fetchall() == [(2020, 3, "2020 Mar")]


def _batch(*pmids: int, partial: bool = False):
    (batch,) = pubmed_xml.iter_batches(document(*(article(p) for p in pmids)))
    batch.partial = partial
    return batch


def _stored(db) -> list[int]:
    con = connect(db)
    try:
        return [p for (p,) in con.execute("SELECT pmid FROM articles ORDER BY pmid").fetchall()]
    finally:
        con.close()


def test_sibling_reference_lists_number_their_references_on():
    """PubmedData may hold several ReferenceList elements (DTD: ReferenceList*): one numbering, no key twice."""
    second = ("<ReferenceList><Reference><Citation>Ref 3 again.</Citation><ArticleIdList>"
              '<ArticleId IdType="pubmed">3</ArticleId></ArticleIdList></Reference>'
              "<Reference><Citation>Ref 9.</Citation></Reference></ReferenceList>")
    xml = article(61, refs=(2, 3)).replace("</ReferenceList>", "</ReferenceList>" + second, 1)
    con = connect(":memory:")
    load_bytes(con, document(xml))
    rows = con.execute("SELECT position, citation, cited_pmid FROM reference_entries WHERE citing_pmid = 61 "
                       "ORDER BY position").fetchall()
    assert rows == [(1, "Ref 2.", 2), (2, "Ref 3.", 3), (3, "Ref 3 again.", 3), (4, "Ref 9.", None)]
    assert con.execute("SELECT cited_pmid FROM citation_edges WHERE citing_pmid = 61 ORDER BY 1").fetchall() == [(2,), (3,)]
    assert duplicate_keys(con) == {}


def test_a_batch_handed_out_early_shares_its_transaction_with_the_next(tmp_path, monkeypatch):
    db = str(tmp_path / "w.duckdb")
    connect(db).close()
    reported = []

    def batches(fail_after: bool):
        yield _batch(1, 2)  # a full batch: a transaction of its own
        yield _batch(3, partial=True)  # handed out early: waits for the next in its transaction
        yield _batch(4, partial=True)
        if fail_after:
            raise RuntimeError("the input broke")
        yield _batch(5)

    def on_batch(batch, stats):
        reported.append(sorted(batch.tables["articles"].column("pmid").to_pylist()))

    with pytest.raises(RuntimeError):
        load_batches(db, "r", batches(fail_after=True), on_batch)
    assert _stored(db) == [1, 2]  # 3 and 4 were not committed: their transaction was rolled back
    reported.clear()
    stats = load_batches(db, "r", batches(fail_after=False), on_batch)
    assert _stored(db) == [1, 2, 3, 4, 5] and stats.records_new == 3 and stats.records_unchanged == 2
    assert reported == [[1, 2], [3], [4], [5]]  # each batch reported once written, in order
    # a transaction of partial batches ends once it holds BATCH_RECORDS records
    monkeypatch.setattr(loading, "BATCH_RECORDS", 2)
    seen = []
    original = loading.BatchLoader.transaction

    @contextmanager
    def counting(self):
        with original(self):
            yield
        seen.append(self.stats.records_new)  # records of the transaction just committed

    monkeypatch.setattr(loading.BatchLoader, "transaction", counting)
    load_batches(db, "r", iter([_batch(6, partial=True), _batch(7, partial=True), _batch(8, partial=True), _batch(9)]))
    assert seen == [2, 2] and _stored(db)[-4:] == [6, 7, 8, 9]


def _hashes(data: bytes) -> dict[int, str]:
    con = connect(":memory:")
    load_bytes(con, data)
    return dict(con.execute("SELECT pmid, content_sha256 FROM articles").fetchall())


def test_content_sha256_is_the_hash_of_the_record_bytes_as_delivered():
    # char references and &quot; stay as written: the hash is over the delivered bytes, which
    # anyone can recompute with sha256sum on the record's text
    first = article(41, title="A &quot;quoted&quot; kg&#x207b;&#xb9; title.")
    second = article(42, refs=(41,))
    hashes = _hashes(document(first, second))
    assert hashes == {41: hashlib.sha256(first.strip().encode()).hexdigest(),
                      42: hashlib.sha256(second.strip().encode()).hexdigest()}
    # the same records cut into other pieces, or parsed in another file, hash the same
    assert _hashes(document(second, first)) == hashes


def test_content_sha256_falls_back_to_the_serialised_record_where_its_bytes_are_ambiguous():
    one_line = article(51).replace("\n", " ")
    two = one_line + one_line.replace(">51<", ">52<")  # two records start on one line
    commented = article(53).replace("<Language>", "<!-- <PubmedArticle> --><Language>", 1)  # a record tag in a comment
    padded = article(54).replace(">54</PMID>", "> 54 </PMID>")  # the PMID check cannot confirm the bytes
    plain = article(55)
    hashes = _hashes(document(two, commented, padded, plain))
    assert sorted(hashes) == [51, 52, 53, 54, 55]
    for pmid, xml in ((51, one_line), (52, one_line.replace(">51<", ">52<")), (53, commented), (54, padded)):
        elem = etree.fromstring(xml.strip().encode(), etree.XMLParser(remove_comments=True))
        assert hashes[pmid] == hashlib.sha256(etree.tostring(elem, encoding="utf-8")).hexdigest(), pmid
    assert hashes[55] == hashlib.sha256(plain.strip().encode()).hexdigest()  # the others keep their bytes


@pytest.mark.parametrize("raw,expected", [
    ("0000-0002-1825-0097", "0000-0002-1825-0097"),
    ("https://orcid.org/0000-0002-1825-0097", "0000-0002-1825-0097"),
    ("http://orcid.org/0000000218250097", "0000-0002-1825-0097"),
    ("0000 0002 1825 009x", "0000-0002-1825-009X"),
    ("orcid.org/0000-0002-1825-009X ", "0000-0002-1825-009X"),
])
def test_orcid_forms(raw, expected):
    assert pubmed_xml.normalize_orcid(raw) == expected


def test_medline_date_and_season_keep_text_and_derive_year():
    con = connect(":memory:")
    doc = document(article(41), article(42)).decode()
    doc = doc.replace("<PubDate><Year>2020</Year><Month>Mar</Month></PubDate>",
                      "<PubDate><MedlineDate>1998 Dec-1999 Jan</MedlineDate></PubDate>", 1)
    doc = doc.replace("<PubDate><Year>2020</Year><Month>Mar</Month></PubDate>",
                      "<PubDate><Year>2000</Year><Season>Spring</Season></PubDate>", 1)
    load_bytes(con, doc.encode())
    assert con.execute("SELECT pmid, pub_year, pub_month, pub_date_text FROM articles ORDER BY pmid").fetchall() == [
        (41, 1998, None, "1998 Dec-1999 Jan"), (42, 2000, None, "2000 Spring")]


# -- malformed input ---------------------------------------------------------------------------
def test_record_missing_pmid_is_rejected_and_the_rest_loads():
    con = connect(":memory:")
    bad = article(51).replace('<PMID Version="1">51</PMID>', "")
    loader = load_bytes(con, document(article(50), bad, article(52)), name="batch.xml")
    assert con.execute("SELECT pmid FROM articles ORDER BY 1").fetchall() == [(50,), (52,)]
    rej = con.execute("SELECT source, record_key, reason FROM rejects").fetchall()
    assert rej == [("batch.xml", "record 2", "record has no PMID")]
    assert loader.stats.rejects == 1


@pytest.mark.parametrize("damage", ["truncated", "invalid_utf8", "truncated_gzip", "corrupt_gzip"])
def test_broken_files_name_the_file_and_keep_earlier_records(tmp_path, damage):
    data = document(*(article(1000 + i) for i in range(400)))  # ~1 MB: breaks well after the first records
    path = tmp_path / ("broken.xml.gz" if damage.endswith("gzip") else "broken.xml")
    if damage == "truncated":
        path.write_bytes(data[: int(len(data) * 0.7)])
    elif damage == "invalid_utf8":
        i = data.index(b"<ArticleTitle>", data.index(b">1300</PMID>")) + len(b"<ArticleTitle>")
        path.write_bytes(data[:i] + b"\xff\xfe" + data[i:])
    elif damage == "truncated_gzip":
        path.write_bytes(gzip.compress(data)[:-40])
    else:  # a second gzip member whose first deflate block has the reserved block type (invalid data)
        k = int(len(data) * 0.7)
        second = gzip.compress(data[k:])
        path.write_bytes(gzip.compress(data[:k]) + second[:10] + b"\xff" + second[11:])
    con = connect(":memory:")
    loader = load_paths(con, [path])
    rejects = con.execute("SELECT source, record_key, reason FROM rejects").fetchall()
    assert len(rejects) == 1 and rejects[0][0] == str(path)
    where, reason = rejects[0][1], rejects[0][2]
    if damage.endswith("gzip"):
        assert where.startswith("after ") and "gzip" in reason and "truncated or corrupt" in reason
    else:
        assert where.startswith("line "), where
    assert 100 <= loader.stats.records_new < 400, "records before the break load, the break is reported"
    assert loader.stats.rejects == 1


# -- hostile XML ---------------------------------------------------------------------------------
def test_external_entities_are_not_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    doc = document(article(70, title="Hello &xxe; &web;")).decode().replace(
        "<PubmedArticleSet>",
        f'<!DOCTYPE PubmedArticleSet [<!ENTITY xxe SYSTEM "file://{secret}"><!ENTITY web SYSTEM "http://127.0.0.1:9/x">]>'
        "<PubmedArticleSet>", 1).replace("<!DOCTYPE PubmedArticleSet PUBLIC", "<!-- -->\n<!--", 1)
    doc = doc.replace('"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">', "-->", 1)
    con = connect(":memory:")
    load_bytes(con, doc.encode())
    title = con.execute("SELECT title FROM articles WHERE pmid = 70").fetchall()[0][0]
    assert "TOP-SECRET" not in title
    assert "&xxe;" in title  # left as an unexpanded reference


def test_entity_expansion_bomb_is_refused():
    lol = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    doc = document(article(80, title="&lol9;")).decode()
    doc = doc.replace(doc[doc.index("<!DOCTYPE"):doc.index("<PubmedArticleSet>")], f"<!DOCTYPE PubmedArticleSet [{lol}]>\n")
    con = connect(":memory:")
    load_bytes(con, doc.encode(), name="bomb.xml")
    titles = con.execute("SELECT title FROM articles").fetchall()
    assert all(len(t[0]) < 100 for t in titles), "entities must never be expanded"
    rejects = con.execute("SELECT source, reason FROM rejects").fetchall()
    assert rejects and rejects[0][0] == "bomb.xml" and "amplification" in rejects[0][1]


def test_detect_kind(tmp_path):
    p = tmp_path / "a.xml.gz"
    p.write_bytes(gzip.compress(document(article(1))))
    assert detect_kind(p) == "pubmed"
    q = tmp_path / "b.nxml"
    q.write_text('<?xml version="1.0"?><article article-type="research-article"><front/></article>')
    assert detect_kind(q) == "pmc"


def test_threads_are_ignored_when_the_process_has_the_warehouse_open_already(tmp_path):
    """DuckDB shares one database instance per file and process; asking for other threads then must not fail."""
    db = tmp_path / "w.duckdb"
    held = connect(db)
    try:
        con = connect(db, threads=1)
        assert con.execute("SELECT count(*) FROM articles").fetchone() == (0,)
        con.close()
    finally:
        held.close()
    con = connect(db, threads=1)
    assert con.execute("SELECT current_setting('threads')").fetchone() == (1,)
    con.close()


_LOAD_SMALL_FILES = """
import sys
from pathlib import Path
from litmeta.warehouse import load
from litmeta.warehouse.db import ensure_warehouse, session
from litmeta.warehouse.runs import start_run
from litmeta.flows.pipeline import load_local_files
load.BATCH_RECORDS = 3
db = ensure_warehouse(sys.argv[1])
with session(db) as con:
    start_run(con, "r", "load_files", {})
load_local_files(db, "r", [Path(p) for p in sys.argv[2:]])
"""


def test_small_files_killed_between_transactions_lose_no_file_and_a_rerun_equals_a_clean_load(tmp_path):
    """Small files load several to a transaction; killed after the second commit, every file marked loaded
    holds all its records, the others none, and loading them all again gives what a clean load gives."""
    import os
    import subprocess
    import sys

    import duckdb

    files = []
    for i in range(6):
        files.append(tmp_path / f"f{i}.xml")
        files[-1].write_bytes(document(article(100 + 2 * i), article(101 + 2 * i)))

    def load(db, crash: str | None = None) -> int:
        env = {k: v for k, v in os.environ.items() if k != "LITMETA_CRASH_AT"} | (
            {"LITMETA_CRASH_AT": crash} if crash else {})
        return subprocess.run([sys.executable, "-c", _LOAD_SMALL_FILES, str(db), *map(str, files)], env=env,
                              capture_output=True, text=True, timeout=120).returncode

    clean, crashed = tmp_path / "clean.duckdb", tmp_path / "crashed.duckdb"
    assert load(clean) == 0
    assert load(crashed, "between-batches:2") == -9
    with duckdb.connect(str(crashed), read_only=True) as con:
        loaded = {Path(p).name for (p,) in con.execute("SELECT path FROM source_files WHERE loaded_at IS NOT NULL")
                  .fetchall()}
        pmids = {p for (p,) in con.execute("SELECT pmid FROM articles").fetchall()}
    assert loaded == {"f0.xml", "f1.xml", "f2.xml", "f3.xml"}  # two transactions of two files each
    assert pmids == set(range(100, 108))
    assert load(crashed) == 0
    with duckdb.connect(str(clean), read_only=True) as a, duckdb.connect(str(crashed), read_only=True) as b:
        assert content_hashes(a) == content_hashes(b)
        assert a.execute("SELECT count(*) FROM source_files WHERE loaded_at IS NOT NULL").fetchall() == [(6,)]
