"""Load and index a snapshot directory for the E-utilities sandbox.

A snapshot directory (DESIGN.md, "Snapshot directory") holds::

    pubmed/*.xml[.gz]   PubmedArticleSet files (PubmedArticle / PubmedBookArticle records)
    pmc/*.xml[.gz]      pmc-articleset / JATS files (<article> elements)
    links.tsv           dbfrom  id  linkname  to_id  score    (header line; score may be empty)
    searches.tsv        term  pmid  [date]                    (optional; date is YYYY/MM/DD)
    icite.jsonl, idconv.tsv                                   (optional; see :mod:`.citation_services`)
    linkout.tsv                                               (optional: elink llinks/prlinks; see :mod:`.linkout`)
    meta.json           provenance; may list "api_keys" the sandbox accepts

:class:`Snapshot` reads all of it once, at startup: every PubMed record is kept as the raw
bytes of its element (re-serialized with lxml), keyed by PMID, together with its entrez,
publication and modification dates (for esearch date filters and ordering); every PMC
article likewise by numeric PMC id.  Parsing uses a hardened lxml parser (no entity
resolution, no network, no DTD loading).  Everything is read-only afterwards, so request
threads can share one instance without locking.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lxml import etree

from .citation_services import CitationServices, SnapshotFileError

log = logging.getLogger(__name__)

#: parser options used for every snapshot file (and for records re-parsed by esummary)
HARDENED = {"resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False}

MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
_SEASONS = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 12}

PMC_ID_TYPES = ("pmc", "pmcid", "pmcaid", "pmc-uid", "accession")


class SnapshotError(ValueError):
    """The snapshot directory is missing or unusable (the message names it)."""


@dataclass(frozen=True)
class RecordDates:
    """Dates of one PubMed record as ``YYYYMMDD`` integers (``None`` when unknown)."""

    edat: int | None
    pdat: int | None
    mdat: int | None

    def get(self, datetype: str) -> int | None:
        """Date for an esearch ``datetype`` (edat/pdat/mdat), with a sensible fallback."""
        if datetype == "edat":
            return self.edat if self.edat is not None else self.pdat
        if datetype == "mdat":
            return self.mdat if self.mdat is not None else (self.edat or self.pdat)
        return self.pdat if self.pdat is not None else self.edat


@dataclass
class Snapshot:
    """An indexed snapshot directory (see the module docstring)."""

    root: Path
    pubmed: dict[int, bytes] = field(default_factory=dict)
    pubmed_dates: dict[int, RecordDates] = field(default_factory=dict)
    pmc: dict[int, bytes] = field(default_factory=dict)
    #: every linkname (and dbfrom) seen in links.tsv, and the number of rows
    linknames: set[str] = field(default_factory=set)
    link_sources: set[str] = field(default_factory=set)
    link_count: int = 0
    #: "dbfrom\tid\tlinkname" -> raw "to_id\tscore" rows in links.tsv order (parsed lazily)
    _link_rows: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _link_cache: dict[str, list[tuple[int, int | None]]] = field(default_factory=dict, repr=False)
    _links_file: Path | None = field(default=None, repr=False)
    #: normalized term -> PMIDs in searches.tsv order
    searches: dict[str, list[int]] = field(default_factory=dict)
    #: PMID -> YYYYMMDD from the optional searches.tsv ``date`` column
    search_dates: dict[int, int] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    api_keys: frozenset[str] = frozenset()
    skipped_files: list[str] = field(default_factory=list)
    #: iCite, the ID converter and esearch id field terms
    services: CitationServices = field(default_factory=CitationServices)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, root: str | Path) -> Snapshot:
        """Read and index ``root``; raise :class:`SnapshotError` naming it when unusable."""
        path = Path(root)
        if not path.is_dir():
            raise SnapshotError(f"snapshot directory not found: {path}")
        known = [path / n for n in ("pubmed", "pmc", "links.tsv", "searches.tsv", "meta.json")]
        if not any(p.exists() for p in known):
            raise SnapshotError(
                f"not a snapshot directory (no pubmed/, pmc/, links.tsv, searches.tsv or meta.json): {path}"
            )
        snap = cls(root=path)
        snap._load_meta(path / "meta.json")
        for f in _xml_files(path / "pubmed"):
            snap._load_pubmed_file(f)
        for f in _xml_files(path / "pmc"):
            snap._load_pmc_file(f)
        if (path / "links.tsv").is_file():
            snap._load_links(path / "links.tsv")
        if (path / "searches.tsv").is_file():
            snap._load_searches(path / "searches.tsv")
        try:
            snap.services = CitationServices.load(path)
        except SnapshotFileError as exc:
            raise SnapshotError(str(exc)) from None
        return snap

    def _load_meta(self, meta_path: Path) -> None:
        if not meta_path.is_file():
            return
        try:
            self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SnapshotError(f"unreadable meta.json in snapshot {self.root}: {exc}") from exc
        keys = self.meta.get("api_keys") or []
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise SnapshotError(f"meta.json 'api_keys' must be a list of strings in snapshot {self.root}")
        self.api_keys = frozenset(keys)

    def _load_pubmed_file(self, f: Path) -> None:
        def add(elem: etree._Element) -> None:
            pmid = _int_or_none(elem.findtext("MedlineCitation/PMID") or elem.findtext("BookDocument/PMID"))
            if pmid is not None:
                self.pubmed[pmid] = etree.tostring(elem, encoding="utf-8", with_tail=False)
                self.pubmed_dates[pmid] = record_dates(elem)

        self._load_file(f, ("PubmedArticle", "PubmedBookArticle"), add)

    def _load_pmc_file(self, f: Path) -> None:
        def add(elem: etree._Element) -> None:
            strip_default_namespace(elem)
            pmcid = pmc_id_of(elem)
            if pmcid is not None:
                self.pmc[pmcid] = etree.tostring(elem, encoding="utf-8", with_tail=False)

        self._load_file(f, ("{*}article",), add)

    def _load_file(self, f: Path, tags: tuple[str, ...], add: Callable[[etree._Element], None]) -> None:
        """Index one file; on a syntax error retry in lxml's recover mode, else skip it (logged)."""
        try:
            for elem in _iter_elements(f, tags):
                add(elem)
            return
        except (etree.XMLSyntaxError, OSError, EOFError) as exc:
            log.warning("sandbox: %s is not well-formed (%s); retrying in recover mode", f, exc)
        try:
            for elem in _iter_elements(f, tags, recover=True):
                add(elem)
        except (etree.XMLSyntaxError, OSError, EOFError) as exc:
            log.warning("sandbox: skipping unparseable file %s: %s", f, exc)
            self.skipped_files.append(str(f))

    def _load_links(self, f: Path) -> None:
        """Group links.tsv rows by (dbfrom, id, linkname); rows are converted on first use.

        Grouping raw lines keeps start-up fast for large graphs (800,000 rows in well
        under a second); a malformed row is reported when its source id is first asked for.
        """
        self._links_file = f
        lines = f.read_text(encoding="utf-8").splitlines()
        if lines and lines[0].split("\t")[0].strip().lower() == "dbfrom":
            header = [h.strip().lower() for h in lines[0].split("\t")]
            if header[:4] != ["dbfrom", "id", "linkname", "to_id"] or header[4:5] not in ([], ["score"]):
                raise SnapshotError(f"{f}: header must be 'dbfrom id linkname to_id score' (tab-separated)")
            lines = lines[1:]
        rows = self._link_rows
        prev_key = None
        bucket: list[str] = []
        for line in lines:
            if not line.strip():
                continue
            cut = line.find("\t", line.find("\t", line.find("\t") + 1) + 1)
            if cut < 0:
                raise SnapshotError(f"{f}: bad links.tsv row {line!r} (want 4 or 5 tab-separated fields)")
            key = line[:cut]
            if key != prev_key:
                bucket = rows.setdefault(key, [])
                prev_key = key
            bucket.append(line[cut + 1 :])
        self.link_count = sum(len(v) for v in rows.values())
        for key in list(rows):
            dbfrom, uid, linkname = key.split("\t")
            self.linknames.add(linkname)
            self.link_sources.add(dbfrom)
            norm = _norm_uid(uid)
            if norm != uid:  # e.g. "PMC123" or " 0123": index under the plain number
                rows.setdefault(f"{dbfrom}\t{norm}\t{linkname}", []).extend(rows.pop(key))

    def _load_searches(self, f: Path) -> None:
        lines = f.read_text(encoding="utf-8").splitlines()
        start = 1 if lines and lines[0].split("\t")[0].strip().lower() == "term" else 0
        seen: dict[str, set[int]] = {}
        for lineno, line in enumerate(lines[start:], start + 1):
            if not line.strip():
                continue
            parts = line.split("\t")
            try:
                term, pmid = normalize_term(parts[0]), int(parts[1])
            except (IndexError, ValueError) as exc:
                raise SnapshotError(f"{f}:{lineno}: bad searches.tsv row {line!r}") from exc
            if pmid not in seen.setdefault(term, set()):
                seen[term].add(pmid)
                self.searches.setdefault(term, []).append(pmid)
            if len(parts) > 2 and parts[2].strip():
                d = parse_query_date(parts[2].strip(), end=False)
                if d is None:
                    raise SnapshotError(f"{f}:{lineno}: bad date {parts[2]!r} (want YYYY/MM/DD)")
                self.search_dates[pmid] = d

    # ------------------------------------------------------------------ queries
    def search(self, term: str) -> list[int] | None:
        """PMIDs for a term (searches.tsv, exact after whitespace normalizing, then case-folded).

        ``all[sb]`` (when searches.tsv does not define it) means every PubMed record of the
        snapshot.  Returns ``None`` for an unknown term.
        """
        norm = normalize_term(term)
        if norm in self.searches:
            return self.searches[norm]
        folded = norm.casefold()
        for key, pmids in self.searches.items():
            if key.casefold() == folded:
                return pmids
        if folded == "all[sb]":
            return list(self.pubmed)
        return self.services.field_search(norm, self.pubmed)

    def date_of(self, pmid: int, datetype: str) -> int | None:
        """The record's date for ``datetype``; the searches.tsv date for absent records."""
        dates = self.pubmed_dates.get(pmid)
        if dates is not None:
            value = dates.get(datetype)
            if value is not None:
                return value
        return self.search_dates.get(pmid)

    def link_targets(self, dbfrom: str, uid: int, linkname: str) -> list[tuple[int, int | None]]:
        """Links of ``uid`` under ``linkname`` in links.tsv order (empty when none)."""
        key = f"{dbfrom}\t{uid}\t{linkname}"
        cached = self._link_cache.get(key)
        if cached is not None:
            return cached
        raw = self._link_rows.get(key)
        if raw is None:
            return []
        out: list[tuple[int, int | None]] = []
        for row in raw:
            to_id, _, score = row.partition("\t")
            score = score.strip()
            try:
                out.append((int(_norm_uid(to_id)), int(float(score)) if score else None))
            except ValueError:
                raise SnapshotError(f"{self._links_file}: bad links.tsv row for {key!r}: {row!r}") from None
        self._link_cache[key] = out  # benign race: two threads may build the same list
        return out


