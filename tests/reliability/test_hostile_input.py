"""Hostile input: each gives a clear error or is neutralised; nothing outside the warehouse is touched.

Acceptance 4 of issue 5. Already covered elsewhere (in-process, one file each), not repeated here:
tests/test_warehouse_load.py (XXE file/URL entity left unexpanded, billion-laughs refused, invalid
UTF-8 / truncated XML / truncated gzip keep the records before the break) and tests/test_cli.py
(PMIDs abc, -1, '39047240;DROP TABLE articles' for ingest, '1 OR 1=1' in --from-file, --db that is
a directory / in a missing folder / not a database, read-only sql). Here the same attacks go
through the installed ``litmeta`` command, with proof that no file or URL named by the input is
opened (a FIFO that would notice a reader, a listener that would notice a connection) and peak
memory measured; plus what those tests do not cover.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest

from bench.chaos import litmeta_cmd
from litmeta.flows.cli import main
from tests.conftest import BUNDLED_SNAPSHOT, REPO, run_cli
from tests.pubmed_fixtures import HEAD, TAIL, article, document
from tests.reliability.conftest import dump_text

pytestmark = pytest.mark.reliability

GIB = 1 << 30
SECRET = "TOP-SECRET-CONTENT-7f3a"
RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:])\n"
    "print('peak_rss_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(r.returncode)\n"
)


# -- probes: did anything try to read a file or reach a URL the input names? --------------------
class FifoProbe:
    """A named pipe: a process opening it for reading is noticed (our non-blocking writer open succeeds)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self.opened = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._watch, daemon=True)
        self._t.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody has it open for reading
                self._stop.wait(0.005)
                continue
            self.opened += 1
            os.close(fd)  # the reader sees end-of-file

    def close(self) -> None:
        self._stop.set()
        self._t.join(2)


class ListenerProbe:
    """A TCP listener counting connections (an external DTD or entity URL points here)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._accept, daemon=True)
        self._t.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self._stop.set()
        self._t.join(2)
        self.sock.close()


@pytest.fixture
def probes(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    fifo = FifoProbe(tmp_path / "probe.fifo")
    listener = ListenerProbe()
    yield secret, fifo, listener
    fifo.close()
    listener.close()


def hostile_doctype(root: str, secret: Path, fifo: FifoProbe, listener: ListenerProbe) -> str:
    return (
        f'<!DOCTYPE {root} SYSTEM "{listener.url("external.dtd")}" [\n'
        f'<!ENTITY xfile SYSTEM "file://{secret}">\n'
        f'<!ENTITY xfifo SYSTEM "file://{fifo.path}">\n'
        f'<!ENTITY xweb SYSTEM "{listener.url("entity")}">\n'
        f'<!ENTITY % xparam SYSTEM "{listener.url("param.dtd")}">\n'
        "%xparam;\n]>"
    )


def with_doctype(doc: bytes, doctype: str) -> bytes:
    s = doc.decode()
    return (s[: s.index("<!DOCTYPE")] + doctype + "\n" + s[s.index("<PubmedArticleSet>") :]).encode()


def run_measured(args: list[str], env: dict, timeout: float = 300) -> tuple[subprocess.CompletedProcess, int]:
    """Run litmeta; return (result, peak RSS in bytes of the litmeta process)."""
    r = subprocess.run(
        [sys.executable, "-c", RSS_WRAPPER] + litmeta_cmd() + args,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        cwd=REPO,
    )
    m = re.search(r"peak_rss_kib (\d+)", r.stderr)
    assert m, r.stderr[-2000:]
    return r, int(m.group(1)) * 1024


def tree(folder: Path, skip: str = "prefect-home") -> dict[str, str]:
    """Every regular file under ``folder`` with its sha256 (what a run may have read or written)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_fifo() and skip not in p.parts:
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def q(db: Path, sql: str, params=None):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


