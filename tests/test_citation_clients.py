"""The iCite and PMC ID Converter clients against malformed answers (issue 16, line 7), and the sandbox's
esearch id field terms answered to Bio.Entrez, a real client."""

from __future__ import annotations

import json
import math

import pytest

from litmeta.extractors.errors import ServicePermanentError, ServiceRetryExhausted
from litmeta.extractors.icite import ICiteClient, icite_tables
from litmeta.extractors.id_search import resolve_by_esearch, search_term
from litmeta.extractors.idconv import IdconvClient
from litmeta.extractors.sandbox import BUNDLED_SNAPSHOT, SandboxServer
from tests.test_entrez import Answer, FakeEutils

POLITE = {"backoff_base": 0.01, "backoff_cap": 0.02, "rate_limit_backoff": 0.01}  # the sandbox's 3/s
FAST = {**POLITE, "rate": 50}  # the fake servers have no limit
HTML = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"


def entry(pmid, **kw) -> dict:
    return {"pmid": pmid, "year": 2020, "title": "T", "doi": "10.1/x", "relative_citation_ratio": 1.5,
            "nih_percentile": 60.0, "citation_count": 2, "citations_per_year": 0.5,
            "expected_citations_per_year": 1.0, "field_citation_rate": 3.0, "apt": 0.25, "is_clinical": "No",
            "is_research_article": "Yes", "provisional": False, "human": 1.0, "animal": 0.0,
            "molecular_cellular": 0.0, "cited_by": [3, 4], "references": ["5"], "cited_by_clin": [],
            "last_modified": "01/02/2026, 03:04:05", **kw}


def good(*pmids) -> bytes:
    return json.dumps({"meta": {}, "links": {}, "data": [entry(p) for p in pmids]}).encode()


def serve(*answers: Answer):
    """A fake server answering in turn (the last answer repeated)."""
    seq = list(answers)
    return FakeEutils(lambda req: seq.pop(0) if len(seq) > 1 else seq[0])


@pytest.mark.parametrize("bad, reason", [
    (Answer(200, HTML, {"Content-Type": "text/html"}), "html"),
    (Answer(200, good(1, 2)[:-7]), "truncated"),
    (Answer(200, b'{"error": "Internal error, please try again later"}'), "error200"),
    (Answer(200, b"<?xml version='1.0'?><error/>"), "not_json"),
    (Answer(503, HTML), "http_503"),
])
def test_icite_malformed_answers_are_retried(bad, reason):
    with serve(bad, Answer(200, good(1, 2))) as srv, ICiteClient(srv.base_url, **FAST) as c:
        (batch,) = list(c.pubs([1, 2]))
    assert sorted(batch.records) == [1, 2] and batch.rejects == []
    assert c.stats.retries[reason] == 1
    req = srv.requests[-1]
    assert req.url.startswith("/entrez/eutils/pubs?") and req.get("pmids") == "1,2" and req.get("format") == "json"
    assert req.get("tool") == "litmeta"


def test_icite_gives_up_naming_the_service_and_request():
    with serve(Answer(200, HTML)) as srv, ICiteClient(srv.base_url, max_tries=3, **FAST) as c:
        with pytest.raises(ServiceRetryExhausted) as exc:
            list(c.pubs([7, 8]))
    assert "iCite pubs" in str(exc.value) and "pmids=2 [7,8]" in str(exc.value) and "gave up after 3" in str(exc.value)
    with serve(Answer(404, b"not found")) as srv, ICiteClient(srv.base_url, **FAST) as c:
        with pytest.raises(ServicePermanentError, match="iCite pubs.*http_404"):
            list(c.pubs([7]))
        assert len(srv.requests) == 1


def test_icite_bad_entries_are_rejected_whole():
    body = json.dumps({"data": [entry(1), {"year": 2020, "cited_by": [1]}, entry("12ab"), entry(2, cited_by=["x"]),
                                entry(3, relative_citation_ratio="high"), entry(4, is_clinical="maybe"),
                                entry(99)]}).encode()
    with serve(Answer(200, body)) as srv, ICiteClient(srv.base_url, **FAST) as c:
        (batch,) = list(c.pubs([1, 2, 3, 4, 5]))
    assert sorted(batch.records) == [1], "99 was not asked for; the rest are bad"
    keys = [r.record_key for r in batch.rejects]
    assert keys == ["data 2", "12ab", "2", "3", "4"]
    assert all(r.reason.startswith("iCite: ") and r.source.startswith("iCite pubs") for r in batch.rejects)
    assert "not a number" in batch.rejects[1].reason and "without a pmid" in batch.rejects[0].reason
    t = icite_tables(batch.records.values(), "sha")
    assert t["icite_metrics"].num_rows == 1
    row = t["icite_metrics"].to_pylist()[0]
    assert row["is_clinical"] is False and row["is_research_article"] is True and row["cited_by_count"] == 2
    assert sorted(t["citation_edges"].to_pylist(), key=str) == sorted([
        {"citing_pmid": 1, "cited_pmid": 5, "origin": "icite_refs"},
        {"citing_pmid": 3, "cited_pmid": 1, "origin": "icite_citedby"},
        {"citing_pmid": 4, "cited_pmid": 1, "origin": "icite_citedby"}], key=str)


