"""Generate a synthetic sandbox snapshot of N PubMed articles with a realistic link graph.

    python bench/snapshot_gen.py --out DIR --n 5000 --seed 1 [--corpus ../shared/corpus/pubmed]
                                 [--search-term TERM --search-n 25000] [--api-key KEY]

Records: the real ``PubmedArticle`` records of the corpus (``*.xml``/``*.xml.gz``; unparseable
files skipped), cycled in a seeded order and renumbered to PMIDs ``30000001 .. 30000000+N``.
Each copy gets its new PMID in ``MedlineCitation/PMID`` and in the ``pubmed`` ArticleId; PMC
ids and other ArticleIds are dropped, DOIs and PIIs get a ``-synPMID`` suffix so they stay
unique; CommentsCorrections lose their PMIDs; the ReferenceList is replaced by one listing
exactly the article's synthetic references (so record and links agree); the entrez/pubmed
history dates are set from the PMID, spread linearly over 2015-01-01 .. 2024-12-31 (higher
PMID = newer), so esearch date splitting has something to split.

Links (``links.tsv``):

- ``pubmed_pubmed_refs`` citing -> cited: ~30 per article (Gaussian, sd 8), always older
  (lower PMID); targets drawn 60 % by preferential attachment (probability ~ cited-by + 1),
  40 % uniformly, so cited-by counts are long-tailed;
- ``pubmed_pubmed_citedin`` cited -> citing: exactly the reverse of refs;
- ``pubmed_pubmed`` (similar articles): 100 per article (fewer when N <= 100), mostly PMID
  neighbours plus random ones, never the article itself, with strictly descending integer
  scores, listed by score.

FTP files (with ``--ftp-files K``, DESIGN.md "Snapshot directory"): ``ftp/baseline/`` gets K files
``pubmed26n0001.xml.gz`` .. of ``--ftp-records`` records each (default 30,000, a real baseline file's
size), PMIDs from ``FTP_BASE_PMID + 1``, each with a few references to lower PMIDs; ``ftp/updatefiles/``
gets ``--ftp-updates`` files numbered on from the baseline, each revising records of the baseline (and of
the update before: a later DateRevised, a changed title), adding new records, and ending with a
``DeleteCitation`` of some PMIDs (one of them revised the day before); every file has its ``.md5``.
With ``--citation-sources`` (``citation_sources=True``) it also writes what iCite and the PMC ID Converter
serve: ``icite.jsonl`` (one iCite ``data`` object per article) whose citations are elink's less ~5 %, plus
~35 % more citing articles elink does not list (newer articles, as in reality), so iCite knows ~30 % more
citing articles than elink; ``idconv.tsv`` for the articles "in PMC" (every second one: doi, pmcid rows).
In the records, a fifth of the references carry only the cited article's DOI (every article gets a DOI:
``10.5555/syn.PMID`` where its template has none), and every 25th article cites one DOI neither service
knows (``10.9999/unresolvable.PMID``). Off by default: without it the output is unchanged.

With ``--citation-strings`` (``citation_strings=True``) a tenth of the other references carry only a citation
text (``Synth A. Synthetic article PMID. J Abbrev. YEAR;VOLUME:PAGE-PAGE.``, the cited record's MEDLINE journal
abbreviation, year and volume) and no id, which the sandbox's ECitMatch matches: every record then gets its
own first page (``MedlinePgn`` 100+index) and a volume ("1" where its template has none). Every 20th article
also cites a journal no record has and one reference text without journal, volume or page (never matched).

``searches.tsv`` (with ``--search-term``): ``term pmid date``; the term matches ``--search-n``
PMIDs (more than N is fine: PMIDs past the last article have no record but carry a date so
the sandbox can date-filter them).  ``meta.json`` says all of this is synthetic.
Deterministic for a given seed and corpus.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path

from lxml import etree

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = Path(os.environ.get("LITMETA_SHARED", REPO.parent / "shared")) / "corpus" / "pubmed"
BASE_PMID = 30_000_000
DATE_FIRST = dt.date(2015, 1, 1)
DATE_LAST = dt.date(2024, 12, 31)
REFS_MEAN, REFS_SD = 30, 8
SIMILAR_N = 100
PER_FILE = 1000
FTP_BASE_PMID = 40_000_000
FTP_RECORDS = 30_000
FTP_YEAR = 26
PUBMED_HEAD = (
    b'<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n<PubmedArticleSet>\n'
)
_PARSER_OPTS = {"resolve_entities": False, "no_network": True, "load_dtd": False}


# ---------------------------------------------------------------------- corpus
def load_templates(corpus_dir: str | Path) -> list[bytes]:
    """Raw ``<PubmedArticle>`` elements of the corpus (sorted files, first copy of each PMID)."""
    folder = Path(corpus_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"corpus directory not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.name.endswith((".xml", ".xml.gz")))
    seen: set[str] = set()
    out: list[bytes] = []
    for f in files:
        found: list[tuple[str, bytes]] = []
        try:
            with gzip.open(f, "rb") if f.name.endswith(".gz") else open(f, "rb") as fh:
                for _, el in etree.iterparse(fh, events=("end",), tag="PubmedArticle", **_PARSER_OPTS):
                    pmid = (el.findtext("MedlineCitation/PMID") or "").strip()
                    if pmid and el.find("MedlineCitation/Article") is not None:
                        found.append((pmid, etree.tostring(el, encoding="utf-8", with_tail=False)))
                    el.clear(keep_tail=True)
        except (etree.XMLSyntaxError, OSError, EOFError):
            continue  # unparseable file: skipped entirely
        for pmid, raw in found:
            if pmid not in seen:
                seen.add(pmid)
                out.append(raw)
    if not out:
        raise ValueError(f"no PubmedArticle records found in {folder}")
    return out


# ---------------------------------------------------------------------- dates
def entrez_date(pmid: int, span: int) -> dt.date:
    """Entrez date of a synthetic PMID: linear over DATE_FIRST..DATE_LAST across ``span`` PMIDs."""
    idx = pmid - BASE_PMID - 1
    days = (DATE_LAST - DATE_FIRST).days
    frac = idx / max(1, span - 1)
    return DATE_FIRST + dt.timedelta(days=round(min(max(frac, 0.0), 1.0) * days))


# ---------------------------------------------------------------------- graph
def build_refs(n: int, rng: random.Random) -> list[list[int]]:
    """refs[i] = indices (< i) article i cites; preferential attachment gives a long tail."""
    refs: list[list[int]] = [[] for _ in range(n)]
    urn: list[int] = []  # index j appears 1 + (times cited) times
    for i in range(n):
        k = min(i, max(0, round(rng.gauss(REFS_MEAN, REFS_SD))))
        chosen: set[int] = set()
        tries = 0
        while len(chosen) < k and tries < 20 * k + 50:
            tries += 1
            j = rng.choice(urn) if urn and rng.random() < 0.6 else rng.randrange(i)
            chosen.add(j)
        if len(chosen) < k:  # tiny i: take what is left
            chosen.update(range(i))
        refs[i] = sorted(chosen, reverse=True)
        urn.extend(refs[i])
        urn.append(i)
    return refs


def build_similar(n: int, rng: random.Random) -> list[list[tuple[int, int]]]:
    """similar[i] = [(index, score), ...] by strictly descending score, never i itself."""
    out: list[list[tuple[int, int]]] = []
    want = min(SIMILAR_N, n - 1)
    for i in range(n):
        chosen: list[int] = []
        seen = {i}
        while len(chosen) < want:
            if rng.random() < 0.6:
                j = i + rng.randint(-300, 300)
                if not 0 <= j < n:
                    continue
            else:
                j = rng.randrange(n)
            if j not in seen:
                seen.add(j)
                chosen.append(j)
        score = rng.randint(40_000_000, 80_000_000)
        scored = []
        for j in chosen:
            scored.append((j, score))
            score -= rng.randint(1, max(2, score // 40))
        out.append(scored)
    return out


# ---------------------------------------------------------------------- records
def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def rewrite_record(template: bytes, pmid: int, cited: list[int], edate: dt.date,
                   cited_doi: dict[int, str] | None = None, own_doi: str | None = None,
                   extra_dois: list[str] = (), cited_text: dict[int, str] | None = None,
                   extra_texts: list[str] = (), first_page: int | None = None) -> bytes:
    """A renumbered copy of ``template`` (see the module docstring for what changes).

    ``cited_doi``: references listed by DOI only (cited PMID -> its DOI); ``own_doi``: a DOI to give a
    record whose template has none; ``extra_dois``: references to DOIs no article carries; ``cited_text``:
    references listed by citation text only; ``extra_texts``: id-less references no record matches;
    ``first_page``: the record's own pagination (and a volume where it has none).
    """
    rec = etree.fromstring(template, etree.XMLParser(**_PARSER_OPTS))
    mc = rec.find("MedlineCitation")
    mc.find("PMID").text = str(pmid)
    suffix = f"-syn{pmid}"
    for other in mc.findall("OtherID"):
        if (other.text or "").strip().upper().startswith("PMC"):
            mc.remove(other)
    for cc in mc.iterfind("CommentsCorrectionsList/CommentsCorrections"):
        for p in cc.findall("PMID"):
            cc.remove(p)
    for eloc in mc.iterfind("Article/ELocationID"):
        if eloc.text:
            eloc.text = eloc.text.strip() + suffix
    if first_page is not None:
        _own_pages(mc, first_page)

    pd = rec.find("PubmedData")
    if pd is None:
        pd = _sub(rec, "PubmedData")
    history = pd.find("History")
    if history is None:
        history = etree.Element("History")
        pd.insert(0, history)
    for status in ("entrez", "pubmed"):
        ppd = next((p for p in history.iterfind("PubMedPubDate") if p.get("PubStatus") == status), None)
        if ppd is None:
            ppd = _sub(history, "PubMedPubDate", PubStatus=status)
        for child in list(ppd):
            ppd.remove(child)
        _sub(ppd, "Year", str(edate.year))
        _sub(ppd, "Month", str(edate.month))
        _sub(ppd, "Day", str(edate.day))
        _sub(ppd, "Hour", "6")
        _sub(ppd, "Minute", "0")
    if pd.find("PublicationStatus") is None:
        history.addnext(etree.Element("PublicationStatus"))
        pd.find("PublicationStatus").text = "ppublish"
    ids = pd.find("ArticleIdList")
    if ids is None:
        ids = etree.Element("ArticleIdList")
        pd.find("PublicationStatus").addnext(ids)
    kept = [(a.get("IdType"), (a.text or "").strip()) for a in ids if a.get("IdType") in ("doi", "pii")]
    for child in list(ids):
        ids.remove(child)
    _sub(ids, "ArticleId", str(pmid), IdType="pubmed")
    for id_type, value in kept:
        if value:
            _sub(ids, "ArticleId", value + suffix, IdType=id_type)
    if own_doi and not any(t == "doi" and v for t, v in kept):
        _sub(ids, "ArticleId", own_doi, IdType="doi")
    for old in pd.findall("ReferenceList"):
        pd.remove(old)
    if cited or extra_dois or extra_texts:
        rl = _sub(pd, "ReferenceList")
        for c in cited:
            ref = _sub(rl, "Reference")
            if cited_text and c in cited_text:
                _sub(ref, "Citation", cited_text[c])
                continue
            if cited_doi and c in cited_doi:
                _sub(ref, "Citation", "Synthetic reference by DOI.")
                _sub(_sub(ref, "ArticleIdList"), "ArticleId", cited_doi[c], IdType="doi")
                continue
            _sub(ref, "Citation", f"Synthetic reference to PMID {c}.")
            _sub(_sub(ref, "ArticleIdList"), "ArticleId", str(c), IdType="pubmed")
        for d in extra_dois:
            ref = _sub(rl, "Reference")
            _sub(ref, "Citation", "Synthetic reference to a DOI no service knows.")
            _sub(_sub(ref, "ArticleIdList"), "ArticleId", d, IdType="doi")
        for t in extra_texts:
            _sub(_sub(rl, "Reference"), "Citation", t)
    return etree.tostring(rec, encoding="utf-8")


# ---------------------------------------------------------------------- FTP files
def revise_record(record: bytes, revised: dt.date, note: str) -> bytes:
    """``record`` with DateRevised set to ``revised`` and ``note`` appended to its title (a new revision)."""
    rec = etree.fromstring(record, etree.XMLParser(**_PARSER_OPTS))
    mc = rec.find("MedlineCitation")
    dr = mc.find("DateRevised")
    if dr is None:
        dr = etree.Element("DateRevised")
        mc.find("PMID").addnext(dr)
    for child in list(dr):
        dr.remove(child)
    _sub(dr, "Year", str(revised.year))
    _sub(dr, "Month", f"{revised.month:02d}")
    _sub(dr, "Day", f"{revised.day:02d}")
    title = mc.find("Article/ArticleTitle")
    if title is not None:
        title.text = (title.text or "") + note
    return etree.tostring(rec, encoding="utf-8")


def _write_ftp_file(path: Path, records: list[bytes], deleted: list[int] = ()) -> None:
    body = [PUBMED_HEAD]
    for r in records:
        body += [r, b"\n"]
    if deleted:
        body.append(b"<DeleteCitation>\n" + b"".join(b'<PMID Version="1">%d</PMID>\n' % p for p in deleted)
                    + b"</DeleteCitation>\n")
    body.append(b"</PubmedArticleSet>\n")
    data = gzip.compress(b"".join(body), compresslevel=6, mtime=0)
    path.write_bytes(data)
    path.with_name(path.name + ".md5").write_text(f"MD5({path.name})= {hashlib.md5(data).hexdigest()}\n")


def generate_ftp_files(out_dir: str | Path, files: int, records: int = FTP_RECORDS, updates: int = 2,
                       seed: int = 1, templates: list[bytes] | None = None,
                       corpus_dir: str | Path = DEFAULT_CORPUS) -> dict:
    """Write ``ftp/baseline/`` (``files`` files of ``records`` records) and ``ftp/updatefiles/`` (``updates``
    files) under ``out_dir``; returns what is where (names, PMIDs revised and deleted)."""
    rng = random.Random(f"ftp:{seed}")
    templates = templates or load_templates(corpus_dir)
    out = Path(out_dir)
    base_dir, upd_dir = out / "ftp" / "baseline", out / "ftp" / "updatefiles"
    base_dir.mkdir(parents=True, exist_ok=True)
    upd_dir.mkdir(parents=True, exist_ok=True)
    current: dict[int, bytes] = {}
    names: dict[str, list[str]] = {"baseline": [], "updatefiles": []}
    n = files * records
    for f in range(files):
        recs = []
        for i in range(f * records, (f + 1) * records):
            pmid = FTP_BASE_PMID + 1 + i
            cited = sorted(rng.sample(range(FTP_BASE_PMID + 1, pmid), min(i, rng.randint(0, 8))))
            rec = rewrite_record(templates[i % len(templates)], pmid, cited, DATE_FIRST + dt.timedelta(days=i % 3650))
            current[pmid] = rec
            recs.append(rec)
        name = f"pubmed{FTP_YEAR}n{f + 1:04d}.xml.gz"
        _write_ftp_file(base_dir / name, recs)
        names["baseline"].append(name)
    revised: list[list[int]] = []
    deleted: list[list[int]] = []
    gone: set[int] = set()
    for u in range(updates):
        day = dt.date(2026, 1, 1) + dt.timedelta(days=u)
        live = sorted(set(current) - gone)
        picks = sorted(rng.sample(live, max(1, n // 20)))
        if revised:  # some of the day before's revisions are revised again
            picks = sorted(set(picks) | set(revised[-1][: max(1, len(revised[-1]) // 4)]))
        recs = [revise_record(current[p], day, f" (revised {day:%Y-%m-%d})") for p in picks]
        for p, r in zip(picks, recs, strict=True):
            current[p] = r
        new = [FTP_BASE_PMID + 1 + n + u * max(1, records // 10) + j for j in range(max(1, records // 10))]
        for p in new:
            rec = rewrite_record(templates[p % len(templates)], p, [FTP_BASE_PMID + 1], day)
            current[p] = rec
            recs.append(rec)
        dels = sorted(rng.sample(sorted(set(live) - set(picks)), max(1, n // 100)) + picks[:1])
        gone.update(dels)
        name = f"pubmed{FTP_YEAR}n{files + u + 1:04d}.xml.gz"
        _write_ftp_file(upd_dir / name, recs, dels)
        names["updatefiles"].append(name)
        revised.append(picks)
        deleted.append(dels)
    return {"files": names, "records": records, "revised": revised, "deleted": deleted}
# ---------------------------------------------------------------------- citation sources
def _own_pages(mc: etree._Element, first_page: int) -> None:
    art = mc.find("Article")
    pag = art.find("Pagination")
    if pag is None:
        pag = etree.Element("Pagination")
        title = art.find("ArticleTitle")
        if title is not None:
            title.addnext(pag)
        else:
            art.insert(1, pag)
    for child in list(pag):
        pag.remove(child)
    _sub(pag, "MedlinePgn", f"{first_page}-{first_page + 7}")
    ji = art.find("Journal/JournalIssue")
    if ji is not None and not (ji.findtext("Volume") or "").strip():
        for v in ji.findall("Volume"):
            ji.remove(v)
        ji.insert(0, etree.Element("Volume"))
        ji[0].text = "1"


def _citation_text(template: bytes, pmid: int, first_page: int) -> str | None:
    """The MEDLINE-style reference string of a record (None when its template gives no journal or year)."""
    rec = etree.fromstring(template, etree.XMLParser(**_PARSER_OPTS))
    mc = rec.find("MedlineCitation")
    journal = (mc.findtext("MedlineJournalInfo/MedlineTA") or mc.findtext("Article/Journal/ISOAbbreviation")
               or "").replace(".", "").strip()
    ji = mc.find("Article/Journal/JournalIssue")
    year = ((ji.findtext("PubDate/Year") or (ji.findtext("PubDate/MedlineDate") or "")[:4]) if ji is not None
            else "").strip()
    volume = ((ji.findtext("Volume") or "").strip() if ji is not None else "") or "1"
    if not journal or not year.isdigit() or any(c in journal for c in ";:|"):
        return None
    return f"Synth A, Other B. Synthetic article {pmid}. {journal}. {year};{volume}:{first_page}-{first_page + 7}."


def _text_plan(n: int, refs: list[list[int]], templates: list[bytes], order: list[int], pmid_of: list[int],
               seed: int, taken: set[tuple[int, int]]) -> dict:
    """Which references are listed by citation text only (not those in ``taken``), and the texts."""
    rng = random.Random(seed * 7_919 + 161)  # its own stream: the rest of the snapshot is unchanged
    text = [_citation_text(templates[order[i % len(order)]], pmid_of[i], 100 + i) for i in range(n)]
    by_text = {(i, j) for i in range(n) for j in refs[i]
               if (i, j) not in taken and text[j] is not None and rng.random() < 0.1}
    extra = {i: [f"Nobody N. An article no index holds. J Nonexistent Res. 2001;7:{99_000 + i}-{99_007 + i}.",
                 "Personal communication."] for i in range(0, n, 20)}
    return {"text": text, "by_text": by_text, "extra": extra}


def _template_doi(template: bytes) -> str | None:
    rec = etree.fromstring(template, etree.XMLParser(**_PARSER_OPTS))
    for a in rec.iterfind("PubmedData/ArticleIdList/ArticleId"):
        if a.get("IdType") == "doi" and (a.text or "").strip():
            return a.text.strip()
    return None


def _citation_plan(n: int, refs: list[list[int]], templates: list[bytes], order: list[int],
                   pmid_of: list[int], seed: int) -> dict:
    """Every article's DOI, which references are listed by DOI only, and the unresolvable DOIs."""
    rng = random.Random(seed * 7_919 + 16)  # its own stream: the rest of the snapshot is unchanged
    tdoi = [_template_doi(t) for t in templates]
    doi = []
    for i in range(n):
        d = tdoi[order[i % len(order)]]
        doi.append(f"{d}-syn{pmid_of[i]}" if d else f"10.5555/syn.{pmid_of[i]}")
    doi_only = {(i, j) for i in range(n) for j in refs[i] if rng.random() < 0.2}
    unresolvable = {i: [f"10.9999/unresolvable.{pmid_of[i]}"] for i in range(0, n, 25)}
    return {"doi": doi, "doi_only": doi_only, "unresolvable": unresolvable}


