"""Streaming parser for PMC JATS XML: ``pmc-articleset`` (efetch db=pmc), single ``.nxml`` articles,
and JATS wrapped in other envelopes (e.g. an OAI-PMH GetRecord response).

Tables produced per batch (`ParsedBatch(kind="pmc")`):

- ``pmc_articles``: one row per article, keyed by PMCID.
- ``reference_entries`` (origin ``'pmc'``): one row per ``ref`` of the article's ref-lists (nested
  ref-lists flattened, sub-articles' ref-lists included, document order, 1-based), keyed by the
  article's PMID. An article without a
  PMID still gets its ``pmc_articles`` row, but its references are skipped (logged, not rejected).
- ``citation_edges`` (origin ``'pmc_reflist'``): citing PMID -> cited PMID, deduplicated per article.

Choices worth knowing:

- Namespaces: ``article`` is matched in any namespace (``{*}article``); the article's own namespace is
  then used for every JATS element inside it (namespaced JATS 1.2/1.3 files put everything in one
  default namespace). Articles do not nest in JATS; an article that contains another ``article``
  element is rejected (the streaming reader frees the inner one, so the outer would be incomplete).
- PMCID: ``article-id`` of type ``pmcid``, else ``pmc``, ``pmc-uid``, ``pmcaid``, then an ``accession``
  that looks like a PMCID; normalised to ``'PMC' + digits``.
- pub_year: the first ``article-meta/pub-date`` in document order that is a publication date (PMC
  bookkeeping dates such as ``pmc-release``, ``nihms-submitted`` and correction/retraction dates are
  skipped unless nothing else is given) with a 4-digit year (``year``, else ``@iso-8601-date``).
- license: ``license/@xlink:href``, else ``ali:license_ref`` text, else the licence text. A bare
  ``copyright-statement`` (old PLoS files) is not a licence and leaves it NULL.
- citation: text of the ref's first citation element (element-citation, mixed-citation, nlm-citation,
  citation; inside citation-alternatives too), see `joined_text`; pub-ids are read from all of them.
- Within one batch a PMCID (or, for references, a citing PMID) seen twice keeps its last occurrence,
  so a batch never holds two rows with the same key; across batches the warehouse replaces by key.
- content_sha256: SHA-256 of ``etree.tostring(article, with_tail=False)`` (comments and processing
  instructions are dropped by the hardened parser); the same article gives the same hash in a
  pmc-articleset and as a single .nxml.
- ``n_records`` of a batch counts every article read into it, rejected ones included.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from lxml import etree

from litmeta.extractors.xmlsource import InputError, Source, Stream, describe, iter_elements, text_of
from litmeta.schemas.batch import ParsedBatch, Reject, RowSink
from litmeta.schemas.rows import inline_rows
from litmeta.schemas.tables import TABLES

__all__ = ["TABLE_NAMES", "iter_batches", "joined_text", "normalize_doi", "normalize_pmcid", "normalize_pmid"]

log = logging.getLogger(__name__)

TABLE_NAMES = ("pmc_articles", "reference_entries", "citation_edges")
REF_ORIGIN = "pmc"
EDGE_ORIGIN = "pmc_reflist"

# Rows are built by column name, in functions marked `inline_rows`: each call is checked at import (a
# column that schemas/ declares and a call leaves out fails it, named) and compiled to the plain tuple.
_ARTICLE_ROW = TABLES["pmc_articles"].row
_REFERENCE_ROW = TABLES["reference_entries"].row
_EDGE_ROW = TABLES["citation_edges"].row

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
CITATION_NAMES = ("element-citation", "mixed-citation", "nlm-citation", "citation")
INLINE_NAMES = frozenset(
    {
        "italic",
        "bold",
        "sup",
        "sub",
        "sc",
        "underline",
        "overline",
        "monospace",
        "roman",
        "sans-serif",
        "strike",
        "named-content",
        "styled-content",
        "inline-formula",
        "inline-graphic",
    }
)
MATHML_NS = "http://www.w3.org/1998/Math/MathML"
# article-id types that carry the PMC identifier, most specific first.
PMCID_TYPES = ("pmcid", "pmc", "pmc-uid", "pmcaid")
PMID_TYPES = ("pmid", "pubmed")
# pub-date types (pub-type or date-type) that are not the article's publication.
NON_PUBLICATION_DATES = frozenset(
    {
        "pmc-release",
        "nihms-submitted",
        "manuscript",
        "ecorrected",
        "pcorrected",
        "corrected",
        "eretracted",
        "pretracted",
        "retracted",
        "rev-recd",
        "accepted",
        "received",
    }
)

_PMCID_RE = re.compile(r"^(?:PMC)?\s*(\d{1,18})$", re.IGNORECASE)
_PMID_RE = re.compile(r"^(?:PMID:?\s*)?(\d{1,18})$", re.IGNORECASE)
_DOI_PREFIX_RE = re.compile(r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/)", re.IGNORECASE)
_YEAR_RE = re.compile(r"\d{4}")


class _Malformed(Exception):
    """An article that cannot become a pmc_articles row."""

    def __init__(self, reason: str, key: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.key = reason, key


# ---------------------------------------------------------------------------------------------
# identifier normalisation


def normalize_pmcid(value: str | None) -> str | None:
    """'PMC123', 'pmc123', '123' -> 'PMC123'; anything else -> None."""
    if value is None:
        return None
    m = _PMCID_RE.match(value.strip())
    if not m or int(m.group(1)) == 0:
        return None
    return "PMC" + m.group(1)


def normalize_pmid(value: str | None) -> int | None:
    """'12345', 'PMID: 12345' -> 12345; anything else (or 0) -> None."""
    if value is None:
        return None
    m = _PMID_RE.match(value.strip())
    if not m:
        return None
    pmid = int(m.group(1))
    return pmid if pmid > 0 else None


def normalize_doi(value: str | None) -> str | None:
    """Strip whitespace and a 'doi:' or doi.org URL prefix; empty -> None."""
    if value is None:
        return None
    doi = _DOI_PREFIX_RE.sub("", "".join(value.split()))
    return doi or None


def _raw(elem: etree._Element) -> str | None:
    text = "".join(elem.itertext()).strip()
    return text or None


# ---------------------------------------------------------------------------------------------
# per-article extraction


@lru_cache(maxsize=16)
def _tags(ns: str) -> dict[str, str]:
    """Qualified tag names for a JATS namespace ('' when un-namespaced)."""
    pre = f"{{{ns}}}" if ns else ""
    names = (
        "article",
        "front",
        "article-meta",
        "journal-meta",
        "journal-title",
        "article-id",
        "title-group",
        "article-title",
        "pub-date",
        "year",
        "permissions",
        "license",
        "ref-list",
        "ref",
        "pub-id",
        "label",
        *CITATION_NAMES,
    )
    return {n: pre + n for n in names}


@dataclass
class _Article:
    pmcid: str
    pmid: int | None
    row: tuple
    refs: list[tuple] = field(default_factory=list)
    edges: list[tuple] = field(default_factory=list)
    n_refs: int = 0


def _article_ids(meta: etree._Element | None, t: dict[str, str]) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {}
    if meta is None:
        return ids
    for aid in meta.iterchildren(t["article-id"]):
        kind = (aid.get("pub-id-type") or "").strip().lower()
        value = _raw(aid)
        if kind and value:
            ids.setdefault(kind, []).append(value)
    return ids


def _pmcid(ids: dict[str, list[str]], key: str | None) -> str:
    seen: list[str] = []
    for kind in PMCID_TYPES:
        for value in ids.get(kind, ()):
            pmcid = normalize_pmcid(value)
            if pmcid:
                return pmcid
            seen.append(f"{kind}={value!r}")
    for value in ids.get("accession", ()):
        if value.strip().upper().startswith("PMC"):
            pmcid = normalize_pmcid(value)
            if pmcid:
                return pmcid
            seen.append(f"accession={value!r}")
    if seen:
        raise _Malformed(f"unparseable PMC id ({', '.join(seen[:3])})", key)
    raise _Malformed("no PMC id (article-id pub-id-type pmc/pmcid) in article-meta", key)


def _pmid(ids: dict[str, list[str]]) -> tuple[int | None, str | None]:
    """(pmid, bad value): the first parseable PMID, or the first unparseable value when none parses."""
    bad = None
    for kind in PMID_TYPES:
        for value in ids.get(kind, ()):
            pmid = normalize_pmid(value)
            if pmid is not None:
                return pmid, None
            bad = bad or value
    return None, bad


def _year(date: etree._Element, t: dict[str, str]) -> int | None:
    y = date.find(t["year"])
    for text in ((y.text if y is not None else None), date.get("iso-8601-date")):
        if text:
            m = _YEAR_RE.search(text)
            if m:
                return int(m.group(0))
    return None


def _pub_year(meta: etree._Element | None, t: dict[str, str]) -> int | None:
    if meta is None:
        return None
    fallback = None
    for date in meta.iterchildren(t["pub-date"]):
        kind = (date.get("pub-type") or date.get("date-type") or "").strip().lower()
        year = _year(date, t)
        if year is None:
            continue
        if kind not in NON_PUBLICATION_DATES:
            return year
        if fallback is None:
            fallback = year
    return fallback


def _license(meta: etree._Element | None, t: dict[str, str]) -> str | None:
    if meta is None:
        return None
    perms = meta.find(t["permissions"])
    if perms is None:
        return None
    licenses = list(perms.iterchildren(t["license"]))
    for lic in licenses:
        href = (lic.get(XLINK_HREF) or "").strip()
        if href:
            return href
    for el in perms.iter(etree.Element):
        if etree.QName(el).localname == "license_ref":
            text = _raw(el)
            if text:
                return text
    for lic in licenses:
        text = joined_text(lic)
        if text:
            return text
    return None


def _iter_refs(article: etree._Element, t: dict[str, str]) -> Iterator[etree._Element]:
    """Every ``ref`` inside the article's ref-lists, document order, nested ref-lists flattened once."""
    ref_list = t["ref-list"]
    for rl in article.iter(ref_list):
        if next(rl.iterancestors(ref_list), None) is not None:
            continue  # nested: its refs are yielded by the outermost ref-list
        yield from rl.iter(t["ref"])


