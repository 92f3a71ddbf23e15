"""Network metrics of one observation of a seed's network, from Arrow tables to Arrow rows (networkx).

PageRank and communities say which papers matter around a seed and how the field clusters (what
Connected Papers and Inciteful rank and colour by). Everything here is deterministic for a given
warehouse: nodes and edges enter the graph in PMID order, and Louvain runs with a fixed seed.
Betweenness is exact, so it costs about nodes x edges steps; above `BETWEENNESS_MAX_WORK` it is
skipped (NULL) and `Metrics.betweenness_skipped` says so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from litmeta.schemas import TABLES
from litmeta.warehouse.graph import SeedGraph, read_seed_graph, write_metrics

PAGERANK_ALPHA = 0.85
LOUVAIN_SEED = 17
BETWEENNESS_MAX_WORK = 5_000_000  # nodes x edges: a few seconds of networkx's exact algorithm


@dataclass
class Metrics:
    """The rows of `network_metrics` for one observation, and what was left out."""

    table: pa.Table
    betweenness_skipped: bool
    communities: int


def compute(graph: SeedGraph) -> Metrics:
    """PageRank, Louvain communities, betweenness (when small enough), local and global cited-by counts."""
    import networkx as nx

    members = graph.members.to_pydict()
    pmids: list[int] = members["pmid"]
    pairs = list(zip(graph.edges.column("citing_pmid").to_pylist(), graph.edges.column("cited_pmid").to_pylist(),
                     strict=True))
    g = nx.DiGraph()
    g.add_nodes_from(pmids)
    g.add_edges_from(pairs)
    undirected = nx.Graph()  # built from the pairs: cheaper than copying g with to_undirected()
    undirected.add_nodes_from(pmids)
    undirected.add_edges_from(pairs)
    n, m = g.number_of_nodes(), g.number_of_edges()
    pagerank = nx.pagerank(g, alpha=PAGERANK_ALPHA, tol=1e-10, max_iter=1000) if n else {}
    groups = nx.community.louvain_communities(undirected, seed=LOUVAIN_SEED) if n else []
    groups = sorted(groups, key=lambda c: (-len(c), min(c)))
    community = {p: i for i, c in enumerate(groups) for p in c}
    skipped = n * m > BETWEENNESS_MAX_WORK
    between = {} if skipped or not n else nx.betweenness_centrality(g, normalized=True)
    rank = {p: i for i, p in enumerate(sorted(pmids, key=lambda p: (-pagerank[p], p)), 1)}
    counts = graph.global_counts.to_pydict()
    global_of = dict(zip(counts["pmid"], zip(counts["global_cited_by"], counts["global_cited_by_source"],
                                             strict=True), strict=True))
    row = TABLES["network_metrics"].row
    rows = [row(seed_pmid=graph.seed, pmid=p, observed_at=graph.observed_at, run_id=graph.run_id, hop=hop, via=via,
                local_cited_by=g.in_degree(p), local_references=g.out_degree(p),
                global_cited_by=global_of.get(p, (None, None))[0],
                global_cited_by_source=global_of.get(p, (None, None))[1],
                pagerank=pagerank[p], pagerank_rank=rank[p], community=community[p],
                betweenness=None if skipped else between[p])
            for p, hop, via in zip(pmids, members["hop"], members["via"], strict=True)]
    schema = TABLES["network_metrics"].arrow_schema
    table = pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema=schema)
    return Metrics(table, skipped and n > 0, len(groups))


def observe_metrics(con: duckdb.DuckDBPyConnection, seed: int, observed_at: dt.datetime | None = None,
                    run_id: str | None = None) -> Metrics:
    """Compute and store the metrics of ``seed``'s observation (default: its latest); rows replaced."""
    metrics = compute(read_seed_graph(con, seed, observed_at, run_id))
    write_metrics(con, metrics.table)
    return metrics


def store_metrics(db: str, seed: int, run_id: str | None = None) -> dict:
    """`observe_metrics` for the latest observation of ``seed`` in the warehouse file ``db``; returns counts
    for the run summary."""
    from litmeta.warehouse.db import session

    with session(db) as con:
        m = observe_metrics(con, seed, run_id=run_id)
    return {"metrics_rows": m.table.num_rows, "communities": m.communities,
            "betweenness": "skipped (network too large)" if m.betweenness_skipped else "computed"}
