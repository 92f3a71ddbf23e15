"""Unit tests of extractors.entrez against a tiny scripted HTTP server (no sandbox needed).

The fake server (`FakeEutils`) records every request it receives (method, endpoint, params,
arrival time) and answers with whatever the test's handler returns, including connection
resets and bodies shorter than their Content-Length.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from litmeta.extractors.entrez import (
    EntrezClient,
    EntrezPermanentError,
    EntrezRetryExhausted,
    EntrezSearchCapError,
    FetchedBatch,
    RawDocument,
)

SECRET = "0123456789abcdefSECRETKEY"

# ------------------------------------------------------------------------------ fake server


@dataclass
class Req:
    method: str
    endpoint: str
    params: list[tuple[str, str]]
    t: float
    url: str

    def get(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.params:
            if k == key:
                return v
        return default

    def all(self, key: str) -> list[str]:
        return [v for k, v in self.params if k == key]

    @property
    def ids(self) -> list[int]:
        out: list[int] = []
        for v in self.all("id"):
            out.extend(int(x) for x in v.split(",") if x.strip())
        return out


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    short_by: int = 0  # declare Content-Length this many bytes longer than sent


class FakeEutils:
    def __init__(self, handler: Callable[[Req], Answer]) -> None:
        self.handler = handler
        self.requests: list[Req] = []
        self._lock = threading.Lock()
        fake = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def _serve(self, method: str) -> None:
                t = time.monotonic()
                parts = urlsplit(self.path)
                params = parse_qsl(parts.query, keep_blank_values=True)
                if method == "POST":
                    n = int(self.headers.get("Content-Length") or 0)
                    params += parse_qsl(self.rfile.read(n).decode(), keep_blank_values=True)
                endpoint = parts.path.rsplit("/", 1)[-1].removesuffix(".fcgi")
                req = Req(method, endpoint, params, t, self.path)
                with fake._lock:
                    fake.requests.append(req)
                ans = fake.handler(req)
                if ans.reset:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                self.send_response(ans.status)
                for k, v in ans.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(ans.body) + ans.short_by))
                if ans.short_by:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(ans.body)
                if ans.short_by:
                    self.wfile.flush()
                    self.close_connection = True

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/entrez/eutils/"

    def __enter__(self) -> FakeEutils:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def fast_client(url: str, **kw) -> EntrezClient:
    """A client for the fake server: no rate limit worth the name, tiny backoff."""
    kw.setdefault("rate", 1000)
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_cap", 0.05)
    kw.setdefault("rate_limit_backoff", 0.01)
    kw.setdefault("seed", 1)
    return EntrezClient(url, **kw)


# ------------------------------------------------------------------------------ documents


def pubmed_record(pmid: int) -> bytes:
    return (
        f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{pmid}</PMID>'
        f"<Article><ArticleTitle>Title {pmid}</ArticleTitle></Article>"
        f'<CommentsCorrectionsList><CommentsCorrections RefType="Cites"><RefSource>x</RefSource>'
        f'<PMID Version="1">{pmid + 7}</PMID></CommentsCorrections></CommentsCorrectionsList>'
        f"</MedlineCitation><PubmedData><PublicationStatus>ppublish</PublicationStatus></PubmedData></PubmedArticle>"
    ).encode()


def pubmed_set(pmids: list[int]) -> bytes:
    return (
        b'<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
        b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n<PubmedArticleSet>\n'
        + b"\n".join(pubmed_record(p) for p in pmids)
        + b"\n</PubmedArticleSet>\n"
    )


def esearch_doc(
    count: int, ids: list[int], retstart: int = 0, qk: str = "1", webenv: str = "MCID_1"
) -> bytes:
    idl = "".join(f"<Id>{i}</Id>" for i in ids)
    return (
        f'<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
        f'"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">\n<eSearchResult><Count>{count}</Count>'
        f"<RetMax>{len(ids)}</RetMax><RetStart>{retstart}</RetStart><QueryKey>{qk}</QueryKey><WebEnv>{webenv}</WebEnv>"
        f"<IdList>{idl}</IdList><TranslationSet/><QueryTranslation>q</QueryTranslation></eSearchResult>"
    ).encode()


def error_doc(root: str, text: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8" ?>\n<{root}>\n\t<ERROR>{text}</ERROR>\n</{root}>\n'.encode()


def elink_doc(linksets: list[tuple[int, dict[str, list[tuple[int, int | None]]]]]) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8" ?>\n<eLinkResult>']
    for src, links in linksets:
        out.append(f"<LinkSet><DbFrom>pubmed</DbFrom><IdList><Id>{src}</Id></IdList>")
        for ln, lst in links.items():
            out.append(f"<LinkSetDb><DbTo>pubmed</DbTo><LinkName>{ln}</LinkName>")
            for i, s in lst:
                out.append(
                    f"<Link><Id>{i}</Id>" + (f"<Score>{s}</Score>" if s is not None else "") + "</Link>"
                )
            out.append("</LinkSetDb>")
        out.append("</LinkSet>")
    out.append("</eLinkResult>\n")
    return "".join(out).encode()


def ok_pubmed(req: Req) -> Answer:
    return Answer(200, pubmed_set(req.ids), {"Content-Type": "text/xml"})


# ------------------------------------------------------------------------------ tests: requests


def test_describe_never_contains_key_and_names_request():
    c = EntrezClient("http://127.0.0.1:9/entrez/eutils/", api_key=SECRET, email="a@b.c")
    ids = list(range(1000, 1500))
    d = c.describe("efetch", [("db", "pubmed"), ("retmode", "xml"), ("api_key", SECRET)], ids, "POST")
    assert d == "efetch db=pubmed retmode=xml ids=500 [1000,1001,1002,1003,1004,...] POST"
    assert SECRET not in repr(c)
    assert c.redact(f"url?api_key={SECRET}&x") == "url?api_key=***&x"


def test_get_for_few_ids_post_above_200_and_etiquette_params():
    with FakeEutils(ok_pubmed) as srv:
        c = fast_client(srv.base_url, email="me@example.org")
        docs: list[RawDocument] = []
        c.on_document = docs.append
        list(c.efetch_pubmed([5, 6, 7]))
        list(c.efetch_pubmed(list(range(100, 350)), batch_size=250))
    get, post = srv.requests
    assert get.method == "GET" and get.ids == [5, 6, 7]
    assert post.method == "POST" and len(post.ids) == 250
    for r in srv.requests:
        assert r.get("tool") == "litmeta" and r.get("email") == "me@example.org"
        assert r.get("api_key") is None
        assert r.get("db") == "pubmed" and r.get("retmode") == "xml"
    assert [d.kind for d in docs] == ["efetch_pubmed", "efetch_pubmed"]
    assert docs[0].request == "efetch db=pubmed retmode=xml rettype=xml ids=3 [5,6,7] GET"
    assert docs[1].n_records == 250
    assert c.stats.requests == 2 and c.stats.by_endpoint["efetch"] == 2


def test_api_key_is_sent_in_post_body_never_in_url():
    with FakeEutils(ok_pubmed) as srv:
        assert EntrezClient(srv.base_url, api_key=SECRET).limiter.max_requests == 10
        assert EntrezClient(srv.base_url).limiter.max_requests == 3
        c = fast_client(srv.base_url, api_key=SECRET)
        (b,) = list(c.efetch_pubmed([1, 2]))
    (r,) = srv.requests
    assert r.method == "POST" and r.get("api_key") == SECRET
    assert SECRET not in r.url
    assert SECRET not in b.documents[0].request


def test_retries_every_transient_failure_then_succeeds(caplog):
    script = [
        Answer(
            429, b'{"error":"API rate limit exceeded","count":"11"}', {"Content-Type": "application/json"}
        ),
        Answer(500, b"<!DOCTYPE html><html><body>Internal Server Error</body></html>"),
        Answer(502, b"<html><body>Bad Gateway</body></html>"),
        Answer(reset=True),
        Answer(200, pubmed_set([1, 2, 3])[:-60]),  # cut: no closing tag
        Answer(200, pubmed_set([1, 2, 3]), short_by=100),  # shorter than Content-Length
        Answer(200, error_doc("eFetchResult", "Unable to obtain query #1")),
        Answer(200, b"<!DOCTYPE html>\n<html><head><title>Blocked</title></head><body>blocked</body></html>"),
        Answer(200, b""),
    ]

    def handler(req: Req) -> Answer:
        return script.pop(0) if script else ok_pubmed(req)

    caplog.set_level(logging.DEBUG, logger="litmeta.entrez")
    with FakeEutils(handler) as srv:
        c = fast_client(srv.base_url, max_tries=10)
        (batch,) = list(c.efetch_pubmed([1, 2, 3]))
    assert batch.found == [1, 2, 3] and batch.missing == [] and len(batch.documents) == 1
    assert batch.documents[0].body.rstrip().endswith(b"</PubmedArticleSet>")
    assert len(srv.requests) == 10
    st = c.stats.as_dict()
    assert st["requests"] == 10 and st["retries"] == 9
    reasons = st["retries_by_reason"]
    assert reasons["http_429"] == 1 and reasons["http_500"] == 1 and reasons["http_502"] == 1
    assert reasons["truncated"] >= 2 and reasons["error200"] == 1 and reasons["html"] == 1
    assert reasons["connection"] + reasons.get("truncated", 0) >= 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "litmeta.entrez"]
    assert len(warnings) == 9
    assert all("efetch db=pubmed" in r.getMessage() and "ids=3 [1,2,3]" in r.getMessage() for r in warnings)


def test_retry_after_is_honoured():
    script = [Answer(503, b"<html>busy</html>", {"Retry-After": "1"})]
    with FakeEutils(lambda r: script.pop(0) if script else ok_pubmed(r)) as srv:
        c = fast_client(srv.base_url)
        list(c.efetch_pubmed([1]))
    a, b = srv.requests
    assert b.t - a.t >= 0.95


def test_rate_limit_429_waits_at_least_rate_limit_backoff():
    script = [Answer(429, b'{"error":"API rate limit exceeded","count":"4"}')]
    with FakeEutils(lambda r: script.pop(0) if script else ok_pubmed(r)) as srv:
        c = fast_client(srv.base_url, rate_limit_backoff=0.4)
        list(c.efetch_pubmed([1]))
    a, b = srv.requests
    assert b.t - a.t >= 0.29


def test_empty_error_element_in_good_answer_is_not_a_failure():
    body = esearch_doc(2, [11, 12]).replace(b"<IdList>", b"<ERROR/><IdList>")
    with FakeEutils(lambda r: Answer(200, body)) as srv:
        c = fast_client(srv.base_url)
        res = c.esearch("x")
    assert res.ids == [11, 12] and len(srv.requests) == 1


@pytest.mark.parametrize(
    ("answer", "exc"),
    [
        (Answer(400, b'{"error":"API key invalid"}'), EntrezPermanentError),
        (Answer(404, b"<html>not found</html>"), EntrezPermanentError),
        (Answer(200, error_doc("eSearchResult", "Invalid db name specified: fleegle")), EntrezPermanentError),
        (
            Answer(
                200,
                error_doc(
                    "eSearchResult",
                    "'retstart' cannot be larger than 9998. For PubMed, ESearch can only retrieve the first 9,999 records "
                    "matching the query. To obtain more than 9,999 PubMed records, consider using EDirect",
                ),
            ),
            EntrezSearchCapError,
        ),
    ],
)
def test_permanent_errors_are_not_retried(answer, exc):
    with FakeEutils(lambda r: answer) as srv:
        c = fast_client(srv.base_url, api_key=SECRET)
        with pytest.raises(exc) as ei:
            c.esearch("cancer", db="pubmed")
    assert len(srv.requests) == 1
    assert "esearch db=pubmed" in str(ei.value) and SECRET not in str(ei.value)
    assert c.stats.total_retries == 0


def test_gives_up_after_max_tries_with_a_clear_error(caplog):
    caplog.set_level(logging.DEBUG)
    with FakeEutils(lambda r: Answer(503, b"<html>down</html>")) as srv:
        c = fast_client(srv.base_url, max_tries=4, api_key=SECRET)
        with pytest.raises(EntrezRetryExhausted) as ei:
            list(c.efetch_pubmed(list(range(1, 301))))
    assert len(srv.requests) == 4
    msg = str(ei.value)
    assert msg.startswith(
        "efetch db=pubmed retmode=xml rettype=xml ids=300 [1,2,3,4,5,...] POST: gave up after 4 tries"
    )
    assert "http_503" in msg and ei.value.tries == 4
    assert SECRET not in msg and SECRET not in caplog.text


def test_error_texts_echoing_the_url_are_redacted(caplog):
    """A proxy error page that echoes the request must not leak the key into errors or logs."""

    def handler(req: Req) -> Answer:
        echoed = "&".join(f"{k}={v}" for k, v in req.params)
        return Answer(403, f"<html>forbidden: {req.url}?{echoed}</html>".encode())

    caplog.set_level(logging.DEBUG)
    with FakeEutils(handler) as srv:
        c = fast_client(srv.base_url, api_key=SECRET)
        with pytest.raises(EntrezPermanentError) as ei:
            c.epost([1, 2, 3])
    assert "***" in str(ei.value) and SECRET not in str(ei.value)
    assert SECRET not in caplog.text


def test_failures_are_never_returned_as_empty_results():
    """Every try fails in a way that could look like 'no records': the call must raise."""
    bodies = [
        error_doc("eFetchResult", "Search Backend failed: Exception"),
        b'<?xml version="1.0" ?>\n<PubmedArticleSet>\n<PubmedArticle><MedlineCitation><PMID>1</PMID>',
        b"<html><body>The server is busy</body></html>",
    ]
    n = iter(range(1000))
    with FakeEutils(lambda r: Answer(200, bodies[next(n) % 3])) as srv:
        c = fast_client(srv.base_url, max_tries=6)
        with pytest.raises(EntrezRetryExhausted):
            list(c.efetch_pubmed([1, 2]))
        assert len(srv.requests) == 6


# ------------------------------------------------------------------------------ tests: efetch


def test_absent_ids_are_asked_once_more_then_reported_missing():
    calls: list[list[int]] = []

    def handler(req: Req) -> Answer:
        calls.append(req.ids)
        ids = req.ids
        if len(calls) == 1:
            ids = [i for i in ids if i not in (3, 4)]  # answer lacks 3 and 4
        ids = [i for i in ids if i != 4]  # 4 does not exist
        return Answer(200, pubmed_set(ids))

    with FakeEutils(handler) as srv:
        c = fast_client(srv.base_url)
        batches = list(c.efetch_pubmed([1, 2, 3, 4, 5, 2], batch_size=10))
    assert calls == [[1, 2, 3, 4, 5], [3, 4]]
    (b,) = batches
    assert isinstance(b, FetchedBatch)
    assert b.requested == [1, 2, 3, 4, 5] and b.found == [1, 2, 3, 5] and b.missing == [4]
    assert len(b.documents) == 2 and len(b.bodies) == 2
    assert len(srv.requests) == 2


def test_efetch_batches_and_pmc():
    def handler(req: Req) -> Answer:
        if req.get("db") == "pmc":
            arts = "".join(
                f'<article><front><article-meta><article-id pub-id-type="pmc">{i}</article-id></article-meta></front></article>'
                for i in req.ids
            )
            return Answer(200, f"<?xml version='1.0'?>\n<pmc-articleset>{arts}</pmc-articleset>\n".encode())
        return ok_pubmed(req)

    with FakeEutils(handler) as srv:
        c = fast_client(srv.base_url)
        batches = list(c.efetch_pubmed(range(1, 1001), batch_size=300))
        pmc = list(c.efetch_pmc(["PMC10", "PMC11", 12]))
    assert [len(b.requested) for b in batches] == [300, 300, 300, 100]
    assert sum(len(b.found) for b in batches) == 1000
    assert pmc[0].found == [10, 11, 12] and pmc[0].documents[0].kind == "efetch_pmc"
    assert srv.requests[-1].get("db") == "pmc" and srv.requests[-1].ids == [10, 11, 12]


def test_generic_efetch_with_history():
    with FakeEutils(ok_pubmed) as srv:
        c = fast_client(srv.base_url)
        doc = c.efetch("pubmed", webenv="MCID_9", query_key=3, retstart=0, retmax=20)
    r = srv.requests[0]
    assert r.get("WebEnv") == "MCID_9" and r.get("query_key") == "3" and r.get("retmax") == "20"
    assert doc.kind == "efetch_pubmed" and "query_key=3" in doc.request


# ------------------------------------------------------------------------------ tests: elink


def links_handler(
    data: dict[int, dict[str, list[tuple[int, int | None]]]], drop_first: set[int] | None = None
):
    seen = {"n": 0}

    def handler(req: Req) -> Answer:
        seen["n"] += 1
        ids = req.ids
        assert all("," not in v for v in req.all("id")), "elink must use repeated id= params"
        sets = []
        for i in ids:
            if drop_first and seen["n"] == 1 and i in drop_first:
                continue
            links = dict(data.get(i, {}))
            ln = req.get("linkname")
            if req.get("cmd") == "neighbor_score":
                links = {"pubmed_pubmed": [(i, 2147483647), *links.get("pubmed_pubmed", [])]}
            elif ln:
                links = {k: v for k, v in links.items() if k == ln}
            sets.append(
                (
                    i,
                    {
                        k: [(x, s if req.get("cmd") == "neighbor_score" else None) for x, s in v]
                        for k, v in links.items()
                    },
                )
            )
        return Answer(200, elink_doc(sets))

    return handler


LINKS = {
    1: {
        "pubmed_pubmed_citedin": [(9, None), (8, None)],
        "pubmed_pubmed_refs": [(5, None)],
        "pubmed_pubmed": [(7, 90), (6, 80)],
    },
    2: {"pubmed_pubmed_refs": [(1, None), (3, None)], "pubmed_pubmed": [(1, 50)]},
    3: {},
}


def test_elink_combined_one_request_per_batch_with_repeated_ids():
    with FakeEutils(links_handler(LINKS)) as srv:
        c = fast_client(srv.base_url)
        got = c.elink([1, 2, 3, 4])
    assert got == {
        "pubmed_pubmed_citedin": {1: [9, 8], 2: [], 3: [], 4: []},
        "pubmed_pubmed_refs": {1: [5], 2: [1, 3], 3: [], 4: []},
    }
    (r,) = srv.requests
    assert r.all("id") == ["1", "2", "3", "4"] and r.get("linkname") is None and r.get("cmd") == "neighbor"
    assert r.method == "POST"


def test_elink_separate_requests_and_missing_linksets_asked_again():
    with FakeEutils(links_handler(LINKS, drop_first={2})) as srv:
        c = fast_client(srv.base_url)
        got = c.elink([1, 2], linknames=("pubmed_pubmed_refs",), batch_size=1000)
    assert got == {"pubmed_pubmed_refs": {1: [5], 2: [1, 3]}}
    assert [r.all("id") for r in srv.requests] == [["1", "2"], ["2"]]
    assert srv.requests[0].get("linkname") == "pubmed_pubmed_refs"


def test_elink_similar_scores_exclude_self():
    with FakeEutils(links_handler(LINKS)) as srv:
        c = fast_client(srv.base_url)
        got = c.elink_similar([1, 2, 3])
    assert got == {1: [(7, 90), (6, 80)], 2: [(1, 50)], 3: []}
    assert srv.requests[0].get("cmd") == "neighbor_score"


def test_elink_merged_linkset_is_an_error():
    body = b"<eLinkResult><LinkSet><DbFrom>pubmed</DbFrom><IdList><Id>1</Id><Id>2</Id></IdList></LinkSet></eLinkResult>"
    with FakeEutils(lambda r: Answer(200, body)) as srv:
        c = fast_client(srv.base_url)
        with pytest.raises(Exception, match="attributed"):
            c.elink([1, 2])


def test_elink_transient_linkset_error_is_retried():
    script = [Answer(200, error_doc("eLinkResult", "Error: Backend failure; unable to obtain links"))]
    with FakeEutils(lambda r: script.pop(0) if script else links_handler(LINKS)(r)) as srv:
        c = fast_client(srv.base_url)
        got = c.elink([1])
    assert got["pubmed_pubmed_citedin"] == {1: [9, 8]} and len(srv.requests) == 2


# ------------------------------------------------------------------------------ tests: esearch


class SearchFake:
    """esearch over a synthetic set of (pmid, yyyymmdd) with PubMed's retstart cap."""

    def __init__(self, records: list[tuple[int, int]]) -> None:
        self.records = sorted(records, key=lambda r: -r[0])

    def __call__(self, req: Req) -> Answer:
        assert req.endpoint == "esearch"
        rs = self.records
        lo, hi = req.get("mindate"), req.get("maxdate")
        if lo and hi:
            a, b = int(lo.replace("/", "")), int(hi.replace("/", ""))
            rs = [r for r in rs if a <= r[1] <= b]
        term = req.get("term") or ""
        m = re.search(r"(\d+):(\d+)\[uid\]", term)
        if m:
            rs = [r for r in rs if int(m.group(1)) <= r[0] <= int(m.group(2))]
        start, n = int(req.get("retstart") or 0), int(req.get("retmax") or 20)
        if start > 9998:
            return Answer(200, error_doc("eSearchResult", "'retstart' cannot be larger than 9998."))
        n = min(n, 9999 - start)
        return Answer(200, esearch_doc(len(rs), [r[0] for r in rs[start : start + n]], start))