# ---------------------------------------------------------------------- helpers
def normalize_term(term: str) -> str:
    """Collapse runs of whitespace (what esearch terms are matched on)."""
    return " ".join(term.split())


def _norm_uid(text: str) -> str:
    """``" PMC0123 "`` -> ``"123"``; anything that is not a (PMC) number is returned stripped."""
    t = text.strip()
    if t[:3].upper() == "PMC":
        t = t[3:]
    return str(int(t)) if t.isdigit() else t


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isdigit() else None


def _xml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.name.endswith((".xml", ".xml.gz", ".nxml"))
    )


def _open(f: Path) -> IO[bytes]:
    return gzip.open(f, "rb") if f.name.endswith(".gz") else open(f, "rb")


def _iter_elements(f: Path, tags: tuple[str, ...], recover: bool = False) -> Iterator[etree._Element]:
    """Yield the complete ``tags`` elements of an XML file (hardened iterparse, memory-bounded)."""
    with _open(f) as fh:
        context = etree.iterparse(fh, events=("end",), tag=tags, recover=recover, **HARDENED)
        for _, elem in context:
            parent = elem.getparent()
            if parent is not None and etree.QName(parent).localname == etree.QName(elem).localname:
                continue  # nested (e.g. an <article> inside an <article>): the outer one is the record
            yield elem
            elem.clear(keep_tail=True)
            if parent is not None:
                while elem.getprevious() is not None:
                    del parent[0]


