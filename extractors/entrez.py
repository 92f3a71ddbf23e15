"""NCBI E-utilities client: batched, polite, fault-tolerant.

One `EntrezClient` = one `requests.Session` + one sliding-window rate limiter (3 requests/s,
10 with an api_key; see `litmeta.extractors.ratelimit`) shared by every thread using the client. The
same code path serves NCBI and the sandbox (`litmeta.extractors.sandbox`): only `base_url` differs.
Etiquette, limits and the retry policy are documented in docs/eutils.md.

Calls (named like NCBI / Bio.Entrez name them):

    esearch(term, db, mindate, maxdate, datetype, retmax)  -> SearchResult
    epost(ids, db, webenv)                                  -> HistoryRef
    efetch(db, ids | webenv+query_key, ...)                 -> RawDocument
    efetch_pubmed(ids, batch_size)                          -> Iterator[FetchedBatch]
    efetch_pmc(pmcids, batch_size)                          -> Iterator[FetchedBatch]
    elink(ids, linknames, cmd, ...)                         -> {linkname: {source id: [linked ids]}}
    elink_similar(ids, ...)                                 -> {source id: [(similar id, score | None)]}
    elink_relations(ids, ('refs','cited_by','similar'))     -> {relation: {source id: [(id, score | None)]}}
    esummary(ids, db)                                       -> list[dict]
    elink_linkout(ids, cmd='llinks'|'prlinks')              -> list[IdUrlSet] (LinkOut)
    ecitmatch(citations)                                    -> ({key: Resolution}, [Reject])

Failures: every HTTP attempt goes through the limiter. Transient failures (HTTP 429, 5xx, 408,
connection errors and resets, timeouts, bodies cut short, a non-empty <ERROR> in a 200 answer,
an HTML page or anything else where XML was expected) are retried with exponential backoff and
jitter, honouring Retry-After, up to `max_tries`; then `EntrezRetryExhausted` names the request.
Permanent failures (HTTP 400/403/404/414, invalid db, the PubMed 9,999 cap text, ...) raise
`EntrezPermanentError` at once. A failure is never returned as an empty result.

Result documents (esearch, epost, elink, esummary) are parsed with lxml and a hardened parser
(no DTD loading, no network, no entity expansion), not `Bio.Entrez.read`; see
`litmeta.extractors.eutils_results` for why. PubMed and PMC records are never parsed here: efetch
bodies are handed on as raw bytes (`RawDocument`, `FetchedBatch`) after a completeness check
and a cheap regex pass that tells which requested ids are present.

The api_key is sent on every request but appears in no request description, log line,
exception message or recorded snapshot; with a key every request is POSTed so that the key is
never part of a URL (URLs end up in urllib3's debug log and in exception messages).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from litmeta.extractors import eutils_results as R
from litmeta.extractors.errors import (
    EntrezError,
    EntrezPermanentError,
    EntrezResponseError,
    EntrezRetryExhausted,
    EntrezSearchCapError,
)
from litmeta.extractors.service_client import (
    ClientStats,
    RawDocument,
    ServiceClient,
    describe_params,
    excerpt,
)
from litmeta.extractors.service_client import Permanent as _Permanent
from litmeta.extractors.service_client import Retry as _Retry
from litmeta.extractors.snapshot_recorder import SnapshotRecorder

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_LINKNAMES",
    "PUBMED_ESEARCH_CAP",
    "RELATION_LINKNAMES",
    "EntrezClient",
    "RawDocument",
    "FetchedBatch",
    "SearchResult",
    "HistoryRef",
    "ClientStats",
    "EntrezError",
    "EntrezPermanentError",
    "EntrezRetryExhausted",
    "EntrezSearchCapError",
    "EntrezResponseError",
]

log = logging.getLogger("litmeta.entrez")

DEFAULT_BASE_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
DEFAULT_LINKNAMES = ("pubmed_pubmed_citedin", "pubmed_pubmed_refs")
#: network relation -> elink linkname (see EntrezClient.elink_relations)
RELATION_LINKNAMES = {
    "refs": "pubmed_pubmed_refs",
    "cited_by": "pubmed_pubmed_citedin",
    "similar": "pubmed_pubmed",
}
#: PubMed esearch returns at most this many ids for one query (retstart <= 9998), history or not.
PUBMED_ESEARCH_CAP = 9999
#: NCBI asks for POST above 200 ids; GET URLs much longer than this fail with 414.
POST_ABOVE_IDS = 200
MAX_GET_QUERY = 1800
#: earliest date used when a search over 9,999 records must be split by date and no mindate is given
SPLIT_MIN_DATE = date(1800, 1, 1)
_MAX_PMID = 99_999_999

# <ERROR> texts that retrying cannot fix (matched case-insensitively). Anything else in a 200
# answer's <ERROR> ("Search Backend failed: ...", "Unable to obtain query #1", ...) is retried.
_PERMANENT_ERROR_PATTERNS = (
    "invalid db name",
    "wrong db name",
    "cannot be larger than",
    "can only retrieve the first",
    "empty id list",
    "empty term and query_key",
    "neither query_key nor id",
    "invalid uid",
    "some ids have invalid value",
    "can not retrieve dbinfo",
    "invalid parameter",
    "unknown command",
    "invalid command",
    "invalid linkname",
    "api key invalid",
    "invalid api key",
)
_PER_ID_ERROR = re.compile(r"\buid\b|document summary", re.IGNORECASE)
_CAP_PATTERNS = ("cannot be larger than 9998", "can only retrieve the first 9,999")


# ------------------------------------------------------------------------------------ data types


@dataclass
class FetchedBatch:
    """One batch of efetch_pubmed / efetch_pmc: its bodies and which requested ids they hold.

    documents: the batch's response, plus one more when ids were absent from it (asked again once).
    found: requested ids present in the documents (request order). missing: requested ids absent
    from both answers: not found at NCBI (deleted, never existed, not yet released).
    extra: ids present in the bodies that were not asked for (NCBI redirects, rare).
    """

    requested: list[int]
    documents: list[RawDocument]
    found: list[int]
    missing: list[int]
    extra: list[int] = field(default_factory=list)

    @property
    def bodies(self) -> list[bytes]:
        return [d.body for d in self.documents]


@dataclass
class SearchResult:
    """A complete esearch result.

    count: NCBI's Count for the whole query. ids: every id retrieved (deduplicated; NCBI's order
    within each request, date ranges newest first). ranges: when the set exceeded the 9,999 cap,
    the (mindate, maxdate, count) pieces it was split into. complete: len(ids) == count (or the
    retmax asked for); a live database can change between the requests of one split search.
    requests: HTTP requests the client made during the call (includes other threads' requests
    when the client is shared).
    """

    count: int
    ids: list[int]
    query_translation: str | None = None
    webenv: str | None = None
    query_key: str | None = None
    term: str = ""
    db: str = "pubmed"
    split: bool = False
    ranges: list[tuple[str, str, int]] = field(default_factory=list)
    requests: int = 0
    complete: bool = True
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HistoryRef:
    """A set stored on NCBI's history server (epost / esearch usehistory=y)."""

    webenv: str
    query_key: str
    count: int | None = None


