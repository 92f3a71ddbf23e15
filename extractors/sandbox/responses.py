"""NCBI-format response bodies for the sandbox (pure functions: values in, bytes out).

The DOCTYPE lines are the ones NCBI's live services emit today (copied from real documents
in ../shared/corpus); their system ids end in DTD file names Biopython bundles
(``esearch.dtd``, ``elink.dtd``, ``epost.dtd``, ``esummary-v1.dtd``, ``einfo.dtd``), so
``Bio.Entrez.read(handle, validate=True)`` parses every answer offline.  The efetch PubMed
DOCTYPE names ``pubmed_250101.dtd``; PubMed XML is meant to be parsed with lxml, not Biopython.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from .snapshot import HARDENED

XML_DECL = b'<?xml version="1.0" encoding="UTF-8" ?>\n'
DOCTYPES: dict[str, bytes] = {
    "esearch": b'<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
    b'"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">\n',
    "elink": b'<!DOCTYPE eLinkResult PUBLIC "-//NLM//DTD elink 20101123//EN" '
    b'"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20101123/elink.dtd">\n',
    "epost": b'<!DOCTYPE ePostResult PUBLIC "-//NLM//DTD epost 20090526//EN" '
    b'"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20090526/epost.dtd">\n',
    "esummary": b'<!DOCTYPE eSummaryResult PUBLIC "-//NLM//DTD esummary v1 20041029//EN" '
    b'"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20041029/esummary-v1.dtd">\n',
    "einfo": b'<!DOCTYPE eInfoResult PUBLIC "-//NLM//DTD einfo 20190110//EN" '
    b'"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20190110/einfo.dtd">\n',
}
ROOTS = {
    "esearch": "eSearchResult",
    "elink": "eLinkResult",
    "epost": "ePostResult",
    "esummary": "eSummaryResult",
    "einfo": "eInfoResult",
    "efetch": "eFetchResult",
}
PUBMED_HEAD = (
    b'<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n<PubmedArticleSet>\n'
)
PUBMED_TAIL = b"</PubmedArticleSet>"
PMC_HEAD = (
    b'<?xml version="1.0" ?>\n<!DOCTYPE pmc-articleset PUBLIC "-//NLM//DTD ARTICLE SET 2.0//EN" '
    b'"https://dtd.nlm.nih.gov/ncbi/pmc/articleset/nlm-articleset-2.0.dtd">\n<pmc-articleset>'
)
PMC_TAIL = b"</pmc-articleset>"

#: NCBI's exact text when esearch (or efetch from history) asks past position 9,998 in PubMed
RETSTART_CAP_ERROR = (
    "Search Backend failed: Exception:\n'retstart' cannot be larger than 9998. For PubMed, ESearch can only "
    "retrieve the first 9,999 records matching the query. To obtain more than 9,999 PubMed records, consider "
    "using EDirect that contains additional logic to batch PubMed search results automatically so that an "
    "arbitrary number can be retrieved. For details see https://www.ncbi.nlm.nih.gov/books/NBK25499/"
)

#: the ``<ERROR>`` text served by the ``error200`` fault, per endpoint
ERROR200_TEXT = {
    "efetch": "Unable to obtain query #1",
    "esearch": "Search Backend failed: Exception:\nUnable to connect to the search backend (timeout)",
    "elink": "Error: Backend failure; unable to obtain links",
    "epost": "Unable to store the id list on the history server",
    "esummary": "Unable to obtain query #1",
    "einfo": "Can not retrieve DbInfo: backend timeout",
    "ecitmatch": "Unable to obtain query #1",
}


def _e(text: object) -> str:
    return escape(str(text))


def xml_document(endpoint: str, inner: str) -> bytes:
    """``<?xml?>`` + DOCTYPE + ``<Root>inner</Root>`` for a result document."""
    root = ROOTS[endpoint]
    head = XML_DECL + DOCTYPES.get(endpoint, b"")
    return head + f"<{root}>{inner}</{root}>\n".encode()


def error_document(endpoint: str, message: str) -> bytes:
    """An HTTP-200 result document holding only ``<ERROR>message</ERROR>`` (NCBI style)."""
    if endpoint == "ecitmatch":  # a text service: NCBI's error is a bare element
        return f"<ERROR>{_e(message)}</ERROR>\n".encode()
    if endpoint == "efetch":
        return b'<?xml version="1.0" encoding="UTF-8" ?>\n' + (
            f"<eFetchResult>\n\t<ERROR>{_e(message)}</ERROR>\n</eFetchResult>\n".encode()
        )
    return xml_document(endpoint, f"\n\t<ERROR>{_e(message)}</ERROR>\n")


# ------------------------------------------------------------------------ esearch
def esearch_document(
    *,
    count: int,
    retstart: int,
    ids: Sequence[int],
    term: str,
    query_key: int | None = None,
    webenv: str | None = None,
    phrase_not_found: bool = False,
) -> bytes:
    """An eSearchResult like NCBI's (RetMax = number of ids returned)."""
    parts = [f"<Count>{count}</Count><RetMax>{len(ids)}</RetMax><RetStart>{retstart}</RetStart>"]
    if query_key is not None and webenv is not None:
        parts.append(f"<QueryKey>{query_key}</QueryKey><WebEnv>{_e(webenv)}</WebEnv>")
    if ids:
        parts.append("<IdList>\n" + "".join(f"<Id>{i}</Id>\n" for i in ids) + "</IdList>")
    else:
        parts.append("<IdList/>")
    parts.append(f"<TranslationSet/><QueryTranslation>{_e(term)}</QueryTranslation>")
    if phrase_not_found:
        parts.append(f"<ErrorList><PhraseNotFound>{_e(term)}</PhraseNotFound></ErrorList>")
    if count == 0:
        parts.append("<WarningList><OutputMessage>No items found.</OutputMessage></WarningList>")
    return xml_document("esearch", "".join(parts))


