"""The six E-utilities of the sandbox, answered from a :class:`~.snapshot.Snapshot`.

Each endpoint takes the request parameters and returns ``(status, content_type, body)``.
Behaviour follows NCBI where clients depend on it (see DESIGN.md, "Sandbox server"):

- errors in the request (bad db, unknown WebEnv, no ids, ...) are HTTP 200 documents with a
  non-empty ``<ERROR>``, as NCBI sends them;
- for db=pubmed, esearch and efetch-from-history refuse ``retstart`` > 9998 with NCBI's text
  (:data:`~.responses.RETSTART_CAP_ERROR`), whatever the count, and never return ids past
  position 9,999;
- esearch orders results newest first (entrez date, then PMID, both descending);
- elink: repeated ``id=`` -> one LinkSet per parameter; a comma list (or WebEnv input) -> one
  merged LinkSet.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from . import responses as R
from .ecitmatch import CitationIndex
from .history import HistoryError, HistoryStore
from .linkout import Linkout, LinkoutFileError
from .snapshot import Snapshot, parse_query_date

XML = "text/xml; charset=UTF-8"
TEXT = "text/plain; charset=UTF-8"
DATABASES = ("pubmed", "pmc")
PUBMED_CAP = 9999  # PubMed serves positions 0..9998 only
#: link names a dbfrom=pubmed/pmc elink accepts even when the snapshot has none of them
KNOWN_LINKNAMES = frozenset(
    {
        "pubmed_pubmed",
        "pubmed_pubmed_citedin",
        "pubmed_pubmed_refs",
        "pubmed_pubmed_reviews",
        "pubmed_pubmed_combined",
        "pubmed_pubmed_five",
        "pubmed_pubmed_alsoviewed",
        "pubmed_pmc",
        "pubmed_pmc_refs",
        "pubmed_pmc_local",
        "pmc_pubmed",
        "pmc_pmc_citedby",
        "pmc_pmc_cites",
        "pmc_refs_pubmed",
    }
)

Result = tuple[int, str, bytes]


class Params:
    """Request parameters (query string + form body), names case-insensitive, order kept."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.pairs = [(k.lower(), v) for k, v in pairs]

    def get(self, name: str, default: str = "") -> str:
        """First non-empty value of ``name`` (or ``default``)."""
        for k, v in self.pairs:
            if k == name and v.strip():
                return v.strip()
        return default

    def getall(self, name: str) -> list[str]:
        """Every value of ``name`` in request order (one per repeated parameter)."""
        return [v for k, v in self.pairs if k == name]

    def id_groups(self) -> list[list[str]]:
        """One group per ``id=`` parameter, each split on commas (and whitespace)."""
        groups = []
        for value in self.getall("id"):
            items = [t for t in value.replace(",", " ").split() if t]
            if items:
                groups.append(items)
        return groups

    def explicit_id_count(self) -> int:
        """How many ids the request names in ``id=`` (for /_stats ids_requested)."""
        return sum(len(g) for g in self.id_groups())


class RequestError(Exception):
    """A request NCBI would answer with an HTTP-200 ``<ERROR>`` document."""


def _int_param(params: Params, name: str, default: int) -> int:
    raw = params.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RequestError(f"Invalid {name} value: {raw}") from None
    if value < 0:
        raise RequestError(f"Invalid {name} value: {raw}")
    return value


def _uid(token: str, db: str) -> int | None:
    t = token.strip()
    if db == "pmc" and t.upper().startswith("PMC"):
        t = t[3:]
    return int(t) if t.isdigit() else None


def _dedup(ids: Iterable[int]) -> list[int]:
    seen: set[int] = set()
    out = []
    for i in ids:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


