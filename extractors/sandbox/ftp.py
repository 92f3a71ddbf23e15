"""NCBI's PubMed FTP tree for the sandbox: ``{root}/pubmed/baseline/`` and ``{root}/pubmed/updatefiles/``.

Served from a snapshot's ``ftp/baseline/`` and ``ftp/updatefiles/`` folders the way NCBI serves them over
HTTPS: an Apache-style HTML index listing every ``pubmedYYnNNNN.xml.gz`` with its ``.md5`` file (date and
size columns), the files themselves (``Range: bytes=N-`` answered with 206, as NCBI's server does), and
the ``.md5`` files reading ``MD5(pubmedYYnNNNN.xml.gz)= <hex>`` (the snapshot's own ``.md5`` file when it
has one, so a snapshot can carry a wrong one; else computed).

Faults (the server's ``--faults`` draw, one per request) as a download sees them: ``429``/``5xx`` an
error page; ``error200`` an HTML page with status 200 instead of the file; ``reset`` the connection reset
part-way through a file (before any answer for an index or ``.md5``); ``truncate`` the connection closed
part-way through a file (Content-Length promised the whole); ``slow`` a delay first; ``md5`` a wrong
checksum in a ``.md5`` answer, a flipped byte in a file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from . import responses as R
from .faults import Fault

FOLDERS = ("baseline", "updatefiles")
FILE_RE = re.compile(r"^pubmed\d{2}n\d{4}\.xml\.gz$")
HTML = "text/html; charset=UTF-8"


@dataclass
class FtpAnswer:
    """What the HTTP layer sends: status, type, headers, body; ``abort_after`` bytes of the body
    then the connection dropped (``reset``: with a TCP reset, else closed)."""

    status: int
    content_type: str
    body: bytes
    headers: list[tuple[str, str]]
    abort_after: int | None = None
    reset: bool = False


def _human(size: int) -> str:
    """Sizes as NCBI's index prints them (``19M``, ``60``)."""
    for unit, factor in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.0f}{unit}" if size >= 10 * factor else f"{size / factor:.1f}{unit}"
    return str(size)


class FtpTree:
    """The files of a snapshot's ``ftp/`` folder, read from disk per request."""

    def __init__(self, root: Path) -> None:
        self.root = root / "ftp"

    def has(self, folder: str) -> bool:
        return folder in FOLDERS and (self.root / folder).is_dir()

    def files(self, folder: str) -> list[Path]:
        if not self.has(folder):
            return []
        return sorted(p for p in (self.root / folder).iterdir() if p.is_file() and FILE_RE.match(p.name))

    def md5_line(self, path: Path) -> bytes:
        own = path.with_name(path.name + ".md5")
        if own.is_file():
            return own.read_bytes()
        return f"MD5({path.name})= {hashlib.md5(path.read_bytes()).hexdigest()}\n".encode()

    def index(self, folder: str) -> bytes:
        rows = []
        for p in self.files(folder):
            when = dt.datetime.fromtimestamp(p.stat().st_mtime, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
            for name, size in ((p.name, p.stat().st_size), (p.name + ".md5", len(self.md5_line(p)))):
                rows.append(f'<a href="{name}">{name}</a>{" " * max(1, 34 - len(name))}{when}  {_human(size):>5}  ')
        title = f"Index of /pubmed/{folder}"
        return (f"<html>\n<head><title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n"
                f"<pre>Name                              Last modified      Size  <hr>"
                f'<a href="/pubmed/">Parent Directory</a>                                     -   \n'
                + "\n".join(rows) + "\n<hr></pre>\n</body>\n</html>\n").encode()

    def answer(self, rel: str, range_header: str | None, fault: Fault | None) -> FtpAnswer:
        """Answer ``rel`` (the path after ``/pubmed/``), with the drawn ``fault`` applied."""
        folder, _, name = rel.strip("/").partition("/")
        kind = fault.kind if fault else None
        if kind in ("429", "500", "502", "503"):
            status = int(kind)
            return FtpAnswer(status, HTML, R.html_error_page(status), [])
        if kind == "error200":
            return FtpAnswer(200, HTML, R.html_error_page(503).replace(b"503", b"Service busy"), [])
        if not self.has(folder):
            return FtpAnswer(404, HTML, R.html_error_page(404), [])
        if not name:
            if kind == "reset":
                return FtpAnswer(0, HTML, b"", [], abort_after=0, reset=True)
            return FtpAnswer(200, HTML, self.index(folder), [])
        is_md5 = name.endswith(".md5")
        path = self.root / folder / (name[:-4] if is_md5 else name)
        if not FILE_RE.match(path.name) or not path.is_file():
            return FtpAnswer(404, HTML, R.html_error_page(404), [])
        if is_md5:
            if kind == "reset":
                return FtpAnswer(0, HTML, b"", [], abort_after=0, reset=True)
            body = self.md5_line(path)
            if kind == "md5":
                body = re.sub(rb"= *[0-9a-f]{32}", b"= " + hashlib.md5(body).hexdigest().encode(), body)
            return FtpAnswer(200, "text/plain", body, [])
        data = path.read_bytes()
        start = 0
        m = re.match(r"^bytes=(\d+)-$", (range_header or "").strip())
        if m:
            start = int(m.group(1))
            if start >= len(data):
                return FtpAnswer(416, HTML, R.html_error_page(416), [("Content-Range", f"bytes */{len(data)}")])
        body = data[start:]
        headers = [("Accept-Ranges", "bytes")]
        status = 200
        if m:
            status = 206
            headers.append(("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}"))
        if kind == "md5" and body:
            i = len(body) // 2
            body = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1:]
        ans = FtpAnswer(status, "application/x-gzip", body, headers)
        if kind in ("reset", "truncate") and len(body) > 1:
            ans.abort_after = min(len(body) - 1, max(1, int(len(body) * fault.cut)))
            ans.reset = kind == "reset"
        return ans
