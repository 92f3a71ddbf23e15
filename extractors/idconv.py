"""PMC ID Converter client and parser: DOIs and PMCIDs to PMIDs, for articles in PMC.

    GET {idconv_url}?ids=a,b,...&idtype=doi|pmcid&format=json&tool=...&email=...   (at most 200 ids)

The answer is ``{"status": "ok", "records": [{"requested-id", "pmcid", "pmid", "doi"} | {"requested-id",
"status": "error", "errmsg"}]}``; it only answers for articles in PMC, so a miss is not an error. Etiquette
as for E-utilities (docs/eutils.md; the converter is an NCBI service): at most 3 requests/s, tool and
email on every request, the shared `ServiceClient` limiter and retry loop.

A record is *resolved* when exactly one numeric PMID answers its requested id; two records for one id
with different PMIDs are *ambiguous* (never an edge); an id with no PMID is *unresolved*. A body that is
not a JSON object, JSON cut short, or a top-level error status is retried, then fails naming the service
and request; a record with a PMID that is not a number is rejected (a `Reject`), never guessed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from litmeta.extractors.service_client import RawDocument, Retry, ServiceClient, describe_params, excerpt
from litmeta.schemas import Reject

__all__ = ["DEFAULT_IDCONV_URL", "ID_TYPES", "IdconvBatch", "IdconvClient", "Resolution", "normalize_id",
           "parse_idconv"]

DEFAULT_IDCONV_URL = "https://pmc.ncbi.nlm.nih.gov/tools/idconv/api/v1/articles/"
BATCH_SIZE = 200
ID_TYPES = ("doi", "pmcid")


def normalize_id(id_type: str, value: str) -> str:
    """The form ids are compared and stored in: DOIs lower-cased (they are case-insensitive), PMCIDs 'PMC' + digits."""
    v = value.strip()
    if id_type == "doi":
        return v.lower()
    if id_type == "pmcid":
        v = v.upper()
        return v if v.startswith("PMC") else f"PMC{v}"
    return v


@dataclass(frozen=True)
class Resolution:
    """What one service said about one id: status 'resolved' (pmid set), 'ambiguous' (candidates) or 'unresolved'."""

    id_type: str
    id_value: str
    status: str
    pmid: int | None = None
    candidates: tuple[int, ...] = ()

    @classmethod
    def of(cls, id_type: str, id_value: str, pmids: Iterable[int]) -> Resolution:
        found = tuple(sorted(set(pmids)))
        if len(found) == 1:
            return cls(id_type, id_value, "resolved", found[0], found)
        return cls(id_type, id_value, "ambiguous" if found else "unresolved", None, found)


@dataclass
class IdconvBatch:
    requested: list[str]
    document: RawDocument
    resolutions: dict[str, Resolution]
    rejects: list[Reject]


def parse_idconv(body: bytes, id_type: str, requested: list[str], source: str
                 ) -> tuple[dict[str, Resolution], list[Reject]]:
    """A `Resolution` for every requested id (normalized) and the records rejected; `Retry` for an unusable answer."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Retry("truncated" if body.rstrip()[-1:] != b"}" else "malformed", f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise Retry("malformed", "the answer is not a JSON object")
    records = doc.get("records")
    if str(doc.get("status", "ok")).lower() != "ok" or not isinstance(records, list):
        message = doc.get("message") or doc.get("errmsg") or doc.get("error") or excerpt(body)
        raise Retry("error200", str(message)[:300])
    wanted = {normalize_id(id_type, r): r for r in requested}
    found: dict[str, list[int]] = {k: [] for k in wanted}
    rejects: list[Reject] = []
    for n, rec in enumerate(records, 1):
        if not isinstance(rec, dict):
            rejects.append(Reject(f"PMC ID Converter {source}", f"record {n}", "PMC ID Converter: not an object",
                                  json.dumps(rec)[:200]))
            continue
        key = normalize_id(id_type, str(rec.get("requested-id") or rec.get(id_type) or ""))
        if key not in found:
            continue
        pmid = rec.get("pmid")
        if pmid in (None, "") or str(rec.get("status", "")).lower() == "error":
            continue
        text = str(pmid).strip()
        if isinstance(pmid, bool) or not text.isdigit() or int(text) <= 0:
            rejects.append(Reject(f"PMC ID Converter {source}", key, f"PMC ID Converter: pmid {text[:40]!r} is "
                                  "not a number", json.dumps(rec)[:200]))
            continue
        found[key].append(int(text))
    return {k: Resolution.of(id_type, k, v) for k, v in found.items()}, rejects


class IdconvClient(ServiceClient):
    """PMC ID Converter client (see the module docstring)."""

    service = "PMC ID Converter"
    logger = "litmeta.idconv"

    def __init__(self, base_url: str = DEFAULT_IDCONV_URL, *, batch_size: int = BATCH_SIZE, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self.batch_size = max(1, min(int(batch_size), BATCH_SIZE))

    def convert(self, id_type: str, ids: Iterable[str]) -> Iterator[IdconvBatch]:
        """One `IdconvBatch` per ``batch_size`` ids of one type ('doi' or 'pmcid'), lazily."""
        if id_type not in ID_TYPES:
            raise ValueError(f"id_type must be one of {ID_TYPES}, not {id_type!r}")
        values = list(dict.fromkeys(normalize_id(id_type, v) for v in ids if v and v.strip()))
        for i in range(0, len(values), self.batch_size):
            batch = values[i:i + self.batch_size]
            params = [("idtype", id_type), ("format", "json")]
            wire = [("ids", ",".join(batch))] + params + [("tool", self.tool)]
            if self.email:
                wire.append(("email", self.email))
            head = ",".join(batch[:3]) + (",..." if len(batch) > 3 else "")
            desc = " ".join(describe_params("idconv", params, ()) + [f"ids={len(batch)} [{head}]", "GET"])

            def check(body: bytes, batch: list[str] = batch, desc: str = desc) -> tuple[Any, int]:
                res, rejects = parse_idconv(body, id_type, batch, desc)
                return (res, rejects), sum(r.status == "resolved" for r in res.values())

            (res, rejects), doc = self._request("idconv", "GET", self.base_url, wire, desc, kind="idconv",
                                                check=check, sniff=self.sniff_json)
            yield IdconvBatch(requested=batch, document=doc, resolutions=res, rejects=rejects)