_NO_SPACE_AFTER = frozenset(" \t\n:([{/-\u2010\u2013\u2014")
_NO_SPACE_BEFORE = frozenset(" \t\n,.;:)]}/-\u2010\u2013\u2014?!")


_SKIP, _INLINE, _BLOCK = 0, 1, 2
_TAG_KIND: dict[object, int] = {}


def _tag_kind(tag: object) -> int:
    """How `joined_text` treats an element: skipped (entity, comment, PI), inline, or block."""
    kind = _TAG_KIND.get(tag)
    if kind is None:
        if not isinstance(tag, str):
            kind = _SKIP
        else:
            ns, _, local = tag[1:].partition("}") if tag[:1] == "{" else ("", "", tag)
            kind = _INLINE if local in INLINE_NAMES or ns == MATHML_NS else _BLOCK
        if len(_TAG_KIND) < 4096:
            _TAG_KIND[tag] = kind
    return kind


def _walk(el: etree._Element, parts: list) -> None:
    if el.text:
        parts.append(el.text)
    for child in el:
        kind = _TAG_KIND.get(child.tag)
        if kind is None:
            kind = _tag_kind(child.tag)
        if kind == _BLOCK:
            parts.append(None)
            _walk(child, parts)
            parts.append(None)
        elif kind == _INLINE:
            _walk(child, parts)
        if child.tail:
            parts.append(child.tail)


