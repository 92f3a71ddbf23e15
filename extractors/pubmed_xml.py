"""Streaming parser for PubMed XML: efetch answers, baseline and update files (.xml or .xml.gz).

Handles PubmedArticle, PubmedBookArticle (record_type 'book'), legacy MedlineCitationSet records
and DeleteCitation. Pure: bytes or a path in, `ParsedBatch` (one Arrow table per warehouse table)
out. Memory stays flat whatever the file size (lxml iterparse + clear, see `litmeta.extractors.xmlsource`).

Each record is read in one pass over its children (dispatch on tag), which is several times
faster than XPath lookups. Text with inline markup (<i>, <sup>, MathML, ...) is flattened with no
character lost; whitespace runs are collapsed.

Errors: a record that cannot be read (no PMID, a non-numeric PMID, an unexpected structure) becomes
a `Reject` and the rest of the batch loads; a broken input (truncated, invalid UTF-8, broken gzip)
ends the stream with a `Reject` naming the file and line, after every record before the break.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

from lxml import etree

from litmeta.extractors.record_split import CLOSE, Piece, RecordBytes, RecordSplitter
from litmeta.extractors.xmlsource import (
    InputError,
    Source,
    Stream,
    describe,
    iter_elements,
    iter_piece_elements,
)
from litmeta.schemas import PUBMED_RECORD_TABLES, TABLES, ParsedBatch, Reject, RowSink, merge_batches
from litmeta.schemas.batch import gc_paused
from litmeta.schemas.rows import inline_rows

TABLE_NAMES = [t.name for t in PUBMED_RECORD_TABLES] + ["reference_entries", "citation_edges"]

# Rows are built by column name, in functions marked `inline_rows`: each call is checked at import (a
# column that schemas/ declares and a call leaves out fails it, named) and compiled to the plain tuple.
_ARTICLE_ROW = TABLES["articles"].row
_ARTICLE_ID_ROW = TABLES["article_ids"].row
_AUTHOR_ROW = TABLES["authors"].row
_AFFILIATION_ROW = TABLES["affiliations"].row
_GRANT_ROW = TABLES["grants"].row
_PUBLICATION_TYPE_ROW = TABLES["publication_types"].row
_MESH_ROW = TABLES["mesh_headings"].row
_CHEMICAL_ROW = TABLES["chemicals"].row
_KEYWORD_ROW = TABLES["keywords"].row
_DATABANK_ROW = TABLES["databanks"].row
_COMMENT_ROW = TABLES["comments_corrections"].row
_HISTORY_ROW = TABLES["history_dates"].row
_REFERENCE_ROW = TABLES["reference_entries"].row
_EDGE_ROW = TABLES["citation_edges"].row
_INVESTIGATOR_ROW = TABLES["investigators"].row
_INVESTIGATOR_AFFILIATION_ROW = TABLES["investigator_affiliations"].row
_PERSON_IDENTIFIER_ROW = TABLES["person_identifiers"].row
_AFFILIATION_IDENTIFIER_ROW = TABLES["affiliation_identifiers"].row
_SUPPLEMENTARY_MESH_ROW = TABLES["supplementary_mesh"].row
_OTHER_ABSTRACT_ROW = TABLES["other_abstracts"].row
_OTHER_ID_ROW = TABLES["other_ids"].row

RECORD_TAGS = ("PubmedArticle", "PubmedBookArticle", "DeleteCitation", "MedlineCitation")

MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_YEAR = re.compile(r"(1[5-9]\d\d|2\d\d\d)")
_ORCID_CHARS = re.compile(r"[^0-9Xx]")
_WS = str.split


class RecordError(ValueError):
    """A record that cannot be loaded; the message says why."""


def _norm(t: str) -> str:
    """``" ".join(t.split())`` of non-empty ``t``, skipping the work for text that is already normal (most text)."""
    # every character str.split() splits on, but the space, is non-printable: isprintable() rules them out
    if t.isprintable() and "  " not in t and t[0] != " " and t[-1] != " ":
        return t
    return " ".join(_WS(t))


def _flat(elem: etree._Element | None) -> str | None:
    """Text of an element with inline markup flattened and whitespace normalised."""
    if elem is None:
        return None
    if len(elem) == 0:
        t = elem.text
        return (_norm(t) or None) if t else None
    return " ".join(_WS("".join(elem.itertext()))) or None


def _child(elem: etree._Element, tag: str) -> etree._Element | None:
    """``elem.find(tag)`` for a plain tag name, matched in C (no ElementPath)."""
    return next(elem.iterchildren(tag), None)


def _text(elem: etree._Element | None) -> str | None:
    if elem is None:
        return None
    t = elem.text
    if t is None:
        return None
    t = t.strip()
    return t or None


def _yn(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.upper() == "Y"


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() else None


def _month(value: str | None) -> int | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        m = int(value)
        return m if 1 <= m <= 12 else None
    return MONTHS.get(value[:3].lower())


def _date(elem: etree._Element | None) -> dt.date | None:
    """A Year/Month/Day element (DateCompleted, ArticleDate, PubMedPubDate) as a date, else None."""
    if elem is None:
        return None
    y = m = d = None
    for c in elem:
        tag = c.tag
        if tag == "Year":
            y = c.text
        elif tag == "Month":
            m = c.text
        elif tag == "Day":
            d = c.text
    return None if y is None else _ymd(y, m, d)


@lru_cache(maxsize=1 << 12)
def _ymd(year: str, month: str | None, day: str | None) -> dt.date | None:
    """The date of Year/Month/Day texts as written (cached: the same few dates recur in every record)."""
    y = _int(year)
    if y is None:
        return None
    try:
        return dt.date(y, _month(month) or 1, _int(day) or 1)
    except ValueError:
        return None


def normalize_orcid(value: str | None) -> str | None:
    """Any written form of an ORCID iD (URL, no dashes, spaces) as the bare 0000-0000-0000-000X form."""
    if not value:
        return None
    raw = value.strip()
    tail = raw.rsplit("orcid.org/", 1)[-1]
    chars = _ORCID_CHARS.sub("", tail).upper()
    if len(chars) == 16:
        return f"{chars[0:4]}-{chars[4:8]}-{chars[8:12]}-{chars[12:16]}"
    return raw or None


def _pub_date(elem: etree._Element | None) -> tuple[int | None, int | None, int | None, str | None]:
    """PubDate -> (year, month, day, text as written). MedlineDate and Season keep the text."""
    if elem is None:
        return None, None, None, None
    y = m = d = None
    season = medline = None
    parts: list[str] = []
    for c in elem:
        tag, t = c.tag, (c.text or "").strip()
        if not t:
            continue
        if tag == "Year":
            y = _int(t)
            parts.append(t)
        elif tag == "Month":
            m = _month(t)
            parts.append(t)
        elif tag == "Day":
            d = _int(t)
            parts.append(t)
        elif tag == "Season":
            season = t
            parts.append(t)
        elif tag == "MedlineDate":
            medline = t
    if medline:
        found = _YEAR.search(medline)
        return (int(found.group(1)) if found else None), None, None, medline
    del season
    return y, m, d, (" ".join(parts) or None)


def _abstract(elem: etree._Element | None) -> str | None:
    """Abstract paragraphs; labelled ones (structured abstracts) as 'LABEL: text', joined by newlines."""
    if elem is None:
        return None
    paras = []
    for c in elem:
        if c.tag != "AbstractText":
            continue
        text = _flat(c) or ""
        label = c.get("Label")
        if label:
            text = f"{label}: {text}" if text else f"{label}:"
        if text:
            paras.append(text)
    return "\n".join(paras) or None


class _Record:
    """Rows of one record, committed to the sink only when the whole record parsed."""

    __slots__ = ("pmid", "sink", "marks", "ref_pos", "ref_cited", "kw_pos", "other_abstract_pos", "other_id_pos")

    def __init__(self, sink: RowSink) -> None:
        self.sink = sink
        self.marks = {name: len(rows) for name, rows in sink.rows.items()}
        self.pmid: int | None = None
        # references of all the record's ReferenceLists (siblings too) are numbered on; each cited PMID is one edge
        self.ref_pos = 0
        self.ref_cited: set[int] = set()
        self.kw_pos = 0  # keyword positions, too, run across the record's KeywordLists
        self.other_abstract_pos = 0  # OtherAbstract and OtherID repeat as siblings: numbered across the record
        self.other_id_pos = 0

    def rollback(self) -> None:
        for name, rows in self.sink.rows.items():
            del rows[self.marks[name]:]


class PubmedParser:
    """Turns record elements into rows. One instance per input (it counts records for messages)."""

    def __init__(self, source_name: str, source_sha256: str | None) -> None:
        self.source = source_name
        self.source_sha256 = source_sha256
        self.n = 0
        self.broken = False  # the input broke (a Reject says where); nothing after it was read
        self.raw: RecordBytes | None = None  # the records' bytes as delivered, when the input is cut into pieces

    # -- top level ---------------------------------------------------------------------------
    def article(self, elem: etree._Element, sink: RowSink) -> int:
        """Parse a PubmedArticle / PubmedBookArticle / bare MedlineCitation into ``sink``; return its PMID."""
        rec = _Record(sink)
        try:
            if elem.tag == "PubmedBookArticle":
                self._book(elem, rec)
            else:
                mc, pd = (elem, None) if elem.tag == "MedlineCitation" else (_child(elem, "MedlineCitation"), _child(elem, "PubmedData"))
                if mc is None:
                    raise RecordError("no MedlineCitation element")
                self._medline(mc, pd, elem, rec)
        except Exception:
            rec.rollback()
            raise
        assert rec.pmid is not None
        return rec.pmid

    @staticmethod
    def _pmid(elem: etree._Element | None) -> tuple[int, int | None]:
        if elem is None or not (elem.text or "").strip():
            raise RecordError("record has no PMID")
        raw = elem.text.strip()
        if not raw.isdigit() or int(raw) <= 0:
            raise RecordError(f"PMID {raw[:40]!r} is not a positive integer")
        return int(raw), _int(elem.get("Version"))

    # -- MedlineCitation + PubmedData -------------------------------------------------------
    def _medline(self, mc: etree._Element, pd: etree._Element | None, whole: etree._Element, rec: _Record) -> None:
        rows = rec.sink.rows
        pmid, version = self._pmid(_child(mc, "PMID"))
        rec.pmid = pmid
        a: dict = {
            "status": mc.get("Status"), "date_completed": None, "date_revised": None,
            "title": None, "vernacular_title": None, "abstract": None, "languages": [],
            "journal_title": None, "journal_iso_abbrev": None, "issn_print": None, "issn_electronic": None,
            "volume": None, "issue": None, "pages": None, "pub": (None, None, None, None),
            "article_date": None, "pub_model": None, "eloc_doi": None, "eloc_pii": None,
            "journal_nlm_id": None, "medline_ta": None, "journal_country": None, "issn_linking": None,
            "coi": None,
        }
        for c in mc:
            tag = c.tag
            if tag == "Article":
                self._article(c, pmid, a, rows)
            elif tag == "DateCompleted":
                a["date_completed"] = _date(c)
            elif tag == "DateRevised":
                a["date_revised"] = _date(c)
            elif tag == "MedlineJournalInfo":
                for j in c:
                    jt = j.tag
                    if jt == "NlmUniqueID":
                        a["journal_nlm_id"] = _text(j)
                    elif jt == "MedlineTA":
                        a["medline_ta"] = _text(j)
                    elif jt == "Country":
                        a["journal_country"] = _text(j)
                    elif jt == "ISSNLinking":
                        a["issn_linking"] = _text(j)
            elif tag == "ChemicalList":
                self._chemicals(c, pmid, rows["chemicals"])
            elif tag == "MeshHeadingList":
                self._mesh(c, pmid, rows["mesh_headings"])
            elif tag == "KeywordList":
                rec.kw_pos = self._keywords(c, pmid, rows["keywords"], rec.kw_pos)
            elif tag == "CommentsCorrectionsList":
                self._comments(c, pmid, rows["comments_corrections"])
            elif tag == "CoiStatement":
                a["coi"] = _flat(c)
            elif tag == "OtherID":
                rec.other_id_pos += 1
                self._other_id(c, pmid, rec.other_id_pos, rows["other_ids"])
            elif tag == "OtherAbstract":
                rec.other_abstract_pos += 1
                self._other_abstract(c, pmid, rec.other_abstract_pos, rows["other_abstracts"])
            elif tag == "SupplMeshList":
                self._suppl_mesh(c, pmid, rows["supplementary_mesh"])
            elif tag == "InvestigatorList":
                self._investigators(c, pmid, rows)
        ids: dict[str, str] = {}
        publication_status = None
        if pd is not None:
            for c in pd:
                tag = c.tag
                if tag == "ArticleIdList":
                    self._article_ids(c, pmid, rows["article_ids"], ids)
                elif tag == "History":
                    self._history(c, pmid, rows["history_dates"])
                elif tag == "PublicationStatus":
                    publication_status = _text(c)
                elif tag == "ReferenceList":
                    rec.ref_pos = self._references(c, pmid, rows["reference_entries"], rows["citation_edges"],
                                                   rec.ref_pos, rec.ref_cited)
        self._article_row(rec, pmid, version, "article", a, ids, publication_status, whole)

    @inline_rows
    def _article(self, art: etree._Element, pmid: int, a: dict, rows: dict[str, list]) -> None:
        a["pub_model"] = art.get("PubModel")
        for c in art:
            tag = c.tag
            if tag == "Journal":
                for j in c:
                    jt = j.tag
                    if jt == "ISSN":
                        kind = (j.get("IssnType") or "").lower()
                        if kind == "print":
                            a["issn_print"] = _text(j)
                        elif kind == "electronic":
                            a["issn_electronic"] = _text(j)
                    elif jt == "JournalIssue":
                        for ji in j:
                            jit = ji.tag
                            if jit == "Volume":
                                a["volume"] = _text(ji)
                            elif jit == "Issue":
                                a["issue"] = _text(ji)
                            elif jit == "PubDate":
                                a["pub"] = _pub_date(ji)
                    elif jt == "Title":
                        a["journal_title"] = _flat(j)
                    elif jt == "ISOAbbreviation":
                        a["journal_iso_abbrev"] = _text(j)
            elif tag == "ArticleTitle":
                a["title"] = _flat(c)
            elif tag == "VernacularTitle":
                a["vernacular_title"] = _flat(c)
            elif tag == "Pagination":
                a["pages"] = self._pages(c)
            elif tag == "ELocationID":
                kind = c.get("EIdType")
                if kind == "doi" and a["eloc_doi"] is None:
                    a["eloc_doi"] = _text(c)
                elif kind == "pii" and a["eloc_pii"] is None:
                    a["eloc_pii"] = _text(c)
            elif tag == "Abstract":
                a["abstract"] = _abstract(c)
            elif tag == "AuthorList":
                self._authors(c, pmid, rows)
            elif tag == "Language":
                t = _text(c)
                if t:
                    a["languages"].append(t)
            elif tag == "DataBankList":
                self._databanks(c, pmid, rows["databanks"])
            elif tag == "GrantList":
                self._grants(c, pmid, rows["grants"])
            elif tag == "PublicationTypeList":
                self._pubtypes(c, pmid, rows["publication_types"])
            elif tag == "ArticleDate":
                if a["article_date"] is None:
                    a["article_date"] = _date(c)
            elif tag == "Affiliation":  # pre-2014 DTDs: one article-level affiliation (author_position 0)
                rows["affiliations"].append(_AFFILIATION_ROW(
                    pmid=pmid, author_position=0, position=1, affiliation=_flat(c), identifier=None))

    @staticmethod
    def _pages(elem: etree._Element) -> str | None:
        start = end = medline = None
        for c in elem:
            if c.tag == "MedlinePgn":
                medline = _text(c)
            elif c.tag == "StartPage":
                start = _text(c)
            elif c.tag == "EndPage":
                end = _text(c)
        if medline:
            return medline
        if start and end:
            return f"{start}-{end}"
        return start

    @inline_rows
    def _article_row(self, rec: _Record, pmid: int, version: int | None, record_type: str, a: dict,
                     ids: dict[str, str], publication_status: str | None, whole: etree._Element) -> None:
        y, m, d, text = a["pub"]
        rec.sink.rows["articles"].append(_ARTICLE_ROW(
            pmid=pmid, version=version or 1, record_type=record_type, status=a["status"], title=a["title"],
            vernacular_title=a["vernacular_title"], abstract=a["abstract"],
            language=";".join(a["languages"]) or None, journal_nlm_id=a["journal_nlm_id"],
            journal_title=a["journal_title"], journal_iso_abbrev=a["journal_iso_abbrev"],
            medline_ta=a["medline_ta"], journal_country=a["journal_country"], issn_print=a["issn_print"],
            issn_electronic=a["issn_electronic"], issn_linking=a["issn_linking"], volume=a["volume"],
            issue=a["issue"], pages=a["pages"], pub_year=y, pub_month=m, pub_day=d, pub_date_text=text,
            article_date=a["article_date"], date_completed=a["date_completed"], date_revised=a["date_revised"],
            publication_status=publication_status, pub_model=a["pub_model"],
            doi=ids.get("doi") or a["eloc_doi"], pmcid=ids.get("pmc"), pii=ids.get("pii") or a["eloc_pii"],
            coi_statement=a["coi"], content_sha256=self._content_sha256(whole, pmid),
            source_sha256=self.source_sha256,
        ))

    def _content_sha256(self, whole: etree._Element, pmid: int) -> str:
        """SHA-256 of the record's bytes as delivered, from its start tag to its end tag.

        Where they are not at hand (an input stream-parsed whole, see `litmeta.extractors.record_split`),
        of the element serialised as UTF-8, which gives the same bytes for NCBI's files.
        """
        raw = self.raw.get(whole.sourceline, pmid) if self.raw is not None else None
        if raw is None:
            raw = etree.tostring(whole, encoding="utf-8", with_tail=False)
        return hashlib.sha256(raw).hexdigest()

    # -- lists -------------------------------------------------------------------------------
    @staticmethod
    @inline_rows
    def _authors(elem: etree._Element, pmid: int, rows: dict[str, list]) -> None:
        out, aff_out = rows["authors"], rows["affiliations"]
        pos = 0
        for au in elem:
            if au.tag != "Author":
                continue
            pos += 1
            last = fore = initials = suffix = collective = orcid = None
            apos = idpos = 0
            for c in au:
                tag = c.tag
                if tag == "LastName":
                    last = _flat(c)
                elif tag == "ForeName":
                    fore = _flat(c)
                elif tag == "Initials":
                    initials = _text(c)
                elif tag == "Suffix":
                    suffix = _flat(c)
                elif tag == "CollectiveName":
                    collective = _flat(c)
                elif tag == "Identifier":
                    source = c.get("Source")
                    if orcid is None and (source or "").upper() == "ORCID":
                        orcid = normalize_orcid(c.text)
                    idpos += 1
                    _person_identifier(rows, pmid, "author", pos, idpos, source, c)
                elif tag == "AffiliationInfo":
                    apos += 1
                    aff = ident = None
                    ipos = 0
                    for x in c:
                        if x.tag == "Affiliation":
                            aff = _flat(x)
                        elif x.tag == "Identifier":
                            ipos += 1
                            value = _affiliation_identifier(rows, pmid, "author", pos, apos, ipos, x)
                            if ident is None:
                                ident = value
                    aff_out.append(_AFFILIATION_ROW(
                        pmid=pmid, author_position=pos, position=apos, affiliation=aff, identifier=ident))
            equal = au.get("EqualContrib")
            out.append(_AUTHOR_ROW(
                pmid=pmid, position=pos, last_name=last, fore_name=fore, initials=initials, suffix=suffix,
                collective_name=collective, orcid=orcid, is_valid=_yn(au.get("ValidYN", "Y")),
                equal_contrib=_yn(equal) if equal is not None else None))

    @staticmethod
    @inline_rows
    def _investigators(elem: etree._Element, pmid: int, rows: dict[str, list]) -> None:
        """An InvestigatorList: investigators, their affiliations and identifiers (as for authors)."""
        out, aff_out = rows["investigators"], rows["investigator_affiliations"]
        pos = 0
        for inv in elem:
            if inv.tag != "Investigator":
                continue
            pos += 1
            last = fore = initials = suffix = orcid = None
            apos = idpos = 0
            for c in inv:
                tag = c.tag
                if tag == "LastName":
                    last = _flat(c)
                elif tag == "ForeName":
                    fore = _flat(c)
                elif tag == "Initials":
                    initials = _text(c)
                elif tag == "Suffix":
                    suffix = _flat(c)
                elif tag == "Identifier":
                    source = c.get("Source")
                    if orcid is None and (source or "").upper() == "ORCID":
                        orcid = normalize_orcid(c.text)
                    idpos += 1
                    _person_identifier(rows, pmid, "investigator", pos, idpos, source, c)
                elif tag == "AffiliationInfo":
                    apos += 1
                    aff = None
                    ipos = 0
                    for x in c:
                        if x.tag == "Affiliation":
                            aff = _flat(x)
                        elif x.tag == "Identifier":
                            ipos += 1
                            _affiliation_identifier(rows, pmid, "investigator", pos, apos, ipos, x)
                    aff_out.append(_INVESTIGATOR_AFFILIATION_ROW(
                        pmid=pmid, investigator_position=pos, position=apos, affiliation=aff))
                elif tag == "Affiliation":  # pre-2014 DTDs: one Affiliation, no AffiliationInfo
                    apos += 1
                    aff_out.append(_INVESTIGATOR_AFFILIATION_ROW(
                        pmid=pmid, investigator_position=pos, position=apos, affiliation=_flat(c)))
            out.append(_INVESTIGATOR_ROW(
                pmid=pmid, position=pos, last_name=last, fore_name=fore, initials=initials, suffix=suffix,
                orcid=orcid, is_valid=_yn(inv.get("ValidYN", "Y"))))

    @staticmethod
    @inline_rows
    def _other_id(elem: etree._Element, pmid: int, pos: int, out: list) -> None:
        out.append(_OTHER_ID_ROW(pmid=pmid, position=pos, source=elem.get("Source"), other_id=_text(elem)))

    @staticmethod
    @inline_rows
    def _other_abstract(elem: etree._Element, pmid: int, pos: int, out: list) -> None:
        out.append(_OTHER_ABSTRACT_ROW(
            pmid=pmid, position=pos, type=elem.get("Type"), language=elem.get("Language"), abstract=_abstract(elem),
            copyright=_flat(_child(elem, "CopyrightInformation"))))

    @staticmethod
    @inline_rows
    def _suppl_mesh(elem: etree._Element, pmid: int, out: list) -> None:
        pos = 0
        for c in elem:
            if c.tag != "SupplMeshName":
                continue
            pos += 1
            out.append(_SUPPLEMENTARY_MESH_ROW(pmid=pmid, position=pos, ui=c.get("UI"), name=_flat(c),
                                               type=c.get("Type")))

    @staticmethod
    @inline_rows
    def _grants(elem: etree._Element, pmid: int, out: list) -> None:
        pos = 0
        for g in elem:
            if g.tag != "Grant":
                continue
            pos += 1
            gid = acr = agency = country = None
            for c in g:
                tag = c.tag
                if tag == "GrantID":
                    gid = _text(c)
                elif tag == "Acronym":
                    acr = _text(c)
                elif tag == "Agency":
                    agency = _flat(c)
                elif tag == "Country":
                    country = _text(c)
            out.append(_GRANT_ROW(pmid=pmid, position=pos, grant_id=gid, acronym=acr, agency=agency, country=country))

    @staticmethod
    @inline_rows
    def _pubtypes(elems: Iterable[etree._Element], pmid: int, out: list) -> None:
        seen: set[str] = set()
        pos = 0
        for c in elems:
            if c.tag != "PublicationType":
                continue
            pos += 1
            ui = c.get("UI") or _text(c) or f"#{pos}"
            if ui in seen:
                continue
            seen.add(ui)
            out.append(_PUBLICATION_TYPE_ROW(pmid=pmid, ui=ui, name=_text(c), position=pos))

    @staticmethod
    @inline_rows
    def _mesh(elem: etree._Element, pmid: int, out: list) -> None:
        pos = 0
        for h in elem:
            if h.tag != "MeshHeading":
                continue
            pos += 1
            d_ui = d_name = d_major = None
            quals = []
            for c in h:
                if c.tag == "DescriptorName":
                    d_ui, d_name, d_major = c.get("UI"), _text(c), _yn(c.get("MajorTopicYN"))
                elif c.tag == "QualifierName":
                    quals.append((c.get("UI"), _text(c), _yn(c.get("MajorTopicYN"))))
            if not quals:
                out.append(_MESH_ROW(
                    pmid=pmid, position=pos, descriptor_ui=d_ui, descriptor_name=d_name, descriptor_major=d_major,
                    qualifier_ui=None, qualifier_name=None, qualifier_major=None, qualifier_position=0))
            for qpos, (q_ui, q_name, q_major) in enumerate(quals, 1):
                out.append(_MESH_ROW(
                    pmid=pmid, position=pos, descriptor_ui=d_ui, descriptor_name=d_name, descriptor_major=d_major,
                    qualifier_ui=q_ui, qualifier_name=q_name, qualifier_major=q_major, qualifier_position=qpos))

    @staticmethod
    @inline_rows
    def _chemicals(elem: etree._Element, pmid: int, out: list) -> None:
        pos = 0
        for ch in elem:
            if ch.tag != "Chemical":
                continue
            pos += 1
            reg = ui = name = None
            for c in ch:
                if c.tag == "RegistryNumber":
                    reg = _text(c)
                elif c.tag == "NameOfSubstance":
                    ui, name = c.get("UI"), _flat(c)
            out.append(_CHEMICAL_ROW(pmid=pmid, position=pos, registry_number=reg, substance_ui=ui, substance_name=name))

    @staticmethod
    @inline_rows
    def _keywords(elem: etree._Element, pmid: int, out: list, pos: int) -> int:
        """A KeywordList, numbered on from ``pos`` (positions run across a record's lists); returns the last position."""
        owner = elem.get("Owner")
        for k in elem:
            if k.tag != "Keyword":
                continue
            pos += 1
            out.append(_KEYWORD_ROW(pmid=pmid, position=pos, owner=owner, keyword=_flat(k),
                                    is_major=_yn(k.get("MajorTopicYN"))))
        return pos

    @staticmethod
    @inline_rows
    def _databanks(elem: etree._Element, pmid: int, out: list) -> None:
        seen: set[tuple[str, str]] = set()
        for db in elem:
            if db.tag != "DataBank":
                continue
            name = None
            accessions: list[str] = []
            for c in db:
                if c.tag == "DataBankName":
                    name = _text(c)
                elif c.tag == "AccessionNumberList":
                    accessions.extend(t for t in (_text(x) for x in c if x.tag == "AccessionNumber") if t)
            for acc in accessions:
                key = (name or "", acc)
                if key not in seen:
                    seen.add(key)
                    out.append(_DATABANK_ROW(pmid=pmid, databank=name or "", accession=acc))

    @staticmethod
    @inline_rows
    def _comments(elem: etree._Element, pmid: int, out: list) -> None:
        pos = 0
        for cc in elem:
            if cc.tag != "CommentsCorrections":
                continue
            pos += 1
            ref_pmid = source = None
            for c in cc:
                if c.tag == "RefSource":
                    source = _flat(c)
                elif c.tag == "PMID":
                    ref_pmid = _int(c.text)
            out.append(_COMMENT_ROW(pmid=pmid, position=pos, ref_type=cc.get("RefType") or "", ref_pmid=ref_pmid,
                                    ref_source=source))

    @staticmethod
    @inline_rows
    def _article_ids(elem: etree._Element, pmid: int, out: list, ids: dict[str, str]) -> None:
        seen: set[tuple[str, str]] = set()
        for c in elem:
            if c.tag != "ArticleId":
                continue
            kind = c.get("IdType") or "unknown"
            value = _text(c)
            if not value or (kind, value) in seen:
                continue
            seen.add((kind, value))
            ids.setdefault(kind, value)
            out.append(_ARTICLE_ID_ROW(pmid=pmid, id_type=kind, id_value=value))

    @staticmethod
    @inline_rows
    def _history(elem: etree._Element, pmid: int, out: list) -> None:
        seen: set[str] = set()
        for c in elem:
            if c.tag != "PubMedPubDate":
                continue
            status = c.get("PubStatus") or ""
            if status in seen:
                continue
            seen.add(status)
            out.append(_HISTORY_ROW(pmid=pmid, pub_status=status, date=_date(c)))

    @staticmethod
    @inline_rows
    def _references(elem: etree._Element, pmid: int, out: list, edges: list, pos: int, cited: set[int]) -> int:
        """A ReferenceList, nested lists flattened in document order, numbered on from ``pos``; returns the last
        position. ``cited``: the PMIDs with an edge already (added to)."""
        append = out.append
        for r in elem:
            tag = r.tag
            if tag != "Reference":
                if tag == "ReferenceList":
                    pos = PubmedParser._references(r, pmid, out, edges, pos, cited)
                continue
            pos += 1
            citation = c_pmid = c_doi = c_pmc = None
            for c in r:
                tag = c.tag
                if tag == "Citation":
                    citation = _flat(c)
                elif tag == "ArticleIdList":
                    for x in c:
                        value = x.text  # _text(x), inlined: references are most of a record's elements
                        if not value or not (value := value.strip()):
                            continue
                        kind = x.get("IdType")
                        if kind == "pubmed":
                            if c_pmid is None:
                                c_pmid = int(value) if value.isdigit() else None
                        elif kind == "doi":
                            if c_doi is None:
                                c_doi = value
                        elif kind == "pmc" and c_pmc is None:
                            c_pmc = value
            append(_REFERENCE_ROW(citing_pmid=pmid, origin="pubmed", position=pos, citation=citation,
                                  cited_pmid=c_pmid, cited_doi=c_doi, cited_pmcid=c_pmc))
            if c_pmid is not None and c_pmid not in cited:
                cited.add(c_pmid)
                edges.append(_EDGE_ROW(citing_pmid=pmid, cited_pmid=c_pmid, origin="pubmed_reflist"))
        return pos

    # -- PubmedBookArticle ------------------------------------------------------------------
    def _book(self, elem: etree._Element, rec: _Record) -> None:
        rows = rec.sink.rows
        doc = _child(elem, "BookDocument")
        if doc is None:
            raise RecordError("PubmedBookArticle without BookDocument")
        pmid, version = self._pmid(_child(doc, "PMID"))
        rec.pmid = pmid
        a: dict = {
            "status": None, "date_completed": None, "date_revised": None, "title": None,
            "vernacular_title": None, "abstract": None, "languages": [], "journal_title": None,
            "journal_iso_abbrev": None, "issn_print": None, "issn_electronic": None, "volume": None,
            "issue": None, "pages": None, "pub": (None, None, None, None), "article_date": None,
            "pub_model": None, "eloc_doi": None, "eloc_pii": None, "journal_nlm_id": None,
            "medline_ta": None, "journal_country": None, "issn_linking": None, "coi": None,
        }
        ids: dict[str, str] = {}
        book_title = None
        has_authors = False
        pubtypes = []
        for c in doc:
            tag = c.tag
            if tag == "ArticleIdList":
                self._article_ids(c, pmid, rows["article_ids"], ids)
            elif tag == "Book":
                for b in c:
                    bt = b.tag
                    if bt == "BookTitle":
                        book_title = _flat(b)
                    elif bt == "PubDate":
                        a["pub"] = _pub_date(b)
                    elif bt == "Publisher":
                        a["journal_title"] = _flat(_child(b, "PublisherName"))
                    elif bt == "Volume":
                        a["volume"] = _text(b)
            elif tag == "ArticleTitle":
                a["title"] = _flat(c)
            elif tag == "VernacularTitle":
                a["vernacular_title"] = _flat(c)
            elif tag == "Pagination":
                a["pages"] = self._pages(c)
            elif tag == "Language":
                t = _text(c)
                if t:
                    a["languages"].append(t)
            elif tag == "AuthorList":
                if (c.get("Type") or "authors") == "authors" and not has_authors:
                    has_authors = True
                    self._authors(c, pmid, rows)
            elif tag == "PublicationType":
                pubtypes.append(c)
            elif tag == "Abstract":
                a["abstract"] = _abstract(c)
            elif tag == "KeywordList":
                rec.kw_pos = self._keywords(c, pmid, rows["keywords"], rec.kw_pos)
            elif tag == "DateRevised":
                a["date_revised"] = _date(c)
            elif tag == "GrantList":
                self._grants(c, pmid, rows["grants"])
            elif tag == "ReferenceList":
                rec.ref_pos = self._references(c, pmid, rows["reference_entries"], rows["citation_edges"],
                                               rec.ref_pos, rec.ref_cited)
            elif tag == "ELocationID":
                kind = c.get("EIdType")
                if kind == "doi" and a["eloc_doi"] is None:
                    a["eloc_doi"] = _text(c)
        self._pubtypes(pubtypes, pmid, rows["publication_types"])
        a["title"] = a["title"] or book_title
        publication_status = None
        bd = _child(elem, "PubmedBookData")
        if bd is not None:
            for c in bd:
                if c.tag == "ArticleIdList":
                    self._article_ids(c, pmid, rows["article_ids"], ids)
                elif c.tag == "History":
                    self._history(c, pmid, rows["history_dates"])
                elif c.tag == "PublicationStatus":
                    publication_status = _text(c)
        self._article_row(rec, pmid, version, "book", a, ids, publication_status, elem)


@inline_rows
def _person_identifier(rows: dict[str, list], pmid: int, role: str, person: int, pos: int, source: str | None,
                       elem: etree._Element) -> None:
    """An author's or investigator's Identifier (the ``pos``-th of that person) as a row."""
    rows["person_identifiers"].append(_PERSON_IDENTIFIER_ROW(pmid=pmid, role=role, person_position=person, position=pos, source=source,
                                      identifier=_text(elem)))


@inline_rows
def _affiliation_identifier(rows: dict[str, list], pmid: int, role: str, person: int, affiliation: int,
                            pos: int, elem: etree._Element) -> str | None:
    """An AffiliationInfo/Identifier as a row; returns its text."""
    value = _text(elem)
    rows["affiliation_identifiers"].append(_AFFILIATION_IDENTIFIER_ROW(
        pmid=pmid, role=role, person_position=person, affiliation_position=affiliation, position=pos,
        source=elem.get("Source"), identifier=value))
    return value


def _excerpt(elem: etree._Element, n: int = 300) -> str:
    return etree.tostring(elem, encoding="unicode")[:n]


_PMID_PARENT = {"PubmedArticle": "MedlineCitation", "PubmedBookArticle": "BookDocument"}


def _record_pmid(elem: etree._Element) -> etree._Element | None:
    """The PMID element of a record (MedlineCitation/PMID, BookDocument/PMID or, bare, PMID), if any."""
    parent = _PMID_PARENT.get(elem.tag)
    if parent is not None:
        elem = _child(elem, parent)
        if elem is None:
            return None
    return _child(elem, "PMID")


def _not_nested(elem: etree._Element) -> bool:
    """MedlineCitation is a record of its own only in legacy MedlineCitationSet files."""
    if elem.tag != "MedlineCitation":
        return True
    parent = elem.getparent()
    return parent is None or parent.tag not in ("PubmedArticle",)


def _batches(elements: Iterator[etree._Element], name: str, parser: PubmedParser,
             batch_size: int) -> Iterator[ParsedBatch]:
    """Group the records of ``elements`` into batches; a broken input ends them with a `Reject`.

    A batch never holds the same PMID twice (a repeat starts a new batch, so later records win in
    document order). DeleteCitation PMIDs close the batch they appear in, keeping file order.
    The last batch is yielded even when empty.
    """

    def new() -> tuple[RowSink, list[Reject], list[int], set[int]]:
        return RowSink(TABLE_NAMES), [], [], set()

    sink, rejects, deleted, pmids = new()

    def emit() -> ParsedBatch:
        return ParsedBatch("pubmed", name, sink.to_arrow(), rejects, deleted, len(pmids))

    try:
        for elem in elements:
            if elem.tag == "DeleteCitation":
                for p in elem.iter("PMID"):
                    v = _int(p.text)
                    if v is None:
                        rejects.append(Reject(name, f"DeleteCitation PMID {p.text!r}", "not a PMID", _excerpt(p)))
                    else:
                        deleted.append(v)
                yield emit()
                sink, rejects, deleted, pmids = new()
                continue
            parser.n += 1
            pm = _record_pmid(elem)
            if pm is not None and _int(pm.text) in pmids:
                yield emit()
                sink, rejects, deleted, pmids = new()
            try:
                pmids.add(parser.article(elem, sink))
            except RecordError as exc:  # a bad record is rejected; any other exception is a bug and ends the run
                key = f"PMID {pm.text.strip()}" if pm is not None and pm.text and pm.text.strip() else f"record {parser.n}"
                rejects.append(Reject(name, key, str(exc), _excerpt(elem)))
            if len(pmids) >= batch_size:
                yield emit()
                sink, rejects, deleted, pmids = new()
    except InputError as exc:
        parser.broken = True
        rejects.append(input_reject(name, exc))
    yield emit()


def input_reject(name: str, exc: InputError) -> Reject:
    """The `Reject` of input ``name`` that broke (or could not be opened): where, why and what to do."""
    return Reject(name, exc.where, f"{exc.reason} ({exc.hint})" if exc.hint else exc.reason, "")


def empty_batch(name: str, rejects: list[Reject] | None = None) -> ParsedBatch:
    """A batch of no records (every table empty), possibly carrying rejects."""
    return ParsedBatch("pubmed", name, RowSink(TABLE_NAMES).to_arrow(), rejects or [])


@dataclass
class PieceResult:
    """What parsing one `Piece` gave: its batches, how many records it held, whether the input broke in it."""

    batches: list[ParsedBatch]
    n_records: int
    broken: bool


def parse_piece(piece: Piece, head: bytes, name: str, source_sha256: str | None = None,
                batch_size: int = 5000) -> PieceResult:
    """Parse one piece of a split input (`litmeta.extractors.record_split`); "record N" keys count from the piece.

    Runs in worker processes: everything in and out pickles.
    """
    parser = PubmedParser(name, source_sha256)
    if piece.stream is not None:
        elements = iter_elements(piece.stream, RECORD_TAGS, Stream(name), accept=_not_nested,
                                 line_offset=piece.first_line - 1 - head.count(b"\n"),
                                 byte_offset=piece.byte_offset - len(head))
    else:
        data = head + piece.body if piece.final else b"".join((head, piece.body, CLOSE))
        head_lines = head.count(b"\n")
        parser.raw = RecordBytes(piece.body, head_lines + 1)
        elements = iter_piece_elements(data, RECORD_TAGS, name, accept=_not_nested,
                                       complete=piece.error is None,
                                       line_offset=piece.first_line - 1 - head_lines)
        if piece.error is not None:
            elements = _then_raise(elements, piece.error)
    with gc_paused():  # rows and Arrow arrays: many objects, few cycles
        batches = [b for b in _batches(elements, name, parser, batch_size)
                   if b.n_records or b.rejects or b.deleted_pmids]
    return PieceResult(batches, parser.n, parser.broken)


def unreadable(name: str, exc: InputError) -> PieceResult:
    """The result standing for input ``name`` broken before its next piece (a reject, no records)."""
    return PieceResult([empty_batch(name, [input_reject(name, exc)])], 0, True)


def _then_raise(elements: Iterator[etree._Element], error: InputError) -> Iterator[etree._Element]:
    yield from elements
    raise error


def renumber(batch: ParsedBatch, base: int) -> ParsedBatch:
    """Shift the "record N" reject keys of a piece's batch by the records of the pieces before it."""
    if base and batch.rejects:
        batch.rejects = [replace(r, record_key=f"record {int(m.group(1)) + base}")
                         if (m := _RECORD_KEY.fullmatch(r.record_key)) else r for r in batch.rejects]
    return batch


_RECORD_KEY = re.compile(r"record (\d+)")


def iter_batches(source: Source, *, source_name: str | None = None, batch_size: int = 5000,
                 source_sha256: str | None = None) -> Iterator[ParsedBatch]:
    """Stream ``source`` (path, bytes or binary file) as `ParsedBatch` objects of up to ``batch_size`` records.

    The input is cut into pieces of whole records (`litmeta.extractors.record_split`), parsed one after the
    other in this process (`litmeta.extractors.parallel` parses them in worker processes instead); the
    batches of the pieces are merged up to ``batch_size`` records, keeping the batch rules of
    `_batches`. A broken input ends with a `Reject` naming the input and where it broke.
    """
    name = describe(source, source_name)
    splitter = RecordSplitter(source, name)

    def results() -> Iterator[PieceResult]:
        try:
            for piece in splitter:
                result = parse_piece(piece, splitter.head, name, source_sha256, batch_size)
                yield result
                if result.broken:
                    return
        except InputError as exc:  # the input could not be opened
            yield unreadable(name, exc)

    yield from ordered_batches(results(), name, batch_size)


def ordered_batches(results: Iterable[PieceResult], name: str, batch_size: int,
                    flush: Callable[[int], bool] | None = None) -> Iterator[ParsedBatch]:
    """The batches of consecutive piece results, "record N" keys renumbered, merged up to ``batch_size`` records.

    Stops after the piece in which the input broke. Always yields at least one (possibly empty) batch.
    ``flush``: see `litmeta.schemas.batch.merge_batches`.
    """
    out = 0
    for batch in merge_batches(_renumbered(results), batch_size, flush):
        out += 1
        yield batch
    if not out:
        yield empty_batch(name)


def _renumbered(results: Iterable[PieceResult]) -> Iterator[ParsedBatch]:
    base = 0
    for result in results:
        for batch in result.batches:
            yield renumber(batch, base)
        base += result.n_records
        if result.broken:
            return
