"""NCBI's PubMed FTP site (over HTTPS): list the baseline and update files, download them resumably, md5-checked.

``https://ftp.ncbi.nlm.nih.gov/pubmed/baseline/`` and ``.../updatefiles/`` are Apache-style HTML indexes of
``pubmedYYnNNNN.xml.gz`` files, each beside a ``.md5`` file reading ``MD5(pubmedYYnNNNN.xml.gz)= <hex>``.
The sandbox serves the same tree (`litmeta.extractors.sandbox.ftp`); only the base URL differs.

Etiquette (docs/eutils.md, "FTP site"): at most ``parallel`` (default 3) requests at once, tool and e-mail in
the User-Agent, a download interrupted part-way is resumed with ``Range`` instead of fetched again.
`PubmedFtp` is a `litmeta.extractors.service_client.ServiceClient` like the E-utilities, iCite and ID
Converter clients: the same rate limiter, failure classes (`Retry`), backoff and Retry-After handling and
statistics; only its loop differs, since a download streams to a file and resumes. After ``max_tries``
tries `FtpRetryExhausted` names the URL. A downloaded file whose md5 differs from its ``.md5`` is fetched once
more from the start (with its ``.md5``), then refused: `Md5Refused` names it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import requests

from litmeta.errors import CouldNotFinish
from litmeta.extractors.errors import ServiceRetryExhausted
from litmeta.extractors.service_client import Retry as Transient
from litmeta.extractors.service_client import ServiceClient, retry_after

__all__ = ["DEFAULT_FTP_URL", "FOLDERS", "Download", "FtpRetryExhausted", "Md5Refused", "PubmedFtp", "RemoteFile"]

log = logging.getLogger(__name__)

DEFAULT_FTP_URL = "https://ftp.ncbi.nlm.nih.gov/pubmed/"
FOLDERS = ("baseline", "updatefiles")
NAME_RE = re.compile(r"^pubmed(\d{2})n(\d{4})\.xml\.gz$")
_INDEX_RE = re.compile(r'<a href="(pubmed\d{2}n\d{4}\.xml\.gz)">[^<]*</a>\s+(\d{4}-\d{2}-\d{2} \d{2}:\d{2})?')
_MD5_RE = re.compile(rb"^MD5\((?P<name>[^)]+)\)\s*=\s*(?P<hex>[0-9a-fA-F]{32})\s*$")
CHUNK = 1 << 20
T = TypeVar("T")


class FtpRetryExhausted(ServiceRetryExhausted):
    """A request to the FTP site failed on every try; the message names the URL and the failures."""


class Md5Refused(CouldNotFinish):
    """A file's bytes did not match its published md5, twice: it is not loaded (a re-run tries again)."""

    def __init__(self, name: str, expected: str, got: str) -> None:
        super().__init__(f"{name}: refused: its md5 {got} does not match the published {expected}, "
                         "downloaded twice; the other files are loaded, re-run later for this one")
        self.name, self.expected, self.got = name, expected, got

    def __reduce__(self) -> tuple:
        return (Md5Refused, (self.name, self.expected, self.got))


@dataclass(frozen=True, order=True)
class RemoteFile:
    """One listed file: sorted baseline first, then updates, each by number (the order files apply in)."""

    rank: int  # 0 baseline, 1 updatefiles
    number: int
    name: str
    folder: str
    modified: str | None = None  # the index's "Last modified" column

    @property
    def year(self) -> int:
        """The two-digit baseline year of the name (pubmed26n0001 -> 26)."""
        return int(NAME_RE.match(self.name).group(1))


@dataclass(frozen=True)
class Download:
    """A verified download: where it is, its md5 and sha256, size, and whether a first copy had to be fetched again."""

    path: Path
    md5: str
    sha256: str
    size: int
    refetched: bool


