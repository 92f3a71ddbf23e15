"""Keys enforced at load, and `litmeta check`: the warehouse proves where every row came from."""

from __future__ import annotations

import subprocess
import sys

import duckdb

from litmeta.extractors import pubmed_xml
from litmeta.warehouse.checks import duplicate_keys
from litmeta.warehouse.db import connect
from litmeta.warehouse.load import BatchLoader
from tests.conftest import run_cli
from tests.pubmed_fixtures import article, document

REPEATS = """<CommentsCorrectionsList>
<CommentsCorrections RefType="ErratumIn"><RefSource>J Tests 2021;2:3</RefSource><PMID Version="1">77</PMID></CommentsCorrections>
<CommentsCorrections RefType="ErratumIn"><RefSource>J Tests 2021;2:3</RefSource><PMID Version="1">77</PMID></CommentsCorrections>
</CommentsCorrectionsList>
<MeshHeadingList><MeshHeading><DescriptorName UI="D000001" MajorTopicYN="N">Calcimycin</DescriptorName>
<QualifierName UI="Q000001" MajorTopicYN="N">analogs &amp; derivatives</QualifierName>
<QualifierName UI="Q000001" MajorTopicYN="N">analogs &amp; derivatives</QualifierName></MeshHeading></MeshHeadingList>"""


def test_a_record_repeating_an_entry_loads_without_a_duplicate_key():
    con = connect(":memory:")
    loader = BatchLoader(con, "r")
    for b in pubmed_xml.iter_batches(document(article(501, extra_medline=REPEATS), article(502)), source_name="t"):
        loader.load(b)
    assert duplicate_keys(con) == {}
    assert con.execute("SELECT count(*) FROM articles").fetchall() == [(2,)]
    assert con.execute("SELECT ref_type, ref_pmid FROM comments_corrections").fetchall() == [("ErratumIn", 77)]
    # the repeated qualifier is kept by its position
    assert con.execute("SELECT qualifier_position FROM mesh_headings ORDER BY 1").fetchall() == [(1,), (2,)]
    notes = con.execute("SELECT record_key, reason FROM rejects").fetchall()
    assert len(notes) == 1 and notes[0][0] == "pmid 501" and "comments_corrections" in notes[0][1]
    assert loader.stats.rejects == 1


def test_cli_help_names_check():
    r = subprocess.run([sys.executable, "-m", "litmeta", "check", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "duplicate keys" in r.stdout and "exit codes" in r.stdout


def test_a_file_loaded_before_and_unchanged_is_not_read_again(tmp_path, prefect_api):
    xml = tmp_path / "a.xml"
    xml.write_bytes(document(article(801), article(802), deleted=(803,)))
    db = tmp_path / "w.duckdb"
    first = run_cli(["--db", str(db), "load", str(xml)], prefect_api)
    assert first.returncode == 0, first.stderr[-2000:]
    again = run_cli(["--db", str(db), "load", str(xml)], prefect_api)
    assert again.returncode == 0, again.stderr[-2000:]
    lines = again.stdout.strip().splitlines()
    assert len(lines) == 1 and "unchanged since it was loaded" in lines[0] and "--force" in lines[0], again.stdout
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ingest_runs").fetchall() == [(1,)]  # nothing ran
        row = con.execute("SELECT path, kind, size, records, deletions, loaded_at IS NOT NULL, sha256 = "
                          "(SELECT source_sha256 FROM articles WHERE pmid = 801) FROM source_files").fetchall()
    assert row == [(str(xml.resolve()), "pubmed", xml.stat().st_size, 2, 1, True, True)]
    forced = run_cli(["--db", str(db), "load", "--force", str(xml)], prefect_api)
    assert forced.returncode == 0 and "records new 0, updated 0, unchanged 2" in forced.stdout, forced.stdout
    xml.write_bytes(document(article(801), article(802, title="Changed."), deleted=(803,)))
    changed = run_cli(["--db", str(db), "load", str(xml)], prefect_api)
    assert changed.returncode == 0 and "updated 1" in changed.stdout, changed.stdout
