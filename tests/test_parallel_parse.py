"""Parsing in pieces and in worker processes (extractors.record_split, extractors.parallel) loads what one process loads."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import CancelledError
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import psutil
import pytest

from litmeta.extractors import parallel, pubmed_xml
from litmeta.extractors.parallel import ParsePool, worth_a_pool
from litmeta.extractors.record_split import RecordSplitter
from litmeta.extractors.xmlsource import InputError, Stream, iter_elements
from litmeta.schemas import ParsedBatch
from litmeta.warehouse.checks import content_hashes
from litmeta.warehouse.db import connect
from litmeta.warehouse.load import BatchLoader
from tests.pubmed_fixtures import HEAD, TAIL, article, document

PIECE = 16 << 10  # small pieces: a few hundred articles make many of them


def mixed_document(n: int = 400) -> bytes:
    """n articles, one of them twice (a later revision), a DeleteCitation in the middle, one bad PMID."""
    arts = [article(5000 + i, refs=(5000 + (i * 7) % n,), grants=i % 3) for i in range(n)]
    arts[150] = article("15x")  # not a PMID: rejected, the rest loads
    arts.insert(300, article(5010, revised="2025-01-01", title="Revised."))
    middle = '<DeleteCitation><PMID Version="1">5020</PMID><PMID Version="1">5021</PMID></DeleteCitation>\n'
    return (HEAD + "".join(arts[:200]) + middle + "".join(arts[200:]) + TAIL).encode()


def load_inprocess(data: bytes, name: str) -> tuple:
    con = connect(":memory:")
    loader = BatchLoader(con, "r")
    for batch in pubmed_xml.iter_batches(data, source_name=name):
        loader.load(batch)
    return con, loader.stats


def worker_processes(pool: ParsePool) -> list[psutil.Process]:
    """The pool's worker processes, to kill or watch (the executor's own map of them: there is no public one)."""
    return [psutil.Process(p.pid) for p in pool._executor._processes.values()]


def load_pool(path: Path, name: str, workers: int = 2, batch_size: int = 5000) -> tuple:
    con = connect(":memory:")
    loader = BatchLoader(con, "r")
    with ParsePool(workers, piece_bytes=PIECE) as pool:
        for batch in pool.submit(path, source_name=name, batch_size=batch_size).batches():
            loader.load(batch)
    return con, loader.stats


def rejects(con) -> list[tuple]:
    return con.execute("SELECT source, record_key, reason FROM rejects ORDER BY ALL").fetchall()


def test_pieces_cover_the_input_and_keep_line_numbers():
    data = mixed_document(300)
    splitter = RecordSplitter(data, "mem", target=PIECE)
    pieces = list(splitter)
    assert len(pieces) > 10
    assert splitter.head + b"".join(p.body for p in pieces) == data
    for p in pieces:
        assert p.first_line == 1 + data[:p.byte_offset].count(b"\n")
        assert p.body.startswith((b"<PubmedArticle>", b"<DeleteCitation>"))
    assert pieces[-1].final and pieces[-1].body.endswith(TAIL.encode())


def outside_markup(buf: bytes, pos: int) -> bool:
    """Reference: no comment, CDATA section or processing instruction is open at ``pos`` (a plain left-to-right scan)."""
    i = 0
    while i < pos:
        for opener, closer in ((b"<!--", b"-->"), (b"<![CDATA[", b"]]>"), (b"<?", b"?>")):
            if buf.startswith(opener, i):
                end = buf.find(closer, i + len(opener))
                if end < 0 or end + len(closer) > pos:
                    return False
                i = end + len(closer)
                break
        else:
            i += 1
    return True


@pytest.mark.parametrize("opener,closer", [("<!--", "-->"), ("<![CDATA[", "]]>"), ("<?pi", "?>")])
def test_no_cut_inside_a_comment_cdata_section_or_processing_instruction(opener, closer):
    """A record start tag inside such a construct, where a cut would fall, is not a place to cut;
    "!" and "?" in text, and other constructs before it, change nothing."""
    noise = "Why? Because! <!-- a <?b --> <?c d?> <![CDATA[ e! ]]> "
    trap = f"{noise}{opener} {'x' * 300} <PubmedArticle> {'y' * 300} {closer}"
    title = f"<ArticleTitle>{trap}</ArticleTitle>"
    data = (HEAD + article(1) + article(2).replace("<ArticleTitle>A title.</ArticleTitle>", title)
            + article(3) + TAIL).encode()
    splitter = RecordSplitter(data, "mem", target=100)
    pieces = list(splitter)
    assert splitter.head + b"".join(p.body for p in pieces) == data
    cuts = [p.byte_offset for p in pieces[1:]]
    assert len(cuts) == 2 and all(outside_markup(data, c) for c in cuts)
    con, stats = load_inprocess(data, "mem")
    assert stats.records_new == 3 and rejects(con) == []


def test_next_record_start_is_the_first_of_any_record_tag():
    from litmeta.extractors.record_split import _next_start

    body = b"<PubmedArticleSet>x<PubmedBookArticle>y<DeleteCitation>z<PubmedArticle>w<PubmedArticle "
    assert _next_start(body, 0) == body.index(b"<PubmedBookArticle>")
    assert _next_start(body, body.index(b"y")) == body.index(b"<DeleteCitation>")
    assert _next_start(body, body.index(b"z")) == body.index(b"<PubmedArticle>")
    assert _next_start(body, body.index(b"w")) == len(body) - len(b"<PubmedArticle ")
    assert _next_start(b"<PubmedArticleSet><DeleteCitation", 1) == 18  # the name may go on in the next block
    assert _next_start(b"<PubmedArticleSet><PubmedData>", 0) == -1


@pytest.mark.parametrize("doc", [
    b"<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID></MedlineCitation></PubmedArticle>"
    b"<DeleteCitation><PMID>2</PMID></DeleteCitation><PubmedBookArticle/></PubmedArticleSet>",
    # records in a wrapper, a record nested in a record, an unexpanded entity reference, a bare MedlineCitation
    b"<!DOCTYPE PubmedArticleSet [<!ENTITY e 'x'>]><PubmedArticleSet>&e;<Wrap><PubmedArticle><MedlineCitation/>"
    b"</PubmedArticle></Wrap><PubmedArticle><PubmedBookArticle/><MedlineCitation/></PubmedArticle>"
    b"<MedlineCitation><PMID>3</PMID></MedlineCitation></PubmedArticleSet>",
    b"<PubmedArticle><MedlineCitation><PMID>4</PMID></MedlineCitation></PubmedArticle>",  # the root is the record
])
def test_records_are_read_off_a_whole_piece_in_the_pull_parsers_order(doc):
    """iter_piece_elements (a tree parsed whole) yields the elements a pull parser yields, in its order."""
    from litmeta.extractors.xmlsource import iter_piece_elements

    def labels(elements):
        return [(e.tag, e.sourceline, e.getparent().tag if e.getparent() is not None else None) for e in elements]

    accept = pubmed_xml._not_nested
    whole = labels(iter_piece_elements(doc, pubmed_xml.RECORD_TAGS, "mem", accept=accept))
    pulled = labels(iter_elements(doc, pubmed_xml.RECORD_TAGS, Stream("mem"), accept=accept))
    assert whole == pulled and len(whole) >= 1


def test_a_batch_pickles_whole_with_its_tables_in_arrow_ipc():
    """What crosses from the parse workers: every table (schema included), rejects, deletions, counts."""
    import pickle

    [batch] = [b for b in pubmed_xml.iter_batches(mixed_document(), source_name="mem", batch_size=1000) if b.deleted_pmids]
    batch.partial = True
    copy = pickle.loads(pickle.dumps(batch))
    assert copy.tables.keys() == batch.tables.keys()
    for name, table in batch.tables.items():
        assert copy.tables[name].schema.equals(table.schema, check_metadata=True)
        assert copy.tables[name].equals(table), name
    assert (copy.kind, copy.source, copy.rejects, copy.deleted_pmids, copy.n_records, copy.partial) == (
        batch.kind, batch.source, batch.rejects, batch.deleted_pmids, batch.n_records, True)
    assert copy.rejects and copy.deleted_pmids == [5020, 5021] and copy.rows("reference_entries")


def test_markup_scan_agrees_with_a_plain_scan_at_every_tag():
    """`_MarkupScan.ok` (memchr on "!" and "?", resumed from where it stopped) against the plain
    scan, at every "<" of random text made of constructs, stray "!"/"?"/"<", and asked in any order."""
    import random

    from litmeta.extractors.record_split import _MarkupScan

    parts = ["<!-- c -->", "<!--", "-->", "<![CDATA[", "]]>", "<?p ", "?>", "<P>", "!", "?", "<", "x", "<!x", "<?>"]
    rng = random.Random(7)
    for _ in range(300):
        buf = "".join(rng.choice(parts) for _ in range(rng.randint(1, 40))).encode()
        tags = [i for i in range(len(buf)) if buf[i:i + 1] == b"<"]
        scan = _MarkupScan()
        for pos in tags + rng.sample(tags, len(tags)):  # in order (the splitter's way), then shuffled
            assert scan.ok(buf, pos) == outside_markup(buf, pos), (buf, pos)


@pytest.mark.parametrize("gz", [False, True])
def test_pool_loads_exactly_what_one_process_loads(tmp_path, gz):
    data = mixed_document()
    path = tmp_path / ("mixed.xml.gz" if gz else "mixed.xml")
    path.write_bytes(gzip.compress(data) if gz else data)
    a, sa = load_inprocess(data, str(path))
    b, sb = load_pool(path, str(path), batch_size=70)  # many merged batches, split by the batch rules
    assert content_hashes(b) == content_hashes(a)
    assert rejects(b) == rejects(a) == [(str(path), "PMID 15x", "PMID '15x' is not a positive integer")]
    assert sb.records_new == sa.records_new == 399 and sb.deleted == sa.deleted == 2
    assert b.execute("SELECT title FROM articles WHERE pmid = 5010").fetchall() == [("Revised.",)]
    assert b.execute("SELECT count(*) FROM articles WHERE pmid IN (5020, 5021)").fetchall() == [(0,)]


# `ParsePool` over argv[1] against one process, in a fresh interpreter
FORKED_RUN = """
import json, sys
from litmeta.extractors import pubmed_xml
from litmeta.extractors.parallel import ParsePool
from litmeta.warehouse.checks import content_hashes
from litmeta.warehouse.db import connect
from litmeta.warehouse.load import BatchLoader
path = sys.argv[1]
one, pooled = connect(":memory:"), connect(":memory:")
loader = BatchLoader(one, "r")
for batch in pubmed_xml.iter_batches(path, source_name=path):
    loader.load(batch)