# ------------------------------------------------------------------------ efetch
def efetch_pubmed_document(records: Iterable[bytes]) -> bytes:
    """A PubmedArticleSet of the given raw record elements, in the given order."""
    return PUBMED_HEAD + b"\n".join(records) + b"\n" + PUBMED_TAIL + b"\n"


def efetch_pmc_document(records: Iterable[bytes]) -> bytes:
    """A pmc-articleset of the given raw ``<article>`` elements."""
    return PMC_HEAD + b"".join(records) + PMC_TAIL + b"\n"


def uilist_text(ids: Iterable[int]) -> bytes:
    """``rettype=uilist retmode=text``: one id per line."""
    return "".join(f"{i}\n" for i in ids).encode()


# ------------------------------------------------------------------------ elink
@dataclass
class LinkSetDbOut:
    """One ``<LinkSetDb>`` (or, with ``query_key``, one ``<LinkSetDbHistory>``)."""

    dbto: str
    linkname: str
    links: list[tuple[int, int | None]] = field(default_factory=list)
    query_key: int | None = None


@dataclass
class LinkSetOut:
    """One ``<LinkSet>``: the source ids and their link sets."""

    dbfrom: str
    ids: list[str]
    dbs: list[LinkSetDbOut] = field(default_factory=list)
    #: set for cmd=neighbor_history: the LinkSet then carries LinkSetDbHistory + WebEnv
    webenv: str | None = None


