"""The grant_projects view: distinct NIH project numbers behind grant lines, checked against the seed page.

The expected count for the seed is read from the seed's PubMed page text in ../shared/seeds/ with a
parse of its own (the "Grants and funding" lines), not with litmeta's code.
"""

from __future__ import annotations

import re

import pytest

from litmeta.schemas.docs import VIEW_DOCS
from litmeta.warehouse.db import connect
from tests.conftest import BUNDLED_SNAPSHOT, SHARED

SEED = 39047240
PAGE = SHARED / "seeds" / "000_394b910e158339c1.txt"


def page_grant_lines() -> list[str]:
    """The seed page's "Grants and funding" lines ('U10 CA180868/CA/NCI NIH HHS/United States', ...)."""
    if not PAGE.exists():
        pytest.skip(f"seed page not found at {PAGE} (../shared is absent; set LITMETA_SHARED to point at it)")
    lines = PAGE.read_text().splitlines()
    start = lines.index("Grants and funding") + 1
    out = []
    for line in lines[start:]:
        if not line.startswith("- "):
            break
        out.append(line[2:])
    return out


def page_project_numbers() -> set[str]:
    """Institute code + 6-digit serial of every grant id on the page (a line may list several)."""
    found = set()
    for line in page_grant_lines():
        ids = line.split("/", 1)[0].replace(" ", "")
        found |= {ic + serial for ic, serial in re.findall(r"([A-Z]{2})(\d{6})", ids)}
    return found


def test_the_seed_page_lists_31_grant_lines():
    assert len(page_grant_lines()) == 31


def _warehouse_with_bundled_snapshot():
    from litmeta.extractors.pubmed_xml import iter_batches
    from litmeta.warehouse.load import BatchLoader

    con = connect(":memory:")
    loader = BatchLoader(con, "grant-projects")
    for f in sorted((BUNDLED_SNAPSHOT / "pubmed").glob("*.xml")):
        for b in iter_batches(f):
            loader.load(b)
    return con


def test_seed_projects_are_the_distinct_project_numbers_of_its_page():
    expected = page_project_numbers()
    con = _warehouse_with_bundled_snapshot()
    assert con.execute("SELECT count(*) FROM grants WHERE pmid = ?", [SEED]).fetchall() == [(31,)]
    assert con.execute("SELECT count(*) FROM grant_projects WHERE pmid = ?", [SEED]).fetchall() == [(len(expected),)]
    got = {r[0] for r in con.execute("SELECT project_number FROM grant_projects WHERE pmid = ?", [SEED]).fetchall()}
    assert got == expected
    # a project listed on its own line and again in the comma list keeps the first line's agency
    assert con.execute("SELECT agency, activity_codes, grant_positions FROM grant_projects "
                       "WHERE pmid = ? AND project_number = 'CA180820'", [SEED]).fetchall() == [
        ("NCI NIH HHS", ["U10"], [9, 26])]


GRANTS = [
    # (grant_id, agency): the project numbers expected from it
    ("R01 CA123456-01A1", "NCI NIH HHS", ["CA123456"]),
    ("CA123456", "NCI NIH HHS", ["CA123456"]),
    ("5R01CA12345", "NCI NIH HHS", ["CA012345"]),
    ("U10CA180820, U10CA180794", "ECOG-ACRIN Cancer Research Group", ["CA180794", "CA180820"]),
    ("P30 CA-08748; T32 GM007753", "NIH HHS", ["CA008748", "GM007753"]),
    ("ZIA BC010000", "Intramural NIH HHS", ["BC010000"]),
    ("k08 hl123456 and R21HL654321", "NHLBI NIH HHS", ["HL123456", "HL654321"]),
    ("AB123456", "Wellcome Trust", []),  # no activity code and not an NIH agency: not an NIH number
    ("HHSN261201500003I", "NCI NIH HHS", []),  # a contract, not a project number
    ("MR/K01234X/1", "Medical Research Council", []),
    ("CA1234567", "NCI NIH HHS", []),  # seven digits: not a serial number
]


def test_normalisation_rule():
    con = connect(":memory:")
    for pmid, (grant_id, agency, _) in enumerate(GRANTS, 1):
        con.execute("INSERT INTO grants (pmid, position, grant_id, agency) VALUES (?, 1, ?, ?)", [pmid, grant_id, agency])
    con.execute("INSERT INTO grants (pmid, position, grant_id, agency) VALUES (1, 2, NULL, 'NCI NIH HHS')")
    got: dict[int, list[str]] = {}
    for pmid, number in con.execute("SELECT pmid, project_number FROM grant_projects ORDER BY 1, 2").fetchall():
        got.setdefault(pmid, []).append(number)
    for pmid, (grant_id, _, expected) in enumerate(GRANTS, 1):
        assert got.get(pmid, []) == expected, grant_id


def test_documented_view_examples_run():
    con = _warehouse_with_bundled_snapshot()
    documented = {name for name, _, _ in VIEW_DOCS}
    assert "grant_projects" in documented
    for name, _, example in VIEW_DOCS:
        rows = con.execute(example).fetchall()
        # the network views need an observed network: tests/test_network_report.py runs them on the demo's
        assert rows or name in {"co_citation", "bibliographic_coupling", "prior_works", "derivative_works"}, name
