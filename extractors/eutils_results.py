"""Parsing of E-utilities *result* documents (esearch, epost, elink, esummary) and cheap checks
of efetch bodies (completeness, which PMIDs / PMCIDs are present).

Parser choice: lxml with a hardened parser, not `Bio.Entrez.read`.
- Offline safety: `Bio.Entrez.read` validates against the DTD named in the DOCTYPE and, when it
  does not bundle that DTD, downloads it from NCBI. Biopython 1.88 bundles neither
  `eLink_020511.dtd` (declared by many real elink answers) nor the newest PubMed DTDs, so it
  would reach for the network, which this project must never do (and cannot, here). The lxml
  parser below never loads a DTD, never touches the network and never expands entities.
- Speed and memory: one elink answer for 500 ids with ~100 scored similar articles each has
  50,000+ links; lxml builds and walks that in tens of milliseconds, Bio.Entrez's expat-driven
  DictElement tree is several times slower and heavier.
- Robustness: we need to detect failure answers precisely (non-empty `<ERROR>` anywhere vs. the
  harmless empty `<ERROR/>`, a truncated body, an HTML page), which is simpler on an lxml tree.
`Bio.Entrez.read` remains the test oracle: tests parse the same documents with both and compare.
PubMed records themselves are never parsed here (that is `litmeta.extractors.pubmed_xml`); efetch bodies
only get a byte-level completeness check and a regex pass for the PMIDs they contain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

from litmeta.extractors.xmlsource import safe_parser

__all__ = [
    "MalformedResponse",
    "ESearchPage",
    "LinkSetResult",
    "parse_xml",
    "error_texts",
    "parse_esearch",
    "parse_epost",
    "parse_elink",
    "parse_esummary",
    "root_tag",
    "is_complete",
    "looks_like_html",
    "pubmed_pmids",
    "pmc_ids",
    "has_error_element",
]


class MalformedResponse(ValueError):
    """The body is not the well-formed XML document expected (truncated, HTML, garbage)."""


def parse_xml(body: bytes) -> etree._Element:
    """Parse a whole (small/medium) result document; MalformedResponse on anything not well-formed."""
    if not body or not body.strip():
        raise MalformedResponse("empty body")
    try:
        return etree.fromstring(body, parser=safe_parser())  # a new parser per call: not thread-safe to share
    except etree.XMLSyntaxError as exc:
        raise MalformedResponse(f"not well-formed XML: {exc}") from None


def _text(el: etree._Element | None) -> str:
    return "" if el is None or el.text is None else el.text.strip()


def error_texts(root: etree._Element) -> list[str]:
    """Non-empty <ERROR> texts anywhere in the document (an empty <ERROR/> is not a failure)."""
    out = []
    for el in root.iter("ERROR"):
        t = "".join(el.itertext()).strip()
        if t:
            out.append(t)
    return out


# ---------------------------------------------------------------------------------------- esearch


@dataclass
class ESearchPage:
    count: int
    retmax: int
    retstart: int
    ids: list[int]
    query_key: str | None = None
    webenv: str | None = None
    query_translation: str | None = None
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # ErrorList (PhraseNotFound, FieldNotFound): not fatal


def parse_esearch(root: etree._Element) -> ESearchPage:
    if root.tag != "eSearchResult":
        raise MalformedResponse(f"expected eSearchResult, got {root.tag}")
    count_el = root.find("Count")
    if count_el is None:
        raise MalformedResponse("eSearchResult without Count")
    try:
        count = int(_text(count_el))
        ids = [int(_text(e)) for e in root.iterfind("IdList/Id")]
        retmax = int(_text(root.find("RetMax")) or len(ids))
        retstart = int(_text(root.find("RetStart")) or 0)
    except ValueError as exc:
        raise MalformedResponse(f"eSearchResult with a non-integer value: {exc}") from None
    warnings = [f"{e.tag}: {_text(e)}" for e in root.iterfind("WarningList/*") if _text(e)]
    errors = [f"{e.tag}: {_text(e)}" for e in root.iterfind("ErrorList/*") if _text(e)]
    return ESearchPage(
        count=count,
        retmax=retmax,
        retstart=retstart,
        ids=ids,
        query_key=_text(root.find("QueryKey")) or None,
        webenv=_text(root.find("WebEnv")) or None,
        query_translation=_text(root.find("QueryTranslation")) or None,
        warnings=warnings,
        errors=errors,
    )


# ------------------------------------------------------------------------------------------ epost


def parse_epost(root: etree._Element) -> tuple[str, str]:
    """(webenv, query_key) of an ePostResult."""
    if root.tag != "ePostResult":
        raise MalformedResponse(f"expected ePostResult, got {root.tag}")
    webenv = _text(root.find("WebEnv"))
    qk = _text(root.find("QueryKey"))
    if not webenv or not qk:
        raise MalformedResponse("ePostResult without WebEnv/QueryKey")
    return webenv, qk


# ------------------------------------------------------------------------------------------ elink


@dataclass
class LinkSetResult:
    """One <LinkSet>: its source ids and, per linkname, the linked ids in listed order.

    links[linkname] is a list of (id, score) with score None when the answer has no <Score>.
    """

    dbfrom: str
    ids: list[int]
    links: dict[str, list[tuple[int, int | None]]]
    dbto: dict[str, str] = field(default_factory=dict)  # linkname -> DbTo
    error: str | None = None


_X_NLINKS = etree.XPath("count(Link)")
_X_LINK_IDS = etree.XPath("Link/Id/text()")
_X_LINK_SCORES = etree.XPath("Link/Score/text()")


def parse_elink(root: etree._Element) -> list[LinkSetResult]:
    if root.tag != "eLinkResult":
        raise MalformedResponse(f"expected eLinkResult, got {root.tag}")
    out: list[LinkSetResult] = []
    for ls in root.iterfind("LinkSet"):
        try:
            src_ids = [int(_text(e)) for e in ls.iterfind("IdList/Id")]
        except ValueError as exc:
            raise MalformedResponse(f"LinkSet with a non-integer Id: {exc}") from None
        links: dict[str, list[tuple[int, int | None]]] = {}
        dbto: dict[str, str] = {}
        for lsd in ls.iterfind("LinkSetDb"):
            name = _text(lsd.find("LinkName"))
            if not name:
                continue
            dbto[name] = _text(lsd.find("DbTo"))
            lst = links.setdefault(name, [])
            # fast path: every Link has an Id, and either all or none have a Score
            n_links = int(_X_NLINKS(lsd))
            id_texts = _X_LINK_IDS(lsd)
            score_texts = _X_LINK_SCORES(lsd)
            if len(id_texts) == n_links and (not score_texts or len(score_texts) == n_links):
                try:
                    ids_ = [int(t) for t in id_texts]
                    scores_: list[int | None] = (
                        [int(t) for t in score_texts] if score_texts else [None] * n_links
                    )
                except ValueError as exc:
                    raise MalformedResponse(f"Link with a non-integer value: {exc}") from None
                lst.extend(zip(ids_, scores_, strict=True))
                continue
            for link in lsd.iterfind("Link"):
                id_el = link.find("Id")
                if id_el is None or not _text(id_el):
                    continue
                score_el = link.find("Score")
                try:
                    lid = int(_text(id_el))
                    score = int(_text(score_el)) if score_el is not None and _text(score_el) else None
                except ValueError as exc:
                    raise MalformedResponse(f"Link with a non-integer value: {exc}") from None
                lst.append((lid, score))
        errs = [t for t in ("".join(e.itertext()).strip() for e in ls.iterfind("ERROR")) if t]
        out.append(
            LinkSetResult(
                dbfrom=_text(ls.find("DbFrom")),
                ids=src_ids,
                links=links,
                dbto=dbto,
                error="; ".join(errs) or None,
            )
        )
    return out


# --------------------------------------------------------------------------------------- esummary


def _docsum_item(item: etree._Element):
    if item.get("Type") == "List" or len(item):
        return [_docsum_item(c) for c in item.iterfind("Item")]
    return item.text.strip() if item.text else ""


def _v2_value(el: etree._Element):
    children = list(el)
    if not children:
        return el.text.strip() if el.text else ""
    tags = [c.tag for c in children]
    if len(set(tags)) == 1 and len(tags) > 1 or tags[0] in ("string", "flag", "int"):
        return [_v2_value(c) for c in children]
    return {c.tag: _v2_value(c) for c in children}


def parse_esummary(root: etree._Element) -> list[dict]:
    """DocSums (version 1.0) or DocumentSummary (2.0) as dicts, in document order.

    v1: {'Id': '123', 'Title': '...', 'AuthorList': ['A B', ...], ...} like Bio.Entrez;
    v2: {'uid': '123', 'Title': '...', 'Authors': [{'Name': ...}, ...], ...}.
    """
    if root.tag != "eSummaryResult":
        raise MalformedResponse(f"expected eSummaryResult, got {root.tag}")
    out: list[dict] = []
    for ds in root.iterfind("DocSum"):
        d: dict = {"Id": _text(ds.find("Id"))}
        for item in ds.iterfind("Item"):
            name = item.get("Name") or "Item"
            d[name] = _docsum_item(item)
        out.append(d)
    for ds in root.iterfind("DocumentSummarySet/DocumentSummary"):
        d = {"uid": ds.get("uid", "")}
        for c in ds:
            d[c.tag] = _v2_value(c)
        out.append(d)
    return out


# --------------------------------------------------------------------------------- efetch bodies

_ROOT_RE = re.compile(rb"<([A-Za-z_][\w.\-:]*)[\s/>]")
_HTML_RE = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!DOCTYPE\s+html|<html)", re.IGNORECASE)
_ERROR_RE = re.compile(rb"<ERROR>\s*[^<\s]")


def looks_like_html(body: bytes) -> bool:
    return bool(_HTML_RE.match(body[:512]))


def has_error_element(body: bytes) -> bool:
    """A non-empty <ERROR>...</ERROR> element anywhere (cheap, bytes-level)."""
    return b"<ERROR>" in body and bool(_ERROR_RE.search(body))


def root_tag(body: bytes) -> str | None:
    """Name of the root element, skipping the XML declaration, DOCTYPE, comments and PIs."""
    i, n = 0, len(body)
    while i < n:
        j = body.find(b"<", i)
        if j < 0:
            return None
        nxt = body[j + 1 : j + 2]
        if nxt == b"?":
            i = body.find(b"?>", j)
            if i < 0:
                return None
            i += 2
        elif body.startswith(b"<!--", j):
            i = body.find(b"-->", j)
            if i < 0:
                return None
            i += 3
        elif nxt == b"!":
            # DOCTYPE, possibly with an internal subset [...]
            k = body.find(b">", j)
            br = body.find(b"[", j, k if k >= 0 else n)
            if br >= 0:
                end = body.find(b"]", br)
                k = body.find(b">", end if end >= 0 else br)
            if k < 0:
                return None
            i = k + 1
        else:
            m = _ROOT_RE.match(body, j)
            return m.group(1).decode("ascii", "replace") if m else None
    return None


def is_complete(body: bytes, root: str | None = None) -> bool:
    """True when the document's root element is closed (`</root>` at the end, or `<root/>`)."""
    name = root or root_tag(body)
    if not name:
        return False
    tail = body.rstrip()
    end = f"</{name}>".encode()
    if tail.endswith(end):
        return True
    # Self-closing root: <PubmedArticleSet/> (an empty answer, complete).
    return bool(re.search(rb"<" + re.escape(name.encode()) + rb"(?:\s[^>]*)?/>\s*\Z", tail[-2000:]))


