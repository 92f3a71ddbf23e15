"""Crashes: `litmeta network` killed with SIGKILL at five points, then run again, ends equal to a clean run.

The kill comes from inside (``LITMETA_CRASH_AT=point:n``, see `litmeta.warehouse.db.crash_point`), so it
lands exactly: during a fetch, inside a load transaction, between two batches, after the records,
inside the observation transaction. After each kill the DuckDB file opens, nothing is duplicated
and the killed run is recorded as not finished; the re-run fetches only the records that are
missing and ends with the same content as the clean run (acceptance 2 of issue 5).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.chaos import CRASH_POINTS, crash_and_resume
from tests.reliability.conftest import DEPTH, MAX_NODES

pytestmark = [pytest.mark.reliability, pytest.mark.corpus]  # the synthetic snapshot needs the corpus

#: records the killed run has committed at each point (600 members = efetch batches of 500 + 100)
LEFT_RECORDS = {"fetch": 0, "load-txn": 500, "between-batches": 500, "after-records": 600, "edges": 600}


@pytest.fixture(scope="module")
def crashed(syn, reference, prefect_api, tmp_path_factory):
    """Every crash point, two at a time (each with its own sandbox and warehouse)."""
    snap, seed = syn
    work = tmp_path_factory.mktemp("crashes")

    def one(point_n):
        point, n = point_n
        return point, crash_and_resume(
            snap, seed, work / f"{point}.duckdb", point, n, prefect_api, DEPTH, MAX_NODES, reference["state"]
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, CRASH_POINTS))


@pytest.mark.parametrize("point", [p for p, _ in CRASH_POINTS])
def test_killed_run_leaves_an_openable_warehouse_and_a_rerun_ends_equal(crashed, point):
    r = crashed[point]
    print({k: v for k, v in r.items() if not k.endswith("_tail")})
    assert r["killed_by_sigkill"], (
        f"the run was not killed at {r['point']}: rc {r['killed_returncode']} {r['killed_stderr_tail']}"
    )
    assert r["opens_after_kill"], r.get("open_error")
    left = r["left"]
    assert left["runs"] == [("running", True)], "the killed run is recorded as not finished"
    assert left["duplicates"] == {}
    assert [p for p in left["problems"] if not p.startswith("ingest_runs:")] == [], \
        "nothing points at a document the warehouse does not hold, even right after the kill"
    assert left["articles"] == LEFT_RECORDS[point]
    assert left["network_members"] == 0, "the observation is one transaction: all or nothing"
    assert r["rerun_returncode"] == 0, r["rerun_stderr_tail"]
    assert r["rerun_efetch_ids"] == MAX_NODES - left["articles"], (
        "records already loaded are not fetched again"
    )
    assert r["final"]["runs"] == [("interrupted", True), ("completed", False)]
    assert r["final"]["duplicates"] == {}
    assert r["final"]["problems"] == [], "litmeta check is clean after the re-run"
    assert r["differing_tables"] == [], "after the re-run the warehouse equals the clean run, raw_documents included"