def _write_citation_sources(out: Path, n: int, cs: dict, cited_by: list[list[int]], pmid_of: list[int],
                            rng: random.Random) -> None:
    icite_cited: list[set[int]] = []
    for i in range(n):
        kept = {j for j in cited_by[i] if rng.random() >= 0.05}
        extra = sum(rng.random() < 0.35 for _ in cited_by[i])
        have, picks, tries = set(cited_by[i]), set(), 0
        while i + 1 < n and len(picks) < extra and tries < 20 * extra + 20:
            tries += 1
            j = rng.randrange(i + 1, n)
            if j not in have:
                picks.add(j)
        icite_cited.append(kept | picks)
    icite_refs: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for j in icite_cited[i]:
            icite_refs[j].append(i)
    lines = []
    for i in range(n):
        cites = len(icite_cited[i])
        lines.append(json.dumps({
            "pmid": pmid_of[i], "year": 2015 + (i * 10) // max(1, n), "title": f"Synthetic article {pmid_of[i]}",
            "doi": cs["doi"][i], "relative_citation_ratio": round(rng.uniform(0, 5), 2) if cites else None,
            "nih_percentile": round(rng.uniform(0, 100), 1) if cites else None, "citation_count": cites,
            "citations_per_year": round(cites / 3, 2), "expected_citations_per_year": round(rng.uniform(1, 5), 2),
            "field_citation_rate": round(rng.uniform(2, 8), 2), "apt": rng.choice((0.05, 0.25, 0.5, 0.75, 0.95)),
            "is_clinical": rng.random() < 0.2, "is_research_article": rng.random() < 0.8,
            "provisional": i > n * 0.8, "human": 0.5, "animal": 0.25, "molecular_cellular": 0.25,
            "cited_by": sorted(pmid_of[j] for j in icite_cited[i]),
            "references": sorted(pmid_of[j] for j in icite_refs[i]),
            "cited_by_clin": [], "last_modified": "01/01/2026, 00:00:00",
        }) + "\n")
    (out / "icite.jsonl").write_text("".join(lines), encoding="utf-8")
    rows = ["id_type\tid_value\tpmid\tpmcid\tdoi\n"]
    for i in range(0, n, 2):
        pmcid = f"PMC{10_000_000 + i}"
        rows.append(f"doi\t{cs['doi'][i]}\t{pmid_of[i]}\t{pmcid}\t{cs['doi'][i]}\n")
        rows.append(f"pmcid\t{pmcid}\t{pmid_of[i]}\t{pmcid}\t{cs['doi'][i]}\n")
    (out / "idconv.tsv").write_text("".join(rows), encoding="utf-8")