@dataclass
class Endpoints:
    """The endpoint implementations; shared, thread-safe (the snapshot is read-only)."""

    snapshot: Snapshot
    history: HistoryStore
    #: ECitMatch and LinkOut, built on first use (see .ecitmatch, .linkout)
    citations: CitationIndex = field(init=False, repr=False)
    linkout: Linkout = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.citations = CitationIndex(self.snapshot.pubmed)
        self.linkout = Linkout(self.snapshot.root / "linkout.tsv")

    def ecitmatch(self, params: Params) -> Result:
        """ECitMatch: plain text, one answer line per ``bdata`` line (see .ecitmatch)."""
        if self._db(params, default="pubmed") != "pubmed":
            raise RequestError("ECitMatch searches db=pubmed only")
        bdata = "\r".join(params.getall("bdata"))
        if not bdata.strip():
            return 200, "text/plain; charset=UTF-8", b"\n"
        return 200, "text/plain; charset=UTF-8", self.citations.answer(bdata)

    # ------------------------------------------------------------------ helpers
    def _db(self, params: Params, name: str = "db", default: str = "") -> str:
        db = params.get(name, default).lower()
        if db not in DATABASES:
            raise RequestError(f"Invalid db name specified: {db}")
        return db

    def _history_ids(self, params: Params, db: str, default_retmax: int, cap: bool) -> list[int]:
        webenv = params.get("webenv")
        if not webenv:
            return []
        try:
            entry = self.history.get(webenv, params.get("query_key") or None)
        except HistoryError as exc:
            raise RequestError(str(exc)) from None
        retstart = _int_param(params, "retstart", 0)
        retmax = _int_param(params, "retmax", default_retmax)
        if cap and db == "pubmed" and retstart > PUBMED_CAP - 1:
            raise RequestError(R.RETSTART_CAP_ERROR)
        end = retstart + retmax
        if cap and db == "pubmed":
            end = min(end, PUBMED_CAP)
        return list(entry.ids[retstart:end])

    def _ids(self, params: Params, db: str, default_retmax: int = 10000, cap: bool = False) -> list[int]:
        """Ids from ``id=`` (all groups, flattened) or else from WebEnv/query_key."""
        groups = params.id_groups()
        if groups:
            return [u for g in groups for t in g if (u := _uid(t, db)) is not None]
        return self._history_ids(params, db, default_retmax, cap)

    def _newest_first(self, ids: list[int]) -> list[int]:
        snap = self.snapshot
        return sorted(ids, key=lambda p: (snap.date_of(p, "edat") or 0, p), reverse=True)

    # ------------------------------------------------------------------ esearch
    def esearch(self, params: Params) -> Result:
        """ESearch: searches.tsv lookup, date filter, newest first, history, the 9,999 cap."""
        db = self._db(params, default="pubmed")  # NCBI: db defaults to pubmed
        term = params.get("term")
        webenv = params.get("webenv")
        usehistory = params.get("usehistory").lower() == "y"
        history_term = term.startswith("#") and term[1:].isdigit()
        ids: list[int] | None
        if (not term or history_term) and webenv:
            try:
                key = term[1:] if history_term else (params.get("query_key") or None)
                ids = list(self.history.get(webenv, key).ids)
            except HistoryError as exc:
                raise RequestError(str(exc)) from None
            term = term or f"#{params.get('query_key') or 1}"
        elif not term:
            raise RequestError("Empty term and query_key - nothing todo")
        else:
            ids = self.snapshot.search(term) if db == "pubmed" else None
        not_found = ids is None
        ids = self._filter_dates(params, ids or [])
        ids = self._newest_first(ids)
        count = len(ids)
        retstart = _int_param(params, "retstart", 0)
        retmax = min(_int_param(params, "retmax", 20), 100000)
        if db == "pubmed" and retstart > PUBMED_CAP - 1:
            return 200, XML, R.error_document("esearch", R.RETSTART_CAP_ERROR)
        end = retstart + retmax
        if db == "pubmed":
            end = min(end, PUBMED_CAP)
        page = ids[retstart:end]
        query_key = None
        if usehistory:
            try:
                webenv, query_key = self.history.add(db, ids, webenv or None)
            except HistoryError as exc:
                raise RequestError(str(exc)) from None
        body = R.esearch_document(
            count=count,
            retstart=retstart,
            ids=page,
            term=term,
            query_key=query_key,
            webenv=webenv if usehistory else None,
            phrase_not_found=not_found,
        )
        return 200, XML, body

    def _filter_dates(self, params: Params, ids: list[int]) -> list[int]:
        datetype = (params.get("datetype") or "pdat").lower()
        if datetype not in ("edat", "pdat", "mdat"):
            raise RequestError(f"Invalid datetype: {datetype}")
        lo = hi = None
        if params.get("reldate"):
            days = _int_param(params, "reldate", 0)
            today = _dt.date.today()
            lo = int((today - _dt.timedelta(days=days)).strftime("%Y%m%d"))
            hi = int(today.strftime("%Y%m%d"))
        if params.get("mindate"):
            lo = parse_query_date(params.get("mindate"), end=False)
            if lo is None:
                raise RequestError(f"Invalid mindate: {params.get('mindate')}")
        if params.get("maxdate"):
            hi = parse_query_date(params.get("maxdate"), end=True)
            if hi is None:
                raise RequestError(f"Invalid maxdate: {params.get('maxdate')}")
        if lo is None and hi is None:
            return list(ids)
        snap = self.snapshot
        out = []
        for pmid in ids:
            d = snap.date_of(pmid, datetype)
            if d is None or ((lo is None or d >= lo) and (hi is None or d <= hi)):
                out.append(pmid)
        return out

    # ------------------------------------------------------------------ efetch
    def efetch(self, params: Params) -> Result:
        """EFetch: PubmedArticleSet / pmc-articleset in request order, unknown ids left out."""
        db = self._db(params)
        ids = _dedup(self._ids(params, db, default_retmax=10000, cap=True))
        if not ids:
            raise RequestError("Empty id list - nothing todo")
        rettype = params.get("rettype").lower()
        retmode = params.get("retmode").lower()
        if rettype == "uilist":
            return 200, TEXT, R.uilist_text(ids)
        if rettype not in ("", "xml", "abstract", "full", "null") or retmode not in ("", "xml"):
            raise RequestError(
                f"The sandbox serves retmode=xml only (got rettype={rettype or '-'}, retmode={retmode or '-'})"
            )
        store = self.snapshot.pubmed if db == "pubmed" else self.snapshot.pmc
        records = [store[i] for i in ids if i in store]
        if db == "pubmed":
            return 200, XML, R.efetch_pubmed_document(records)
        return 200, XML, R.efetch_pmc_document(records)

    # ------------------------------------------------------------------ epost
    def epost(self, params: Params) -> Result:
        """EPost: store the ids (deduplicated, request order) under a new query key."""
        db = self._db(params)
        tokens = [t for g in params.id_groups() for t in g]
        ids = _dedup(u for t in tokens if (u := _uid(t, db)) is not None)
        invalid = [t for t in tokens if _uid(t, db) is None]
        if not ids:
            raise RequestError("Empty ID list; Nothing to store")
        try:
            webenv, key = self.history.add(db, ids, params.get("webenv") or None)
        except HistoryError as exc:
            raise RequestError(str(exc)) from None
        return 200, XML, R.epost_document(key, webenv, invalid)

    # ------------------------------------------------------------------ esummary
    def esummary(self, params: Params) -> Result:
        """ESummary (version 1.0 DocSums) for db=pubmed; unknown uids get an ``<ERROR>`` part."""
        db = self._db(params)
        if db != "pubmed":
            raise RequestError("The sandbox serves esummary for db=pubmed only")
        if not params.id_groups() and not params.get("webenv"):
            raise RequestError("Neither query_key nor id specified")
        ids = _dedup(self._ids(params, db, default_retmax=10000))
        if not ids:
            raise RequestError("Empty id list - nothing todo")
        parts = []
        for pmid in ids:
            record = self.snapshot.pubmed.get(pmid)
            if record is None:
                parts.append(R.esummary_error(f"UID={pmid}: cannot get document summary"))
            else:
                pmc_refs = len(self.snapshot.link_targets("pubmed", pmid, "pubmed_pmc_refs"))
                parts.append(R.docsum(pmid, record, pmc_refs))
        return 200, XML, R.esummary_document(parts)

    # ------------------------------------------------------------------ einfo
    def einfo(self, params: Params) -> Result:
        """EInfo: the db list, or a minimal DbInfo with the record count."""
        db = params.get("db").lower()
        if not db:
            return 200, XML, R.einfo_dblist_document(DATABASES)
        if db not in DATABASES:
            return 200, XML, R.error_document("einfo", f"Can not retrieve DbInfo for db={db}")
        snap = self.snapshot
        if db == "pubmed":
            return (
                200,
                XML,
                R.einfo_dbinfo_document(
                    "pubmed", "PubMed", "PubMed bibliographic record", len(snap.pubmed), "sandbox"
                ),
            )
        return 200, XML, R.einfo_dbinfo_document("pmc", "PMC", "PubMed Central", len(snap.pmc), "sandbox")

    # ------------------------------------------------------------------ elink
    def elink(self, params: Params) -> Result:
        """ELink neighbor / neighbor_score / neighbor_history (see the module docstring)."""
        dbfrom = self._db(params, name="dbfrom")
        db = params.get("db").lower()
        if db and db not in DATABASES:
            raise RequestError(f"Invalid db name specified: {db}")
        cmd = (params.get("cmd") or "neighbor").lower()
        if cmd in ("llinks", "prlinks"):
            ids = _dedup(u for t in self._ids(params, dbfrom) if (u := _uid(str(t), dbfrom)) is not None)
            if dbfrom != "pubmed" or not ids:
                raise RequestError("Empty id list - nothing todo" if not ids else f"no LinkOut for dbfrom={dbfrom}")
            try:
                return 200, XML, self.linkout.answer(cmd, ids)
            except LinkoutFileError as exc:
                raise RequestError(str(exc)) from None
        if cmd not in ("neighbor", "neighbor_score", "neighbor_history"):
            raise RequestError(f"The sandbox does not support cmd={cmd}")
        linkname = params.get("linkname")
        if linkname and not (linkname in KNOWN_LINKNAMES or linkname in self.snapshot.linknames):
            raise RequestError(f"Invalid linkname: {linkname}")
        if linkname and not linkname.startswith(dbfrom + "_"):
            raise RequestError(f"linkname {linkname} does not start from db {dbfrom}")

        groups = params.id_groups()
        if groups:
            id_groups = [[t for t in g if _uid(t, dbfrom) is not None] for g in groups]
        else:
            hist = self._history_ids(params, dbfrom, default_retmax=10**9, cap=False)
            id_groups = [[str(i) for i in hist]] if hist else []
        if not any(id_groups):
            raise RequestError("Empty id list - nothing todo")

        target = db or dbfrom
        if linkname:
            names = [linkname]
        elif cmd == "neighbor_score":
            names = [f"{dbfrom}_{target}"]
        else:
            prefix = f"{dbfrom}_{target}"
            names = sorted(n for n in self.snapshot.linknames if n == prefix or n.startswith(prefix + "_"))

        webenv = None
        if cmd == "neighbor_history":
            webenv = params.get("webenv") or self.history.new_env()
        with_scores = cmd == "neighbor_score"
        linksets = []
        for group in id_groups:
            uids = _dedup(u for t in group if (u := _uid(t, dbfrom)) is not None)
            ls = R.LinkSetOut(dbfrom=dbfrom, ids=[str(u) for u in uids], webenv=webenv)
            for name in names:
                links = self._merged_links(dbfrom, uids, name, with_scores)
                if not links:
                    continue
                dbto = name.split("_")[1] if name.count("_") >= 1 else target
                out = R.LinkSetDbOut(dbto=dbto, linkname=name, links=links)
                if webenv is not None:
                    try:
                        _, out.query_key = self.history.add(dbto, [i for i, _ in links], webenv)
                    except HistoryError as exc:
                        raise RequestError(str(exc)) from None
                ls.dbs.append(out)
            linksets.append(ls)
        return 200, XML, R.elink_document(linksets)

    def _merged_links(
        self, dbfrom: str, uids: list[int], name: str, with_scores: bool
    ) -> list[tuple[int, int | None]]:
        snap = self.snapshot
        if len(uids) == 1:
            raw = snap.link_targets(dbfrom, uids[0], name)
            links = _dedup_links(raw)
        else:
            best: dict[int, int | None] = {}
            order: list[int] = []
            for u in uids:
                for to_id, score in snap.link_targets(dbfrom, u, name):
                    if to_id not in best:
                        best[to_id] = score
                        order.append(to_id)
                    elif score is not None and (best[to_id] is None or score > best[to_id]):
                        best[to_id] = score
            links = [(i, best[i]) for i in order]
            if with_scores and any(s is not None for _, s in links):
                links.sort(key=lambda item: -(item[1] if item[1] is not None else -1))
        if not with_scores:
            links = [(i, None) for i, _ in links]
        return links


def _dedup_links(raw: list[tuple[int, int | None]]) -> list[tuple[int, int | None]]:
    seen: set[int] = set()
    out = []
    for to_id, score in raw:
        if to_id not in seen:
            seen.add(to_id)
            out.append((to_id, score))
    return out
