"""LinkOut fetched for a network's members (issue 16, "Full-text links"): the sandbox's llinks/prlinks from
linkout.tsv, the batched client, and `network` writing full_text_links (and not, with --no-fulltext-links: tests/test_ecitmatch.py).
Expected rows come from the linkout.tsv the test writes, not from litmeta."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import duckdb
import pytest

from litmeta.extractors.entrez import EntrezClient
from litmeta.extractors.linkout import full_text_link_rows
from litmeta.extractors.sandbox import BUNDLED_SNAPSHOT, SandboxServer

POLITE = {"backoff_base": 0.01, "backoff_cap": 0.02, "rate_limit_backoff": 0.01}
SEED = 39047240
HEAD = "cmd\tid\turl\tprovider\tprovider_abbr\tprovider_id\tcategory\tattribute\tsubject_type\tlink_name\n"


def row(cmd: str, pmid: int, n: int) -> str:
    return (f"{cmd}\t{pmid}\thttps://p{n}.example/{pmid}\tProvider {n}\tp{n}\t{n}\tFull Text Sources\t"
            f"free resource|full-text online\tpublishers/providers\t\n")


@pytest.fixture(scope="module")
def snap(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("linkout") / "snap"
    shutil.copytree(BUNDLED_SNAPSHOT, root)
    (root / "linkout.tsv").write_text(HEAD + row("prlinks", SEED, 1) + row("llinks", SEED, 2)
                                      + row("llinks", 39321136, 3))
    return root


def test_sandbox_answers_llinks_and_prlinks_from_linkout_tsv(snap):
    with SandboxServer(snap) as sb, EntrezClient(sb.base_url, **POLITE) as c:
        ll = c.elink_linkout([SEED, 39321136, 12345], cmd="llinks")
        pr = c.elink_linkout([SEED, 39321136], cmd="prlinks")
        st = sb.stats()
    assert [(s.id, [lk.provider for lk in s.links], s.info) for s in ll] == [
        (SEED, ["Provider 1", "Provider 2"], None), (39321136, ["Provider 3"], None), (12345, [], "No links")]
    assert [(s.id, [lk.url for lk in s.links]) for s in pr] == [(SEED, [f"https://p1.example/{SEED}"]),
                                                                 (39321136, [])]
    assert st["by_endpoint"] == {"elink": 2} and st["ids_requested"] == {"elink": 5}
    t = full_text_link_rows(ll).to_pylist()
    assert t[0]["category"] == "Full Text Sources" and json.loads(t[0]["attributes"]) == ["free resource",
                                                                                          "full-text online"]
    with SandboxServer(BUNDLED_SNAPSHOT) as sb, EntrezClient(sb.base_url, **POLITE) as c:
        assert [s.links for s in c.elink_linkout([SEED])] == [[]], "the bundled snapshot holds no LinkOut links"


def test_linkout_batches_and_faults(snap):
    ids = [SEED, 39321136] + list(range(1, 9))
    with SandboxServer(snap, faults="500=0.2,truncate=0.2,error200=0.1,seed=3") as sb, \
            EntrezClient(sb.base_url, link_batch_size=4, **POLITE) as c:
        sets = c.elink_linkout(ids)
        st = sb.stats()
    assert [s.id for s in sets] == ids and sum(len(s.links) for s in sets) == 3 and sum(st["faults"].values()) > 0
    assert st["by_endpoint"]["elink"] - sum(st["faults"].values()) == math.ceil(len(ids) / 4)


def q(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_network_fetches_full_text_links(snap, tmp_path, prefect_api):
    """One llinks request per 500 members; tests/test_ecitmatch.py runs with fulltext_links=False (none)."""
    from litmeta.flows.network import build_network

    db = tmp_path / "on.duckdb"
    with SandboxServer(snap) as sb:
        on = build_network(seed=SEED, db=str(db), eutils_url=sb.base_url, depth=1, idconv_url=sb.idconv_url,
                           icite_url=sb.icite_url)
    members = q(db, "SELECT count(*) FROM network_members")[0][0]
    docs = q(db, "SELECT request FROM raw_documents WHERE kind = 'elink_linkout'")
    assert len(docs) == math.ceil(members / 500) and "cmd=llinks" in docs[0][0]
    got = set(q(db, "SELECT pmid, provider, url FROM full_text_links"))
    assert got == {(SEED, "Provider 1", f"https://p1.example/{SEED}"), (SEED, "Provider 2", f"https://p2.example/{SEED}"),
                   (39321136, "Provider 3", "https://p3.example/39321136")}
    assert on["full_text_links_new"] == 3