def joined_text(elem: etree._Element | None) -> str | None:
    """Text of a citation or licence, whitespace normalised, with word boundaries kept.

    Many PMC citations carry no separators between their parts (``<surname>Avery</surname>
    <given-names>SV</given-names>`` written without a space, ``<source>...</source><year>``): a
    space is put at the boundary of each non-inline element unless punctuation or whitespace is
    already there. Inline markup (italic, sup, sub, MathML, ...) is flattened without one, so
    ``CO<sub>2</sub>`` stays ``CO2``. Unexpanded entity references contribute no text.
    """
    if elem is None:
        return None
    parts: list[str | None] = []
    _walk(elem, parts)
    out: list[str] = []
    pending = False
    for part in parts:
        if part is None:  # a block boundary
            pending = True
            continue
        if pending and out and out[-1][-1] not in _NO_SPACE_AFTER and part[0] not in _NO_SPACE_BEFORE:
            out.append(" ")
        pending = False
        out.append(part)
    text = " ".join("".join(out).split())
    return text or None


def _reference(
    ref: etree._Element, t: dict[str, str]
) -> tuple[str | None, int | None, str | None, str | None]:
    cit_tags = tuple(t[n] for n in CITATION_NAMES)
    first = next(ref.iter(*cit_tags), None)
    if first is not None:
        citation = joined_text(first)
    else:  # a ref without a citation element: its text, label left out
        parts = [joined_text(c) for c in ref if c.tag != t["label"] and isinstance(c.tag, str)]
        citation = " ".join(p for p in parts if p) or None
    c_pmid = c_doi = c_pmcid = None
    for pid in ref.iter(t["pub-id"]):
        kind = (pid.get("pub-id-type") or "").strip().lower()
        value = _raw(pid)
        if not value:
            continue
        if kind in PMID_TYPES and c_pmid is None:
            c_pmid = normalize_pmid(value)
        elif kind == "doi" and c_doi is None:
            c_doi = normalize_doi(value)
        elif kind in ("pmcid", "pmc") and c_pmcid is None:
            c_pmcid = normalize_pmcid(value)
    return citation, c_pmid, c_doi, c_pmcid


