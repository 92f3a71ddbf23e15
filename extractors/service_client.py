"""What every HTTP client of litmeta shares: rate limit, retries with backoff, failure classification.

One `ServiceClient` = one `requests.Session` + one `SlidingWindowLimiter` + one `ClientStats`. The
E-utilities client (`litmeta.extractors.entrez`), the iCite client (`litmeta.extractors.icite`) and the
PMC ID Converter client (`litmeta.extractors.idconv`) are subclasses: each builds its own requests and
checks its own answers, and hands the HTTP attempt, the limiter, the retry loop and the stored-document
callback to this one place, so the etiquette (docs/eutils.md) is written once.

Failures: transient ones (HTTP 429, 5xx, 408, connection errors and resets, timeouts, bodies cut short,
an empty body, an HTML page where data was expected, and whatever a service's ``check`` raises as
`Retry`) are retried with exponential backoff and jitter, honouring Retry-After, up to ``max_tries``;
permanent ones (other 4xx, what ``check`` raises as `Permanent`) fail at once. The exception raised
names the service and the request; it comes from the subclass's `exhausted_error` / `permanent_error`.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from litmeta.extractors.errors import ServicePermanentError, ServiceRetryExhausted
from litmeta.extractors.ratelimit import SlidingWindowLimiter

__all__ = ["ClientStats", "Permanent", "RawDocument", "Retry", "ServiceClient", "excerpt", "looks_like_html"]

_HTML_RE = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!DOCTYPE\s+html|<html)", re.IGNORECASE)


@dataclass(frozen=True)
class RawDocument:
    """One successful HTTP response body with the description of the request that got it.

    kind: 'efetch_pubmed', 'efetch_pmc', 'efetch', 'esearch', 'epost', 'elink', 'esummary', 'icite',
    'idconv'. request: e.g. "efetch db=pubmed rettype=xml retmode=xml ids=500 [1234,1235,...] POST" (never
    the api_key). n_records: records (efetch), LinkSets (elink), ids (esearch), DocSums (esummary),
    data entries (icite), records (idconv).
    """

    kind: str
    request: str
    body: bytes
    fetched_at: datetime
    n_records: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


class ClientStats:
    """Counters of one client (thread-safe). `requests` counts HTTP attempts, retries included."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.by_endpoint: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()  # reason -> retries
        self.retries_by_endpoint: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()  # endpoint -> calls that raised
        self.successes = 0
        self.backoff_seconds = 0.0
        self.bytes_received = 0

    def _request(self, endpoint: str) -> None:
        with self._lock:
            self.requests += 1
            self.by_endpoint[endpoint] += 1

    def _retry(self, endpoint: str, reason: str, delay: float) -> None:
        with self._lock:
            self.retries[reason] += 1
            self.retries_by_endpoint[endpoint] += 1
            self.backoff_seconds += delay

    def _success(self, nbytes: int) -> None:
        with self._lock:
            self.successes += 1
            self.bytes_received += nbytes

    def _failure(self, endpoint: str) -> None:
        with self._lock:
            self.failures[endpoint] += 1

    @property
    def total_retries(self) -> int:
        return sum(self.retries.values())

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "by_endpoint": dict(self.by_endpoint),
                "retries": sum(self.retries.values()),
                "retries_by_reason": dict(self.retries),
                "retries_by_endpoint": dict(self.retries_by_endpoint),
                "failures": dict(self.failures),
                "successes": self.successes,
                "backoff_seconds": round(self.backoff_seconds, 3),
                "bytes_received": self.bytes_received,
            }

    def __repr__(self) -> str:
        return f"ClientStats({self.as_dict()})"


