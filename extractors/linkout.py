"""LinkOut answers of elink (``cmd=prlinks``, ``cmd=llinks``, ``cmd=llinkslib``): IdUrlList documents.

An IdUrlList lists, per source id (IdUrlSet/Id), the links other providers hold for it (ObjUrl: Url,
Provider, Category, Attribute, SubjectType, LinkName); an id without links carries ``<Info>`` instead.
`parse_id_url_list` reads any such document (whatever its DbFrom) with the same hardened lxml parser
as the other E-utilities answers (`litmeta.extractors.eutils_results.parse_xml`: no DTD, no network,
no entity expansion); `full_text_link_rows` turns the LinkSets of DbFrom ``pubmed`` into
``full_text_links`` rows. A document that is not an eLinkResult, an Id that is not a number, or a
link without Url or provider name is a `MalformedResponse` (the caller retries or rejects the answer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow as pa
from lxml import etree

from litmeta.extractors.eutils_results import MalformedResponse
from litmeta.schemas import TABLES, RowSink
from litmeta.schemas.rows import inline_rows

__all__ = ["ObjUrl", "IdUrlSet", "parse_id_url_list", "full_text_link_rows", "TABLE_NAMES"]

TABLE_NAMES = ("full_text_links",)
_FULL_TEXT_LINK_ROW = TABLES["full_text_links"].row


@dataclass
class ObjUrl:
    """One LinkOut link."""

    url: str
    provider: str
    provider_abbr: str | None = None
    provider_id: str | None = None
    categories: list[str] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    subject_types: list[str] = field(default_factory=list)
    link_name: str | None = None


@dataclass
class IdUrlSet:
    """The links of one source id of one LinkSet."""

    dbfrom: str
    id: int
    links: list[ObjUrl]
    info: str | None = None  # e.g. 'No links'


def _text(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    t = " ".join("".join(el.itertext()).split())
    return t or None


def _obj_url(el: etree._Element, dbfrom: str, source_id: int) -> ObjUrl:
    url = provider = abbr = pid = link_name = None
    categories: list[str] = []
    attributes: list[str] = []
    subjects: list[str] = []
    for c in el:
        tag = c.tag
        if tag == "Url":
            url = _text(c)
        elif tag == "Category":
            categories.append(_text(c) or "")
        elif tag == "Attribute":
            attributes.append(_text(c) or "")
        elif tag == "SubjectType":
            subjects.append(_text(c) or "")
        elif tag == "LinkName":
            link_name = _text(c)
        elif tag == "Provider":
            for p in c:
                if p.tag == "Name":
                    provider = _text(p)
                elif p.tag == "NameAbbr":
                    abbr = _text(p)
                elif p.tag == "Id":
                    pid = _text(p)
    if not url or not provider:
        raise MalformedResponse(f"IdUrlSet {dbfrom} {source_id}: an ObjUrl without {'Url' if not url else 'Provider/Name'}")
    return ObjUrl(url, provider, abbr, pid, categories, attributes, subjects, link_name)


def parse_id_url_list(root: etree._Element) -> list[IdUrlSet]:
    """Every IdUrlSet of an eLinkResult, in document order (LinkSets without an IdUrlList give none)."""
    if root.tag != "eLinkResult":
        raise MalformedResponse(f"expected eLinkResult, got {root.tag}")
    out: list[IdUrlSet] = []
    for ls in root.iterfind("LinkSet"):
        dbfrom = _text(ls.find("DbFrom")) or ""
        for s in ls.iterfind("IdUrlList/IdUrlSet"):
            raw = _text(s.find("Id")) or ""
            if not raw.isdigit():
                raise MalformedResponse(f"IdUrlSet with Id {raw[:40]!r}, not a number")
            source_id = int(raw)
            links = [_obj_url(o, dbfrom, source_id) for o in s.iterfind("ObjUrl")]
            out.append(IdUrlSet(dbfrom, source_id, links, _text(s.find("Info"))))
    return out


@inline_rows
def full_text_link_rows(sets: list[IdUrlSet]) -> pa.Table:
    """``full_text_links`` rows of the PubMed sets (other databases' ids are not PMIDs), one per
    (pmid, provider, url), the first listed kept."""
    sink = RowSink(TABLE_NAMES)
    out = sink.rows["full_text_links"]
    seen: set[tuple[int, str, str]] = set()
    for s in sets:
        if s.dbfrom != "pubmed":
            continue
        for link in s.links:
            key = (s.id, link.provider, link.url)
            if key in seen:
                continue
            seen.add(key)
            out.append(_FULL_TEXT_LINK_ROW(
                pmid=s.id, provider=link.provider, url=link.url, category="; ".join(link.categories) or None,
                attributes=json.dumps(link.attributes), subject_type="; ".join(link.subject_types) or None,
                link_name=link.link_name, provider_abbr=link.provider_abbr, provider_id=link.provider_id))
    return sink.to_arrow()["full_text_links"]
