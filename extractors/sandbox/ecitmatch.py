"""The sandbox's ECitMatch (``{base}/ecitmatch.cgi``): citation lines matched against the records it holds.

A ``bdata`` line ``journal|year|volume|first_page|author|key|`` is answered, as NCBI does, with the line and
the result appended: the PMID of the one record whose journal (ISO abbreviation, MEDLINE abbreviation or
title, compared lower-cased without punctuation), publication year, volume and first page all match;
``AMBIGUOUS`` with the candidates when several do; ``NOT_FOUND`` when none does (the author is not compared).
The answer is plain text whatever ``retmode`` says, like NCBI's. The index is built on first use.
"""

from __future__ import annotations

import re
import threading

from lxml import etree

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _journal(text: str | None) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", (text or "").lower()).split())


def _first_page(record: etree._Element) -> str:
    art = record.find("MedlineCitation/Article")
    if art is None:
        return ""
    start = art.findtext("Pagination/StartPage") or (art.findtext("Pagination/MedlinePgn") or "").split("-")[0]
    return start.strip().lower()


def citation_keys(record: etree._Element) -> list[tuple[str, str, str, str]]:
    """(journal, year, volume, first page) keys a PubmedArticle answers to (one per journal name form)."""
    mc = record.find("MedlineCitation")
    if mc is None:
        return []
    ji = mc.find("Article/Journal/JournalIssue")
    year = (ji.findtext("PubDate/Year") or (ji.findtext("PubDate/MedlineDate") or "")[:4]) if ji is not None else ""
    volume = (ji.findtext("Volume") or "").strip().lower() if ji is not None else ""
    page = _first_page(record)
    if not (year.strip().isdigit() and volume and page):
        return []
    names = {_journal(mc.findtext(p)) for p in ("Article/Journal/ISOAbbreviation", "Article/Journal/Title",
                                                "MedlineJournalInfo/MedlineTA")}
    return [(n, year.strip(), volume, page) for n in sorted(names) if n]


class CitationIndex:
    """(journal, year, volume, first page) -> PMIDs of the snapshot's PubMed records."""

    def __init__(self, pubmed: dict[int, bytes]) -> None:
        self._pubmed = pubmed
        self._index: dict[tuple[str, str, str, str], list[int]] | None = None
        self._lock = threading.Lock()

    def _built(self) -> dict[tuple[str, str, str, str], list[int]]:
        with self._lock:
            if self._index is None:
                index: dict[tuple[str, str, str, str], list[int]] = {}
                for pmid, raw in self._pubmed.items():
                    for key in citation_keys(etree.fromstring(raw, _PARSER)):
                        index.setdefault(key, []).append(pmid)
                self._index = index
            return self._index

    def answer(self, bdata: str) -> bytes:
        """The ECitMatch text answer to ``bdata`` (lines separated by CR or LF)."""
        index = self._built()
        out: list[str] = []
        for line in re.split(r"[\r\n]+", bdata):
            if not line.strip():
                continue
            f = (line.split("|") + [""] * 6)[:6]
            key = (_journal(f[0]), f[1].strip(), f[2].strip().lower(), f[3].strip().lower())
            hits = sorted(set(index.get(key, [])))
            result = (str(hits[0]) if len(hits) == 1 else
                      f"AMBIGUOUS {','.join(map(str, hits))}" if hits else "NOT_FOUND")
            out.append("|".join(f) + "|" + result)
        return ("\n".join(out) + "\n").encode()
