"""Acceptance tests of the E-utilities client against the real sandbox server (issue 3).

1. 1,000 PMIDs: records + cited-by + references + scored similar in <= 15 HTTP requests (/_stats).
2. With 429/5xx/truncate/error200/reset faults (three seeds): exactly the same records and links.
3. From the sandbox's own arrival timestamps: <= 3 requests in any 1 s window without a key,
   <= 10 with a listed key, while retrying and with 4 threads sharing one client.
4. A search matching 25,000 records is fully retrieved despite the 9,999 cap.
5. The api_key appears in no log line, exception message, recorded snapshot or request description;
   the recorded snapshot is servable by the sandbox and gives the same answers.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from pathlib import Path

import pytest

from litmeta.extractors import eutils_results as R
from litmeta.extractors.entrez import EntrezClient, EntrezError, RawDocument

pytestmark = pytest.mark.e2e

sandbox = pytest.importorskip("litmeta.extractors.sandbox")
snapshot_gen = pytest.importorskip("bench.snapshot_gen")
SandboxServer = sandbox.SandboxServer

N = 1000
SEARCH_TERM = "synthetic cap test[all]"
SEARCH_N = 25_000
API_KEY = "litmetaTESTKEY0123456789abcdef0123"
FAULTS = "429=0.2,500=0.1,502=0.05,truncate=0.05,error200=0.05,reset=0.05,seed={seed}"
# 50 % of tries fail under FAULTS; 12 tries leave a 1-in-4096 chance per logical request
# (the fault sequence is deterministic per seed, so a seed passes or fails every time).
FAULT_TRIES = 12


@pytest.fixture(scope="module")
def snap(tmp_path_factory) -> dict:
    from tests.conftest import require_corpus

    require_corpus("pubmed")
    out = tmp_path_factory.mktemp("entrez_sandbox") / "snap"
    info = snapshot_gen.generate_snapshot(
        out, N, seed=1, search_term=SEARCH_TERM, search_n=SEARCH_N, api_keys=[API_KEY]
    )
    info["dir"] = out
    info["pmids"] = list(range(info["first_pmid"], info["last_pmid"] + 1))
    return info


def max_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


_REC_RE = re.compile(rb"<PubmedArticle>.*?</PubmedArticle>", re.S)


def records_by_pmid(bodies: list[bytes]) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    for body in bodies:
        for rec in _REC_RE.findall(body):
            (pmid,) = R.pubmed_pmids(rec)
            out.setdefault(pmid, []).append(rec)
    return out


def fetch_everything(
    client: EntrezClient, pmids: list[int]
) -> tuple[dict[int, list[bytes]], dict, dict, list]:
    bodies, missing = [], []
    for batch in client.efetch_pubmed(pmids):
        bodies.extend(batch.bodies)
        missing.extend(batch.missing)
    links = client.elink(pmids)
    similar = client.elink_similar(pmids)
    return records_by_pmid(bodies), links, similar, missing


@pytest.fixture(scope="module")
def clean_run(snap) -> dict:
    with SandboxServer(snap["dir"]) as sb:
        c = EntrezClient(sb.base_url)
        t = time.monotonic()
        recs, links, similar, missing = fetch_everything(c, snap["pmids"])
        seconds = time.monotonic() - t
        stats = sb.stats()
    return {
        "records": recs,
        "links": links,
        "similar": similar,
        "missing": missing,
        "stats": stats,
        "client": c.stats.as_dict(),
        "seconds": seconds,
    }


# ---------------------------------------------------------------------------------- 1


def test_1000_pmids_with_all_links_in_at_most_15_requests(snap, clean_run):
    st = clean_run["stats"]
    print(
        f"\n1,000 PMIDs (records + cited-by + refs + scored similar): {st['requests']} HTTP requests "
        f"{st['by_endpoint']} in {clean_run['seconds']:.1f}s; methods {st['methods']}"
    )
    assert st["requests"] <= 15
    assert st["requests"] == clean_run["client"]["requests"] == 6
    assert st["rate_limited"] == 0 and set(st["status"]) == {"200"}
    assert st["methods"].get("GET", 0) == 0  # 500-id batches are POSTed
    recs = clean_run["records"]
    assert sorted(recs) == snap["pmids"] and all(len(v) == 1 for v in recs.values())
    assert clean_run["missing"] == []
    links = clean_run["links"]
    assert sum(map(len, links["pubmed_pubmed_refs"].values())) == snap["links"]["pubmed_pubmed_refs"]
    assert sum(map(len, links["pubmed_pubmed_citedin"].values())) == snap["links"]["pubmed_pubmed_citedin"]
    assert set(links["pubmed_pubmed_citedin"]) == set(snap["pmids"])  # ids without links: []
    sim = clean_run["similar"]
    assert sum(map(len, sim.values())) == snap["links"]["pubmed_pubmed"]
    assert all(p not in [i for i, _ in v] for p, v in sim.items())
    assert all(s is not None for v in sim.values() for _, s in v)
    # the same links as links.tsv, in listed order
    tsv: dict[tuple[int, str], list[int]] = {}
    for line in (snap["dir"] / "links.tsv").read_text().splitlines()[1:]:
        src, ln, to = line.split("\t")[1:4]
        tsv.setdefault((int(src), ln), []).append(int(to))
    for p in snap["pmids"][:50]:
        assert links["pubmed_pubmed_refs"][p] == tsv.get((p, "pubmed_pubmed_refs"), [])
        assert [i for i, _ in sim[p]] == tsv.get((p, "pubmed_pubmed"), [])


# ---------------------------------------------------------------------------------- 2 + 3 (no key)


@pytest.mark.parametrize("seed", [3, 11, 42])
def test_faults_change_nothing_in_the_result(snap, clean_run, seed, caplog):
    caplog.set_level(logging.WARNING, logger="litmeta.entrez")
    with SandboxServer(snap["dir"], faults=FAULTS.format(seed=seed)) as sb:
        c = EntrezClient(
            sb.base_url, max_tries=FAULT_TRIES, backoff_base=0.05, rate_limit_backoff=0.2, seed=seed
        )
        t = time.monotonic()
        recs, links, similar, missing = fetch_everything(c, snap["pmids"])
        seconds = time.monotonic() - t
        st = sb.stats()
    print(
        f"\nseed {seed}: {st['requests']} requests, faults {st['faults']}, "
        f"client retries {c.stats.as_dict()['retries_by_reason']}, {seconds:.1f}s"
    )
    assert sum(st["faults"].values()) > 0 and c.stats.total_retries > 0
    assert missing == []
    # exactly the same records, each once, byte for byte
    assert sorted(recs) == snap["pmids"]
    assert all(len(v) == 1 for v in recs.values())
    assert recs == clean_run["records"]
    assert links == clean_run["links"] and similar == clean_run["similar"]
    # every retry was logged with its reason and request
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == c.stats.total_retries
    # never over the limit by the server's own clock, retries included
    (times,) = st["clients"].values()
    assert len(times) == st["requests"]
    assert max_in_window(times) <= 3
    assert st["rate_limited"] == 0  # every 429 seen was an injected one


# ---------------------------------------------------------------------------------- 3 (threads)


def _threads_sharing(client: EntrezClient, pmids: list[int], n_threads: int = 4) -> list[BaseException]:
    errors: list[BaseException] = []
    parts = [pmids[k::n_threads] for k in range(n_threads)]

    def work(ids: list[int]) -> None:
        try:
            for _ in client.efetch_pubmed(ids, batch_size=max(1, len(ids) // 2)):
                pass
            client.elink(ids)
            client.elink_similar(ids)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.mark.parametrize(("api_key", "limit", "n_ids"), [(None, 3, 200), (API_KEY, 10, 800)])
def test_rate_limit_holds_with_four_threads_and_retries(snap, api_key, limit, n_ids):
    faults = "500=0.1,502=0.05,reset=0.05,truncate=0.05,error200=0.05,seed=5"
    with SandboxServer(snap["dir"], faults=faults) as sb:
        c = EntrezClient(sb.base_url, api_key=api_key, max_tries=FAULT_TRIES, backoff_base=0.02, seed=1)
        t = time.monotonic()
        errors = _threads_sharing(c, snap["pmids"][:n_ids])
        seconds = time.monotonic() - t
        st = sb.stats()
    assert errors == []
    (label,) = st["clients"]
    times = st["clients"][label]
    worst = max_in_window(times)
    print(
        f"\n4 threads, key={'yes' if api_key else 'no'}: {len(times)} requests in {seconds:.1f}s, "
        f"max {worst} in any 1 s window (limit {limit}), faults {st['faults']}"
    )
    assert (label.startswith("key:")) == bool(api_key)
    assert api_key is None or api_key not in label
    assert c.stats.total_retries > 0
    assert worst <= limit
    assert st["rate_limited"] == 0
    if api_key:
        assert worst > 3  # the key's higher limit is actually used


# ---------------------------------------------------------------------------------- 4


def test_search_over_the_cap_is_fully_retrieved(snap):
    with SandboxServer(snap["dir"]) as sb:
        c = EntrezClient(sb.base_url)
        t = time.monotonic()
        res = c.esearch(SEARCH_TERM)
        seconds = time.monotonic() - t
        st = sb.stats()
    expected = {
        int(line.split("\t")[1]) for line in (snap["dir"] / "searches.tsv").read_text().splitlines()[1:]
    }
    print(
        f"\nesearch of {res.count:,} records: {st['requests']} requests, {len(res.ranges)} date ranges, {seconds:.1f}s"
    )
    assert res.count == SEARCH_N and len(expected) == SEARCH_N
    assert len(res.ids) == SEARCH_N and len(set(res.ids)) == SEARCH_N and set(res.ids) == expected
    assert res.split and res.complete and all(n <= 9999 for _, _, n in res.ranges)
    assert st["requests"] == res.requests and st["rate_limited"] == 0
    # deterministic: NCBI's order within each range, ranges newest first
    assert res.ids[:3] == sorted(expected, reverse=True)[:3]


# ---------------------------------------------------------------------------------- 5


def test_api_key_never_leaks_and_recorded_snapshot_replays(snap, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's request lines included
    rec_dir = tmp_path / "recorded"
    docs: list[RawDocument] = []
    messages: list[str] = []
    ids = snap["pmids"][:40] + [99_999_999]  # one id that does not exist
    with SandboxServer(snap["dir"], faults="500=0.15,429=0.1,reset=0.1,error200=0.1,seed=9") as sb:
        c = EntrezClient(
            sb.base_url,
            api_key=API_KEY,
            email="dev@example.org",
            max_tries=FAULT_TRIES,
            backoff_base=0.02,
            rate_limit_backoff=0.1,
            on_document=docs.append,
            record_snapshot=rec_dir,
        )
        batches = list(c.efetch_pubmed(ids, batch_size=25))
        links = c.elink(ids[:30])
        similar = c.elink_similar(ids[:30])
        res = c.esearch("synthetic cap test[all]", mindate="2024/12/01", maxdate="2024/12/31")
        c.esummary(ids[:5])
        for bad in (
            lambda: c.efetch("nonsense", [1]),
            lambda: c.elink([1], linknames=("pubmed_nonsense_x",)),
        ):
            with pytest.raises(EntrezError) as ei:
                bad()
            messages += [str(ei.value), repr(ei.value), ei.value.request]
        st = sb.stats()
        base_url = sb.base_url
    assert [m for b in batches for m in b.missing] == [99_999_999]
    assert res.count > 0 and c.stats.total_retries > 0
    assert sum(st["faults"].values()) > 0
    key = API_KEY
    assert docs and all(key not in d.request for d in docs)
    assert all(key not in m for m in messages)
    assert key not in caplog.text
    assert "retry" in caplog.text  # the retries were logged (without the key)
    assert key not in repr(c) and key not in json.dumps(c.stats.as_dict())
    assert key not in json.dumps(st)  # the sandbox's own stats label the key by a hash
    files = [p for p in rec_dir.rglob("*") if p.is_file()]
    assert {p.relative_to(rec_dir).parts[0] for p in files} >= {"pubmed", "links.tsv", "meta.json"}
    for p in files:
        assert key.encode() not in p.read_bytes(), p
    meta = json.loads((rec_dir / "meta.json").read_text())
    assert meta["source"] == base_url and "api_key" not in json.dumps(meta)

    # the recorded snapshot replays: same records, same links
    with SandboxServer(rec_dir) as sb2:
        c2 = EntrezClient(sb2.base_url)
        again = list(c2.efetch_pubmed(ids[:40]))
        assert records_by_pmid([b for x in again for b in x.bodies]) == records_by_pmid(
            [b for x in batches for b in x.bodies]
        )
        assert c2.elink(ids[:30]) == links
        assert c2.elink_similar(ids[:30]) == similar


def test_retry_exhaustion_names_the_request_without_the_key(snap):
    with SandboxServer(snap["dir"], faults="503=1.0,seed=1") as sb:
        c = EntrezClient(sb.base_url, api_key=API_KEY, max_tries=3, backoff_base=0.01)
        with pytest.raises(EntrezError) as ei:
            list(c.efetch_pubmed(snap["pmids"][:300]))
        assert sb.stats()["requests"] == 3
    msg = str(ei.value)
    assert (
        "efetch db=pubmed" in msg and "ids=300 [30000001,30000002" in msg and "gave up after 3 tries" in msg
    )
    assert API_KEY not in msg


def test_results_snapshot_path_fixture_is_clean(snap):
    """Guard: the generated snapshot lists the test key (so the sandbox grants 10/s) and nothing else leaks it."""
    meta = json.loads(Path(snap["dir"], "meta.json").read_text())
    assert meta.get("api_keys") == [API_KEY]