class PubmedFtp(ServiceClient):
    """Client of the PubMed FTP tree at ``base_url`` (ending in ``/pubmed/``). Thread-safe: share one.

    parallel: requests at once (downloads are long: the rate limit alone would not bound them).
    rate: requests per second, as for every `ServiceClient`.
    """

    service = "FTP site"
    logger = "litmeta.extractors.ftp"
    exhausted_error = FtpRetryExhausted

    def __init__(self, base_url: str = DEFAULT_FTP_URL, *, parallel: int = 3, rate: float = 10,
                 timeout: tuple[float, float] = (10.0, 60.0), **kw) -> None:
        super().__init__(base_url, rate=rate, timeout=timeout, **kw)
        self.session.headers["User-Agent"] = f"{self.tool} (litmeta PubMed mirror{'; ' + self.email if self.email else ''})"
        self.parallel = max(1, parallel)
        self._slots = threading.BoundedSemaphore(self.parallel)

    @property
    def retries(self) -> int:
        return self.stats.total_retries

    @property
    def requests(self) -> int:
        return self.stats.requests

    def url(self, folder: str, name: str = "") -> str:
        return f"{self.base_url}{folder}/{name}"

    # -- the retry loop -----------------------------------------------------------------------
    def _retrying(self, endpoint: str, what: str, attempt: Callable[[], T]) -> T:
        """``attempt()`` until it returns, retrying `Transient` failures with the shared backoff."""
        reasons: list[str] = []
        for n in range(1, self.max_tries + 1):
            try:
                with self._slots:
                    slot = self.limiter.acquire()
                    try:
                        self.stats._request(endpoint)
                        return attempt()
                    finally:
                        self.limiter.release(slot)
            except Transient as err:
                reasons.append(err.reason)
                if n >= self.max_tries:
                    self.stats._failure(endpoint)
                    raise self.exhausted_error(
                        f"FTP site: {what}: gave up after {self.max_tries} tries; last failure: {err.reason}"
                        + (f" ({err.detail[:200]})" if err.detail else "") + f"; failures: {', '.join(reasons)}",
                        request=what, endpoint=endpoint, reason=err.reason, tries=self.max_tries, reasons=reasons,
                        service=self.service) from None
                delay = self._backoff(n, err)
                self.stats._retry(endpoint, err.reason, delay)
                self.log.warning("FTP retry %d/%d in %.2fs after %s: %s", n, self.max_tries - 1, delay, err.reason,
                                 what)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _get(self, url: str, **kw) -> requests.Response:
        try:
            resp = self.session.get(url, timeout=self.timeout, **kw)
        except requests.Timeout as exc:
            raise Transient("timeout", type(exc).__name__) from None
        except requests.ConnectionError as exc:
            raise Transient("connection", f"{type(exc).__name__}: {exc}") from None
        if resp.status_code == 429 or resp.status_code >= 500 or resp.status_code == 408:
            resp.close()
            raise Transient(f"http_{resp.status_code}", "", retry_after(resp))
        return resp

    def _small(self, url: str) -> bytes:
        """The body of a small answer (an index, a .md5 file); an error or a cut answer is transient."""
        resp = self._get(url)
        try:
            body = resp.content
        except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as exc:
            raise Transient("truncated", type(exc).__name__) from None
        if resp.status_code == 404:
            raise Transient("http_404", "not (yet) listed")
        if resp.status_code != 200:
            raise Transient(f"http_{resp.status_code}", body[:200].decode("utf-8", "replace"))
        return body

    # -- calls ----------------------------------------------------------------------------------
    def listing(self, folder: str) -> list[RemoteFile]:
        """The ``pubmedYYnNNNN.xml.gz`` files the folder's index lists, by number."""
        url = self.url(folder)

        def attempt() -> list[RemoteFile]:
            text = self._small(url).decode("utf-8", "replace")
            if "Index of" not in text:
                raise Transient("not_an_index", text[:200])
            if "</html>" not in text.lower():
                raise Transient("truncated", "index without its end")
            rank = FOLDERS.index(folder)
            found = {m.group(1): m.group(2) for m in _INDEX_RE.finditer(text)}
            return sorted(RemoteFile(rank, int(NAME_RE.match(n).group(2)), n, folder, mod) for n, mod in found.items())

        return self._retrying("index", f"GET {url}", attempt)

    def md5(self, file: RemoteFile) -> str:
        """The published md5 of ``file`` (its ``.md5`` file), lower-case hex."""
        url = self.url(file.folder, file.name + ".md5")

        def attempt() -> str:
            m = _MD5_RE.match(self._small(url).strip())
            if not m or m.group("name").decode() != file.name:
                raise Transient("malformed_md5", f"not 'MD5({file.name})= <hex>'")
            return m.group("hex").decode().lower()

        return self._retrying("md5", f"GET {url}", attempt)

    def download(self, file: RemoteFile, dest_dir: Path, md5: str | None = None) -> Download:
        """Download ``file`` into ``dest_dir`` (``NAME.part`` until verified, then renamed to NAME).

        ``md5``: the published md5 when the caller fetched it already. A copy whose md5 differs is
        fetched again from the start, with the ``.md5`` file; a second mismatch raises `Md5Refused`.
        """
        dest_dir.mkdir(parents=True, exist_ok=True)
        final = dest_dir / file.name
        part = dest_dir / (file.name + ".part")
        expected = md5 or self.md5(file)
        for round_ in (1, 2):
            if round_ == 2:
                expected = self.md5(file)
            self._retrying("file", f"GET {self.url(file.folder, file.name)}", lambda: self._fetch_into(file, part))
            got, sha256 = _digests(part)
            if got == expected:
                os.replace(part, final)
                return Download(final, got, sha256, final.stat().st_size, refetched=round_ == 2)
            log.warning("FTP %s: md5 %s, published %s: fetching it again", file.name, got, expected)
            part.unlink()
        raise Md5Refused(file.name, expected, got)

    def _fetch_into(self, file: RemoteFile, part: Path) -> None:
        """One try: fetch the rest of ``file`` into ``part`` (from its current size, with Range)."""
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        resp = self._get(self.url(file.folder, file.name), headers=headers, stream=True)
        with resp:
            if resp.status_code == 416:  # the part is already whole (or longer): start again
                part.unlink(missing_ok=True)
                raise Transient("http_416", "range beyond the file: fetching it from the start")
            if resp.status_code not in (200, 206):
                raise Transient(f"http_{resp.status_code}", "")
            if resp.headers.get("Content-Type", "").startswith("text/html"):
                raise Transient("html", "an HTML page instead of the file")
            start = 0
            if resp.status_code == 206:
                m = re.match(r"^bytes (\d+)-", resp.headers.get("Content-Range", ""))
                start = int(m.group(1)) if m else -1
                if start != have:
                    part.unlink(missing_ok=True)
                    raise Transient("bad_range", f"asked from {have}, got {resp.headers.get('Content-Range')}")
            try:
                with open(part, "r+b" if start and part.exists() else "wb") as fh:
                    fh.seek(start)
                    fh.truncate()
                    for chunk in resp.iter_content(CHUNK):
                        fh.write(chunk)
            except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as exc:
                raise Transient("truncated", f"{type(exc).__name__}; resuming from what arrived") from None


def _digests(path: Path) -> tuple[str, str]:
    """(md5, sha256) of the file, in one read."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            md5.update(chunk)
            sha.update(chunk)
    return md5.hexdigest(), sha.hexdigest()
