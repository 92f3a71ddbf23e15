"""Faults: every fault kind at once through the sandbox ends in the same warehouse as a clean run.

Acceptance 1 of issue 5, at test size (1,000 articles, depth 2, 600 members); bench/chaos.py runs
the full size (5,000 articles, 2,000 members) and prints the figures.
"""

from __future__ import annotations

import pytest

from bench.chaos import FAULT_SPEC, differing, run_network_inprocess, warehouse_state
from tests.reliability.conftest import DEPTH, MAX_NODES

pytestmark = [pytest.mark.reliability, pytest.mark.corpus]  # the synthetic snapshot needs the corpus

FAULT_SEEDS = (1, 2, 3)
KINDS = {item.split("=")[0] for item in FAULT_SPEC.split(",")}


def test_every_fault_kind_at_once_ends_equal_to_a_clean_run(syn, reference, tmp_path):
    snap, seed = syn
    served: set[str] = set()
    clean = reference["figures"]
    for k in FAULT_SEEDS:
        db = tmp_path / f"faults_{k}.duckdb"
        fig = run_network_inprocess(snap, db, seed, DEPTH, MAX_NODES, faults=f"{FAULT_SPEC},seed={k}")
        state = warehouse_state(db)
        print(
            f"seed={k}: faults served {fig['faults_served']}, requests {fig['client_requests']} "
            f"(clean {clean['client_requests']}), retries {fig['client_retries']} {fig['retries_by_reason']}, "
            f"attempts {fig['attempts']}; records {state['articles']}, edges {state['citation_edges']}"
        )
        assert fig["completed"], fig["failed_attempts"]
        assert sum(fig["faults_served"].values()) > 0 and fig["client_retries"] > 0
        assert fig["server_requests"] == fig["client_requests"] > clean["client_requests"]
        assert differing(state, reference["state"]) == [], "warehouse content differs from the clean run"
        assert state["duplicates"] == {}
        assert (state["articles"], state["citation_edges"]) == (
            reference["state"]["articles"],
            reference["state"]["citation_edges"],
        )
        last = state["runs"][-1]
        assert last["status"] == "completed" and last["http_requests"] == fig["summary_http_requests"]
        served |= set(fig["faults_served"])
    assert served == KINDS, f"the three fault seeds should exercise every kind; served {sorted(served)}"


def test_retries_exhausted_fail_the_run_and_a_rerun_converges(syn, reference, tmp_path, monkeypatch):
    """A client that gives up after 2 tries fails some runs outright; running again converges anyway."""
    import litmeta.flows.network as fnet

    original = fnet.make_client

    def fragile(*a, **k):
        c = original(*a, **k)
        c.max_tries, c.backoff_base, c.backoff_cap, c.rate_limit_backoff = 2, 0.01, 0.02, 0.05
        return c

    monkeypatch.setattr(fnet, "make_client", fragile)
    monkeypatch.setattr(fnet, "fetch_links", fnet.fetch_links.with_options(retry_delay_seconds=0))
    monkeypatch.setattr(fnet, "fetch_records", fnet.fetch_records.with_options(retry_delay_seconds=0))
    snap, seed = syn
    db = tmp_path / "exhausted.duckdb"
    fig = run_network_inprocess(
        snap, db, seed, DEPTH, MAX_NODES, faults="500=0.2,reset=0.1,truncate=0.05,seed=6", max_attempts=6
    )
    state = warehouse_state(db)
    print(
        f"attempts {fig['attempts']}, failures {fig['failed_attempts']}, runs "
        f"{[r['status'] for r in state['runs']]}, faults {fig['faults_served']}"
    )
    assert fig["failed_attempts"], "this fault seed is chosen so that the first run gives up"
    assert all("gave up after 2 tries" in f for f in fig["failed_attempts"])
    assert fig["completed"]
    assert [r["status"] for r in state["runs"]] == ["failed"] * len(fig["failed_attempts"]) + ["completed"]
    assert differing(state, reference["state"]) == []
    assert state["duplicates"] == {}
