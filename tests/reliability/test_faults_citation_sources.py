"""Faults on all three services (E-utilities, iCite, the PMC ID Converter) end in the clean run's warehouse.

Issue 16, acceptance 3, at test size; bench/chaos.py --citation-sources runs the full size.
"""

from __future__ import annotations

import pytest

from bench.chaos import FAULT_SPEC, differing, run_network_inprocess, warehouse_state

pytestmark = [pytest.mark.reliability, pytest.mark.corpus]  # the synthetic snapshot needs the corpus

FAULT_SEEDS = (1, 2, 3)


def test_every_fault_kind_on_all_three_services_ends_equal_to_a_clean_run(prefect_api, tmp_path_factory,
                                                                          monkeypatch):
    """Issue 16, line 3, at test size (200 articles with iCite and ID-converter files, depth 1, 40 members):
    the chaos settings on E-utilities, iCite and the PMC ID Converter at once, three fault seeds. Small
    iCite and ID Converter batches give those services enough requests for the faults to land on."""
    from bench.snapshot_gen import generate_snapshot
    from tests.conftest import require_corpus

    monkeypatch.setenv("LITMETA_ICITE_BATCH", "8")
    monkeypatch.setenv("LITMETA_IDCONV_BATCH", "8")
    work = tmp_path_factory.mktemp("faults-three-services")
    info = generate_snapshot(work / "snap", 200, seed=2, corpus_dir=require_corpus("pubmed"), citation_sources=True)
    snap, seed = work / "snap", info["seed_pmid"]
    clean = run_network_inprocess(snap, work / "clean.duckdb", seed, 1, 40)
    reference = warehouse_state(work / "clean.duckdb")
    assert {"icite", "idconv"} <= set(clean["server_by_endpoint"]), clean["server_by_endpoint"]
    assert reference["hashes"]["id_map"] != "0:"
    metrics = icite_metrics(work / "clean.duckdb")
    assert metrics
    hit: dict[str, set[str]] = {}
    for k in FAULT_SEEDS:
        db = work / f"faults_{k}.duckdb"
        fig = run_network_inprocess(snap, db, seed, 1, 40, faults=f"{FAULT_SPEC},seed={k}")
        state = warehouse_state(db)
        print(f"seed={k}: faults {fig['faults_by_endpoint']}, requests {fig['client_requests']} "
              f"(clean {clean['client_requests']}), retries {fig['retries_by_reason']}")
        assert fig["completed"], fig["failed_attempts"]
        assert fig["server_requests"] == fig["client_requests"]
        assert differing(state, reference) == [] and state["duplicates"] == {}
        assert icite_metrics(db) == metrics, "icite_metrics (one row per PMID per run) equal too"
        for endpoint, kinds in fig["faults_by_endpoint"].items():
            hit.setdefault(endpoint, set()).update(kinds)
    assert {"icite", "idconv"} <= set(hit), f"faults reached every service: {hit}"
    assert all(len(hit[s]) >= 3 for s in ("icite", "idconv")), f"several fault kinds on each service: {hit}"


def icite_metrics(db) -> list[tuple]:
    """icite_metrics without its per-run columns (content_hashes leaves per-run tables out)."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT * EXCLUDE (observed_at, run_id) FROM icite_metrics ORDER BY pmid").fetchall()