def test_esearch_small_is_one_request_and_pages_with_history():
    recs = [(1000 + i, 20200101) for i in range(250)]
    with FakeEutils(SearchFake(recs)) as srv:
        c = fast_client(srv.base_url)
        one = c.esearch("x")
        paged = c.esearch("x", page_size=100)
    assert len(one.ids) == 250 and one.complete and one.requests == 1
    assert paged.ids == one.ids and paged.requests == 3
    assert srv.requests[1].get("usehistory") == "y" and srv.requests[2].get("WebEnv") == "MCID_1"
    assert [r.get("retstart") for r in srv.requests[1:]] == ["0", "100", "200"]


def test_esearch_over_cap_splits_by_date():
    # 25,000 records over ~3 years, so no single day is over the cap
    recs = []
    for i in range(25_000):
        y, d = 2019 + i % 3, i % 28 + 1
        recs.append((10_000_000 + i * 3, y * 10000 + (i % 12 + 1) * 100 + d))
    with FakeEutils(SearchFake(recs)) as srv:
        c = fast_client(srv.base_url)
        res = c.esearch("big")
    assert res.count == 25_000 and len(res.ids) == 25_000 and len(set(res.ids)) == 25_000
    assert set(res.ids) == {r[0] for r in recs} and res.split and res.complete
    assert all(cnt <= 9999 for _, _, cnt in res.ranges)
    assert max(int(r.get("retstart") or 0) for r in srv.requests) <= 9998
    print(f"25,000-record split search: {res.requests} requests, {len(res.ranges)} ranges")


