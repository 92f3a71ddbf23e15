"""DOIs and PMCIDs the PMC ID Converter does not know, resolved with E-utilities searches.

One esearch of many ``"VALUE"[doi]`` (or ``[pmcid]``) terms OR-ed together (POSTed when long, as the
client does for every long request) finds the PMIDs; one esummary of those PMIDs tells which record
carries which id (the search alone cannot attribute its hits). A value two records carry is ambiguous,
a value none carries unresolved: neither is guessed.
"""

from __future__ import annotations

from collections.abc import Iterable

from litmeta.extractors.entrez import EntrezClient
from litmeta.extractors.idconv import Resolution, normalize_id

__all__ = ["FIELD", "TERMS_PER_SEARCH", "resolve_by_esearch", "search_term"]

FIELD = {"doi": "doi", "pmcid": "pmcid"}
TERMS_PER_SEARCH = 100


def search_term(id_type: str, values: Iterable[str]) -> str:
    """``"v1"[doi] OR "v2"[doi] ...`` (quotes keep DOIs with brackets or parentheses one term)."""
    field = FIELD[id_type]
    return " OR ".join(f'"{v.replace(chr(34), "")}"[{field}]' for v in values)


def _ids_of(docsum: dict) -> set[str]:
    out: set[str] = set()
    for v in [docsum.get("DOI", "")] + list(docsum.get("ArticleIds") or []):
        if isinstance(v, str) and v.strip():
            s = v.strip()
            out.add(s.lower())
            out.add(normalize_id("pmcid", s) if s.upper().startswith("PMC") else s.lower())
    return out


def resolve_by_esearch(client: EntrezClient, id_type: str, values: Iterable[str],
                       per_search: int = TERMS_PER_SEARCH) -> dict[str, Resolution]:
    """A `Resolution` (resolved_by 'esearch') for every value, ``per_search`` values per esearch."""
    vals = list(dict.fromkeys(normalize_id(id_type, v) for v in values))
    out: dict[str, Resolution] = {}
    for i in range(0, len(vals), per_search):
        batch = vals[i:i + per_search]
        hits = client.esearch(search_term(id_type, batch), history=False).ids if batch else []
        carriers: dict[str, list[int]] = {v: [] for v in batch}
        if hits:
            for ds in client.esummary(hits):
                pmid = str(ds.get("Id") or ds.get("uid") or "").strip()
                if not pmid.isdigit():
                    continue
                held = _ids_of(ds)
                for v in batch:
                    if v in held:
                        carriers[v].append(int(pmid))
        out.update({v: Resolution.of(id_type, v, p) for v, p in carriers.items()})
    return out