@inline_rows
def _parse_article(article: etree._Element, n: int, source_sha256: str | None) -> _Article:
    ns = etree.QName(article).namespace or ""
    t = _tags(ns)
    front = article.find(t["front"])
    meta = front.find(t["article-meta"]) if front is not None else None
    jmeta = front.find(t["journal-meta"]) if front is not None else None

    ids = _article_ids(meta, t)
    pmid, bad_pmid = _pmid(ids)
    pmcid = _pmcid(ids, str(pmid) if pmid is not None else f"article {n}")
    if bad_pmid is not None:
        raise _Malformed(f"unparseable PMID {bad_pmid!r}", pmcid)

    doi = next((d for d in map(normalize_doi, ids.get("doi", ())) if d), None)
    title = None
    if meta is not None:
        tg = meta.find(t["title-group"])
        if tg is not None:
            title = text_of(tg.find(t["article-title"]))
    journal_title = None
    if jmeta is not None:
        journal_title = text_of(next(jmeta.iter(t["journal-title"]), None))

    refs: list[tuple] = []
    edges: list[tuple] = []
    seen_cited: set[int] = set()
    n_refs = 0
    for n_refs, ref in enumerate(_iter_refs(article, t), start=1):  # noqa: B007 - count kept after the loop
        if pmid is None:
            continue
        citation, c_pmid, c_doi, c_pmcid = _reference(ref, t)
        refs.append(_REFERENCE_ROW(citing_pmid=pmid, origin=REF_ORIGIN, position=n_refs, citation=citation,
                                   cited_pmid=c_pmid, cited_doi=c_doi, cited_pmcid=c_pmcid))
        if c_pmid is not None and c_pmid not in seen_cited:
            seen_cited.add(c_pmid)
            edges.append(_EDGE_ROW(citing_pmid=pmid, cited_pmid=c_pmid, origin=EDGE_ORIGIN))

    content_sha256 = hashlib.sha256(etree.tostring(article, with_tail=False)).hexdigest()
    row = _ARTICLE_ROW(
        pmcid=pmcid,
        pmid=pmid,
        doi=doi,
        article_type=article.get("article-type"),
        title=title,
        journal_title=journal_title,
        pub_year=_pub_year(meta, t),
        license=_license(meta, t),
        n_references=n_refs,
        content_sha256=content_sha256,
        source_sha256=source_sha256,
    )
    return _Article(pmcid, pmid, row, refs, edges, n_refs)