loader = BatchLoader(pooled, "r")
with ParsePool(2, piece_bytes=16 << 10) as pool:
    for batch in pool.submit(path, source_name=path, batch_size=70).batches():
        loader.load(batch)
print(json.dumps({"same": content_hashes(pooled) == content_hashes(one),
                  "articles": pooled.execute("SELECT count(*) FROM articles").fetchall()[0][0],
                  "refs": pooled.execute("SELECT count(*) FROM reference_entries WHERE citing_pmid = 40100").fetchall()[0][0]}))
"""


def test_forked_workers_load_exactly_what_one_process_loads(tmp_path):
    """As `litmeta load` starts its pool: in a fresh interpreter with one thread, so the workers are forked
    (by now this test process may run other tests' threads, and would start them from a fork server).
    One record's tables are many times the size of its piece's XML."""
    arts = [article(40000 + i, refs=(1, 2)) for i in range(400)]
    arts[100] = article(40100, refs=tuple(range(1, 1500)))
    path = tmp_path / "forked.xml"
    path.write_bytes(document(*arts))
    run = subprocess.run([sys.executable, "-c", FORKED_RUN, str(path)], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1]) == {"same": True, "articles": 400, "refs": 1499}


def test_workers_from_a_fork_server_load_exactly_what_one_process_loads(tmp_path):
    """When the process already runs threads, the workers come from a fork server."""
    data = mixed_document(200)
    path = tmp_path / "threads.xml"
    path.write_bytes(data)
    a, _ = load_inprocess(data, str(path))
    done = threading.Event()
    other = threading.Thread(target=done.wait)
    other.start()
    try:
        b, _ = load_pool(path, str(path))
    finally:
        done.set()
        other.join()
    assert content_hashes(b) == content_hashes(a)


def test_record_numbers_count_from_the_start_of_the_file(tmp_path):
    arts = [article(7000 + i) for i in range(300)]
    arts[250] = arts[250].replace('<PMID Version="1">7250</PMID>', "")  # no PMID: keyed by its record number
    path = tmp_path / "nopmid.xml"
    path.write_bytes(document(*arts))
    con, stats = load_pool(path, "f.xml")
    assert rejects(con) == [("f.xml", "record 251", "record has no PMID")]
    assert stats.records_new == 299


def reference_break(path: Path) -> str:
    """Where the one-process streaming parser (iterparse) says the input breaks."""
    try:
        for _ in iter_elements(path, pubmed_xml.RECORD_TAGS, Stream(str(path))):
            pass
    except InputError as exc:
        return exc.where
    raise AssertionError("the input does not break")


def test_malformed_record_mid_file_reports_the_files_line(tmp_path):
    arts = [article(8000 + i) for i in range(300)]
    arts[200] = arts[200].replace("<ArticleTitle>A title.</ArticleTitle>", "<ArticleTitle>A <b>title.</ArticleTitle>")
    path = tmp_path / "malformed.xml"
    path.write_bytes(document(*arts))
    where = reference_break(path)
    con, stats = load_pool(path, str(path))
    [(source, key, reason)] = rejects(con)
    assert (source, key) == (str(path), where) and where.startswith("line ")
    line = int(where.split()[1])
    assert path.read_bytes().split(b"\n")[line - 1].startswith(b"<ArticleTitle>A <b>title.")
    assert "mismatch" in reason
    assert stats.records_new == 200  # every record before the broken one, none after


def test_truncated_gzip_in_pool_keeps_the_records_before_the_break(tmp_path):
    data = document(*(article(9000 + i) for i in range(600)))
    path = tmp_path / "cut.xml.gz"
    path.write_bytes(gzip.compress(data)[:-200])
    con, stats = load_pool(path, str(path))
    [(source, key, reason)] = rejects(con)
    assert source == str(path) and key.startswith("after ") and "gzip" in reason and "truncated" in reason
    assert 450 <= stats.records_new < 600


def test_small_files_are_parsed_in_process(tmp_path):
    small = tmp_path / "small.xml"
    small.write_bytes(document(article(1)))
    assert not worth_a_pool(small)
    big = tmp_path / "big.xml.gz"
    big.write_bytes(b"\x1f\x8b" + b"\0" * (6 << 20))
    assert worth_a_pool(big)


def test_closing_the_pool_early_stops_its_workers(tmp_path):
    path = tmp_path / "many.xml"
    path.write_bytes(document(*(article(10000 + i) for i in range(2000))))
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with ParsePool(2, piece_bytes=PIECE, max_inflight=4 * PIECE) as pool:
            batches = pool.submit(path, source_name="many", batch_size=50).batches()
            first = next(batches)
            assert first.n_records == 50
            # forked by this process, or (when it already runs threads) by multiprocessing's fork server
            workers = worker_processes(pool)
            assert len(workers) == 2
            for _batch in batches:
                raise KeyboardInterrupt  # as Ctrl-C in the loader would
    assert time.monotonic() - started < 15
    for w in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            w.wait(timeout=5)
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


def test_a_file_submitted_after_a_worker_died_raises_instead_of_loading_nothing(tmp_path):
    path = tmp_path / "after.xml"
    path.write_bytes(document(*(article(50000 + i) for i in range(50))))
    with ParsePool(1, piece_bytes=PIECE) as pool:
        [worker] = worker_processes(pool)
        worker.kill()
        with pytest.raises(BrokenProcessPool):  # the pool knows by now
            pool._executor.submit(int).result(timeout=10)
        with pytest.raises(BrokenProcessPool):
            list(pool.submit(path, source_name="after").batches())


def test_a_worker_dying_mid_file_raises_parse_worker_died_naming_the_file(tmp_path):
    path = tmp_path / "dies.xml"
    path.write_bytes(document(*(article(52000 + i) for i in range(600))))
    # a small in-flight budget: most pieces are cut only as the reader goes on
    with ParsePool(1, piece_bytes=PIECE, max_inflight=3 * PIECE) as pool:
        batches = pool.submit(path, source_name="dies.xml", batch_size=20).batches()
        assert next(batches).n_records == 20
        [worker] = worker_processes(pool)
        worker.kill()
        with pytest.raises(parallel.ParseWorkerDied, match=r"^dies\.xml: a parse worker process died .* re-run"):
            for _batch in batches:
                pass


# a pool whose reader stalls after its first batch (the workers' results wait for it), until killed
STALLED_RUN = """
import sys, time
from litmeta.extractors.parallel import ParsePool
pool = ParsePool(2, piece_bytes=16 << 10).start()
batches = pool.submit(sys.argv[1], source_name="stalled", batch_size=20).batches()
next(batches)
print("reading", flush=True)
time.sleep(60)
"""


def test_a_process_killed_outright_leaves_no_result_files_behind(tmp_path):
    path = tmp_path / "stalled.xml"
    path.write_bytes(document(*(article(53000 + i) for i in range(600))))
    spools = tmp_path / "tmp"
    spools.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", STALLED_RUN, str(path)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1], env={**os.environ, "TMPDIR": str(spools)})
    try:
        assert proc.stdout.readline() == "reading\n"
        [spool] = spools.iterdir()
        deadline = time.monotonic() + 10
        while not any(spool.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(spool.iterdir())  # parsed pieces wait for the reader
        workers = psutil.Process(proc.pid).children()
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while spool.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not spool.exists()
        for w in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                w.wait(timeout=5)
    finally:
        proc.kill()
        proc.stdout.close()


def test_a_temporary_directory_that_fails_under_the_pool_raises_parse_worker_died(tmp_path, monkeypatch):
    """Parsed pieces come back through files in a temporary directory: one that vanishes (or fills up)
    ends the file with the one-line error the command prints, not a traceback."""
    path = tmp_path / "spool.xml"
    path.write_bytes(document(*(article(54000 + i) for i in range(50))))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with ParsePool(1, piece_bytes=PIECE) as pool:
        [spool] = (tmp_path / "tmp").iterdir()
        shutil.rmtree(spool)
        with pytest.raises(parallel.ParseWorkerDied, match=r"^f\.xml: parsing it in worker processes failed \(passing "
                           r"a parsed piece through .* failed: .*No such file or directory.*; .* re-run"):
            list(pool.submit(path, source_name="f.xml").batches())


def test_parse_worker_died_says_what_broke_and_pickles_whole():
    died = parallel.ParseWorkerDied("f.xml", "A process in the process pool was terminated abruptly while the "
                                    "future was running or pending.")
    assert str(died).startswith("f.xml: a parse worker process died while parsing it")
    unreadable = parallel.ParseWorkerDied("f.xml", "A result has failed to un-serialize.: MemoryError()")
    assert str(unreadable).startswith("f.xml: parsing it in worker processes failed (A result has failed to "
                                      "un-serialize.: MemoryError()); what was loaded before stays")
    assert isinstance(unreadable, BrokenProcessPool)
    for e in (died, unreadable):
        assert str(pickle.loads(pickle.dumps(e))) == str(e)


# `litmeta load` of argv[1], its parse workers killed at their second piece (the patch is inherited by the
# forked workers): the CLI's exit code is printed last
WORKER_DIES_RUN = """
import os, signal, sys
from litmeta.extractors import pubmed_xml
parse_piece, calls = pubmed_xml.parse_piece, []
def dying(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return parse_piece(*args, **kwargs)
pubmed_xml.parse_piece = dying
from litmeta.flows.cli import main
print("exit", main(["--db", sys.argv[2], "load", sys.argv[1]]))
"""


def test_load_whose_parse_worker_dies_says_so_in_one_line_and_exits_3(tmp_path):
    from tests.conftest import temporary_prefect_env

    path = tmp_path / "big.xml"
    refs = tuple(range(1, 120))
    path.write_bytes(document(*(article(60000 + i, refs=refs) for i in range(4000))))
    assert worth_a_pool(path)
    db = tmp_path / "w.duckdb"
    run = subprocess.run([sys.executable, "-c", WORKER_DIES_RUN, str(path), str(db)], capture_output=True,
                         text=True, timeout=180, cwd=Path(__file__).resolve().parents[1],
                         env=temporary_prefect_env(tmp_path / "prefect-home"))
    assert run.stdout.splitlines()[-1] == "exit 3", run.stderr[-3000:]  # could not finish: re-run
    assert f"litmeta load: {path}: a parse worker process died while parsing it" in run.stderr
    assert "Traceback" not in run.stderr
    with connect(db, read_only=True) as con:
        assert con.execute("SELECT status FROM ingest_runs").fetchall() == [("failed",)]


def test_closing_the_pool_under_a_reader_raises_instead_of_ending_the_file_early(tmp_path):
    path = tmp_path / "closed.xml"
    path.write_bytes(document(*(article(51000 + i) for i in range(600))))
    # a small in-flight budget: the splitter soon waits for the reader, with every piece sent so far parsed
    pool = ParsePool(1, piece_bytes=PIECE, max_inflight=3 * PIECE).start()
    batches = pool.submit(path, source_name="closed", batch_size=20).batches()
    got = next(batches).n_records
    # wait until the splitter waits for the reader, with every piece sent so far parsed: then nothing is
    # left for close() to cancel, and the reader would see a clean end unless the pool says it was closed
    deadline, last = time.monotonic() + 10, -1
    while pool.inflight != last and time.monotonic() < deadline:
        last = pool.inflight
        time.sleep(0.3)
    pool.close()
    with pytest.raises(CancelledError, match=r"^closed: the parse pool was closed before the file was all read"):
        for batch in batches:
            got += batch.n_records
    assert got < 600


def test_merge_flushes_when_asked_and_keeps_the_batch_rules():
    """merge_batches hands out what it merged when `flush` says so; size and key rules still hold."""
    from litmeta.schemas.batch import merge_batches

    def small(*pmids: int) -> ParsedBatch:
        return next(pubmed_xml.iter_batches(document(*(article(p) for p in pmids)), source_name="m"))

    parts = [small(1, 2), small(3, 4), small(5, 6), small(5, 7), small(8, 9)]
    sizes = [b.n_records for b in merge_batches(iter(parts), batch_size=100)]
    assert sizes == [6, 4]  # PMID 5 twice: the merged batch ends before its second copy
    asked = []

    def flush(merged: int) -> bool:
        asked.append(merged)
        return len(asked) == 2  # asked with something merged: after parts 1 and 2, it says yes
    merged = list(merge_batches(iter(parts), batch_size=100, flush=flush))
    assert [b.n_records for b in merged] == [4, 2, 4]
    assert [len(b.tables["articles"]) for b in merged] == [4, 2, 4]
    assert asked == [2, 4, 2, 2, 4]  # before each next part while something is merged: how many records


def test_last_batches_of_a_pooled_file_are_handed_out_while_parsing_finishes(tmp_path, monkeypatch):
    """Once the file is cut, the loader gets what is parsed (FLUSH_MIN_RECORDS at least) instead of
    waiting for a full batch."""
    monkeypatch.setattr(parallel, "FLUSH_MIN_RECORDS", 300)
    path = tmp_path / "many.xml"
    path.write_bytes(document(*(article(20000 + i, refs=(1, 2, 3)) for i in range(1500))))
    with ParsePool(1, piece_bytes=PIECE) as pool:
        job = pool.submit(path, source_name=str(path), batch_size=100_000)
        batches = list(job.batches())
    sizes = [b.n_records for b in batches]
    assert sum(sizes) == 1500
    assert len(sizes) > 1, "one worker parses slower than the loader takes: batches end early"
    assert min(sizes[:-1]) >= 300, sizes  # no batch too small to be worth a transaction, but the last
    # those handed out early say so (the loader commits them with the next ones); the last is complete
    assert all(b.partial for b in batches[:-1]) and not batches[-1].partial


def test_bytes_in_flight_stay_within_the_budget_while_the_reader_is_slow(tmp_path):
    """XML cut and not parsed plus results parsed and not read stay within max_inflight: a slow reader holds
    the splitter back instead of the pool reading the whole file into memory."""
    path = tmp_path / "slow.xml"
    path.write_bytes(document(*(article(30000 + i, refs=(1, 2)) for i in range(1500))))  # 2.9 MB of XML
    budget = 6 * PIECE
    seen: list[int] = []
    stop = threading.Event()
    with ParsePool(2, piece_bytes=PIECE, max_inflight=budget) as pool:
        def watch() -> None:
            while not stop.is_set():
                seen.append(pool.inflight)
                time.sleep(0.001)

        watcher = threading.Thread(target=watch)
        watcher.start()
        n = 0
        try:
            for batch in pool.submit(path, source_name=str(path), batch_size=50).batches():
                n += batch.n_records
                time.sleep(0.01)  # slower than the workers
        finally:
            stop.set()
            watcher.join()
    assert n == 1500
    assert budget / 2 < max(seen) < 2 * budget  # over it only as parsed pieces' results outgrow their XML
    assert pool.inflight == 0
