"""ECitMatch: reference strings without any id, matched to PMIDs by journal, year, volume and first page.

    POST {eutils}ecitmatch.cgi  db=pubmed  retmode=xml  bdata=journal|year|volume|first_page|author|key|\\r...

Many citations go in one request (one ``bdata`` line each, ``CITATIONS_PER_REQUEST`` at most, POSTed), through
`EntrezClient.ecitmatch`: the same limiter, retry loop, tool/email and stored documents as every other
E-utility. The answer is plain text, one line per citation line, the line echoed with the result appended:
a PMID, ``NOT_FOUND`` (optionally ``;INVALID_JOURNAL`` ...) or ``AMBIGUOUS`` (optionally with candidates).

`parse_citation` reads journal, year, volume and first page from a reference string in MEDLINE style
(``Author A, Author B. Title. J Abbrev. 2019;12(3):345-52.``); a string where one of them cannot be read is
not asked. `parse_ecitmatch` turns an answer into a `Resolution` per citation: one PMID is *resolved*,
``AMBIGUOUS`` is *ambiguous* (never an edge), ``NOT_FOUND`` *unresolved*. An answer that is not such text
(XML, JSON, a line for a key not asked, a missing line) raises `MalformedResponse`; the client retries it
and then fails naming the request. A result that is none of the three is a `Reject` for that citation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from litmeta.extractors.eutils_results import MalformedResponse
from litmeta.extractors.idconv import Resolution
from litmeta.schemas import Reject

if TYPE_CHECKING:
    from litmeta.extractors.entrez import EntrezClient

__all__ = ["CITATIONS_PER_REQUEST", "ID_TYPE", "CitationQuery", "parse_citation", "parse_ecitmatch",
           "resolve_by_ecitmatch"]

#: citation lines per request; NCBI documents no limit, this keeps a POST body small and a retry cheap
CITATIONS_PER_REQUEST = 100
#: id_map.id_type of a citation key (id_value 'journal|year|volume|first_page', normalised)
ID_TYPE = "citation"
_MAX_PMID = 99_999_999

# "... J Abbrev. 2019;12(3):345-52" or "... J Abbrev 2019 Mar;12:e345": the segment before the year is the
# journal, then volume (an optional issue in parentheses) and the first page.
_CITATION = re.compile(
    r"(?:^|[.?!]\s+)(?P<journal>[A-Za-z][^.?!;:]{1,120}?)\.?\s+(?P<year>(?:1[89]|20)\d\d)\b[^;:.]{0,20};\s*"
    r"(?P<volume>[0-9]{1,5}[A-Za-z]?)\s*(?:\([^)]{0,20}\))?\s*:\s*(?P<page>[A-Za-z]{0,2}[0-9]{1,7}[A-Za-z]?)\b")
_AUTHOR = re.compile(r"^\s*(?P<name>[A-Z][A-Za-z'\- ]{0,40}?\s[A-Z]{1,3})\s*[,.]")
_FIELD_JUNK = re.compile(r"[|\r\n\t]+")


def _clean(text: str) -> str:
    return " ".join(_FIELD_JUNK.sub(" ", text).split())


def _norm_journal(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


@dataclass(frozen=True)
class CitationQuery:
    """One citation as ECitMatch takes it; ``id_value`` is its id_map key."""

    journal: str
    year: str
    volume: str
    first_page: str
    author: str = ""

    @property
    def id_value(self) -> str:
        return "|".join((_norm_journal(self.journal), self.year, self.volume.lower(), self.first_page.lower()))

    def bdata(self, key: str) -> str:
        """The request line (no field may hold '|' or a line break)."""
        fields = (_clean(self.journal), self.year, self.volume, self.first_page, _clean(self.author), key)
        return "|".join(fields) + "|"


def parse_citation(text: str | None) -> CitationQuery | None:
    """Journal, year, volume and first page read from a reference string, or None when one is missing."""
    if not text:
        return None
    s = " ".join(text.split())
    m = _CITATION.search(s)
    if m is None:
        return None
    journal = m.group("journal").strip()
    if not _norm_journal(journal):
        return None
    a = _AUTHOR.match(s)
    author = a.group("name").strip() if a and a.start() < m.start("journal") else ""
    return CitationQuery(journal, m.group("year"), m.group("volume"), m.group("page"), author)


def parse_ecitmatch(body: bytes, sent: dict[str, CitationQuery], source: str
                    ) -> tuple[dict[str, Resolution], list[Reject]]:
    """A `Resolution` per citation asked (by id_value) and the results rejected, from one answer.

    ``sent``: request key -> citation. `MalformedResponse` when the answer is not ECitMatch's text.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedResponse(f"not UTF-8 text: {exc}") from None
    head = text.lstrip()[:1]
    if head in ("<", "{", "["):
        raise MalformedResponse(f"expected ECitMatch text lines, got {text.strip()[:80]!r}")
    if not text.endswith("\n"):  # every answer line ends with one: a body cut short could end in a wrong PMID
        raise MalformedResponse(f"the answer does not end with a line break (cut short?): {text[-60:]!r}")
    out: dict[str, Resolution] = {}
    rejects: list[Reject] = []
    seen: set[str] = set()
    for line in text.replace("\r", "\n").split("\n"):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != 7:
            raise MalformedResponse(f"an answer line with {len(parts)} fields, not 7: {line[:80]!r}")
        key, result = parts[5].strip(), parts[6].strip()
        q = sent.get(key)
        if q is None or key in seen:
            raise MalformedResponse(f"an answer line for key {key[:20]!r}, {'asked once' if q else 'not asked'}")
        seen.add(key)
        upper = result.upper()
        if result.isdigit() and 0 < int(result) <= _MAX_PMID:
            out[q.id_value] = Resolution.of(ID_TYPE, q.id_value, [int(result)])
        elif upper.startswith("NOT_FOUND"):
            out[q.id_value] = Resolution(ID_TYPE, q.id_value, "unresolved")
        elif upper.startswith("AMBIGUOUS"):
            cands = tuple(sorted({int(x) for x in re.findall(r"\b\d{1,8}\b", result[9:]) if int(x) > 0}))
            cands = cands if len(cands) > 1 else ()
            out[q.id_value] = Resolution(ID_TYPE, q.id_value, "ambiguous", None, cands)
        else:
            rejects.append(Reject("ecitmatch", q.id_value, f"{source}: result {result[:40]!r} is neither a PMID, "
                                  "NOT_FOUND nor AMBIGUOUS", line[:200]))
    missing = [k for k in sent if k not in seen]
    if missing:
        raise MalformedResponse(f"{len(missing)} of {len(sent)} citations unanswered (first key {missing[0]})")
    return out, rejects


def resolve_by_ecitmatch(client: EntrezClient, citations: Iterable[CitationQuery], per_request: int = CITATIONS_PER_REQUEST
                         ) -> tuple[dict[str, Resolution], list[Reject]]:
    """Every distinct citation (by id_value) matched, ``per_request`` lines per POST (`EntrezClient.ecitmatch`)."""
    todo = list({c.id_value: c for c in citations}.values())
    out: dict[str, Resolution] = {}
    rejects: list[Reject] = []
    for i in range(0, len(todo), max(1, per_request)):
        res, rj = client.ecitmatch(todo[i:i + per_request])
        out.update(res)
        rejects += rj
    return out, rejects
