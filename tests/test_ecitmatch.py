"""ECitMatch for reference entries with no id at all (issue 16, "reference strings without any id"): the
citation parser, hostile answers, the sandbox's matcher, and a network run on a small synthetic snapshot whose
expected matches come from the snapshot's own reference texts (they name the cited PMID), not from litmeta."""

from __future__ import annotations

import math
import re
from pathlib import Path

import duckdb
import pytest

from litmeta.extractors.ecitmatch import CitationQuery, parse_citation, resolve_by_ecitmatch
from litmeta.extractors.entrez import EntrezClient
from litmeta.extractors.errors import EntrezRetryExhausted
from litmeta.extractors.sandbox import SandboxServer
from tests.conftest import require_corpus
from tests.test_entrez import Answer, FakeEutils

FAST = {"backoff_base": 0.01, "backoff_cap": 0.02, "rate_limit_backoff": 0.01, "rate": 50}
POLITE = {"backoff_base": 0.01, "backoff_cap": 0.02, "rate_limit_backoff": 0.01}
Q1 = CitationQuery("Proc Natl Acad Sci U S A", "1991", "88", "3248", "Mann BJ")
Q2 = CitationQuery("Science", "1987", "235", "182", "Palmenberg AC")


@pytest.mark.parametrize("text, want", [
    ("Jemal A, Bray F, Center MM. Global cancer statistics. CA Cancer J Clin. 2011;61(2):69-90.",
     ("CA Cancer J Clin", "2011", "61", "69", "Jemal A")),
    ("Smith J. A letter. Nature. 2020 Mar;580(7801):e12-e14. doi: 10.1/x", ("Nature", "2020", "580", "e12", "Smith J")),
    ("Mann BJ. Title here. Proc Natl Acad Sci U S A 1991;88:3248-52", ("Proc Natl Acad Sci U S A", "1991", "88",
                                                                       "3248", "Mann BJ")),
    ("Personal communication.", None),
    ("Doe J. A book. Springer; 2004.", None),
    ("", None),
])
def test_parse_citation_reads_journal_year_volume_first_page(text, want):
    q = parse_citation(text)
    assert (None if q is None else (q.journal, q.year, q.volume, q.first_page, q.author)) == want


def _line(q: CitationQuery, key: str, result: str) -> str:
    return q.bdata(key) + result


def serve(*answers: Answer) -> FakeEutils:
    seq = list(answers)
    return FakeEutils(lambda req: seq.pop(0) if len(seq) > 1 else seq[0])


def test_ecitmatch_request_and_answers():
    body = "\n".join([_line(Q1, "c1", "2014248"), _line(Q2, "c2", "NOT_FOUND;INVALID_JOURNAL")]) + "\n"
    with serve(Answer(200, body.encode())) as srv, EntrezClient(srv.base_url, **FAST) as c:
        res, rejects = c.ecitmatch([Q1, Q2])
    assert res[Q1.id_value].pmid == 2014248 and res[Q1.id_value].status == "resolved"
    assert res[Q2.id_value].status == "unresolved" and rejects == []
    (req,) = srv.requests
    assert req.url.endswith("/ecitmatch.cgi") and req.method == "POST"
    assert req.get("db") == "pubmed" and req.get("retmode") == "xml" and req.get("tool") == "litmeta"
    assert req.get("bdata").split("\r")[:2] == [Q1.bdata("c1"), Q2.bdata("c2")]


@pytest.mark.parametrize("bad, reason", [
    (Answer(200, b"<!DOCTYPE html><html><body>502</body></html>", {"Content-Type": "text/html"}), "html"),
    (Answer(200, b"<eSearchResult><ERROR>Unable to obtain query #1</ERROR></eSearchResult>\n"), "malformed"),
    (Answer(200, b'{"error": "API rate limit exceeded"}\n'), "malformed"),
    (Answer(200, (Q1.bdata("c9") + "2014248\n").encode()), "malformed"),  # a key not asked
    (Answer(200, (Q1.bdata("c1") + "2014248\n").encode()), "malformed"),  # c2 unanswered
    (Answer(200, (Q1.bdata("c1") + "2014248\n" + Q2.bdata("c2") + "30260").encode()), "malformed"),  # cut short
    (Answer(200, b"just|some|pipes\n"), "malformed"),
    (Answer(200, b"\xff\xfe\x00garbage\n"), "malformed"),
])
def test_hostile_answers_are_retried_then_fail_naming_the_request(bad, reason):
    good = (_line(Q1, "c1", "2014248") + "\n" + _line(Q2, "c2", "3026048") + "\n").encode()
    with serve(bad, Answer(200, good)) as srv, EntrezClient(srv.base_url, **FAST) as c:
        res, _ = c.ecitmatch([Q1, Q2])
    assert {v.pmid for v in res.values()} == {2014248, 3026048} and c.stats.retries[reason] == 1
    with serve(bad) as srv, EntrezClient(srv.base_url, max_tries=2, **FAST) as c:
        with pytest.raises(EntrezRetryExhausted) as exc:
            c.ecitmatch([Q1, Q2])
    msg = str(exc.value)
    assert msg.startswith("ecitmatch db=pubmed retmode=xml citations=2") and "gave up after 2" in msg


