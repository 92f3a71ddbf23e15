"""NIH iCite client and parser: citation metrics and the Open Citation Collection, keyed by PMID.

    GET {icite_url}pubs?pmids=1,2,...&format=json      (no key; at most 200 PMIDs per request)

iCite answers ``{"meta": ..., "links": ..., "data": [{pmid, year, title, doi, relative_citation_ratio,
..., cited_by, references, cited_by_clin, last_modified}]}``; PMIDs it does not know are absent from
``data``. Etiquette as for E-utilities (docs/eutils.md): at most 3 requests/s by default, tool and email
sent, every request through `ServiceClient`'s limiter and retry loop.

Malformed answers: a body that is not a JSON object (an HTML error page, text), JSON cut short, a 200
whose object carries an error message instead of ``data`` are retried, then fail naming iCite and the
request. Within a good answer, an entry without a PMID, with a PMID that is not a number, or with a
value of the wrong kind is rejected whole (a `Reject` naming the request and the entry): no partial row.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from litmeta.extractors.service_client import RawDocument, Retry, ServiceClient, describe_params, excerpt
from litmeta.schemas import TABLES, Reject, RowSink

__all__ = ["DEFAULT_ICITE_URL", "ICiteBatch", "ICiteClient", "ICiteRecord", "parse_pubs", "icite_tables"]

DEFAULT_ICITE_URL = "https://icite.od.nih.gov/api/"
BATCH_SIZE = 200
ORIGIN_REFS, ORIGIN_CITED_BY = "icite_refs", "icite_citedby"

_FLOATS = ("relative_citation_ratio", "nih_percentile", "citations_per_year", "expected_citations_per_year",
           "field_citation_rate", "apt", "human", "animal", "molecular_cellular")
_BOOLS = ("is_clinical", "is_research_article", "provisional")
_TRUE, _FALSE = {"yes", "true", "1", "y"}, {"no", "false", "0", "n", ""}


class BadEntry(ValueError):
    """One ``data`` entry that cannot become a row."""


@dataclass
class ICiteRecord:
    """One iCite ``data`` entry, validated."""

    pmid: int
    metrics: dict[str, Any]
    references: list[int] = field(default_factory=list)
    cited_by: list[int] = field(default_factory=list)


@dataclass
class ICiteBatch:
    """One iCite request: the PMIDs asked, its stored answer, the records and the rejected entries."""

    requested: list[int]
    document: RawDocument
    records: dict[int, ICiteRecord]
    rejects: list[Reject]


def _pmid(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise BadEntry(f"{what} {value!r} is not a PMID")
    if isinstance(value, int):
        v = value
    elif isinstance(value, str) and value.strip().isdigit():
        v = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        v = int(value)
    else:
        raise BadEntry(f"{what} {str(value)[:40]!r} is not a number")
    if v <= 0:
        raise BadEntry(f"{what} {v} is not a PMID")
    return v


def _float(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadEntry(f"{name} {value!r} is not a number")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise BadEntry(f"{name} {str(value)[:40]!r} is not a number") from None
    if math.isnan(v) or math.isinf(v):
        return None
    return v


def _bool(value: Any, name: str) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise BadEntry(f"{name} {str(value)[:40]!r} is not yes/no")


def _pmid_list(value: Any, name: str) -> list[int]:
    if value is None or value == "":
        return []
    if isinstance(value, str):  # iCite's CSV style: space-separated
        value = value.split()
    if not isinstance(value, list):
        raise BadEntry(f"{name} is not a list of PMIDs")
    return list(dict.fromkeys(_pmid(v, f"{name} entry") for v in value))


def _record(entry: Any) -> ICiteRecord:
    if not isinstance(entry, dict):
        raise BadEntry("entry is not an object")
    if entry.get("pmid") in (None, ""):
        raise BadEntry("entry without a pmid")
    pmid = _pmid(entry["pmid"], "pmid")
    year = entry.get("year")
    citation_count = entry.get("citation_count")
    metrics: dict[str, Any] = {
        "year": None if year in (None, "") else int(_float(year, "year") or 0) or None,
        "title": None if entry.get("title") is None else str(entry["title"]),
        "doi": (str(entry["doi"]).strip() or None) if entry.get("doi") is not None else None,
        "citation_count": None if citation_count in (None, "") else int(_float(citation_count, "citation_count")),
        "last_modified": None if entry.get("last_modified") is None else str(entry["last_modified"]),
    }
    for name in _FLOATS:
        metrics[name] = _float(entry.get(name), name)
    for name in _BOOLS:
        metrics[name] = _bool(entry.get(name), name)
    metrics["cited_by_clin"] = json.dumps(_pmid_list(entry.get("cited_by_clin"), "cited_by_clin"))
    refs, cited_by = _pmid_list(entry.get("references"), "references"), _pmid_list(entry.get("cited_by"), "cited_by")
    metrics["references_count"], metrics["cited_by_count"] = len(refs), len(cited_by)
    return ICiteRecord(pmid=pmid, metrics=metrics, references=refs, cited_by=cited_by)


def _data(body: bytes) -> list:
    """The ``data`` list of an answer; `Retry` for an answer that is cut short or is an error message."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Retry("truncated" if body.rstrip()[-1:] != b"}" else "malformed", f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise Retry("malformed", "the answer is not a JSON object")
    data = doc.get("data")
    if not isinstance(data, list):
        message = doc.get("error") or doc.get("errors") or doc.get("message") or doc.get("detail")
        if message:
            raise Retry("error200", str(message)[:300])
        raise Retry("malformed", f"no 'data' list in the answer: {excerpt(body)}")
    return data