class Retry(Exception):
    """A transient failure of one attempt: try again after a backoff."""

    def __init__(self, reason: str, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


class Permanent(Exception):
    """A failure retrying cannot fix: raise at once."""

    def __init__(self, reason: str, detail: str = "", status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        self.status = status


def looks_like_html(body: bytes) -> bool:
    return bool(_HTML_RE.match(body[:512]))


def excerpt(body: bytes, n: int = 200) -> str:
    """The start of an answer's text for a message: markup (an HTML error page's tags) removed."""
    text = " ".join(re.sub(r"<[^>]*>", " ", body[: n * 10].decode("utf-8", "replace")).split())
    return text[:n] if text else " ".join(body[:n].decode("utf-8", "replace").split())


def retry_after(resp: requests.Response) -> float | None:
    v = resp.headers.get("Retry-After")
    if not v:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(v)
        return max(0.0, (when - datetime.now(when.tzinfo or timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None


class ServiceClient:
    """The shared core of a polite client of one service (see the module docstring).

    service: the name messages use ('E-utilities', 'iCite', 'PMC ID Converter').
    rate: requests per second (one sliding window per client); never above what the service allows.
    max_tries: HTTP attempts per request (first try + retries). backoff_base/backoff_cap: retry n sleeps
    uniform(0.5, 1) * min(cap, base * 2**(n-1)) seconds; after a 429 at least ``rate_limit_backoff``.
    on_document: called with every successful answer as a RawDocument (for raw_documents).
    """

    service = "service"
    logger = "litmeta.http"  # the logger of retries and failures
    exhausted_error: type[ServiceRetryExhausted] = ServiceRetryExhausted
    permanent_error: type[ServicePermanentError] = ServicePermanentError

    def __init__(
        self,
        base_url: str,
        *,
        tool: str = "litmeta",
        email: str | None = None,
        rate: float = 3,
        rate_margin: float = 0.1,
        max_tries: int = 10,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        rate_limit_backoff: float = 1.0,
        max_retry_after: float = 120.0,
        timeout: float | tuple[float, float] = (10.0, 120.0),
        on_document: Callable[[RawDocument], None] | None = None,
        session: requests.Session | None = None,
        limiter: SlidingWindowLimiter | None = None,
        seed: int | None = None,
    ) -> None:
        if not base_url.endswith("/"):
            base_url += "/"
        self.base_url = base_url
        self.tool = tool
        self.email = email
        self.limiter = limiter or SlidingWindowLimiter(max(1, int(rate)), 1.0, rate_margin)
        self.max_tries = max(1, int(max_tries))
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.rate_limit_backoff = rate_limit_backoff
        self.max_retry_after = max_retry_after
        self.timeout = timeout
        self.on_document = on_document
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", f"{tool} (litmeta {self.service} client)")
        self.stats = ClientStats()
        self.log = logging.getLogger(self.logger)
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    def close(self) -> None:
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def redact(self, text: str) -> str:
        """``text`` with secrets removed (a subclass holding one overrides this)."""
        return text

    def _backoff(self, attempt: int, err: Retry) -> float:
        with self._rng_lock:
            jitter = self._rng.uniform(0.5, 1.0)
        delay = jitter * min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
        if err.reason == "http_429" or err.reason == "rate_limited":
            delay = max(delay, self.rate_limit_backoff * (0.75 + 0.25 * jitter))
        if err.retry_after is not None:
            delay = max(delay, min(err.retry_after, self.max_retry_after))
        return delay

    def _permanent(self, err: Permanent, desc: str, endpoint: str) -> Exception:
        """The exception for a permanent failure (a subclass may pick a finer class)."""
        msg = f"{self.service} {desc}: {err.reason}" + (
            f": {self.redact(err.detail)[:300]}" if err.detail else "")
        return self.permanent_error(msg, request=desc, endpoint=endpoint, reason=err.reason, status=err.status,
                                    service=self.service)

    def _request(
        self,
        endpoint: str,
        method: str,
        url: str,
        wire: list[tuple[str, str]],
        desc: str,
        *,
        kind: str,
        check: Callable[[bytes], tuple[Any, int]],
        sniff: Callable[[bytes], None] | None = None,
    ) -> tuple[Any, RawDocument]:
        """One logical request, retried until a good answer or a definite failure.

        ``sniff(body)`` and ``check(body)`` validate an HTTP-200 body; ``check`` returns (parsed value,
        n_records); both raise `Retry` for a transient failure or `Permanent`.
        """
        reasons: list[str] = []
        last: Retry | None = None
        for attempt in range(1, self.max_tries + 1):
            try:
                body, fetched_at = self._attempt(method, url, wire, endpoint)
                if sniff is not None:
                    sniff(body)
                value, n_records = check(body)
            except Retry as err:
                last = err
                reasons.append(err.reason)
                if attempt >= self.max_tries:
                    break
                delay = self._backoff(attempt, err)
                self.stats._retry(endpoint, err.reason, delay)
                self.log.warning("retry %d/%d in %.2fs after %s%s: %s %s", attempt, self.max_tries - 1, delay,
                            err.reason, f" ({self.redact(err.detail)[:200]})" if err.detail else "",
                            self.service, desc)
                time.sleep(delay)
                continue
            except Permanent as err:
                self.stats._failure(endpoint)
                exc = self._permanent(err, desc, endpoint)
                self.log.error("permanent failure: %s", exc)
                raise exc from None
            doc = RawDocument(kind=kind, request=desc, body=body, fetched_at=fetched_at, n_records=n_records)
            self.stats._success(len(body))
            self.log.debug("ok %s %s (%d bytes, %d records, try %d)", self.service, desc, len(body), n_records, attempt)
            if self.on_document is not None:
                self.on_document(doc)
            return value, doc
        self.stats._failure(endpoint)
        assert last is not None
        msg = (
            f"{desc}: gave up after {self.max_tries} tries; last failure: {last.reason}"
            + (f" ({self.redact(last.detail)[:300]})" if last.detail else "")
            + f"; failures: {', '.join(reasons)}"
        )
        if self.service != "E-utilities":
            msg = f"{self.service} {msg}"
        self.log.error("%s", msg)
        raise self.exhausted_error(msg, request=desc, endpoint=endpoint, reason=last.reason, tries=self.max_tries,
                                   reasons=reasons, service=self.service) from None

    def _attempt(
        self, method: str, url: str, wire: list[tuple[str, str]], endpoint: str
    ) -> tuple[bytes, datetime]:
        """One HTTP attempt through the rate limiter. Returns the body of a 200 answer."""
        slot = self.limiter.acquire()
        try:
            self.stats._request(endpoint)
            try:
                if method == "GET":
                    resp = self.session.get(url, params=wire, timeout=self.timeout)
                else:
                    resp = self.session.post(url, data=wire, timeout=self.timeout)
                body = resp.content
            except requests.Timeout as exc:
                raise Retry("timeout", type(exc).__name__) from None
            except requests.ConnectionError as exc:
                raise Retry("connection", f"{type(exc).__name__}: {self.redact(str(exc))}") from None
            except (
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ) as exc:
                raise Retry("truncated", f"{type(exc).__name__}: {self.redact(str(exc))}") from None
            except requests.RequestException as exc:
                raise Permanent("request_error", f"{type(exc).__name__}: {self.redact(str(exc))}") from None
        finally:
            self.limiter.release(slot)
        fetched_at = datetime.now(timezone.utc)
        status = resp.status_code
        if status == 429:
            raise Retry("http_429", excerpt(body), retry_after(resp))
        if status >= 500 or status == 408:
            raise Retry(f"http_{status}", excerpt(body), retry_after(resp))
        if status != 200:
            raise Permanent(f"http_{status}", excerpt(body, 300), status)
        clen = resp.headers.get("Content-Length")
        if clen and clen.isdigit() and not resp.headers.get("Content-Encoding") and len(body) < int(clen):
            raise Retry("truncated", f"{len(body)} of {clen} bytes")
        if not body.strip():
            raise Retry("empty", "empty body")
        if looks_like_html(body):
            raise Retry("html", excerpt(body))
        return body, fetched_at

    @staticmethod
    def sniff_json(body: bytes) -> None:
        """A JSON object was expected: anything else (XML, text) is a transient failure."""
        if body.lstrip()[:1] != b"{":
            raise Retry("not_json", excerpt(body))


def describe_params(endpoint: str, params: Sequence[tuple[str, Any]], skip: tuple[str, ...]) -> list[str]:
    """``endpoint k=v ...`` parts of a request description, sorted, without the ``skip`` names."""
    parts = [endpoint]
    for k, v in sorted((str(k), str(v)) for k, v in params):
        if k in skip:
            continue
        if any(c.isspace() for c in v) or not v:
            v = repr(v)
        parts.append(f"{k}={v}")
    return parts