# -- local files: every hostile file in one `litmeta load` ---------------------------------------
def write_huge_text_file(path: Path, mib: int = 200) -> None:
    """article 1, then article 2 whose title is one ``mib`` MiB text node, then article 3 (streamed)."""
    head, tail = article(2, title="@@TITLE@@").split("@@TITLE@@")
    chunk = b"A" * (1 << 20)
    with open(path, "wb") as fh:
        fh.write((HEAD + article(1) + head).encode())
        for _ in range(mib):
            fh.write(chunk)
        fh.write((tail + article(3) + TAIL).encode())


def make_hostile_files(
    folder: Path, secret: Path, fifo: FifoProbe, listener: ListenerProbe
) -> dict[str, Path]:
    folder.mkdir()
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        files[name] = folder / name
        files[name].write_bytes(data)

    xinclude = f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file://{secret}" parse="text"/>'
    put(
        "xxe.xml",
        with_doctype(
            document(article(101, title=f"Hello &xfile; &xfifo; &xweb; {xinclude}")),
            hostile_doctype("PubmedArticleSet", secret, fifo, listener),
        ),
    )
    put(
        "xxe.nxml",
        (
            '<?xml version="1.0"?>\n'
            + hostile_doctype("article", secret, fifo, listener)
            + '\n<article article-type="research-article"><front><article-meta>'
            '<article-id pub-id-type="pmid">102</article-id><article-id pub-id-type="pmc">PMC102</article-id>'
            "<title-group><article-title>JATS &xfile; &xfifo; &xweb;</article-title></title-group>"
            "</article-meta></front></article>\n"
        ).encode(),
    )
    lol = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    )
    put(
        "billion_laughs.xml",
        with_doctype(document(article(111, title="&lol9;")), f"<!DOCTYPE PubmedArticleSet [{lol}]>"),
    )
    put(
        "quadratic.xml",
        with_doctype(
            document(article(121, title="&a;" * 20000)),
            f'<!DOCTYPE PubmedArticleSet [<!ENTITY a "{"A" * 100_000}">]>',
        ),
    )
    write_huge_text_file(folder / "huge_text.xml")
    files["huge_text.xml"] = folder / "huge_text.xml"
    put(
        "deep.xml",
        document(article(131), article(132, title="<i>" * 100_000 + "x" + "</i>" * 100_000), article(133)),
    )
    good = document(article(141), article(142, title="BROKEN-HERE"), article(143))
    put("bad_utf8.xml", good.replace(b"BROKEN-HERE", b"Broken \xff\xfe\xc3( here"))
    put("truncated.xml.gz", gzip.compress(document(*(article(200 + i) for i in range(60))))[:-200])
    pmids = ["abc", "-1", "1 OR 1=1", "39047240;DROP TABLE articles"]
    recs = [article(p) for p in pmids] + [article(151)]
    put(
        "hostile_pmids.xml",
        document(*recs).replace(
            b"</PubmedArticleSet>",
            b'<DeleteCitation><PMID Version="1">1; DROP TABLE articles</PMID></DeleteCitation></PubmedArticleSet>',
        ),
    )
    put("good.xml", document(article(161), article(162)))
    return files