def elink_document(linksets: Sequence[LinkSetOut]) -> bytes:
    """An eLinkResult laid out like NCBI's (tab-indented, one element per line)."""
    out: list[str] = ["\n"]
    for ls in linksets:
        out.append(f"<LinkSet>\n\t<DbFrom>{_e(ls.dbfrom)}</DbFrom>\n\t<IdList>\n")
        out.extend(f"\t\t<Id>{_e(i)}</Id>\n" for i in ls.ids)
        out.append("\t</IdList>\n")
        for db in ls.dbs:
            if ls.webenv is not None:
                out.append(
                    f"\t<LinkSetDbHistory>\n\t\t<DbTo>{_e(db.dbto)}</DbTo>\n\t\t<LinkName>{_e(db.linkname)}</LinkName>\n"
                    f"\t\t<QueryKey>{db.query_key}</QueryKey>\n\t</LinkSetDbHistory>\n"
                )
                continue
            out.append(
                f"\t<LinkSetDb>\n\t\t<DbTo>{_e(db.dbto)}</DbTo>\n\t\t<LinkName>{_e(db.linkname)}</LinkName>\n"
            )
            for to_id, score in db.links:
                if score is None:
                    out.append(f"\t\t<Link>\n\t\t\t<Id>{to_id}</Id>\n\t\t</Link>\n")
                else:
                    out.append(
                        f"\t\t<Link>\n\t\t\t<Id>{to_id}</Id>\n\t\t\t<Score>{score}</Score>\n\t\t</Link>\n"
                    )
            out.append("\t</LinkSetDb>\n")
        if ls.webenv is not None:
            out.append(f"\t<WebEnv>{_e(ls.webenv)}</WebEnv>\n")
        out.append("</LinkSet>\n")
    return xml_document("elink", "".join(out))


# ------------------------------------------------------------------------ epost
def epost_document(query_key: int, webenv: str, invalid: Sequence[str] = ()) -> bytes:
    """An ePostResult (with ``<InvalidIdList>`` for ids that are not UIDs)."""
    inner = "\n"
    if invalid:
        inner += (
            "\t<InvalidIdList>\n"
            + "".join(f"\t\t<Id>{_e(i)}</Id>\n" for i in invalid)
            + "\t</InvalidIdList>\n"
        )
    inner += f"\t<QueryKey>{query_key}</QueryKey>\n\t<WebEnv>{_e(webenv)}</WebEnv>\n"
    return xml_document("epost", inner)


# ------------------------------------------------------------------------ einfo
def einfo_dblist_document(dbs: Sequence[str]) -> bytes:
    """``einfo`` without db: the list of databases."""
    inner = "\n<DbList>\n" + "".join(f"\t<DbName>{_e(d)}</DbName>\n" for d in dbs) + "</DbList>\n"
    return xml_document("einfo", inner)


def einfo_dbinfo_document(db: str, menu: str, description: str, count: int, last_update: str) -> bytes:
    """``einfo db=X``: a minimal DbInfo (name, menu name, description, build, count, last update)."""
    inner = (
        f"\n\t<DbInfo>\n\t<DbName>{_e(db)}</DbName>\n\t<MenuName>{_e(menu)}</MenuName>\n"
        f"\t<Description>{_e(description)}</Description>\n\t<DbBuild>sandbox</DbBuild>\n"
        f"\t<Count>{count}</Count>\n\t<LastUpdate>{_e(last_update)}</LastUpdate>\n\t</DbInfo>\n"
    )
    return xml_document("einfo", inner)


# ------------------------------------------------------------------------ esummary
_MON = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_PARSER = etree.XMLParser(**HARDENED)


def _text(elem: etree._Element | None) -> str:
    return "".join(elem.itertext()).strip() if elem is not None else ""


def _display_date(elem: etree._Element | None) -> str:
    """``<Year>2001</Year><Month>06</Month><Day>5</Day>`` -> ``2001 Jun 5`` (as esummary shows it)."""
    if elem is None:
        return ""
    medline = elem.findtext("MedlineDate")
    if medline:
        return medline.strip()
    parts = [elem.findtext("Year") or ""]
    month = (elem.findtext("Month") or "").strip()
    if month.isdigit() and 1 <= int(month) <= 12:
        month = _MON[int(month) - 1]
    if month:
        parts.append(month)
    day = (elem.findtext("Day") or "").strip()
    if day:
        parts.append(str(int(day)) if day.isdigit() else day)
    return " ".join(p for p in parts if p).strip()