def parse_pubs(body: bytes, source: str, requested: Iterable[int] | None = None
               ) -> tuple[dict[int, ICiteRecord], list[Reject]]:
    """Records of one iCite answer (by PMID) and the entries rejected, naming ``source`` (the request).

    Entries for PMIDs not in ``requested`` (when given) are left out; `Retry` when the answer as a whole
    is unusable.
    """
    wanted = None if requested is None else set(requested)
    records: dict[int, ICiteRecord] = {}
    rejects: list[Reject] = []
    for n, entry in enumerate(_data(body), 1):
        try:
            rec = _record(entry)
        except BadEntry as exc:
            key = entry.get("pmid") if isinstance(entry, dict) else None
            rejects.append(Reject(source=f"iCite {source}", record_key=f"data {n}" if key in (None, "") else
                                  str(key)[:40], reason=f"iCite: {exc}", excerpt=json.dumps(entry)[:200]))
            continue
        if wanted is not None and rec.pmid not in wanted:
            continue
        records[rec.pmid] = rec
    return records, rejects


def icite_tables(records: Iterable[ICiteRecord], source_sha256: str | None = None) -> dict[str, pa.Table]:
    """``icite_metrics`` rows (observed_at, run_id filled by the warehouse) and ``citation_edges`` of
    origins icite_refs (the record cites) and icite_citedby (the record is cited)."""
    sink = RowSink(("icite_metrics", "citation_edges"))
    metric, edge = TABLES["icite_metrics"].row, TABLES["citation_edges"].row
    for rec in records:
        sink.rows["icite_metrics"].append(metric(pmid=rec.pmid, **rec.metrics, source_sha256=source_sha256))
        for r in rec.references:
            sink.rows["citation_edges"].append(edge(citing_pmid=rec.pmid, cited_pmid=r, origin=ORIGIN_REFS))
        for c in rec.cited_by:
            sink.rows["citation_edges"].append(edge(citing_pmid=c, cited_pmid=rec.pmid, origin=ORIGIN_CITED_BY))
    return sink.to_arrow()


class ICiteClient(ServiceClient):
    """iCite ``/pubs`` client (see the module docstring). Thread-safe, like `EntrezClient`."""

    service = "iCite"
    logger = "litmeta.icite"

    def __init__(self, base_url: str = DEFAULT_ICITE_URL, *, batch_size: int = BATCH_SIZE, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self.batch_size = max(1, min(int(batch_size), BATCH_SIZE))

    def pubs(self, pmids: Iterable[int]) -> Iterator[ICiteBatch]:
        """One `ICiteBatch` per ``batch_size`` PMIDs (deduplicated, in order), lazily."""
        ids = list(dict.fromkeys(int(p) for p in pmids))
        for i in range(0, len(ids), self.batch_size):
            batch = ids[i:i + self.batch_size]
            params = [("pmids", ",".join(map(str, batch))), ("format", "json")]
            wire = params + [("tool", self.tool)] + ([("email", self.email)] if self.email else [])
            head = ",".join(map(str, batch[:5])) + (",..." if len(batch) > 5 else "")
            desc = " ".join(describe_params("pubs", [("format", "json")], ()) + [f"pmids={len(batch)} [{head}]", "GET"])

            def check(body: bytes, batch: list[int] = batch, desc: str = desc) -> tuple[Any, int]:
                records, rejects = parse_pubs(body, desc, batch)
                return (records, rejects), len(records) + len(rejects)

            (records, rejects), doc = self._request("pubs", "GET", f"{self.base_url}pubs", wire, desc, kind="icite",
                                                    check=check, sniff=self.sniff_json)
            yield ICiteBatch(requested=batch, document=doc, records=records, rejects=rejects)