def test_esearch_single_day_over_cap_splits_by_uid_or_raises():
    recs = [(30_000_000 + i, 20210505) for i in range(12_000)]
    with FakeEutils(SearchFake(recs)) as srv:
        c = fast_client(srv.base_url)
        res = c.esearch("oneday", mindate="2021/05/05", maxdate="2021/05/05")
    assert sorted(res.ids) == [r[0] for r in sorted(recs)]

    def no_uid(req: Req) -> Answer:  # a server that does not understand [uid] ranges
        if "[uid]" in (req.get("term") or ""):
            return Answer(200, esearch_doc(0, []))
        return SearchFake(recs)(req)

    with FakeEutils(no_uid) as srv:
        c = fast_client(srv.base_url)
        with pytest.raises(EntrezSearchCapError, match="single day 2021/05/05"):
            c.esearch("oneday", mindate="2021/05/05", maxdate="2021/05/05")


def test_esearch_retmax_limits():
    recs = [(1000 + i, 20200101) for i in range(50)]
    with FakeEutils(SearchFake(recs)) as srv:
        c = fast_client(srv.base_url)
        res = c.esearch("x", retmax=10)
    assert len(res.ids) == 10 and res.count == 50 and srv.requests[0].get("retmax") == "10"


# ------------------------------------------------------------------------------ epost / esummary