def _outer_article(elem: etree._Element) -> etree._Element | None:
    """The outermost ``article`` ancestor of an element, if any."""
    outer = None
    for a in elem.iterancestors():
        if isinstance(a.tag, str) and etree.QName(a).localname == "article":
            outer = a
    return outer


def _excerpt(elem: etree._Element, n: int = 200) -> str:
    try:
        return etree.tostring(elem, encoding="unicode", with_tail=False)[:n]
    except Exception:  # pragma: no cover - serialisation of a parsed element does not fail in practice
        return ""


# ---------------------------------------------------------------------------------------------
# batching


class _Batch:
    """Rows of one batch, last occurrence winning per PMCID (articles) and per PMID (references)."""

    def __init__(self) -> None:
        self.articles: dict[str, tuple] = {}
        self.refs: dict[int, tuple[list[tuple], list[tuple]]] = {}
        self.rejects: list[Reject] = []
        self.n_records = 0

    def add(self, art: _Article) -> None:
        self.articles.pop(art.pmcid, None)
        self.articles[art.pmcid] = art.row
        if art.pmid is not None:
            self.refs.pop(art.pmid, None)
            self.refs[art.pmid] = (art.refs, art.edges)

    def to_parsed(self, source: str) -> ParsedBatch:
        sink = RowSink(TABLE_NAMES)
        sink.rows["pmc_articles"].extend(self.articles.values())
        for refs, edges in self.refs.values():
            sink.rows["reference_entries"].extend(refs)
            sink.rows["citation_edges"].extend(edges)
        return ParsedBatch(
            kind="pmc", source=source, tables=sink.to_arrow(), rejects=self.rejects, n_records=self.n_records
        )


def iter_batches(
    source: Source,
    *,
    source_name: str | None = None,
    batch_size: int = 2000,
    source_sha256: str | None = None,
) -> Iterator[ParsedBatch]:
    """Parse a PMC JATS input (path, bytes or binary file object; gzip detected) into batches.

    One `ParsedBatch` per ``batch_size`` articles, then a final one with the rest (always at least
    one batch, even for an input without articles). A malformed article becomes a `Reject` and the
    others load; a broken input (truncated XML, invalid UTF-8, truncated gzip) ends the stream with a
    final batch holding what was parsed before the break plus a `Reject` naming where it broke.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    name = describe(source, source_name)
    stream = Stream(name)
    elements = iter_elements(source, ("{*}article",), stream)
    batch = _Batch()
    yielded = False
    n = 0
    damaged: list[etree._Element] = []
    while True:
        try:
            elem = next(elements)
        except StopIteration:
            break
        except InputError as exc:
            batch.rejects.append(Reject(name, exc.where, str(exc)))
            break
        outer = _outer_article(elem)
        if outer is not None:
            # Not JATS (articles do not nest; JATS has sub-article). The streaming reader frees the
            # inner element, so the outer article would be parsed incomplete: reject it instead.
            if not any(outer is d for d in damaged):
                damaged.append(outer)
            continue
        n += 1
        batch.n_records += 1
        try:
            if any(elem is d for d in damaged):
                damaged = [d for d in damaged if d is not elem]
                raise _Malformed("contains a nested <article> element (not JATS); not parsed", f"article {n}")
            art = _parse_article(elem, n, source_sha256)
        except _Malformed as exc:  # a bad record is rejected; any other exception is a bug and ends the run
            batch.rejects.append(Reject(name, exc.key or f"article {n}", exc.reason, _excerpt(elem)))
        else:
            batch.add(art)
            if art.pmid is None and art.n_refs:
                log.info(
                    "%s: %s has no PMID; its %d references cannot be keyed and were skipped",
                    name,
                    art.pmcid,
                    art.n_refs,
                )
        if batch.n_records >= batch_size:
            yield batch.to_parsed(name)
            yielded = True
            batch = _Batch()
    if batch.n_records or batch.rejects or not yielded:
        yield batch.to_parsed(name)
