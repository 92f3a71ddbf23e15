"""`--record-snapshot DIR`: write what a live run fetched as a snapshot directory the sandbox
(`litmeta.extractors.sandbox`) can serve back.

Layout (DESIGN.md, "Snapshot directory"):

    pubmed/NNNNNN.xml   efetch db=pubmed bodies, byte for byte as fetched (one file per response)
    pmc/NNNNNN.xml      efetch db=pmc bodies, as fetched
    links.tsv           dbfrom  id  linkname  to_id  score   (rows from elink answers; score empty
                        when the answer had none; one row per (dbfrom, id, linkname, to_id))
    searches.tsv        term  pmid                          (the full result of each esearch,
                        under the caller's term; no date column: esearch does not return dates)
    meta.json           source base URL (never a key), when, what it contains

The api_key never reaches this module: it receives bodies and parsed rows only, and the source
URL is stripped of any query string. meta.json is rewritten after every write, so a run that
dies half-way still leaves a snapshot the sandbox can serve. Thread-safe.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = ["SnapshotRecorder"]

LINKS_HEADER = "dbfrom\tid\tlinkname\tto_id\tscore\n"
SEARCHES_HEADER = "term\tpmid\n"


def _clean_url(url: str) -> str:
    p = urlsplit(url)
    host = p.hostname or ""
    if p.port:
        host = f"{host}:{p.port}"
    return urlunsplit((p.scheme, host, p.path, "", ""))


class SnapshotRecorder:
    def __init__(self, directory: Path | str, source_url: str) -> None:
        self.dir = Path(directory)
        self.source_url = _clean_url(source_url)
        self._lock = threading.Lock()
        (self.dir / "pubmed").mkdir(parents=True, exist_ok=True)
        (self.dir / "pmc").mkdir(parents=True, exist_ok=True)
        self._links_path = self.dir / "links.tsv"
        self._searches_path = self.dir / "searches.tsv"
        self._seen_links: set[tuple[str, int, str, int]] = set()
        self._seen_searches: set[tuple[str, int]] = set()
        self._counts = {"pubmed_files": 0, "pubmed_records": 0, "pmc_files": 0, "pmc_records": 0}
        self._links = 0
        self._linknames: set[str] = set()
        self._search_terms: dict[str, int] = {}
        self._started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        # Continue an existing snapshot rather than clobbering it.
        if self._links_path.exists():
            for line in self._links_path.read_text(encoding="utf-8").splitlines()[1:]:
                parts = line.split("\t")
                if len(parts) >= 4 and parts[1].isdigit() and parts[3].isdigit():
                    self._seen_links.add((parts[0], int(parts[1]), parts[2], int(parts[3])))
                    self._linknames.add(parts[2])
            self._links = len(self._seen_links)
        else:
            self._links_path.write_text(LINKS_HEADER, encoding="utf-8")
        if self._searches_path.exists():
            for line in self._searches_path.read_text(encoding="utf-8").splitlines()[1:]:
                parts = line.split("\t")
                if len(parts) >= 2 and parts[1].isdigit():
                    self._seen_searches.add((parts[0], int(parts[1])))
        else:
            self._searches_path.write_text(SEARCHES_HEADER, encoding="utf-8")
        self._next = {
            sub: 1 + max((int(p.stem) for p in (self.dir / sub).glob("*.xml") if p.stem.isdigit()), default=0)
            for sub in ("pubmed", "pmc")
        }
        self._write_meta()

    # ------------------------------------------------------------------------------ writers

    def _write_body(self, sub: str, body: bytes, n_records: int) -> Path:
        with self._lock:
            n = self._next[sub]
            self._next[sub] = n + 1
            path = self.dir / sub / f"{n:06d}.xml"
            path.write_bytes(body)
            self._counts[f"{sub}_files"] += 1
            self._counts[f"{sub}_records"] += n_records
            self._write_meta()
        return path

    def record_pubmed(self, body: bytes, n_records: int) -> Path:
        return self._write_body("pubmed", body, n_records)

    def record_pmc(self, body: bytes, n_records: int) -> Path:
        return self._write_body("pmc", body, n_records)

    def record_links(self, dbfrom: str, rows: list[tuple[int, str, int, int | None]]) -> int:
        """Append (id, linkname, to_id, score) rows; returns how many were new."""
        lines = []
        with self._lock:
            for src, linkname, to_id, score in rows:
                key = (dbfrom, int(src), linkname, int(to_id))
                if key in self._seen_links:
                    continue
                self._seen_links.add(key)
                self._linknames.add(linkname)
                lines.append(
                    f"{dbfrom}\t{int(src)}\t{linkname}\t{int(to_id)}\t{'' if score is None else int(score)}\n"
                )
            if lines:
                with self._links_path.open("a", encoding="utf-8") as fh:
                    fh.writelines(lines)
                self._links += len(lines)
                self._write_meta()
        return len(lines)

    def record_search(self, term: str, pmids: list[int]) -> int:
        term = " ".join(term.split())  # tabs/newlines would break the TSV
        lines = []
        with self._lock:
            for p in pmids:
                key = (term, int(p))
                if key in self._seen_searches:
                    continue
                self._seen_searches.add(key)
                lines.append(f"{term}\t{int(p)}\n")
            if lines:
                with self._searches_path.open("a", encoding="utf-8") as fh:
                    fh.writelines(lines)
            self._search_terms[term] = self._search_terms.get(term, 0) + len(lines)
            self._write_meta()
        return len(lines)

    # --------------------------------------------------------------------------------- meta

    def _write_meta(self) -> None:
        meta = {
            "source": self.source_url,
            "recorded_by": "litmeta EntrezClient(record_snapshot=...)",
            "recorded_started": self._started,
            "recorded_updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "contains": {
                **self._counts,
                "links": self._links,
                "linknames": sorted(self._linknames),
                "searches": dict(sorted(self._search_terms.items())),
            },
            "reconstructed": [],
            "notes": [
                "pubmed/ and pmc/ hold efetch bodies exactly as fetched, one file per HTTP response; "
                "a record fetched twice in the run appears in two files.",
                "links.tsv rows come from elink answers; ids whose answer had no links have no rows.",
                "searches.tsv has no date column: esearch does not return dates, so a recorded search "
                "cannot be replayed with mindate/maxdate limits.",
            ],
        }
        tmp = self.dir / "meta.json.tmp"
        tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.dir / "meta.json")