def test_icite_batches_of_at_most_200():
    with serve(Answer(200, good())) as srv, ICiteClient(srv.base_url, **FAST) as c:
        assert len(list(c.pubs(range(1, 451)))) == 3
        assert [len(r.get("pmids").split(",")) for r in srv.requests] == [200, 200, 50]
    with serve(Answer(200, good())) as srv, ICiteClient(srv.base_url, batch_size=100, **FAST) as c:
        assert len(list(c.pubs(range(1, 451)))) == math.ceil(450 / 100)


def idconv_body(*records, status="ok") -> bytes:
    return json.dumps({"status": status, "records": list(records)}).encode()


def test_idconv_resolves_misses_and_ambiguity():
    body = idconv_body(
        {"requested-id": "10.1/A", "pmcid": "PMC1", "pmid": "11", "doi": "10.1/a"},
        {"requested-id": "10.1/b", "status": "error", "errmsg": "invalid article id"},
        {"requested-id": "10.1/c", "pmid": 12}, {"requested-id": "10.1/c", "pmid": 13},
        {"requested-id": "10.1/d", "pmid": "PMID-14"},
    )
    with serve(Answer(200, body)) as srv, IdconvClient(srv.base_url, **FAST) as c:
        (batch,) = list(c.convert("doi", ["10.1/A", "10.1/b", "10.1/c", "10.1/d"]))
    r = batch.resolutions
    assert (r["10.1/a"].status, r["10.1/a"].pmid) == ("resolved", 11)
    assert r["10.1/b"].status == "unresolved" and r["10.1/d"].status == "unresolved"
    assert (r["10.1/c"].status, r["10.1/c"].pmid, r["10.1/c"].candidates) == ("ambiguous", None, (12, 13))
    assert [(x.record_key, "not a number" in x.reason) for x in batch.rejects] == [("10.1/d", True)]
    req = srv.requests[0]
    assert req.get("idtype") == "doi" and req.get("format") == "json" and req.get("tool") == "litmeta"


@pytest.mark.parametrize("bad, reason", [
    (Answer(200, HTML), "html"),
    (Answer(200, idconv_body({"requested-id": "10.1/a", "pmid": "11"})[:-5]), "truncated"),
    (Answer(200, idconv_body(status="error")), "error200"),
])
def test_idconv_malformed_answers_are_retried_then_named(bad, reason):
    ok = Answer(200, idconv_body({"requested-id": "10.1/a", "pmid": "11"}))
    with serve(bad, ok) as srv, IdconvClient(srv.base_url, **FAST) as c:
        (batch,) = list(c.convert("doi", ["10.1/a"]))
        assert batch.resolutions["10.1/a"].pmid == 11 and c.stats.retries[reason] == 1
    with serve(bad) as srv, IdconvClient(srv.base_url, max_tries=2, **FAST) as c:
        with pytest.raises(ServiceRetryExhausted, match="PMC ID Converter idconv.*idtype=doi ids=1"):
            list(c.convert("doi", ["10.1/a"]))


def test_sandbox_esearch_answers_id_field_terms():
    """`39047240[uid]`, DOIs, PMCIDs and OR-combinations, as NCBI answers them (Bio.Entrez parses the answer)."""
    import io

    import requests
    from Bio import Entrez

    from litmeta.extractors.entrez import EntrezClient

    with SandboxServer(BUNDLED_SNAPSHOT) as sb:
        r = requests.get(sb.base_url + "esearch.fcgi", params={"db": "pubmed", "term": "39047240[uid]"}, timeout=10)
        rec = Entrez.read(io.BytesIO(r.content), validate=True)
        assert rec["IdList"] == ["39047240"] and rec["Count"] == "1"
        with EntrezClient(sb.base_url, **POLITE) as c:
            assert c.esearch('"10.1056/NEJMoa2312948"[doi]').ids == [39047240]
            assert c.esearch("PMC11334054[pmcid]").ids == [39047240]
            both = c.esearch("(10.1056/nejmoa2312948[doi] OR 39321136[pmid] OR 1[uid])").ids
            assert set(both) == {39047240, 39321136}
            assert c.esearch("10.9999/none[doi]").ids == []
            res = resolve_by_esearch(c, "doi", ["10.1056/NEJMoa2312948", "10.9999/none"])
            assert (res["10.1056/nejmoa2312948"].status, res["10.1056/nejmoa2312948"].pmid) == ("resolved", 39047240)
            assert res["10.9999/none"].status == "unresolved"
    assert search_term("doi", ["10.1/a", "10.2/b"]) == '"10.1/a"[doi] OR "10.2/b"[doi]'


