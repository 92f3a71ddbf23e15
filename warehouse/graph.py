"""Reading a seed's network as Arrow (members, citation pairs, global counts) and writing its metrics.

The metrics themselves are computed in `litmeta.warehouse.metrics` from these Arrow tables only; this
module holds the SQL on both sides. An observation of a seed is identified by ``observed_at``: the
timestamp `litmeta.warehouse.network.write_observation` gave its members' ``last_seen`` and the seed's
``last_refreshed_at``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from litmeta.errors import UsageError
from litmeta.schemas import TABLES

# First author (last name, else the collective name) and year of an article: its label on maps and lists.
LABEL_SQL = """
    SELECT a.pmid, a.title, a.pub_year, a.journal_iso_abbrev, a.doi,
           coalesce(au.last_name, au.collective_name) AS first_author
    FROM articles a LEFT JOIN authors au ON au.pmid = a.pmid AND au.position = 1
"""

# The members of one observation with their metrics and labels, best ranked first.
NODES_SQL = f"""
    WITH l AS ({LABEL_SQL})
    SELECT n.pmid, n.hop, n.via, l.title, l.pub_year AS year, l.journal_iso_abbrev AS journal, l.doi,
           l.first_author, n.community, n.pagerank, n.pagerank_rank, n.local_cited_by, n.global_cited_by,
           coalesce(n.global_cited_by, n.local_cited_by) AS cited_by, n.betweenness
    FROM network_metrics n LEFT JOIN l ON l.pmid = n.pmid
    WHERE n.seed_pmid = $seed AND n.observed_at = $at ORDER BY n.pagerank_rank
"""


def node_label(first_author: str | None, year: int | None, pmid: int) -> str:
    """First author and year ('Litzow 2024'); the PMID stands in for an author the record does not give."""
    return f"{first_author or f'PMID {pmid}'} {year or 'n.d.'}"


def seed_nodes(con: duckdb.DuckDBPyConnection, seed: int, at: dt.datetime | None = None) -> list[dict]:
    """Members of ``seed``'s observation ``at`` (default: the latest) with metrics and ``label``, by rank."""
    at = at or latest_observation(con, seed)
    cur = con.execute(NODES_SQL, {"seed": seed, "at": at})
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    if not rows:
        raise NoObservation(f"seed {seed} has no network metrics yet; run 'litmeta refresh --seed {seed}'")
    for r in rows:
        r["label"] = node_label(r["first_author"], r["year"], r["pmid"])
    return rows


class NoObservation(UsageError):
    """The seed is not tracked, or has not been observed yet (the message says what to run)."""


@dataclass
class SeedGraph:
    """One observation of a seed's network, as Arrow tables."""

    seed: int
    observed_at: dt.datetime
    run_id: str | None
    members: pa.Table  # pmid, hop, via
    edges: pa.Table  # citing_pmid, cited_pmid (distinct pairs between members)
    global_counts: pa.Table  # pmid, global_cited_by, global_cited_by_source


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' "
                            "AND table_name = ?", [name]).fetchall()[0][0])


def latest_observation(con: duckdb.DuckDBPyConnection, seed: int) -> dt.datetime:
    """When ``seed``'s network was last observed; `NoObservation` for an unknown or never observed seed."""
    rows = con.execute("SELECT last_refreshed_at FROM seeds WHERE seed_pmid = ?", [seed]).fetchall()
    if not rows:
        raise NoObservation(f"seed {seed} is not tracked in this warehouse; register it with 'litmeta network {seed}'")
    if rows[0][0] is None:
        raise NoObservation(f"seed {seed} has no observation yet; run 'litmeta network {seed}' (or 'litmeta refresh')")
    return rows[0][0]


