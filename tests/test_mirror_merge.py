"""The mirror's bulk merge of Parquet shards against `litmeta load`'s per-batch rules, on hand-made edge cases:
revisions, an older revision arriving later, an identical re-delivery, a key repeated within a record,
DeleteCitation before and after a record, and a merge on top of an earlier merge."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from litmeta.extractors import pubmed_xml
from litmeta.extractors.shards import write_shards
from litmeta.warehouse.checks import content_hashes
from litmeta.warehouse.db import ensure_warehouse, session
from litmeta.warehouse.load import load_batches
from litmeta.warehouse.mirror import merge_shards
from tests.pubmed_fixtures import article, document

TWICE = ("<CommentsCorrectionsList>" + '<CommentsCorrections RefType="ErratumIn"><RefSource>J Tests 1:2</RefSource>'
         "</CommentsCorrections>" * 2 + "</CommentsCorrectionsList>")
FILES = {
    "pubmed26n0001.xml.gz": document(article(1, refs=(10, 11)), article(2, extra_medline=TWICE),
                                     article(3, revised="2024-05-01", refs=(13,))),
    "pubmed26n0002.xml.gz": document(article(1, revised="2025-01-01", title="Revised.", refs=(12,)),
                                     article(3, revised="2023-01-01", title="Older.", refs=(14,)),
                                     article(4, refs=(1,)), deleted=(2,)),
    "pubmed26n0003.xml.gz": document(article(2, title="After its deletion."),
                                     article(1, revised="2025-01-01", title="Revised.", refs=(12,)),
                                     article(6, version=2, refs=(4,)), article(6, refs=(3,)), deleted=(5, 4)),
}
COMPARED_OUT = {"raw_documents", "source_files"}  # the mirror records files at download time (test_mirror.py)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("files")
    out = []
    for name, body in FILES.items():
        (root / name).write_bytes(body)
        out.append(root / name)
    return out


def _hashes(db: Path) -> dict[str, str]:
    with session(db, read_only=True) as con:
        return {k: v for k, v in content_hashes(con).items() if k not in COMPARED_OUT}


def _sha(f: Path) -> str:
    return hashlib.sha256(f.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def loaded(files, tmp_path_factory) -> dict[str, str]:
    """`litmeta load`'s rules (`load_batches`) applied to the files in order: the oracle."""
    db = ensure_warehouse(tmp_path_factory.mktemp("load") / "load.duckdb")
    for f in files:
        load_batches(db, "load", pubmed_xml.iter_batches(f, source_name=f.name, source_sha256=_sha(f)))
    return _hashes(Path(db))


@pytest.fixture(scope="module")
def shards(files, tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    return [write_shards(str(f), f.name, str(root), f.name, _sha(f), 15_000) for f in files]


@pytest.mark.parametrize("steps", [[3], [1, 2], [2, 1]], ids=["one-merge", "then-two", "two-then-one"])
def test_merge_equals_load_in_order(loaded, shards, tmp_path, steps):
    merged = ensure_warehouse(tmp_path / "merge.duckdb")
    assert shards[0].repeats == {"comments_corrections": 1}
    done = 0
    for n in steps:
        merge_shards(merged, "merge", shards[done:done + n])
        done += n
    assert _hashes(Path(merged)) == loaded
    with session(merged, read_only=True) as con:
        assert con.execute("SELECT pmid, title FROM articles ORDER BY 1").fetchall() == [
            (1, "Revised."), (3, "A title."), (6, "A title.")]
        assert con.execute("SELECT pmid, source FROM deleted_articles ORDER BY 1").fetchall() == [
            (2, "pubmed26n0002.xml.gz"), (4, "pubmed26n0003.xml.gz"), (5, "pubmed26n0003.xml.gz")]
        edges = con.execute("SELECT citing_pmid, cited_pmid FROM citation_edges ORDER BY 1, 2").fetchall()
    assert edges == [(1, 10), (1, 11), (1, 12), (3, 13), (6, 4)]  # 3's older revision and 6's v1 were not accepted