# --------------------------------------------------------------------------------------- helpers


def _ints(ids: Iterable[int | str]) -> list[int]:
    """Ids as ints, deduplicated, first occurrence order ('PMC123' -> 123)."""
    out: list[int] = []
    seen: set[int] = set()
    for x in ids:
        if isinstance(x, str):
            s = x.strip()
            if s.upper().startswith("PMC"):
                s = s[3:]
            v = int(s)
        else:
            v = int(x)
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def _chunks(seq: Sequence[int], n: int) -> Iterator[list[int]]:
    for i in range(0, len(seq), n):
        yield list(seq[i : i + n])


def _classify_error_text(text: str) -> Exception:
    low = text.lower()
    if any(p in low for p in _PERMANENT_ERROR_PATTERNS):
        return _Permanent("error_text", text)
    return _Retry("error200", text)


_TRANSIENT_WORDS = ("backend", "fail", "timeout", "timed out", "unavailable", "try again", "temporar", "busy")


def _is_transient_text(text: str) -> bool:
    low = text.lower()
    return not any(p in low for p in _PERMANENT_ERROR_PATTERNS) and any(w in low for w in _TRANSIENT_WORDS)


def _parse_date(s: str | date, *, end: bool) -> date:
    """'2020', '2020/05', '2020/05/17' (or '-' separated) -> date; `end` picks the last day."""
    if isinstance(s, date):
        return s
    parts = [int(p) for p in re.split(r"[/\-.]", str(s).strip()) if p]
    if len(parts) == 1:
        return date(parts[0], 12, 31) if end else date(parts[0], 1, 1)
    if len(parts) == 2:
        y, m = parts
        if not end:
            return date(y, m, 1)
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        return nxt - timedelta(days=1)
    return date(parts[0], parts[1], parts[2])


def _fmt(d: date) -> str:
    return f"{d.year:04d}/{d.month:02d}/{d.day:02d}"


def _top_errors(root) -> list[str]:
    return [t for t in ("".join(e.itertext()).strip() for e in root.iterfind("ERROR")) if t]


# ---------------------------------------------------------------------------------------- client