_PMID_RE = re.compile(
    rb"<(?:MedlineCitation|BookDocument)\b[^>]*>\s*<PMID\b[^>]*>\s*(\d+)\s*</PMID>",
)
_PMC_RE = re.compile(
    rb"<article-id\s+pub-id-type=\"(?:pmc|pmcid|pmc-uid|pmcaid)\"\s*>\s*(?:PMC)?(\d+)\s*</article-id>",
)
_ARTICLE_START_RE = re.compile(rb"<article[\s>]")


def pubmed_pmids(body: bytes) -> list[int]:
    """PMIDs of the PubmedArticle / PubmedBookArticle records in a PubmedArticleSet, in order."""
    return [int(m) for m in _PMID_RE.findall(body)]


def pmc_ids(body: bytes) -> list[int]:
    """Numeric PMCIDs of the top-level articles of a pmc-articleset, in order (first id per article)."""
    out: list[int] = []
    starts = [m.start() for m in _ARTICLE_START_RE.finditer(body)]
    if not starts:
        return out
    starts.append(len(body))
    for a, b in zip(starts, starts[1:], strict=False):
        # the article's own ids are in its <front> (before its <body>/<back>)
        seg_end = body.find(b"<body", a, b)
        seg_end = b if seg_end < 0 else seg_end
        m = _PMC_RE.search(body, a, seg_end)
        if m:
            v = int(m.group(1))
            if v not in out:
                out.append(v)
    return out