# Current members: those the observation reached (their last_seen is the observation's timestamp).
_MEMBERS = """
    SELECT pmid, hop, via FROM network_members WHERE seed_pmid = $seed AND last_seen = $at ORDER BY pmid
"""
_EDGES = """
    WITH m AS (SELECT pmid FROM network_members WHERE seed_pmid = $seed AND last_seen = $at)
    SELECT DISTINCT e.citing_pmid, e.cited_pmid FROM citation_edges e
    WHERE e.citing_pmid IN (SELECT pmid FROM m) AND e.cited_pmid IN (SELECT pmid FROM m)
      AND e.citing_pmid <> e.cited_pmid
    ORDER BY 1, 2
"""
# elink's count: the member's latest link snapshot at or before the observation.
_ELINK_COUNTS = """
    SELECT m.pmid, arg_max(l.cited_by_count, l.observed_at) AS cited_by
    FROM network_members m JOIN link_snapshots l ON l.pmid = m.pmid
    WHERE m.seed_pmid = $seed AND m.last_seen = $at AND l.observed_at <= $at AND l.cited_by_count IS NOT NULL
    GROUP BY m.pmid
"""
_ICITE_COUNTS = """
    SELECT m.pmid, arg_max(i.citation_count, i.observed_at) AS cited_by
    FROM network_members m JOIN icite_metrics i ON i.pmid = m.pmid
    WHERE m.seed_pmid = $seed AND m.last_seen = $at AND i.citation_count IS NOT NULL
      AND (i.observed_at <= $at OR i.run_id = $run)  -- what iCite said by then, or during that run
    GROUP BY m.pmid
"""


def read_seed_graph(con: duckdb.DuckDBPyConnection, seed: int, observed_at: dt.datetime | None = None,
                    run_id: str | None = None) -> SeedGraph:
    """The network of ``seed`` at ``observed_at`` (default: its latest observation).

    Global cited-by counts come from iCite's ``citation_count`` where an ``icite_metrics`` table holds
    one, else from elink's count in ``link_snapshots``.
    """
    at = observed_at or latest_observation(con, seed)
    if run_id is None:
        found = con.execute("SELECT min(run_id) FROM link_snapshots WHERE seed_pmid = ? AND observed_at = ?",
                            [seed, at]).fetchall()
        run_id = found[0][0] if found else None
    p = {"seed": seed, "at": at}
    members = con.sql(_MEMBERS, params=p).to_arrow_table()
    edges = con.sql(_EDGES, params=p).to_arrow_table()
    counts = {r[0]: (r[1], "elink") for r in con.execute(_ELINK_COUNTS, p).fetchall()}
    if has_table(con, "icite_metrics"):
        counts.update({r[0]: (r[1], "icite")
                       for r in con.execute(_ICITE_COUNTS, {**p, "run": run_id or ""}).fetchall()})
    pmids = sorted(counts)
    global_counts = pa.table({
        "pmid": pa.array(pmids, pa.int64()),
        "global_cited_by": pa.array([counts[q][0] for q in pmids], pa.int32()),
        "global_cited_by_source": pa.array([counts[q][1] for q in pmids], pa.string()),
    })
    return SeedGraph(seed, at, run_id, members, edges, global_counts)


def write_metrics(con: duckdb.DuckDBPyConnection, metrics: pa.Table) -> int:
    """Replace the metrics of the observations in ``metrics`` (one seed, one observed_at) in bulk."""
    if metrics.num_rows == 0:
        return 0
    cols = ", ".join(TABLES["network_metrics"].column_names)
    con.register("_metrics", metrics)
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("DELETE FROM network_metrics WHERE (seed_pmid, observed_at) IN "
                        "(SELECT DISTINCT seed_pmid, observed_at FROM _metrics)").fetchall()
            con.execute(f"INSERT INTO network_metrics ({cols}) SELECT {cols} FROM _metrics").fetchall()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.unregister("_metrics")
    return metrics.num_rows


def observations(con: duckdb.DuckDBPyConnection, seed: int) -> list[dt.datetime]:
    """The observations of ``seed`` that have metrics, oldest first."""
    return [r[0] for r in con.execute(
        "SELECT DISTINCT observed_at FROM network_metrics WHERE seed_pmid = ? ORDER BY 1", [seed]).fetchall()]