class EntrezClient(ServiceClient):
    """E-utilities client. Thread-safe: share one per process (per api_key) between threads.

    base_url: NCBI by default; the sandbox's `base_url` in tests and the demo.
    tool/email/api_key: sent on every request (NCBI etiquette). api_key raises the limit to 10/s.
    rate: requests per second (default 3, or 10 with an api_key); never set it above NCBI's.
    max_tries: HTTP attempts per request (first try + retries, default 10) before EntrezRetryExhausted.
    backoff_base/backoff_cap: retry n sleeps uniform(0.5, 1) * min(cap, base * 2**(n-1)) seconds;
    after a 429 at least `rate_limit_backoff` seconds; Retry-After, when sent, is honoured.
    fetch_batch_size / link_batch_size: ids per efetch / elink request (both POSTed above 200).
    on_document: called with every successful response as a RawDocument (for raw_documents).
    record_snapshot: directory to write what this client fetches as a sandbox snapshot.
    The limiter, retry loop and HTTP attempt are `litmeta.extractors.service_client.ServiceClient`'s.
    """

    service = "E-utilities"
    logger = "litmeta.entrez"
    exhausted_error = EntrezRetryExhausted
    permanent_error = EntrezPermanentError

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        tool: str = "litmeta",
        email: str | None = None,
        api_key: str | None = None,
        rate: float | None = None,
        fetch_batch_size: int = 500,
        link_batch_size: int = 500,
        pmc_batch_size: int = 50,
        record_snapshot: Path | str | None = None,
        **kwargs: Any,
    ) -> None:
        self._api_key = api_key or None
        if rate is None:
            rate = 10 if self._api_key else 3
        super().__init__(base_url, tool=tool, email=email, rate=rate, **kwargs)
        self.fetch_batch_size = fetch_batch_size
        self.link_batch_size = link_batch_size
        self.pmc_batch_size = pmc_batch_size
        self.recorder = SnapshotRecorder(record_snapshot, self.base_url) if record_snapshot else None

    # ------------------------------------------------------------------------- housekeeping

    @property
    def has_api_key(self) -> bool:
        return self._api_key is not None

    def __repr__(self) -> str:  # never the key
        return f"EntrezClient({self.base_url!r}, tool={self.tool!r}, api_key={'set' if self._api_key else 'none'})"

    def __enter__(self) -> EntrezClient:
        return self

    def redact(self, text: str) -> str:
        """`text` with the api_key (if any) replaced by '***'."""
        if self._api_key and text:
            return text.replace(self._api_key, "***")
        return text

    # ------------------------------------------------------------------------------ request core

    def describe(
        self, endpoint: str, params: Sequence[tuple[str, Any]], ids: Sequence[int] | None, method: str
    ) -> str:
        """Human-readable, key-free description of a request (for raw_documents, logs, errors)."""
        parts = describe_params(endpoint, params, ("api_key", "tool", "email", "id"))
        if ids is not None:
            head = ",".join(str(i) for i in ids[:5])
            parts.append(f"ids={len(ids)} [{head}{',...' if len(ids) > 5 else ''}]")
        parts.append(method)
        return self.redact(" ".join(parts))

    def _call(
        self,
        endpoint: str,
        params: Sequence[tuple[str, Any]],
        *,
        kind: str,
        check: Callable[[bytes], tuple[Any, int]],
        ids: Sequence[int] | None = None,
        repeat_ids: bool = False,
        post: bool = False,
        xml: bool = True,
    ) -> tuple[Any, RawDocument]:
        """One logical request, retried until a good answer or a definite failure.

        check(body) validates an HTTP-200 body and returns (parsed value, n_records); it raises
        _Retry for a transient failure (truncated, error200, malformed) or _Permanent.
        """
        params = [(k, str(v)) for k, v in params if v is not None]
        id_params: list[tuple[str, str]] = []
        if ids is not None:
            id_params = (
                [("id", str(i)) for i in ids] if repeat_ids else [("id", ",".join(str(i) for i in ids))]
            )
        wire = params + id_params + [("tool", self.tool)]
        if self.email:
            wire.append(("email", self.email))
        if self._api_key:
            wire.append(("api_key", self._api_key))
        method = (
            "POST" if (post or self._api_key or (ids is not None and len(ids) > POST_ABOVE_IDS)) else "GET"
        )
        if method == "GET" and len(urlencode(wire)) > MAX_GET_QUERY:
            method = "POST"
        desc = self.describe(endpoint, params, ids, method)
        url = f"{self.base_url}{endpoint}.fcgi"
        return self._request(endpoint, method, url, wire, desc, kind=kind, check=check,
                             sniff=self._sniff_xml if xml else None)

    def _permanent(self, err: _Permanent, desc: str, endpoint: str) -> Exception:
        msg = f"{desc}: {err.reason}" + (f": {self.redact(err.detail)[:300]}" if err.detail else "")
        low = err.detail.lower()
        cls = EntrezSearchCapError if any(p in low for p in _CAP_PATTERNS) else EntrezPermanentError
        return cls(msg, request=desc, endpoint=endpoint, reason=err.reason, status=err.status)

    @staticmethod
    def _sniff_xml(body: bytes) -> None:
        """An XML answer was expected: a JSON error or anything else is a (transient) failure."""
        head = body.lstrip()[:1]
        if head == b"{" or head == b"[":
            low = body[:500].lower()
            raise _Retry("rate_limited" if b"rate limit" in low else "not_xml", excerpt(body))
        if head != b"<":
            raise _Retry("not_xml", excerpt(body))

    # ----------------------------------------------------------------------------- checkers

    @staticmethod
    def _result_doc(body: bytes, expected_root: str, per_id_errors: bool = False):
        try:
            root = R.parse_xml(body)
        except R.MalformedResponse as exc:
            raise _Retry("truncated" if not R.is_complete(body) else "malformed", str(exc)[:200]) from None
        errs = _top_errors(root)
        if per_id_errors:
            # esummary answers an unknown id with an <ERROR> naming it, next to the other DocSums
            per_id = [e for e in errs if _PER_ID_ERROR.search(e)]
            if per_id:
                log.info("%s: %d per-id errors, e.g. %s", expected_root, len(per_id), per_id[0][:100])
            errs = [e for e in errs if not _PER_ID_ERROR.search(e)]
        if errs:
            raise _classify_error_text("; ".join(errs))
        if root.tag != expected_root:
            raise _Retry("unexpected_root", f"expected {expected_root}, got {root.tag}")
        return root

    @staticmethod
    def _check_fetch(body: bytes, expected_root: str | None) -> str:
        """Validate an efetch body without parsing the records; return its root element name."""
        if R.has_error_element(body):
            m = re.search(rb"<ERROR>(.*?)</ERROR>", body, re.S)
            text = m.group(1).decode("utf-8", "replace").strip() if m else "ERROR"
            raise _classify_error_text(text)
        root = R.root_tag(body)
        if root is None:
            raise _Retry("malformed", "no root element")
        if expected_root and root != expected_root:
            if root in ("eFetchResult", "eSearchResult", "eLinkResult", "eSummaryResult", "ePostResult"):
                raise _Retry("unexpected_root", f"expected {expected_root}, got {root}: {excerpt(body)}")
            raise _Retry("unexpected_root", f"expected {expected_root}, got {root}")
        if not R.is_complete(body, root):
            raise _Retry("truncated", f"{root} not closed ({len(body)} bytes)")
        return root

    # ---------------------------------------------------------------------------------- efetch

    def efetch(
        self,
        db: str,
        ids: Sequence[int | str] | None = None,
        webenv: str | None = None,
        query_key: str | int | None = None,
        retstart: int = 0,
        retmax: int | None = None,
        rettype: str | None = "xml",
        retmode: str | None = "xml",
    ) -> RawDocument:
        """One efetch request (ids, or a history set with webenv+query_key) -> its RawDocument.

        XML answers are checked for completeness; db=pubmed / db=pmc XML bodies are recorded
        into the snapshot when recording. No batching and no missing-id check here: see
        efetch_pubmed / efetch_pmc.
        """
        id_list = _ints(ids) if ids is not None else None
        if id_list is None and not (webenv and query_key):
            raise ValueError("efetch needs ids or webenv + query_key")
        params: list[tuple[str, Any]] = [("db", db)]
        if webenv:
            params += [("WebEnv", webenv), ("query_key", query_key)]
            if retstart:
                params.append(("retstart", retstart))
            if retmax is not None:
                params.append(("retmax", retmax))
        params += [("rettype", rettype), ("retmode", retmode)]
        xml = (retmode or "xml") == "xml"
        expected = (
            {"pubmed": "PubmedArticleSet", "pmc": "pmc-articleset"}.get(db)
            if xml and rettype in (None, "xml", "full")
            else None
        )

        def check(body: bytes) -> tuple[Any, int]:
            if not xml:
                return None, 0
            self._check_fetch(body, expected)
            if db == "pubmed":
                return None, len(R.pubmed_pmids(body))
            if db == "pmc":
                return None, len(R.pmc_ids(body))
            return None, 0

        kind = {"pubmed": "efetch_pubmed", "pmc": "efetch_pmc"}.get(db, "efetch")
        _, doc = self._call("efetch", params, kind=kind, check=check, ids=id_list, xml=xml)
        if self.recorder is not None and expected is not None:
            if db == "pubmed":
                self.recorder.record_pubmed(doc.body, doc.n_records)
            elif db == "pmc":
                self.recorder.record_pmc(doc.body, doc.n_records)
        return doc

    def _fetch_batches(
        self, db: str, ids: list[int], batch_size: int, present: Callable[[bytes], list[int]]
    ) -> Iterator[FetchedBatch]:
        for batch in _chunks(ids, max(1, batch_size)):
            docs = [self.efetch(db, batch)]
            found = set(present(docs[0].body))
            absent = [i for i in batch if i not in found]
            if absent:
                log.info(
                    "efetch db=%s: %d of %d ids absent from the answer, asking once more: %s",
                    db,
                    len(absent),
                    len(batch),
                    absent[:10],
                )
                docs.append(self.efetch(db, absent))
                found.update(present(docs[1].body))
            missing = [i for i in batch if i not in found]
            if missing:
                log.warning(
                    "efetch db=%s: %d ids not found (asked twice): %s", db, len(missing), missing[:20]
                )
            wanted = set(batch)
            yield FetchedBatch(
                requested=batch,
                documents=docs,
                found=[i for i in batch if i in found],
                missing=missing,
                extra=sorted(found - wanted),
            )

    def efetch_pubmed(
        self, ids: Iterable[int | str], batch_size: int | None = None
    ) -> Iterator[FetchedBatch]:
        """PubMed XML records for `ids` (deduplicated), `batch_size` ids per request (POST above 200).

        Yields one FetchedBatch per batch, lazily. Each body is checked complete (ends with
        </PubmedArticleSet>); ids absent from an answer are asked again once, then reported in
        FetchedBatch.missing.
        """
        return self._fetch_batches("pubmed", _ints(ids), batch_size or self.fetch_batch_size, R.pubmed_pmids)

    def efetch_pmc(
        self, pmcids: Iterable[int | str], batch_size: int | None = None
    ) -> Iterator[FetchedBatch]:
        """PMC JATS (<pmc-articleset>) for PMCIDs ('PMC123' or 123); ids in batches are numeric."""
        return self._fetch_batches("pmc", _ints(pmcids), batch_size or self.pmc_batch_size, R.pmc_ids)

    # ------------------------------------------------------------------------------------ elink

    def _elink_request(
        self, ids: list[int], dbfrom: str, db: str, cmd: str, linkname: str | None
    ) -> dict[int, R.LinkSetResult]:
        params: list[tuple[str, Any]] = [("dbfrom", dbfrom), ("db", db), ("cmd", cmd)]
        if linkname:
            params.append(("linkname", linkname))

        def check(body: bytes) -> tuple[Any, int]:
            root = self._result_doc(body, "eLinkResult")
            try:
                sets = R.parse_elink(root)
            except R.MalformedResponse as exc:
                raise _Retry("malformed", str(exc)) from None
            for ls in sets:
                # A per-id <ERROR> (e.g. an unknown id) is that id's answer; a backend failure
                # reported inside a LinkSet is transient: ask again.
                if ls.error and _is_transient_text(ls.error):
                    raise _Retry("error200", ls.error)
            return sets, len(sets)

        sets, doc = self._call(
            "elink", params, kind="elink", check=check, ids=ids, repeat_ids=True, post=len(ids) > 1
        )
        out: dict[int, R.LinkSetResult] = {}
        wanted = set(ids)
        for ls in sets:
            if len(ls.ids) != 1:
                if len(ls.ids) > 1:
                    raise EntrezResponseError(
                        f"{doc.request}: a LinkSet for {len(ls.ids)} ids at once; links cannot be attributed",
                        request=doc.request,
                        endpoint="elink",
                        reason="merged_linkset",
                    )
                continue
            src = ls.ids[0]
            if src not in wanted:
                log.debug("elink: LinkSet for unrequested id %s ignored", src)
                continue
            if ls.error:
                log.warning("elink: id %s: %s (%s)", src, ls.error, doc.request)
            prev = out.get(src)
            if prev is None:
                out[src] = ls
            else:  # NCBI may split one id's links over two LinkSets: merge
                for ln, links in ls.links.items():
                    prev.links.setdefault(ln, []).extend(links)
        return out

    def _elink_sets(
        self, ids: list[int], dbfrom: str, db: str, cmd: str, linkname: str | None
    ) -> dict[int, R.LinkSetResult]:
        out = self._elink_request(ids, dbfrom, db, cmd, linkname)
        absent = [i for i in ids if i not in out]
        if absent:
            log.info(
                "elink: %d of %d ids without a LinkSet, asking once more: %s",
                len(absent),
                len(ids),
                absent[:10],
            )
            out.update(self._elink_request(absent, dbfrom, db, cmd, linkname))
            still = [i for i in ids if i not in out]
            if still:
                log.warning(
                    "elink: %d ids without a LinkSet (asked twice), taken as no links: %s",
                    len(still),
                    still[:20],
                )
        return out

    def elink(
        self,
        ids: Iterable[int | str],
        linknames: Sequence[str] = DEFAULT_LINKNAMES,
        cmd: str = "neighbor",
        dbfrom: str = "pubmed",
        batch_size: int | None = None,
        combine: bool = True,
    ) -> dict[str, dict[int, list[int]]]:
        """Links of each id, per linkname: {linkname: {source id: [linked ids, listed order]}}.

        Uses repeated id= parameters (one LinkSet per id, so every link is attributable to its
        source), `batch_size` ids per POST. With combine=True, linknames to the same target db
        are asked in ONE request without a linkname (NCBI then answers every link of that
        pair, e.g. all pubmed_pubmed* lists) and filtered here; combine=False makes one request
        per linkname. Every requested id appears under every linkname, [] when it has none.
        """
        id_list = _ints(ids)
        names = list(dict.fromkeys(linknames))
        result: dict[str, dict[int, list[int]]] = {ln: {i: [] for i in id_list} for ln in names}
        groups: dict[str, list[str]] = {}
        for ln in names:
            parts = ln.split("_")
            if len(parts) < 2:
                raise ValueError(f"bad linkname {ln!r}")
            groups.setdefault(parts[1], []).append(ln)
        for batch in _chunks(id_list, max(1, batch_size or self.link_batch_size)):
            for db, lns in groups.items():
                plan = [(None, lns)] if (combine and len(lns) > 1) else [(ln, [ln]) for ln in lns]
                for linkname, wanted in plan:
                    sets = self._elink_sets(batch, dbfrom, db, cmd, linkname)
                    rows: list[tuple[int, str, int, int | None]] = []
                    for src, ls in sets.items():
                        for ln in wanted:
                            links = ls.links.get(ln, [])
                            result[ln][src] = [i for i, _ in links]
                            rows.extend((src, ln, i, s) for i, s in links)
                    if self.recorder is not None:
                        self.recorder.record_links(dbfrom, rows)
        return result

    def elink_similar(
        self, ids: Iterable[int | str], batch_size: int | None = None, linkname: str = "pubmed_pubmed"
    ) -> dict[int, list[tuple[int, int | None]]]:
        """Similar articles with scores (cmd=neighbor_score): {id: [(similar id, score | None)]}.

        Listed (score) order; the source id itself, which NCBI lists first, is excluded.
        Every requested id appears, [] when it has no similar articles.
        """
        id_list = _ints(ids)
        db = linkname.split("_")[1]
        result: dict[int, list[tuple[int, int | None]]] = {i: [] for i in id_list}
        for batch in _chunks(id_list, max(1, batch_size or self.link_batch_size)):
            sets = self._elink_sets(batch, "pubmed", db, "neighbor_score", linkname)
            rows: list[tuple[int, str, int, int | None]] = []
            for src, ls in sets.items():
                links = [(i, s) for i, s in ls.links.get(linkname, []) if i != src]
                result[src] = links
                rows.extend((src, linkname, i, s) for i, s in links)
            if self.recorder is not None:
                self.recorder.record_links("pubmed", rows)
        return result

    def elink_relations(
        self,
        ids: Iterable[int | str],
        relations: Sequence[str] = ("refs", "cited_by", "similar"),
        batch_size: int | None = None,
    ) -> dict[str, dict[int, list[tuple[int, int | None]]]]:
        """The network relations of `ids` in the fewest requests: {relation: {id: [(id, score)]}}.

        'refs' (pubmed_pubmed_refs) and 'cited_by' (pubmed_pubmed_citedin) come from one
        cmd=neighbor request per batch, 'similar' (scored) from one cmd=neighbor_score request per
        batch; scores are None for refs and cited_by. Every id appears under every relation.
        """
        unknown = set(relations) - set(RELATION_LINKNAMES)
        if unknown:
            raise ValueError(f"unknown relations {sorted(unknown)}; known: {sorted(RELATION_LINKNAMES)}")
        id_list = _ints(ids)
        out: dict[str, dict[int, list[tuple[int, int | None]]]] = {}
        plain = [r for r in relations if r != "similar"]
        if plain:
            got = self.elink(id_list, [RELATION_LINKNAMES[r] for r in plain], batch_size=batch_size)
            for r in plain:
                out[r] = {i: [(x, None) for x in lst] for i, lst in got[RELATION_LINKNAMES[r]].items()}
        if "similar" in relations:
            out["similar"] = self.elink_similar(id_list, batch_size=batch_size)
        return out

    def elink_linkout(
        self, ids: Iterable[int | str], cmd: str = "llinks", dbfrom: str = "pubmed", batch_size: int | None = None
    ) -> list:
        """LinkOut links (cmd=llinks, prlinks or llinkslib; IdUrlList answers) of ``ids``, ``batch_size`` per
        request: every IdUrlSet, parsed by `litmeta.extractors.linkout.parse_id_url_list`."""
        from litmeta.extractors.linkout import parse_id_url_list

        if cmd not in ("llinks", "prlinks", "llinkslib"):
            raise ValueError(f"not a LinkOut cmd: {cmd!r}")
        out: list = []
        for batch in _chunks(_ints(ids), max(1, batch_size or self.link_batch_size)):
            def check(body: bytes) -> tuple[Any, int]:
                root = self._result_doc(body, "eLinkResult")
                try:
                    sets = parse_id_url_list(root)
                except R.MalformedResponse as exc:
                    raise _Retry("malformed", str(exc)) from None
                return sets, len(sets)

            sets, _ = self._call("elink", [("dbfrom", dbfrom), ("cmd", cmd)], kind="elink_linkout", check=check,
                                 ids=batch, post=len(batch) > 1)
            out.extend(sets)
        return out

    # --------------------------------------------------------------------------------- ecitmatch

    def ecitmatch(self, citations: Sequence) -> tuple[dict, list]:
        """One ECitMatch request for ``citations`` (`litmeta.extractors.ecitmatch.CitationQuery`), POSTed:
        ({id_value: Resolution}, [Reject]); see `litmeta.extractors.ecitmatch` for the answer's rules."""
        from litmeta.extractors.ecitmatch import parse_ecitmatch

        sent = {f"c{i}": c for i, c in enumerate(citations, 1)}
        if not sent:
            return {}, []
        bdata = "\r".join(c.bdata(k) for k, c in sent.items()) + "\r"
        params = [("db", "pubmed"), ("retmode", "xml")]
        desc = self.redact(" ".join(describe_params("ecitmatch", params, ()) + [
            f"citations={len(sent)} [{next(iter(sent.values())).id_value[:60]},...]", "POST"]))

        def check(body: bytes) -> tuple[Any, int]:
            try:
                value = parse_ecitmatch(body, sent, desc)
            except R.MalformedResponse as exc:
                raise _Retry("malformed", str(exc)) from None
            return value, len(sent)

        wire = params + [("bdata", bdata), ("tool", self.tool)]
        if self.email:
            wire.append(("email", self.email))
        if self._api_key:
            wire.append(("api_key", self._api_key))
        value, _ = self._request("ecitmatch", "POST", f"{self.base_url}ecitmatch.cgi", wire, desc,
                                 kind="ecitmatch", check=check)
        return value

    # ---------------------------------------------------------------------------------- esummary

    def esummary(
        self, ids: Iterable[int | str], db: str = "pubmed", batch_size: int = 500, version: str | None = None
    ) -> list[dict]:
        """Document summaries (see eutils_results.parse_esummary for the dict shape)."""
        out: list[dict] = []
        id_list = _ints(ids)
        for batch in _chunks(id_list, max(1, batch_size)):
            params: list[tuple[str, Any]] = [("db", db), ("retmode", "xml")]
            if version:
                params.append(("version", version))

            def check(body: bytes) -> tuple[Any, int]:
                root = self._result_doc(body, "eSummaryResult", per_id_errors=True)
                docs = R.parse_esummary(root)
                return docs, len(docs)

            docs, _ = self._call("esummary", params, kind="esummary", check=check, ids=batch)
            out.extend(docs)
        return out

    # ------------------------------------------------------------------------------------- epost

    def epost(self, ids: Iterable[int | str], db: str = "pubmed", webenv: str | None = None) -> HistoryRef:
        """Store ids on the history server (always POST); pass webenv to add to an existing one."""
        id_list = _ints(ids)
        if not id_list:
            raise ValueError("epost needs at least one id")
        params: list[tuple[str, Any]] = [("db", db), ("WebEnv", webenv)]

        def check(body: bytes) -> tuple[Any, int]:
            root = self._result_doc(body, "ePostResult")
            try:
                return R.parse_epost(root), len(id_list)
            except R.MalformedResponse as exc:
                raise _Retry("malformed", str(exc)) from None

        (we, qk), _ = self._call("epost", params, kind="epost", check=check, ids=id_list, post=True)
        return HistoryRef(webenv=we, query_key=qk, count=len(id_list))

    # ----------------------------------------------------------------------------------- esearch

    def _esearch_page(
        self,
        term: str,
        db: str,
        *,
        retstart: int = 0,
        retmax: int,
        mindate: str | None = None,
        maxdate: str | None = None,
        datetype: str | None = None,
        webenv: str | None = None,
        query_key: str | None = None,
        sort: str | None = None,
        history: bool = True,
    ) -> R.ESearchPage:
        params: list[tuple[str, Any]] = [("db", db)]
        if query_key and webenv:
            params += [("WebEnv", webenv), ("query_key", query_key)]
        else:
            params += [("term", term)] + ([("usehistory", "y")] if history else [])
        params += [("retstart", retstart), ("retmax", retmax)]
        if mindate or maxdate:
            params += [("datetype", datetype or "edat"), ("mindate", mindate), ("maxdate", maxdate)]
        if sort:
            params.append(("sort", sort))

        def check(body: bytes) -> tuple[Any, int]:
            root = self._result_doc(body, "eSearchResult")
            try:
                page = R.parse_esearch(root)
            except R.MalformedResponse as exc:
                raise _Retry("malformed", str(exc)) from None
            return page, len(page.ids)

        page, _ = self._call("esearch", params, kind="esearch", check=check)
        return page

    def _collect(
        self,
        term: str,
        db: str,
        first: R.ESearchPage,
        want: int,
        page_size: int,
        mindate: str | None,
        maxdate: str | None,
        datetype: str | None,
        sort: str | None,
    ) -> list[int]:
        """Page through one query (whose count is within the cap) with retstart and the history."""
        ids = list(first.ids)
        limit = min(want, first.count)
        while len(ids) < limit:
            retstart = len(ids)
            n = min(page_size, limit - retstart)
            if db == "pubmed":
                n = min(n, PUBMED_ESEARCH_CAP - retstart)
                if n <= 0:
                    break
            page = self._esearch_page(
                term,
                db,
                retstart=retstart,
                retmax=n,
                mindate=mindate,
                maxdate=maxdate,
                datetype=datetype,
                webenv=first.webenv,
                query_key=first.query_key,
                sort=sort,
            )
            if not page.ids:
                log.warning(
                    "esearch %r: page at retstart=%d came back empty (count %d)", term, retstart, page.count
                )
                break
            ids.extend(page.ids)
        return ids

    def esearch(
        self,
        term: str,
        db: str = "pubmed",
        mindate: str | date | None = None,
        maxdate: str | date | None = None,
        datetype: str = "edat",
        retmax: int | None = None,
        *,
        page_size: int = PUBMED_ESEARCH_CAP,
        sort: str | None = None,
        history: bool = True,
    ) -> SearchResult:
        """All ids matching `term` (or the first `retmax`), using the history server and retstart.

        PubMed result sets over 9,999 are split by date (mindate/maxdate with `datetype`, edat by
        default), bisecting ranges until each holds at most 9,999; a single day still over the cap
        is split by PMID range ('lo:hi[uid]'), and if that does not add up EntrezSearchCapError is
        raised rather than returning a partial list. Ids are deduplicated (first occurrence kept).
        ``history=False`` leaves the history server out of a first page that holds every hit (a small
        lookup): the answer then depends on the query alone.
        """
        n0 = self.stats.requests
        page_size = max(1, min(page_size, 10000))
        want_total = retmax
        lo_s = _fmt(_parse_date(mindate, end=False)) if mindate else None
        hi_s = _fmt(_parse_date(maxdate, end=True)) if maxdate else None
        if (lo_s is None) != (hi_s is None):  # NCBI needs both
            lo_s = lo_s or _fmt(SPLIT_MIN_DATE)
            hi_s = hi_s or _fmt(date.today() + timedelta(days=366))
        first_n = page_size if want_total is None else min(page_size, want_total)
        if db == "pubmed":
            first_n = min(first_n, PUBMED_ESEARCH_CAP)
        first = self._esearch_page(
            term, db, retmax=first_n, mindate=lo_s, maxdate=hi_s, datetype=datetype, sort=sort, history=history
        )
        want = first.count if want_total is None else min(want_total, first.count)
        result = SearchResult(
            count=first.count,
            ids=[],
            query_translation=first.query_translation,
            webenv=first.webenv,
            query_key=first.query_key,
            term=term,
            db=db,
            warnings=first.warnings + first.errors,
        )
        if db != "pubmed" or want <= PUBMED_ESEARCH_CAP:
            ids = self._collect(term, db, first, want, page_size, lo_s, hi_s, datetype, sort)
        else:
            result.split = True
            lo = _parse_date(lo_s, end=False) if lo_s else SPLIT_MIN_DATE
            hi = _parse_date(hi_s, end=True) if hi_s else date.today() + timedelta(days=366)
            ids = []
            seen: set[int] = set()
            self._split_by_date(term, lo, hi, datetype, page_size, want, ids, seen, result, sort)
        ids = list(dict.fromkeys(ids))[:want]
        result.ids = ids
        result.requests = self.stats.requests - n0
        result.complete = len(ids) >= want
        if not result.complete:
            msg = f"esearch {term!r}: retrieved {len(ids)} of {want} ids (the database may have changed meanwhile)"
            log.warning("%s", msg)
            result.warnings.append(msg)
        if self.recorder is not None and db == "pubmed" and want_total is None and not (mindate or maxdate):
            self.recorder.record_search(term, ids)
        return result

    def _split_by_date(
        self,
        term: str,
        lo: date,
        hi: date,
        datetype: str,
        page_size: int,
        want: int,
        ids: list[int],
        seen: set[int],
        result: SearchResult,
        sort: str | None,
    ) -> None:
        """Depth-first, newest range first: fetch [lo, hi] if within the cap, else bisect it."""
        if len(seen) >= want:
            return
        lo_s, hi_s = _fmt(lo), _fmt(hi)
        page = self._esearch_page(
            term,
            "pubmed",
            retmax=min(page_size, PUBMED_ESEARCH_CAP),
            mindate=lo_s,
            maxdate=hi_s,
            datetype=datetype,
            sort=sort,
        )
        if page.count <= PUBMED_ESEARCH_CAP:
            got = self._collect(term, "pubmed", page, page.count, page_size, lo_s, hi_s, datetype, sort)
            result.ranges.append((lo_s, hi_s, page.count))
            for i in got:
                if i not in seen:
                    seen.add(i)
                    ids.append(i)
            return
        if lo >= hi:
            self._split_by_uid(term, lo_s, datetype, page.count, page_size, ids, seen, result, sort)
            return
        mid = lo + timedelta(days=(hi - lo).days // 2)
        self._split_by_date(
            term, mid + timedelta(days=1), hi, datetype, page_size, want, ids, seen, result, sort
        )
        self._split_by_date(term, lo, mid, datetype, page_size, want, ids, seen, result, sort)

    def _split_by_uid(
        self,
        term: str,
        day: str,
        datetype: str,
        day_count: int,
        page_size: int,
        ids: list[int],
        seen: set[int],
        result: SearchResult,
        sort: str | None,
    ) -> None:
        """One day over the cap: split by PMID range. Raise if the pieces do not add up."""
        pending = [(1, _MAX_PMID, day_count)]
        while pending:
            a, b, expected = pending.pop()
            mid = (a + b) // 2
            pieces = []
            for lo, hi in ((mid + 1, b), (a, mid)):
                sub = f"({term}) AND {lo}:{hi}[uid]"
                page = self._esearch_page(
                    sub,
                    "pubmed",
                    retmax=min(page_size, PUBMED_ESEARCH_CAP),
                    mindate=day,
                    maxdate=day,
                    datetype=datetype,
                    sort=sort,
                )
                pieces.append((lo, hi, sub, page))
            if sum(p.count for *_, p in pieces) != expected:
                raise EntrezSearchCapError(
                    f"esearch {term!r}: {day_count} records on the single day {day} exceed the 9,999 cap and "
                    "splitting by PMID range did not add up; narrow the query",
                    request=f"esearch db=pubmed term={term!r} {datetype} {day}",
                    endpoint="esearch",
                    reason="cap",
                )
            for lo, hi, sub, page in pieces:
                if page.count > PUBMED_ESEARCH_CAP:
                    if hi - lo < 1:
                        raise EntrezSearchCapError(
                            f"esearch {term!r}: cannot split {day} below the 9,999 cap",
                            endpoint="esearch",
                            reason="cap",
                        )
                    pending.append((lo, hi, page.count))
                    continue
                got = self._collect(sub, "pubmed", page, page.count, page_size, day, day, datetype, sort)
                result.ranges.append((day, f"{day} uid {lo}:{hi}", page.count))
                for i in got:
                    if i not in seen:
                        seen.add(i)
                        ids.append(i)