# ---------------------------------------------------------------------- main entry
def generate_snapshot(
    out_dir: str | Path,
    n: int,
    seed: int = 1,
    corpus_dir: str | Path = DEFAULT_CORPUS,
    search_term: str | None = None,
    search_n: int = 0,
    api_keys: list[str] | tuple[str, ...] = (),
    per_file: int = PER_FILE,
    ftp_files: int = 0,
    ftp_records: int = FTP_RECORDS,
    ftp_updates: int = 2,
    citation_sources: bool = False,
    citation_strings: bool = False,
) -> dict:
    """Write a synthetic snapshot of ``n`` articles to ``out_dir``; return a summary dict.

    The summary has ``out_dir``, ``n``, ``seed``, ``first_pmid``, ``last_pmid``,
    ``seed_pmid`` (an article with many references and many citations: a good network
    seed), ``links`` (rows per linkname), ``files``, ``search_term``, ``search_n`` and
    ``seconds``; with ``ftp_files``, ``ftp`` (see `generate_ftp_files`).
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    t0 = time.perf_counter()
    out = Path(out_dir)
    (out / "pubmed").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    templates = load_templates(corpus_dir)
    order = list(range(len(templates)))
    rng.shuffle(order)

    refs = build_refs(n, random.Random(rng.random()))
    similar = build_similar(n, random.Random(rng.random()))
    pmid_of = [BASE_PMID + 1 + i for i in range(n)]
    span = max(n, search_n)

    cs = _citation_plan(n, refs, templates, order, pmid_of, seed) if citation_sources else None
    ts = (_text_plan(n, refs, templates, order, pmid_of, seed, cs["doi_only"] if cs else set())
          if citation_strings else None)
    files = []
    for start in range(0, n, per_file):
        name = f"pubmed/synthetic_{start // per_file + 1:03d}.xml"
        chunks = [PUBMED_HEAD]
        for i in range(start, min(n, start + per_file)):
            pmid = pmid_of[i]
            tpl = templates[order[i % len(order)]]
            cited = [pmid_of[j] for j in refs[i]]
            extra = {} if ts is None else {
                "cited_text": {pmid_of[j]: ts["text"][j] for j in refs[i] if (i, j) in ts["by_text"]},
                "extra_texts": ts["extra"].get(i, []), "first_page": 100 + i}
            if cs is None:
                chunks.append(rewrite_record(tpl, pmid, cited, entrez_date(pmid, span), **extra))
            else:
                chunks.append(rewrite_record(
                    tpl, pmid, cited, entrez_date(pmid, span),
                    cited_doi={pmid_of[j]: cs["doi"][j] for j in refs[i] if (i, j) in cs["doi_only"]},
                    own_doi=cs["doi"][i], extra_dois=cs["unresolvable"].get(i, []), **extra))
            chunks.append(b"\n")
        chunks.append(b"</PubmedArticleSet>\n")
        (out / name).write_bytes(b"".join(chunks))
        files.append(name)

    cited_by: list[list[int]] = [[] for _ in range(n)]
    for i, rs in enumerate(refs):
        for j in rs:
            cited_by[j].append(i)
    lines = ["dbfrom\tid\tlinkname\tto_id\tscore\n"]
    counts = {"pubmed_pubmed_refs": 0, "pubmed_pubmed_citedin": 0, "pubmed_pubmed": 0}
    for i in range(n):
        p = pmid_of[i]
        for j in refs[i]:
            lines.append(f"pubmed\t{p}\tpubmed_pubmed_refs\t{pmid_of[j]}\t\n")
        counts["pubmed_pubmed_refs"] += len(refs[i])
        for j in sorted(cited_by[i], reverse=True):
            lines.append(f"pubmed\t{p}\tpubmed_pubmed_citedin\t{pmid_of[j]}\t\n")
        counts["pubmed_pubmed_citedin"] += len(cited_by[i])
        for j, score in similar[i]:
            lines.append(f"pubmed\t{p}\tpubmed_pubmed\t{pmid_of[j]}\t{score}\n")
        counts["pubmed_pubmed"] += len(similar[i])
    (out / "links.tsv").write_text("".join(lines), encoding="utf-8")

    if search_term:
        if search_n >= n:
            hits = [BASE_PMID + 1 + k for k in range(search_n)]
        else:
            hits = [pmid_of[i] for i in sorted(random.Random(rng.random()).sample(range(n), search_n))]
        rows = ["term\tpmid\tdate\n"]
        rows += [f"{search_term}\t{p}\t{entrez_date(p, span):%Y/%m/%d}\n" for p in hits]
        (out / "searches.tsv").write_text("".join(rows), encoding="utf-8")

    if cs is not None:
        _write_citation_sources(out, n, cs, cited_by, pmid_of, random.Random(seed * 1_000_003 + 17))
    seed_idx = max(range(n), key=lambda i: (min(len(refs[i]), len(cited_by[i])), -i))
    meta = {
        "synthetic": True,
        "generator": "bench/snapshot_gen.py",
        "seed": seed,
        "n": n,
        "first_pmid": pmid_of[0],
        "last_pmid": pmid_of[-1],
        "seed_pmid": pmid_of[seed_idx],
        "corpus_records": len(templates),
        "recorded": "nothing: no part of this snapshot was fetched from NCBI",
        "reconstructed": (
            "records are real PubMed records from the corpus, cycled and renumbered (PMC ids dropped, "
            "DOIs/PIIs suffixed, ReferenceList replaced by the synthetic references, entrez dates set "
            f"from the PMID over {DATE_FIRST:%Y/%m/%d}-{DATE_LAST:%Y/%m/%d}); links and searches are random"
        ),
        "links": counts,
        "search_term": search_term,
        "search_n": search_n if search_term else 0,
    }
    if cs is not None:
        meta["citation_sources"] = {
            "icite.jsonl": "synthetic iCite data: elink's citations less ~5 %, plus ~35 % more citing articles "
                           "elink does not list; metrics random",
            "idconv.tsv": "every second article is 'in PMC' (synthetic PMCIDs PMC10000000 + index)",
            "doi_only_references": len(cs["doi_only"]),
            "unresolvable_dois": sum(len(v) for v in cs["unresolvable"].values()),
        }
    if ts is not None:
        meta["citation_strings"] = {
            "text_only_references": len(ts["by_text"]),
            "unmatchable_texts": sum(len(v) for v in ts["extra"].values()),
            "pages": "every record's MedlinePgn is 100+index (so journal, year, volume and first page are unique)",
        }
    if api_keys:
        meta["api_keys"] = list(api_keys)
    ftp = None
    if ftp_files:
        ftp = generate_ftp_files(out, ftp_files, ftp_records, ftp_updates, seed, templates=templates)
        meta["ftp"] = {"baseline": ftp["files"]["baseline"], "updatefiles": ftp["files"]["updatefiles"],
                       "records_per_file": ftp_records, "first_pmid": FTP_BASE_PMID + 1}
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return {
        "out_dir": str(out),
        "n": n,
        "seed": seed,
        "first_pmid": pmid_of[0],
        "last_pmid": pmid_of[-1],
        "seed_pmid": pmid_of[seed_idx],
        "links": counts,
        "files": files,
        "search_term": search_term,
        "search_n": search_n if search_term else 0,
        "seconds": round(time.perf_counter() - t0, 3),
        **({"ftp": ftp} if ftp else {}),
    }


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="snapshot directory to write")
    ap.add_argument("--n", type=int, default=5000, help="number of articles (default 5000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="directory of real PubMed XML files")
    ap.add_argument("--search-term", default=None, help="add this term to searches.tsv")
    ap.add_argument(
        "--search-n", type=int, default=25000, help="PMIDs the search term matches (default 25000)"
    )
    ap.add_argument(
        "--api-key", action="append", default=[], help="list this api_key in meta.json (repeatable)"
    )
    ap.add_argument("--ftp-files", type=int, default=0, metavar="K",
                    help="also write K baseline files and --ftp-updates update files under ftp/")
    ap.add_argument("--ftp-records", type=int, default=FTP_RECORDS, help="records per baseline file (default 30000)")
    ap.add_argument("--ftp-updates", type=int, default=2, help="update files (default 2)")
    ap.add_argument("--citation-sources", action="store_true",
                    help="also write icite.jsonl and idconv.tsv; a fifth of the references by DOI only")
    ap.add_argument("--citation-strings", action="store_true",
                    help="a tenth of the other references by citation text only (for ECitMatch)")
    args = ap.parse_args(argv)
    try:
        summary = generate_snapshot(
            args.out,
            args.n,
            seed=args.seed,
            corpus_dir=args.corpus,
            search_term=args.search_term,
            search_n=args.search_n,
            api_keys=args.api_key,
            ftp_files=args.ftp_files,
            ftp_records=args.ftp_records,
            ftp_updates=args.ftp_updates,
            citation_sources=args.citation_sources,
            citation_strings=args.citation_strings,
        )
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