def _history_date(ppd: etree._Element) -> str:
    y, m, d = (ppd.findtext(t) or "" for t in ("Year", "Month", "Day"))
    hh, mm = ppd.findtext("Hour") or "0", ppd.findtext("Minute") or "0"
    try:
        return f"{int(y):04d}/{int(m):02d}/{int(d):02d} {int(hh):02d}:{int(mm):02d}"
    except ValueError:
        return f"{y}/{m}/{d}"


def _item(name: str, typ: str, value: object = "") -> str:
    return f"\t<Item Name={quoteattr(name)} Type={quoteattr(typ)}>{_e(value)}</Item>\n"


def _list(name: str, items: Sequence[str]) -> str:
    if not items:
        return f'\t<Item Name={quoteattr(name)} Type="List"></Item>\n'
    return f'\t<Item Name={quoteattr(name)} Type="List">\n' + "".join("\t" + i for i in items) + "\t</Item>\n"


def docsum(pmid: int, record: bytes, pmc_ref_count: int = 0) -> str:
    """A version-1.0 ``<DocSum>`` derived from one raw PubmedArticle/PubmedBookArticle element."""
    root = etree.fromstring(record, _PARSER)
    mc = root.find("MedlineCitation")
    art = mc.find("Article") if mc is not None else None
    book = root.find("BookDocument")
    journal = art.find("Journal") if art is not None else None
    issue = journal.find("JournalIssue") if journal is not None else None

    if art is not None:
        title = _text(art.find("ArticleTitle"))
        authors_el = art.find("AuthorList")
        pub_date = _display_date(issue.find("PubDate") if issue is not None else None)
        epub = ""
        for ad in art.iterfind("ArticleDate"):
            epub = _display_date(ad)
            break
        langs = [lang.text or "" for lang in art.iterfind("Language")]
        pubtypes = [_text(p) for p in art.iterfind("PublicationTypeList/PublicationType")]
        source = (mc.findtext("MedlineJournalInfo/MedlineTA") or "").strip() or (
            journal.findtext("ISOAbbreviation") if journal is not None else ""
        )
        full_journal = _text(journal.find("Title")) if journal is not None else ""
        volume = (issue.findtext("Volume") or "") if issue is not None else ""
        issue_no = (issue.findtext("Issue") or "") if issue is not None else ""
        pages = art.findtext("Pagination/MedlinePgn") or ""
        has_abstract = art.find("Abstract") is not None
        eloc = art.find("ELocationID")
        issn = essn = ""
        if journal is not None:
            for i in journal.iterfind("ISSN"):
                if i.get("IssnType") == "Electronic":
                    essn = i.text or ""
                else:
                    issn = i.text or ""
        nlm_id = mc.findtext("MedlineJournalInfo/NlmUniqueID") or ""
        status = mc.get("Status", "")
    else:
        bk = book if book is not None else root
        title = _text(bk.find("ArticleTitle")) or _text(bk.find("Book/BookTitle"))
        authors_el = bk.find("AuthorList")
        pub_date = _display_date(bk.find("Book/PubDate"))
        epub = ""
        langs = [lang.text or "" for lang in bk.iterfind("Language")]
        pubtypes = [_text(p) for p in bk.iterfind("PublicationType")]
        source = _text(bk.find("Book/Publisher/PublisherName"))
        full_journal = _text(bk.find("Book/BookTitle"))
        volume = issue_no = pages = issn = essn = nlm_id = ""
        has_abstract = bk.find("Abstract") is not None
        eloc = None
        status = "PubMed"

    authors: list[str] = []
    if authors_el is not None:
        for a in authors_el.iterfind("Author"):
            name = _text(a.find("CollectiveName")) or " ".join(
                p
                for p in ((a.findtext("LastName") or "").strip(), (a.findtext("Initials") or "").strip())
                if p
            )
            if name:
                authors.append(name)

    ids = [
        (aid.get("IdType", ""), (aid.text or "").strip())
        for aid in root.iterfind("PubmedData/ArticleIdList/ArticleId")
    ] or [
        (aid.get("IdType", ""), (aid.text or "").strip())
        for aid in root.iterfind("PubmedBookData/ArticleIdList/ArticleId")
    ]
    if not any(t == "pubmed" for t, _ in ids):
        ids.insert(0, ("pubmed", str(pmid)))
    doi = next((v for t, v in ids if t == "doi"), "")
    history = [
        _item(ppd.get("PubStatus", ""), "Date", _history_date(ppd))
        for ppd in root.iterfind("PubmedData/History/PubMedPubDate")
    ]
    pub_status = (
        root.findtext("PubmedData/PublicationStatus")
        or root.findtext("PubmedBookData/PublicationStatus")
        or ""
    )
    record_status = (
        "PubMed - indexed for MEDLINE" if status == "MEDLINE" else f"PubMed - {status or 'as supplied'}"
    )
    eloc_text = f"{eloc.get('EIdType', '')}: {eloc.text or ''}" if eloc is not None else ""
    so = pub_date
    if volume or issue_no or pages:
        so += f";{volume}" + (f"({issue_no})" if issue_no else "") + (f":{pages}" if pages else "")

    body = [
        f"\t<Id>{pmid}</Id>\n",
        _item("PubDate", "Date", pub_date),
        _item("EPubDate", "Date", epub),
        _item("Source", "String", source),
        _list("AuthorList", [_item("Author", "String", a) for a in authors]),
        _item("LastAuthor", "String", authors[-1] if authors else ""),
        _item("Title", "String", title),
        _item("Volume", "String", volume),
        _item("Issue", "String", issue_no),
        _item("Pages", "String", pages),
        _list("LangList", [_item("Lang", "String", lang) for lang in langs]),
        _item("NlmUniqueID", "String", nlm_id),
        _item("ISSN", "String", issn),
        _item("ESSN", "String", essn),
        _list("PubTypeList", [_item("PubType", "String", p) for p in pubtypes]),
        _item("RecordStatus", "String", record_status),
        _item("PubStatus", "String", pub_status),
        _list("ArticleIds", [_item(t, "String", v) for t, v in ids]),
        *([_item("DOI", "String", doi)] if doi else []),  # NCBI omits the item when there is no DOI
        _list("History", history),
        _list("References", []),
        _item("HasAbstract", "Integer", 1 if has_abstract else 0),
        _item("PmcRefCount", "Integer", pmc_ref_count),
        _item("FullJournalName", "String", full_journal),
        _item("ELocationID", "String", eloc_text),
        _item("SO", "String", so),
    ]
    return "<DocSum>\n" + "".join(body) + "</DocSum>\n"