def test_a_result_that_is_no_pmid_is_rejected_and_ambiguity_kept():
    body = (_line(Q1, "c1", "12ab") + "\n" + _line(Q2, "c2", "AMBIGUOUS 3026048,3026049") + "\n").encode()
    with serve(Answer(200, body)) as srv, EntrezClient(srv.base_url, **FAST) as c:
        res, rejects = resolve_by_ecitmatch(c, [Q1, Q2, Q1])
    assert [r.record_key for r in rejects] == [Q1.id_value] and "ecitmatch" in rejects[0].reason
    assert Q1.id_value not in res
    assert res[Q2.id_value].status == "ambiguous" and res[Q2.id_value].candidates == (3026048, 3026049)
    assert res[Q2.id_value].pmid is None


RECORD = """<PubmedArticle><MedlineCitation><PMID>{pmid}</PMID><Article><Journal><JournalIssue><Volume>{vol}</Volume>
<PubDate><Year>2019</Year></PubDate></JournalIssue><Title>Journal of Things</Title>
<ISOAbbreviation>J. Things</ISOAbbreviation></Journal><ArticleTitle>T</ArticleTitle>
<Pagination><MedlinePgn>{page}-9</MedlinePgn></Pagination></Article>
<MedlineJournalInfo><MedlineTA>J Things</MedlineTA></MedlineJournalInfo></MedlineCitation></PubmedArticle>"""


def test_sandbox_matches_its_records_with_faults_and_stats(tmp_path):
    (tmp_path / "pubmed").mkdir()
    recs = [RECORD.format(pmid=p, vol=v, page=pg) for p, v, pg in ((11, 4, 100), (12, 5, 200), (13, 5, 200))]
    (tmp_path / "pubmed" / "a.xml").write_text("<PubmedArticleSet>" + "".join(recs) + "</PubmedArticleSet>")
    qs = [CitationQuery("J Things", "2019", "4", "100"), CitationQuery("Journal of Things", "2019", "5", "200"),
          CitationQuery("J Things", "2019", "6", "100")]
    with SandboxServer(tmp_path) as sb, EntrezClient(sb.base_url, **POLITE) as c:
        res, rejects = c.ecitmatch(qs)
        st = sb.stats()
    assert [res[q.id_value].status for q in qs] == ["resolved", "ambiguous", "unresolved"] and rejects == []
    assert res[qs[0].id_value].pmid == 11 and res[qs[1].id_value].candidates == (12, 13)
    assert st["by_endpoint"] == {"ecitmatch": 1} and st["ids_requested"] == {"ecitmatch": 3}
    with SandboxServer(tmp_path, faults="error200=0.15,truncate=0.15,500=0.1,seed=4") as sb, \
            EntrezClient(sb.base_url, **POLITE) as c:
        again = [c.ecitmatch(qs) for _ in range(2)]
        st = sb.stats()
    assert all(a == (res, []) for a in again), "faults change how often, never what is matched"
    assert sum(st["faults_by_endpoint"]["ecitmatch"].values()) > 0


