"""The sandbox's LinkOut: elink ``cmd=llinks`` and ``cmd=prlinks`` answered from ``linkout.tsv``.

``linkout.tsv`` (optional; tab-separated, a header line)::

    cmd  id  url  provider  provider_abbr  provider_id  category  attribute  subject_type  link_name

One row per link of a PubMed id; ``cmd`` is ``prlinks`` for the full-text provider link (the page's "Full
text sources"; llinks lists it too) or ``llinks`` for the other LinkOut resources; ``category``,
``attribute`` and ``subject_type`` may hold several values separated by ``|``. The answer is an eLinkResult
with one IdUrlSet per requested id, in request order, ``<Info>No links</Info>`` for an id without rows, as
NCBI answers. Without the file every id has no links.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

COLUMNS = ("cmd", "id", "url", "provider", "provider_abbr", "provider_id", "category", "attribute",
           "subject_type", "link_name")


class LinkoutFileError(ValueError):
    """A malformed linkout.tsv row (the message names the file and line)."""


@dataclass
class Linkout:
    """linkout.tsv, read on first use."""

    path: Path
    _rows: dict[int, list[dict[str, str]]] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def rows(self) -> dict[int, list[dict[str, str]]]:
        with self._lock:
            if self._rows is None:
                self._rows = _read(self.path) if self.path.is_file() else {}
            return self._rows

    def answer(self, cmd: str, ids: list[int]) -> bytes:
        """The eLinkResult of ``cmd`` for ``ids`` (dbfrom pubmed)."""
        rows = self.rows()
        sets = []
        for uid in ids:
            links = [r for r in rows.get(uid, []) if cmd != "prlinks" or r["cmd"] == "prlinks"]
            if not links:
                sets.append(f"<IdUrlSet><Id>{uid}</Id><Info>No links</Info></IdUrlSet>")
                continue
            sets.append(f"<IdUrlSet><Id>{uid}</Id>" + "".join(_obj_url(r) for r in links) + "</IdUrlSet>")
        return (b'<?xml version="1.0" encoding="UTF-8" ?>\n<eLinkResult><LinkSet><DbFrom>pubmed</DbFrom>'
                + f"<IdUrlList>{''.join(sets)}</IdUrlList></LinkSet></eLinkResult>\n".encode())


def _many(tag: str, value: str) -> str:
    return "".join(f"<{tag}>{escape(v.strip())}</{tag}>" for v in value.split("|") if v.strip())


def _obj_url(r: dict[str, str]) -> str:
    provider = (f"<Provider><Name>{escape(r['provider'])}</Name>" + _many("NameAbbr", r["provider_abbr"])
                + _many("Id", r["provider_id"]) + "</Provider>")
    return ("<ObjUrl>" + f"<Url>{escape(r['url'])}</Url>" + _many("Category", r["category"])
            + _many("Attribute", r["attribute"]) + _many("SubjectType", r["subject_type"])
            + _many("LinkName", r["link_name"]) + provider + "</ObjUrl>")


def _read(path: Path) -> dict[int, list[dict[str, str]]]:
    out: dict[int, list[dict[str, str]]] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    start = 1 if lines and lines[0].split("\t")[0].strip().lower() == "cmd" else 0
    for n, line in enumerate(lines[start:], start + 1):
        if not line.strip():
            continue
        row = dict(zip(COLUMNS, (line.split("\t") + [""] * len(COLUMNS))[:len(COLUMNS)], strict=True))
        if row["cmd"] not in ("llinks", "prlinks") or not row["id"].strip().isdigit() or not row["url"] \
                or not row["provider"]:
            raise LinkoutFileError(f"{path}:{n}: bad linkout.tsv row {line[:120]!r} (cmd, id, url, provider needed)")
        out.setdefault(int(row["id"]), []).append(row)
    return out