def test_hostile_files_are_refused_or_neutralised_in_bounded_memory(tmp_path, probes, prefect_api):
    secret, fifo, listener = probes
    files = make_hostile_files(tmp_path / "inputs", secret, fifo, listener)
    wh = tmp_path / "wh"
    wh.mkdir()
    db = wh / "w.duckdb"
    before = tree(tmp_path)
    r, rss = run_measured(["--db", str(db), "load"] + [str(p) for p in files.values()], prefect_api)
    print(f"litmeta load of {len(files)} hostile files: exit {r.returncode}, peak RSS {rss / 2**20:.0f} MiB")
    print(r.stderr[-3000:])
    assert r.returncode == 1, r.stderr[-3000:]  # finished, with rejects reported
    assert "Traceback" not in r.stderr
    assert rss < GIB, f"peak RSS {rss / 2**20:.0f} MiB"

    # nothing named by the input was opened or fetched; only the warehouse was written
    assert fifo.opened == 0, "an entity's file was opened"
    assert listener.connections == 0, "an external DTD or entity URL was fetched"
    after = tree(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("wh/")} == before
    assert sorted(k for k in after if k.startswith("wh/")) == ["wh/w.duckdb", "wh/w.duckdb.lock"]
    assert SECRET not in dump_text(db)

    loaded = {p for (p,) in q(db, "SELECT pmid FROM articles")}
    assert {101, 1, 131, 141, 151, 161, 162} <= loaded  # records before each break, and the good ones
    assert not loaded & {2, 132, 142, 111, 121}  # the hostile records themselves
    assert q(db, "SELECT title FROM articles WHERE pmid = 101") == [("Hello &xfile; &xfifo; &xweb;",)]
    assert q(db, "SELECT title FROM pmc_articles WHERE pmcid = 'PMC102'") == [
        ("JATS &xfile; &xfifo; &xweb;",)
    ]
    rejects = {}
    for source, key, reason in q(db, "SELECT source, record_key, reason FROM rejects"):
        rejects.setdefault(Path(source).name, []).append((key, reason))

    def reason_of(name: str) -> str:
        assert name in rejects, f"{name} not reported; rejects: {rejects}"
        line = " | ".join(f"{k}: {v}" for k, v in rejects[name])
        assert f"rejected: {files[name]}" in r.stderr, "every reject is listed on stderr"
        return line

    hostile_hint = "refused as hostile or corrupt input"
    assert "amplification" in reason_of("billion_laughs.xml") and hostile_hint in reason_of(
        "billion_laughs.xml"
    )
    assert "amplification" in reason_of("quadratic.xml")
    assert "Text node too long" in reason_of("huge_text.xml") and hostile_hint in reason_of("huge_text.xml")
    assert "Excessive depth" in reason_of("deep.xml") and hostile_hint in reason_of("deep.xml")
    assert "not valid UTF-8" in reason_of("bad_utf8.xml")
    assert "gzip" in reason_of("truncated.xml.gz") and "download it again" in reason_of("truncated.xml.gz")
    pm = reason_of("hostile_pmids.xml")
    for bad in ["abc", "-1", "1 OR 1=1", "39047240;DROP TABLE articles", "1; DROP TABLE articles"]:
        assert repr(bad) in pm or f"PMID {bad}" in pm, (bad, pm)
    assert "xxe.xml" not in rejects and "good.xml" not in rejects
    assert q(db, "SELECT count(*) FROM deleted_articles") == [(0,)]
    n_tables = q(db, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main'")[0][0]
    assert n_tables >= 24, "no table was dropped"


# -- E-utilities answers with hostile DTDs ------------------------------------------------------
def poison_sandbox(sb, doctype_for) -> None:
    """Make every XML answer of the sandbox carry a hostile DOCTYPE (and entity references in titles)."""
    app = sb.app
    serve = app._serve

    def poisoned(endpoint, params):
        resp = serve(endpoint, params)
        body = resp.body
        if body.lstrip().startswith(b"<?xml") or body.lstrip().startswith(b"<"):
            body = re.sub(rb"<!DOCTYPE[^\[>]*(\[.*?\])?\s*>", b"", body, count=1, flags=re.S)
            decl = body.index(b"?>") + 2 if body.lstrip().startswith(b"<?xml") else 0
            root = re.search(rb"<([A-Za-z][\w\-.]*)", body[decl:]).group(1).decode()
            body = body[:decl] + b"\n" + doctype_for(root).encode() + body[decl:]
            body = body.replace(b"<ArticleTitle>", b"<ArticleTitle>&xfile;&xfifo;&xweb;")
            body = body.replace(b"<article-title>", b"<article-title>&xfile;&xfifo;&xweb;")
            resp.body = body
        return resp

    app._serve = poisoned


def test_hostile_eutils_answers_are_neutralised(tmp_path, probes, prefect_api):
    from litmeta.extractors.sandbox import SandboxServer

    secret, fifo, listener = probes
    db = tmp_path / "w.duckdb"
    with SandboxServer(BUNDLED_SNAPSHOT) as sb:
        poison_sandbox(sb, lambda root: hostile_doctype(root, secret, fifo, listener))
        ingest = run_cli(
            ["--db", str(db), "--eutils-url", sb.base_url, "ingest", "39047240", "--pmc"], prefect_api
        )
        net = run_cli(["--db", str(db), "--eutils-url", sb.base_url, "network", "39047240"], prefect_api)
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    assert net.returncode == 0, net.stderr[-2000:]
    assert fifo.opened == 0 and listener.connections == 0
    assert SECRET not in dump_text(db)
    assert q(db, "SELECT count(*) FROM network_members") == [(11,)]
    title = q(db, "SELECT title FROM articles WHERE pmid = 39047240")[0][0]
    assert title.startswith("&xfile;&xfifo;&xweb;Blinatumomab for MRD-Negative"), "left unexpanded"


# -- command-line input ----------------------------------------------------------------------------
HOSTILE_PMIDS = ["abc", "-1", "1 OR 1=1", "39047240;DROP TABLE articles", "0", "1e9", "99999999999"]


@pytest.mark.parametrize("value", HOSTILE_PMIDS)
@pytest.mark.parametrize("verb", [["network"], ["refresh", "--seed"], ["export", "--out", "x", "--seed"]])
def test_hostile_pmids_on_the_command_line_are_bad_usage(verb, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--db", str(tmp_path / "w.duckdb")] + verb + [value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "is not a PMID" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [], "nothing was written"


def test_search_terms_with_quotes_and_sql_are_plain_terms(tmp_path, prefect_api):
    from litmeta.extractors.sandbox import SandboxServer

    snap = tmp_path / "snap"
    shutil.copytree(BUNDLED_SNAPSHOT, snap)
    terms = {
        "x' OR 1=1; DROP TABLE articles --": [39047240, 39321136],
        'blinatumomab" OR ""=""; DELETE FROM grants; --\\': [40532723],
    }
    (snap / "searches.tsv").write_text(
        "term\tpmid\n" + "".join(f"{t}\t{p}\n" for t, ps in terms.items() for p in ps), encoding="utf-8"
    )
    db = tmp_path / "w.duckdb"
    with SandboxServer(snap) as sb:
        for term, pmids in terms.items():
            r = run_cli(["--db", str(db), "--eutils-url", sb.base_url, "search", term, "--save"], prefect_api)
            assert r.returncode == 0, r.stderr[-2000:]
            assert f"search matched {len(pmids)} record(s); ingested {len(pmids)}" in r.stdout
    assert sorted(p for (p,) in q(db, "SELECT pmid FROM articles")) == sorted(
        p for ps in terms.values() for p in ps
    )
    assert q(db, "SELECT count(*) FROM grants WHERE pmid = 39047240") == [(31,)]
    assert sorted(t for (t,) in q(db, "SELECT query FROM saved_searches")) == sorted(terms)
    params = [
        json.loads(p)["query"] for (p,) in q(db, "SELECT parameters FROM ingest_runs ORDER BY started_at")
    ]
    assert params == list(terms)


# -- --db paths ------------------------------------------------------------------------------------
def _unprivileged_prefix() -> list[str]:
    """Command prefix that runs litmeta as a user the file permissions apply to.

    Root writes anywhere, so as root the commands run as 'nobody' (setpriv). Skips, saying why, when
    that is impossible here: no setpriv, or the checkout lies in a folder 'nobody' cannot enter.
    """
    if os.getuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("running as root without setpriv: cannot make a folder unwritable to litmeta")
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run(prefix + litmeta_cmd() + ["--help"], capture_output=True, text=True, timeout=60,
                           cwd="/")
    if probe.returncode != 0:
        pytest.skip("running as root, and user 'nobody' cannot run this checkout's litmeta "
                    f"({probe.stderr.strip().splitlines()[-1][:160] if probe.stderr.strip() else 'no output'}): "
                    "cannot test unwritable paths; run the suite as a normal user or from a world-readable clone")
    return prefix


def _one_line_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    last = [ln for ln in r.stderr.strip().splitlines() if ln.strip()][-1]
    for n in needles:
        assert n in last, (n, last)
    return last


def _cli_in(base: Path, prefix: list[str], env: dict):
    def run(args: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(prefix + litmeta_cmd() + args, capture_output=True, text=True, timeout=120,
                              env=env, cwd=base)

    return run


GOOD_VERBS = (["load", "good.xml"], ["ingest", "39047240"], ["network", "39047240"])


def test_db_path_that_is_a_directory_or_in_a_missing_folder(tmp_path, prefect_api):
    (tmp_path / "good.xml").write_bytes(document(article(5)))
    env = {**os.environ, **prefect_api}
    run = _cli_in(tmp_path, [], env)
    before = tree(tmp_path)
    cases = [
        (["--db", str(path)] + verb, needle)
        for verb in GOOD_VERBS
        for path, needle in ((tmp_path, "is a directory"), (tmp_path / "missing" / "w.duckdb", "does not exist"))
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda c: run(c[0]), cases))
    for (_, needle), r in zip(cases, results, strict=True):
        _one_line_error(r, needle)
    assert tree(tmp_path) == before, "nothing was created or changed"
    assert not (tmp_path / "missing").exists()


def test_unwritable_db_paths(prefect_api):
    prefix = _unprivileged_prefix()
    base = Path(tempfile.mkdtemp(prefix="litmeta-dbpaths-"))  # outside pytest's 0700 tmp: other users can enter
    try:
        os.chmod(base, 0o755)
        ro = base / "readonly"
        ro.mkdir(mode=0o555)
        os.chmod(ro, 0o555)
        existing = base / "existing.duckdb"
        from litmeta.warehouse.db import connect

        connect(str(existing)).close()
        os.chmod(existing, 0o444)
        (base / "good.xml").write_bytes(document(article(5)))
        os.chmod(base / "good.xml", 0o444)
        home = base / "prefect-home"
        home.mkdir(mode=0o777)
        os.chmod(home, 0o777)
        run = _cli_in(base, prefix, {**os.environ, **prefect_api, "PREFECT_HOME": str(home), "HOME": str(home)})
        before = tree(base)
        cases = [
            (["--db", str(path)] + verb, needle)
            for verb in GOOD_VERBS
            for path, needle in ((ro / "w.duckdb", f"folder {ro} is not writable"), (existing, "file is not writable"))
        ]
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(lambda c: run(c[0]), cases))
        for (_, needle), r in zip(cases, results, strict=True):
            _one_line_error(r, needle)
        assert sorted(p.name for p in ro.iterdir()) == []
        ok = run(["--db", str(existing), "sql", "SELECT count(*) AS n FROM articles", "--format", "csv"])
        assert ok.returncode == 0 and ok.stdout.splitlines() == ["n", "0"], (
            "a read-only warehouse can still be queried"
        )
        assert tree(base) == before, "nothing was created or changed"
    finally:
        for p in base.rglob("*"):
            if p.is_dir():
                os.chmod(p, 0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_db_files_that_are_not_litmeta_warehouses(tmp_path, prefect_api):
    good = tmp_path / "good.xml"
    good.write_bytes(document(article(5)))
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"not a database" * 1000)
    foreign = tmp_path / "foreign.duckdb"
    with duckdb.connect(str(foreign)) as con:
        con.execute("CREATE TABLE articles (id INTEGER, note VARCHAR)")
        con.execute("INSERT INTO articles VALUES (1, 'mine')")
    snap = tree(tmp_path)
    _one_line_error(
        run_cli(["--db", str(junk), "load", str(good)], prefect_api), str(junk), "not a valid DuckDB database"
    )
    _one_line_error(
        run_cli(["--db", str(foreign), "load", str(good)], prefect_api), "not a litmeta warehouse", "articles"
    )
    assert tree(tmp_path) == snap, "nothing was written next to them either (not even a lock file)"
    assert q(foreign, "SELECT table_name FROM information_schema.tables") == [("articles",)]