def test_sandbox_serves_icite_and_idconv_with_faults_and_stats(tmp_path):
    import shutil

    import requests

    snap = tmp_path / "snap"
    shutil.copytree(BUNDLED_SNAPSHOT, snap)
    (snap / "icite.jsonl").write_text(json.dumps(entry(39047240)) + "\n")
    (snap / "idconv.tsv").write_text("id_type\tid_value\tpmid\tpmcid\tdoi\n"
                                     "doi\t10.1056/NEJMoa2312948\t39047240\tPMC11334054\t10.1056/NEJMoa2312948\n")
    with SandboxServer(snap, faults="error200=1.0,seed=1") as sb:
        r = requests.get(sb.icite_url + "pubs", params={"pmids": "39047240", "format": "json"}, timeout=10)
        assert r.status_code == 200 and "error" in r.json()
        r = requests.get(sb.idconv_url, params={"ids": "10.1/x", "format": "json"}, timeout=10)
        assert r.json()["status"] == "error"
        st = sb.stats()
        assert st["faults_by_endpoint"] == {"icite": {"error200": 1}, "idconv": {"error200": 1}}
    with SandboxServer(snap) as sb:
        with ICiteClient(sb.icite_url, **POLITE) as c:
            (b,) = list(c.pubs([39047240, 39321136]))
        assert list(b.records) == [39047240]
        with IdconvClient(sb.idconv_url, **POLITE) as c:
            (b,) = list(c.convert("doi", ["10.1056/nejmoa2312948", "10.1/none"]))
        assert b.resolutions["10.1056/nejmoa2312948"].pmid == 39047240
        assert b.resolutions["10.1/none"].status == "unresolved"
        st = sb.stats()
        assert st["by_endpoint"] == {"icite": 1, "idconv": 1} and st["ids_requested"] == {"icite": 2, "idconv": 2}
    with SandboxServer(BUNDLED_SNAPSHOT) as sb, ICiteClient(sb.icite_url, **POLITE) as c:
        assert [b.records for b in c.pubs([39047240])] == [{}], "the bundled snapshot gives iCite nothing"


def test_migration_3_brings_an_older_warehouse_up_to_date(tmp_path):
    import duckdb

    from litmeta.warehouse.migrations import migrate

    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:  # a warehouse as migrations 1 and 2 left it before issue 16
        migrate(con)
        con.execute("INSERT INTO citation_edges (citing_pmid, cited_pmid, origin) VALUES (1, 2, 'elink_refs')")
        for stmt in ("DROP TABLE icite_metrics", "DROP TABLE id_map", "ALTER TABLE citation_edges DROP resolved_by",
                     "ALTER TABLE seeds DROP sources", "DELETE FROM schema_migrations WHERE version = 3"):
            con.execute(stmt)
    with duckdb.connect(str(db)) as con:
        assert migrate(con) == [3]
        assert con.execute("SELECT citing_pmid, resolved_by FROM citation_edges").fetchall() == [(1, None)]
        assert con.execute("SELECT count(*) FROM icite_metrics").fetchall() == [(0,)]
        assert con.execute("SELECT sources FROM citations").fetchall() == [(["elink"],)]


def test_sources_option_and_service_urls(capsys):
    from litmeta.flows.cli import build_parser
    from litmeta.flows.client import service_url

    args = build_parser().parse_args(["network", "39047240"])
    assert args.sources == ["elink", "icite"]
    assert build_parser().parse_args(["network", "1", "--sources", "icite"]).sources == ["icite"]
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["network", "1", "--sources", "elink,scopus"])
    assert exc.value.code == 2 and "unknown source scopus" in capsys.readouterr().err
    sandbox = "http://127.0.0.1:8123/entrez/eutils/"
    assert service_url("icite", None, sandbox) == "http://127.0.0.1:8123/icite/"
    assert service_url("idconv", None, sandbox) == "http://127.0.0.1:8123/idconv/"
    assert service_url("icite", None, "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/") == "https://icite.od.nih.gov/api/"
    assert service_url("icite", "http://mirror/icite", sandbox) == "http://mirror/icite/"
