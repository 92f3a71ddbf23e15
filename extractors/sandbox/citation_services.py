"""The sandbox's iCite and PMC ID Converter, and the id field terms its esearch answers.

From the snapshot directory (DESIGN.md, "Snapshot directory"):

    icite.jsonl   one iCite ``data`` object per line     -> ``{root}/icite/pubs?pmids=...&format=json``
    idconv.tsv    id_type  id_value  pmid  pmcid  doi     -> ``{root}/idconv/?ids=...&idtype=...&format=json``

Both files are optional: without them iCite knows no PMID (``data`` is empty) and the converter answers
every id with its "not found" record, as the real services do for articles they do not hold.

esearch field terms: ``VALUE[doi]``, ``VALUE[pmid]`` / ``VALUE[uid]``, ``VALUE[pmcid]`` (values optionally
in double quotes) and OR-combinations of them (optionally in parentheses) are answered from the ids of the
PubMed records the snapshot holds (their own ArticleIdList, not their references), as NCBI does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from litmeta.extractors.idconv import normalize_id

_ARTICLE_ID = re.compile(rb'<ArticleId\s+IdType="([^"]+)"\s*>([^<]*)</ArticleId>')
_FIELD_TERM = re.compile(r'^\(*\s*(?:"([^"]*)"|([^\s"()\[\]]+))\s*\[(doi|pmid|uid|pmcid|pmc)\]\s*\)*$', re.I)
_NOT_FOUND = "Identifier not found in PMC"


class SnapshotFileError(ValueError):
    """A malformed icite.jsonl or idconv.tsv line (the message names the file and line)."""


@dataclass
class CitationServices:
    """What the snapshot knows for iCite, the ID converter and esearch field terms."""

    icite: dict[int, dict] = field(default_factory=dict)
    idconv: dict[tuple[str, str], list[dict]] = field(default_factory=dict)
    _ids: dict[tuple[str, str], list[int]] | None = field(default=None, repr=False)

    @classmethod
    def load(cls, root: Path) -> CitationServices:
        out = cls()
        f = root / "icite.jsonl"
        if f.is_file():
            for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    out.icite[int(obj["pmid"])] = obj
                except (ValueError, KeyError, TypeError) as exc:
                    raise SnapshotFileError(f"{f}:{n}: not an iCite data object with a pmid ({exc})") from None
        f = root / "idconv.tsv"
        if f.is_file():
            lines = f.read_text(encoding="utf-8").splitlines()
            start = 1 if lines and lines[0].split("\t")[0].strip().lower() == "id_type" else 0
            for n, line in enumerate(lines[start:], start + 1):
                if not line.strip():
                    continue
                parts = (line.split("\t") + [""] * 5)[:5]
                id_type, value, pmid, pmcid, doi = (p.strip() for p in parts)
                if id_type not in ("doi", "pmcid", "pmid") or not value:
                    raise SnapshotFileError(f"{f}:{n}: bad idconv.tsv row {line!r}")
                out.idconv.setdefault((id_type, normalize_id(id_type, value)), []).append(
                    {"pmid": pmid, "pmcid": pmcid, "doi": doi})
        return out

    # ------------------------------------------------------------------ iCite
    def icite_answer(self, pmids: list[str]) -> bytes:
        data, seen = [], set()
        for p in pmids:
            if p.strip().isdigit() and int(p) in self.icite and int(p) not in seen:
                seen.add(int(p))
                data.append(self.icite[int(p)])
        meta = {"pmids": ",".join(pmids), "limit": len(pmids), "nextOffset": "", "offset": 0}
        return json.dumps({"meta": meta, "links": {}, "data": data}).encode()

    # ------------------------------------------------------------------ ID converter
    def idconv_answer(self, ids: list[str], idtype: str) -> bytes:
        records = []
        for raw in ids:
            id_type = idtype or ("pmcid" if raw.upper().startswith("PMC") else "doi" if "/" in raw else "pmid")
            hits = self.idconv.get((id_type, normalize_id(id_type, raw)))
            if not hits:
                records.append({"requested-id": raw, "status": "error", "errmsg": _NOT_FOUND})
                continue
            for h in hits:
                rec = {"requested-id": raw}
                rec.update({k: v for k, v in h.items() if v})
                records.append(rec)
        return json.dumps({"status": "ok", "responseDate": "2026-01-01 00:00:00", "request": f"ids={','.join(ids)}",
                           "records": records}).encode()

    # ------------------------------------------------------------------ esearch field terms
    def _index(self, pubmed: dict[int, bytes]) -> dict[tuple[str, str], list[int]]:
        if self._ids is None:
            ids: dict[tuple[str, str], list[int]] = {}
            for pmid, raw in pubmed.items():
                own = raw.split(b"<ReferenceList", 1)[0]
                own = own[own.find(b"<PubmedData"):] if b"<PubmedData" in own else b""
                for t, v in _ARTICLE_ID.findall(own):
                    kind = {"doi": "doi", "pmc": "pmcid"}.get(t.decode().lower())
                    if kind and v.strip():
                        ids.setdefault((kind, normalize_id(kind, v.decode("utf-8", "replace"))), []).append(pmid)
            self._ids = ids
        return self._ids

    def field_search(self, term: str, pubmed: dict[int, bytes]) -> list[int] | None:
        """PMIDs for an OR-combination of id field terms; None when ``term`` is not one."""
        parts = re.split(r"\s+OR\s+", term.strip())
        found: list[int] = []
        for part in parts:
            m = _FIELD_TERM.match(part.strip())
            if not m:
                return None
            value, fld = (m.group(1) if m.group(1) is not None else m.group(2)), m.group(3).lower()
            if fld in ("pmid", "uid"):
                if value.strip().isdigit() and int(value) in pubmed:
                    found.append(int(value))
                continue
            kind = "doi" if fld == "doi" else "pmcid"
            found += self._index(pubmed).get((kind, normalize_id(kind, value)), [])
        return list(dict.fromkeys(found))