def esummary_document(parts: Sequence[str]) -> bytes:
    """An eSummaryResult of pre-rendered ``<DocSum>``/``<ERROR>`` parts."""
    return xml_document("esummary", "\n" + "\n".join(parts))


def esummary_error(message: str) -> str:
    """An ``<ERROR>`` part inside an eSummaryResult (e.g. for an unknown uid)."""
    return f"<ERROR>{_e(message)}</ERROR>\n"


# ------------------------------------------------------------------------ faults / HTTP errors
def rate_limit_body(count: int) -> bytes:
    """NCBI's 429 body: ``{"error":"API rate limit exceeded","count":"N"}``."""
    return json.dumps(
        {"error": "API rate limit exceeded", "count": str(count)}, separators=(",", ":")
    ).encode()


_HTTP_REASONS = {
    404: "Not Found",
    414: "Request-URI Too Long",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def html_error_page(status: int) -> bytes:
    """An HTML error page like the ones NCBI's front ends serve for 5xx (and 404/414)."""
    reason = _HTTP_REASONS.get(status, "Error")
    return (
        '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
        f"<title>{status} {reason}</title>\n</head><body>\n<h1>{reason}</h1>\n"
        "<p>The server encountered an error and was unable to complete your request.</p>\n"
        "<hr><address>NCBI E-utilities sandbox</address>\n</body></html>\n"
    ).encode()