def strip_default_namespace(elem: etree._Element) -> None:
    """Drop the element's own namespace (e.g. JATS in OAI-PMH) from it and its descendants.

    PMC efetch serves un-namespaced JATS; OAI-PMH wraps the same article in a JATS
    namespace.  Other namespaces (xlink, mml) are kept.
    """
    ns = etree.QName(elem).namespace
    if not ns:
        return
    prefix = "{" + ns + "}"
    for el in elem.iter():
        if isinstance(el.tag, str) and el.tag.startswith(prefix):
            el.tag = el.tag[len(prefix) :]
    etree.cleanup_namespaces(elem)


def pmc_id_of(article: etree._Element) -> int | None:
    """Numeric PMC id of a JATS ``<article>`` (article-meta/article-id pmc, pmcid, pmcaid)."""
    for aid in article.iterfind("front/article-meta/article-id"):
        if aid.get("pub-id-type") in PMC_ID_TYPES:
            text = (aid.text or "").strip().upper().removeprefix("PMC")
            if text.isdigit():
                return int(text)
    return None


def _month(text: str | None) -> int | None:
    if not text:
        return None
    text = text.strip()
    if text.isdigit():
        m = int(text)
        return m if 1 <= m <= 12 else None
    return MONTHS.get(text[:3].lower()) or _SEASONS.get(text.lower())


