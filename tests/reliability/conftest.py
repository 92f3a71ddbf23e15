"""Shared fixtures of the reliability suite: a small synthetic snapshot and its clean reference run.

Sizes are kept small so the suite runs in a few minutes (1,000 articles, depth 2, 600 members:
two efetch batches, so "between batches" exists); bench/chaos.py runs the full-size figures.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest

from bench.chaos import run_network_inprocess, warehouse_state
from tests.conftest import require_corpus

N_ARTICLES = 1000
DEPTH = 2
MAX_NODES = 600


@pytest.fixture(scope="session")
def syn(tmp_path_factory):
    """(snapshot dir, seed PMID) of a 1,000-article synthetic snapshot."""
    corpus = require_corpus("pubmed")
    from bench.snapshot_gen import generate_snapshot

    out = tmp_path_factory.mktemp("reliability-syn") / "snapshot"
    info = generate_snapshot(out, N_ARTICLES, seed=1, corpus_dir=corpus)
    return out, info["seed_pmid"]


@pytest.fixture(scope="session")
def reference(syn, prefect_api, tmp_path_factory):
    """The clean run every faulted, crashed or concurrent run must end equal to."""
    snap, seed = syn
    db = tmp_path_factory.mktemp("reliability-ref") / "clean.duckdb"
    fig = run_network_inprocess(snap, db, seed, DEPTH, MAX_NODES)
    assert fig["completed"] and fig["status"] == "completed", fig
    state = warehouse_state(db)
    assert state["network_members"] == MAX_NODES and state["duplicates"] == {}
    return {"db": db, "state": state, "figures": fig}


def dump_text(db: Path) -> str:
    """Every value of every table of the warehouse as text (to search it for leaked content)."""
    parts = []
    with duckdb.connect(str(db), read_only=True) as con:
        for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
        ).fetchall():
            for row in con.execute(f"SELECT * FROM {t}").fetchall():
                parts.append(" ".join(str(v) for v in row if not isinstance(v, bytes)))
                parts += [gzip.decompress(v).decode("utf-8", "replace") for v in row if isinstance(v, bytes)]
    return "\n".join(parts)