def q(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.mark.corpus
def test_network_resolves_id_less_references_and_counts_the_rest(tmp_path, prefect_api):
    from bench.snapshot_gen import generate_snapshot
    from litmeta.flows.network import build_network

    info = generate_snapshot(tmp_path / "snap", 150, seed=2, corpus_dir=require_corpus("pubmed"),
                             citation_strings=True)
    seed, db = info["seed_pmid"], tmp_path / "w.duckdb"
    with SandboxServer(tmp_path / "snap") as sb:
        summary = build_network(seed=seed, db=str(db), eutils_url=sb.base_url, depth=1, similar_top=5,
                                sources=("elink",), idconv_url=sb.idconv_url, fulltext_links=False)
        st = sb.stats()
    members = [r[0] for r in q(db, "SELECT pmid FROM network_members WHERE seed_pmid = ?", [seed])]
    texts = q(db, "SELECT citing_pmid, citation FROM reference_entries WHERE cited_pmid IS NULL AND cited_doi IS NULL "
                  "AND citing_pmid IN (SELECT unnest(?::BIGINT[]))", [members])
    expected = {(c, int(m.group(1))) for c, t in texts if (m := re.search(r"Synthetic article (\d+)\.", t))}
    never = [t for _, t in texts if "J Nonexistent Res" in t]
    unparsed = [t for _, t in texts if t == "Personal communication."]
    assert expected and never and unparsed and len(expected) + len(never) + len(unparsed) == len(texts)
    got = q(db, "SELECT citing_pmid, cited_pmid, resolved_by FROM citation_edges WHERE resolved_by = 'ecitmatch'")
    assert {(c, p) for c, p, _ in got} == expected
    assert {o for (o,) in q(db, "SELECT DISTINCT origin FROM citation_edges WHERE resolved_by = 'ecitmatch'")} == {
        "pubmed_reflist"}
    status = q(db, "SELECT status, count(*) FROM id_map WHERE id_type = 'citation' GROUP BY 1 ORDER BY 1")
    assert dict(status) == {"resolved": len({p for _, p in expected}), "unresolved": len(set(never))}
    assert q(db, "SELECT count(*) FROM id_map WHERE id_type = 'citation' AND status = 'unresolved' "
                 "AND pmid IS NOT NULL")[0][0] == 0, "never guessed"
    s = summary["seeds"][str(seed)]["references"]
    assert s["citations_matched"] == len(expected) and s["citations_not_found"] == len(never)
    assert s["citations_unparsed"] == len(unparsed) and s["citations_ambiguous"] == 0
    distinct = len({p for _, p in expected}) + len(set(never))
    assert q(db, "SELECT count(*) FROM raw_documents WHERE kind = 'elink_linkout'") == [(0,)], "fulltext_links=False"
    assert st["by_endpoint"]["ecitmatch"] == math.ceil(distinct / 100) and st["ids_requested"]["ecitmatch"] == distinct
    print(f"ECitMatch: {len(expected)} id-less references matched, {len(never)} not found, {len(unparsed)} unparsed; "
          f"{st['by_endpoint']['ecitmatch']} requests for {distinct} citations")


def test_only_resolved_citations_become_edges_and_rewriting_is_idempotent(tmp_path):
    import datetime as dt

    from litmeta.warehouse.citation_match import known_citation_keys, write_citation_matches
    from litmeta.warehouse.db import session

    db = str(tmp_path / "w.duckdb")
    with session(db):
        pass
    rows = [{"id_type": "citation", "id_value": k, "pmid": p, "status": st, "resolved_by": by, "candidates": c}
            for k, p, st, by, c in (("a", 5, "resolved", "ecitmatch", None), ("b", None, "ambiguous", "ecitmatch",
                                    "6,7"), ("c", None, "unresolved", None, None))]
    entries = [(1, "pubmed", "a"), (1, "pubmed", "b"), (2, "pmc", "c"), (3, "pmc", "a"), (5, "pubmed", "a")]
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    first = write_citation_matches(db, "r1", rows, entries, [], now)
    again = write_citation_matches(db, "r2", rows, entries, [], now + dt.timedelta(days=1))
    assert first == {"citation_edges_new": 2, "citations_matched": 3, "citations_ambiguous": 1,
                     "citations_not_found": 1}
    assert again["citation_edges_new"] == 0
    with session(db, read_only=True) as con:
        edges = con.execute("SELECT citing_pmid, cited_pmid, origin, resolved_by, first_seen < last_seen "
                            "FROM citation_edges ORDER BY 1").fetchall()
    assert edges == [(1, 5, "pubmed_reflist", "ecitmatch", True), (3, 5, "pmc_reflist", "ecitmatch", True)]
    assert known_citation_keys(db, ["a", "b", "c", "d"]) == {"a", "b"}, "not-found citations are asked again"