def test_epost_and_esummary():
    def handler(req: Req) -> Answer:
        if req.endpoint == "epost":
            return Answer(200, b"<ePostResult><QueryKey>1</QueryKey><WebEnv>MCID_42</WebEnv></ePostResult>")
        parts = "".join(
            f'<DocSum><Id>{i}</Id><Item Name="Title" Type="String">T{i}</Item>'
            f'<Item Name="AuthorList" Type="List"><Item Name="Author" Type="String">A {i}</Item></Item></DocSum>'
            for i in req.ids
            if i != 3
        )
        return Answer(
            200,
            f"<eSummaryResult>{parts}<ERROR>Invalid uid 3 at position=2</ERROR></eSummaryResult>".encode(),
        )

    with FakeEutils(handler) as srv:
        c = fast_client(srv.base_url)
        ref = c.epost([1, 2, 3])
        sums = c.esummary([1, 2, 3])
    assert ref.webenv == "MCID_42" and ref.query_key == "1" and ref.count == 3
    assert srv.requests[0].method == "POST"
    assert [s["Id"] for s in sums] == ["1", "2"] and sums[0]["AuthorList"] == ["A 1"]


# ------------------------------------------------------------------------------ recorder


def test_record_snapshot_writes_a_servable_snapshot_without_the_key(tmp_path: Path):
    def handler(req: Req) -> Answer:
        if req.endpoint == "efetch":
            return ok_pubmed(req)
        if req.endpoint == "esearch":
            return SearchFake([(1, 20200101), (2, 20200101)])(req)
        return links_handler(LINKS)(req)

    snap = tmp_path / "snap"
    with FakeEutils(handler) as srv:
        c = fast_client(srv.base_url, api_key=SECRET, record_snapshot=snap)
        list(c.efetch_pubmed([1, 2, 3]))
        c.elink([1, 2, 3])
        c.elink_similar([1, 2])
        c.esearch("my   query")
    assert sorted(p.name for p in (snap / "pubmed").iterdir()) == ["000001.xml"]
    assert (snap / "pubmed" / "000001.xml").read_bytes() == pubmed_set([1, 2, 3])
    links = (snap / "links.tsv").read_text().splitlines()
    assert links[0] == "dbfrom\tid\tlinkname\tto_id\tscore"
    assert "pubmed\t1\tpubmed_pubmed_citedin\t9\t" in links
    assert "pubmed\t1\tpubmed_pubmed\t7\t90" in links
    assert not any(line.split("\t")[1] == line.split("\t")[3] for line in links[1:])
    assert (snap / "searches.tsv").read_text().splitlines() == ["term\tpmid", "my query\t2", "my query\t1"]
    meta = json.loads((snap / "meta.json").read_text())
    assert meta["source"] == srv.base_url and meta["contains"]["pubmed_records"] == 3
    for p in snap.rglob("*"):
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes(), p


def test_elink_relations_two_requests_per_batch():
    with FakeEutils(links_handler(LINKS)) as srv:
        c = fast_client(srv.base_url)
        got = c.elink_relations([1, 2, 3])
    assert got["refs"] == {1: [(5, None)], 2: [(1, None), (3, None)], 3: []}
    assert got["cited_by"][1] == [(9, None), (8, None)]
    assert got["similar"] == {1: [(7, 90), (6, 80)], 2: [(1, 50)], 3: []}
    assert [r.get("cmd") for r in srv.requests] == ["neighbor", "neighbor_score"]
    with pytest.raises(ValueError):
        c.elink_relations([1], relations=("cites",))


def test_text_efetch_is_not_treated_as_a_failure():
    with FakeEutils(lambda r: Answer(200, b"1\n2\n", {"Content-Type": "text/plain"})) as srv:
        c = fast_client(srv.base_url)
        doc = c.efetch("pubmed", [1, 2], rettype="uilist", retmode="text")
    assert doc.body == b"1\n2\n" and doc.kind == "efetch_pubmed" and len(srv.requests) == 1