def _ymd(year: str | None, month: str | None = None, day: str | None = None) -> int | None:
    if not year or not year.strip().isdigit():
        return None
    m = _month(month) or 1
    d = int(day) if day and day.strip().isdigit() and 1 <= int(day) <= 31 else 1
    return int(year) * 10000 + m * 100 + d


def _date_elem(elem: etree._Element | None) -> int | None:
    if elem is None:
        return None
    return _ymd(elem.findtext("Year"), elem.findtext("Month"), elem.findtext("Day"))


def _pub_date(record: etree._Element) -> int | None:
    for path in ("MedlineCitation/Article/Journal/JournalIssue/PubDate", "BookDocument/Book/PubDate"):
        pd = record.find(path)
        if pd is None:
            continue
        value = _date_elem(pd)
        if value is not None:
            return value
        medline = pd.findtext("MedlineDate")
        if medline:
            m = re.match(r"\s*(\d{4})(?:\s+([A-Za-z]+))?", medline)
            if m:
                return _ymd(m.group(1), m.group(2))
    for path in ("MedlineCitation/Article/ArticleDate", "BookDocument/ContributionDate"):
        value = _date_elem(record.find(path))
        if value is not None:
            return value
    return None


def record_dates(record: etree._Element) -> RecordDates:
    """Entrez (edat), publication (pdat) and modification (mdat) dates of a PubMed record."""
    edat = None
    for ppd in record.iterfind("PubmedData/History/PubMedPubDate"):
        if ppd.get("PubStatus") == "entrez":
            edat = _date_elem(ppd)
            break
    if edat is None:
        for ppd in record.iterfind("PubmedBookData/History/PubMedPubDate"):
            if ppd.get("PubStatus") == "entrez":
                edat = _date_elem(ppd)
                break
    mdat = _date_elem(record.find("MedlineCitation/DateRevised")) or _date_elem(
        record.find("BookDocument/DateRevised")
    )
    return RecordDates(edat=edat, pdat=_pub_date(record), mdat=mdat)


_QUERY_DATE = re.compile(r"^\s*(\d{4})(?:[/-](\d{1,2})(?:[/-](\d{1,2}))?)?\s*$")


def parse_query_date(text: str, *, end: bool) -> int | None:
    """Parse an esearch ``mindate``/``maxdate`` (YYYY, YYYY/MM or YYYY/MM/DD) to ``YYYYMMDD``.

    ``end=True`` gives the last day the value covers (``2020`` -> 20201231), so ranges are
    inclusive at both ends.  Returns ``None`` when the text is not a date.
    """
    m = _QUERY_DATE.match(text or "")
    if not m:
        return None
    year = int(m.group(1))
    month = int(m.group(2)) if m.group(2) else (12 if end else 1)
    day = int(m.group(3)) if m.group(3) else (31 if end else 1)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return year * 10000 + month * 100 + day
