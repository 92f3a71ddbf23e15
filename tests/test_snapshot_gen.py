"""bench/snapshot_gen.py: a synthetic snapshot the sandbox serves, with the specified link degrees."""

from __future__ import annotations

import io
import json
import statistics
from collections import defaultdict
from pathlib import Path

import pytest
import requests
from Bio import Entrez
from lxml import etree

from bench.snapshot_gen import BASE_PMID, generate_snapshot
from litmeta.extractors.sandbox import SandboxServer, Snapshot
from tests.conftest import require_corpus

pytestmark = pytest.mark.corpus

N = 300
TERM = "synthetic search[all]"
SEARCH_N = 700  # more PMIDs than articles: the extra ones have no record, only a date


def read_links(root: Path) -> dict[str, dict[int, list[tuple[int, str]]]]:
    out: dict[str, dict[int, list[tuple[int, str]]]] = defaultdict(lambda: defaultdict(list))
    lines = (root / "links.tsv").read_text().splitlines()
    assert lines[0] == "dbfrom\tid\tlinkname\tto_id\tscore"
    for line in lines[1:]:
        dbfrom, src, name, dst, score = line.split("\t")
        assert dbfrom == "pubmed"
        out[name][int(src)].append((int(dst), score))
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    corpus = require_corpus("pubmed")
    out = tmp_path_factory.mktemp("gen") / "snap"
    info = generate_snapshot(out, N, seed=3, corpus_dir=corpus, search_term=TERM, search_n=SEARCH_N)
    return out, info


def test_summary_and_files(generated: tuple[Path, dict]) -> None:
    root, info = generated
    assert info["first_pmid"] == BASE_PMID + 1 and info["last_pmid"] == BASE_PMID + N
    assert info["first_pmid"] <= info["seed_pmid"] <= info["last_pmid"]
    meta = json.loads((root / "meta.json").read_text())
    assert meta["synthetic"] is True and meta["n"] == N and "api_keys" not in meta
    snap = Snapshot.load(root)
    assert sorted(snap.pubmed) == list(range(BASE_PMID + 1, BASE_PMID + N + 1))
    assert snap.skipped_files == []


def test_records_renumbered_consistently(generated: tuple[Path, dict]) -> None:
    root, _ = generated
    snap = Snapshot.load(root)
    links = read_links(root)
    dois: set[str] = set()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    for pmid, raw in snap.pubmed.items():
        rec = etree.fromstring(raw, parser)
        assert rec.findtext("MedlineCitation/PMID") == str(pmid)
        ids = {a.get("IdType"): a.text for a in rec.iterfind("PubmedData/ArticleIdList/ArticleId")}
        assert ids["pubmed"] == str(pmid) and "pmc" not in ids
        if "doi" in ids:
            assert ids["doi"] not in dois
            dois.add(ids["doi"])
        refs = [
            int(x)
            for x in rec.xpath(
                "PubmedData/ReferenceList/Reference/ArticleIdList/ArticleId[@IdType='pubmed']/text()"
            )
        ]
        assert refs == [dst for dst, _ in links["pubmed_pubmed_refs"].get(pmid, [])]
        assert not rec.xpath("MedlineCitation/CommentsCorrectionsList/CommentsCorrections/PMID")
        assert 20150101 <= snap.pubmed_dates[pmid].edat <= 20241231
    edats = [snap.pubmed_dates[p].edat for p in sorted(snap.pubmed)]
    assert edats == sorted(edats) and edats[0] // 10000 == 2015


def test_link_degrees(generated: tuple[Path, dict]) -> None:
    root, info = generated
    links = read_links(root)
    refs, citedin, similar = (
        links["pubmed_pubmed_refs"],
        links["pubmed_pubmed_citedin"],
        links["pubmed_pubmed"],
    )
    # references: ~30 per article (once enough older articles exist), always older
    mature = [len(refs.get(p, [])) for p in range(BASE_PMID + 101, BASE_PMID + N + 1)]
    assert 25 <= statistics.mean(mature) <= 35
    assert all(dst < src for src, lst in refs.items() for dst, _ in lst)
    # cited-by is exactly the reverse of refs, and long-tailed
    forward = {(s, d) for s, lst in refs.items() for d, _ in lst}
    backward = {(s, d) for d, lst in citedin.items() for s, _ in lst}
    assert forward == backward and info["links"]["pubmed_pubmed_citedin"] == len(forward)
    counts = sorted((len(v) for v in citedin.values()), reverse=True)
    assert counts[0] > 4 * statistics.mean(counts)
    # similar: 100 per article, never itself, strictly descending integer scores
    assert set(similar) == set(range(BASE_PMID + 1, BASE_PMID + N + 1))
    for src, lst in similar.items():
        scores = [int(s) for _, s in lst]
        assert len(lst) == 100 and src not in {d for d, _ in lst} and len({d for d, _ in lst}) == 100
        assert scores == sorted(scores, reverse=True) and len(set(scores)) == 100 and scores[-1] > 0


def test_deterministic_for_a_seed(generated: tuple[Path, dict], tmp_path: Path) -> None:
    root, info = generated
    again = generate_snapshot(
        tmp_path / "again",
        N,
        seed=3,
        corpus_dir=require_corpus("pubmed"),
        search_term=TERM,
        search_n=SEARCH_N,
    )
    for name in ["links.tsv", "searches.tsv", "meta.json", *info["files"]]:
        assert (root / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    assert {k: v for k, v in again.items() if k not in ("out_dir", "seconds")} == {
        k: v for k, v in info.items() if k not in ("out_dir", "seconds")
    }


def test_sandbox_serves_it(generated: tuple[Path, dict]) -> None:
    root, info = generated
    seed = info["seed_pmid"]
    with SandboxServer(root, rate_limit=False) as sb:
        r = requests.post(
            sb.base_url + "efetch.fcgi",
            data={"db": "pubmed", "id": f"{seed},{BASE_PMID + 1},{BASE_PMID + N + 5}"},
            timeout=10,
        )
        assert r.text.count("<PubmedArticle>") == 2
        rec = Entrez.read(
            io.BytesIO(
                requests.get(
                    sb.base_url + "elink.fcgi",
                    params={
                        "dbfrom": "pubmed",
                        "db": "pubmed",
                        "id": seed,
                        "cmd": "neighbor_score",
                        "linkname": "pubmed_pubmed",
                    },
                    timeout=10,
                ).content
            ),
            validate=True,
        )
        assert len(rec[0]["LinkSetDb"][0]["Link"]) == 100 and "Score" in rec[0]["LinkSetDb"][0]["Link"][0]

        # the search term matches SEARCH_N PMIDs; splitting by entrez date partitions them
        def count(**kw) -> int:
            r = requests.get(
                sb.base_url + "esearch.fcgi",
                params={"db": "pubmed", "term": TERM, "retmax": 0, **kw},
                timeout=10,
            )
            return int(Entrez.read(io.BytesIO(r.content), validate=True)["Count"])

        assert count() == SEARCH_N
        years = [count(datetype="edat", mindate=str(y), maxdate=str(y)) for y in range(2015, 2025)]
        assert sum(years) == SEARCH_N and min(years) > 0
