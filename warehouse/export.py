"""Exports for downstream tools: every table (Parquet/CSV), or one seed's network (also GraphML, PNG)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from litmeta.errors import UsageError
from litmeta.schemas import ALL_TABLES
from litmeta.schemas.model import quote
from litmeta.warehouse.db import WarehouseError, check_path, connect
from litmeta.warehouse.graph import NoObservation, node_label, seed_nodes

FORMATS = ("parquet", "csv", "graphml", "png")
PNG_MAX_NODES = 5000  # a spring layout of more nodes takes minutes and draws a hairball


class ExportError(WarehouseError):
    """An export that cannot be written as asked (the message says what to do)."""

# One seed's network: its members (with article metadata) and the edges among them.
SEED_QUERIES = {
    "members": """
        SELECT m.pmid, m.hop, m.via, a.title, a.journal_iso_abbrev, a.pub_year, a.doi, a.pmcid,
               m.first_seen, m.last_seen
        FROM network_members m LEFT JOIN articles a USING (pmid) WHERE m.seed_pmid = $seed ORDER BY m.hop, m.pmid
    """,
    "citations": """
        SELECT e.citing_pmid, e.cited_pmid, list(e.origin ORDER BY e.origin) AS origins,
               min(e.first_seen) AS first_seen, max(e.last_seen) AS last_seen
        FROM citation_edges e
        WHERE e.citing_pmid IN (SELECT pmid FROM network_members WHERE seed_pmid = $seed)
          AND e.cited_pmid IN (SELECT pmid FROM network_members WHERE seed_pmid = $seed)
        GROUP BY 1, 2 ORDER BY 1, 2
    """,
    "similar": """
        SELECT s.pmid, s.similar_pmid, s.score, s.rank, s.first_seen, s.last_seen FROM similar_articles s
        WHERE s.pmid IN (SELECT pmid FROM network_members WHERE seed_pmid = $seed)
          AND s.similar_pmid IN (SELECT pmid FROM network_members WHERE seed_pmid = $seed)
        ORDER BY 1, 4
    """,
}


def _copy(con: duckdb.DuckDBPyConnection, sql: str, path: Path, fmt: str, params: dict | None = None,
          partition_by: str | None = None) -> Path:
    opts = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
    if partition_by:
        opts += f", PARTITION_BY ({partition_by}), OVERWRITE true"
    target = str(path).replace("'", "''")
    con.execute(f"COPY ({sql}) TO '{target}' ({opts})", params or {}).fetchall()
    return path


# Timestamps that say when a row was (re)written; the others (a file's mtime, a digest's baseline) do not.
NOT_WRITTEN_AT = frozenset({"mtime", "since"})
PARTITION = "pub_year"


def table_query(table, fmt: str, since_run: dict | None = None) -> tuple[str, str | None]:
    """(SELECT of ``table``'s rows to export, partition column or None).

    Parquet of article tables is partitioned by the article's ``pub_year`` (a ``pub_year=YYYY`` folder per
    year; child tables carry their article's year as the partition key). ``since_run``: only rows written
    after that run ended: an article's rows when the article was rewritten later, an edge's when it was
    seen again, a log's when it was appended (the greatest of the table's timestamps).
    """
    cols = [c for c in table.column_names if not (fmt == "csv" and c == "body")]
    select = ", ".join(f"t.{quote(c)}" for c in cols)
    source = f"{table.name} t"
    partition = None
    parent = table.scope == "article" and table.name not in ("articles", "pmc_articles")
    if parent:
        source += f" LEFT JOIN articles p ON p.pmid = t.{quote(table.scope_column)}"
    if fmt == "parquet" and table.scope == "article":
        partition = PARTITION
        if PARTITION not in table.column_names:
            select += f", p.{PARTITION}"
    where = ""
    if since_run is not None:
        stamps = [c.name for c in table.columns if c.type == "TIMESTAMP" and c.name not in NOT_WRITTEN_AT]
        if parent:
            written = "p.updated_at"
        elif stamps:
            written = "greatest(" + ", ".join(f"t.{quote(c)}" for c in stamps) + ")"
        else:
            written = None
        if written:
            where = f" WHERE {written} > $after"
    return f"SELECT {select} FROM {source}{where}", partition


def run_end(con: duckdb.DuckDBPyConnection, run_id: str) -> dict:
    """The parameters of an export ``--since-run RUN_ID``: when that run ended (or started, if it died)."""
    rows = con.execute("SELECT coalesce(finished_at, started_at) FROM ingest_runs WHERE run_id = ?",
                       [run_id]).fetchall()
    if not rows:
        raise UsageError(f"--since-run {run_id}: no such run in the warehouse; see "
                         "'litmeta sql \"SELECT run_id, flow, started_at FROM ingest_runs ORDER BY started_at\"'")
    return {"after": rows[0][0]}


def network_graph(con: duckdb.DuckDBPyConnection, seed: int | None):
    """A networkx DiGraph: nodes are articles, 'cites' and 'similar' edges. A seed's members also carry
    their latest metrics (label, community, pagerank, cited_by) when the seed has been observed."""
    import networkx as nx

    g = nx.DiGraph(seed=str(seed) if seed else "all")
    if seed is not None:
        members = con.execute(SEED_QUERIES["members"], {"seed": seed}).fetchall()
        for pmid, hop, via, title, journal, year, doi, _pmcid, _f, _l in members:
            g.add_node(pmid, hop=hop, via=via, title=title or "", journal=journal or "", year=year or 0, doi=doi or "",
                       label=node_label(None, year, pmid))
        try:
            for n in seed_nodes(con, seed):
                if n["pmid"] in g:
                    g.nodes[n["pmid"]].update(label=n["label"], community=n["community"], pagerank=n["pagerank"],
                                              cited_by=n["cited_by"] or 0)
        except NoObservation:
            pass  # a warehouse older than network_metrics: the picture falls back to hops and PMIDs
        cites = con.execute(SEED_QUERIES["citations"], {"seed": seed}).fetchall()
        similar = con.execute(SEED_QUERIES["similar"], {"seed": seed}).fetchall()
    else:
        for pmid, title, year, author in con.execute(
                "SELECT a.pmid, a.title, a.pub_year, coalesce(au.last_name, au.collective_name) FROM articles a "
                "LEFT JOIN authors au ON au.pmid = a.pmid AND au.position = 1").fetchall():
            g.add_node(pmid, title=title or "", year=year or 0, label=node_label(author, year, pmid))
        cites = con.execute(
            "SELECT citing_pmid, cited_pmid, list(origin ORDER BY origin), min(first_seen), max(last_seen) "
            "FROM citation_edges GROUP BY 1, 2").fetchall()
        similar = []
    for citing, cited, origins, first, last in cites:
        g.add_edge(citing, cited, kind="cites", origins=",".join(origins), first_seen=str(first), last_seen=str(last))
    for pmid, other, score, rank, first, last in similar:
        if not g.has_edge(pmid, other):
            g.add_edge(pmid, other, kind="similar", score=score or 0, rank=rank or 0, first_seen=str(first),
                       last_seen=str(last))
    if seed is None:  # in-degree stands in for the cited-by count of the whole warehouse's graph
        for n in g.nodes:
            g.nodes[n]["cited_by"] = sum(1 for _ in g.predecessors(n))
    return g


PNG_COLOURS = ("relation", "community")
PNG_LAYOUTS = ("spring", "year")
PNG_LABELLED = 40  # labels drawn for the best ranked articles (all of them in networks up to this size)
RELATION_COLOURS = {"seed": "#d62728", "refs": "#1f77b4", "cited_by": "#2ca02c", "similar": "#9467bd"}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")


def network_figure(g, seed: int | None, colour: str = "relation", layout: str = "spring"):
    """The matplotlib figure of a network: first author + year labels, colour by relation or community with a
    legend, node size by cited-by count, spring layout or x = publication year."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    fig, ax = plt.subplots(figsize=(12, 9), dpi=120)
    if layout == "year":
        pos = {}
        by_year: dict[int, list] = {}
        for n, d in g.nodes(data=True):
            by_year.setdefault(d.get("year") or 0, []).append(n)
        for year, group in by_year.items():
            group.sort(key=lambda n: (-g.nodes[n].get("pagerank", 0), n))
            for i, n in enumerate(group):
                pos[n] = (year, (i + 1) / (len(group) + 1))
    else:
        pos = nx.spring_layout(g, seed=1)
    cited = {n: g.nodes[n].get("cited_by", 0) or 0 for n in g.nodes}
    top = max(cited.values(), default=0)
    size = {n: 30 + 400 * math.sqrt(c / top) if top else 60 for n, c in cited.items()}
    if colour == "community":
        def group(n):
            c = g.nodes[n].get("community")
            return "community ?" if c is None else (f"community {c + 1}" if c < len(PALETTE) - 1 else "other communities")
        names = sorted({group(n) for n in g.nodes}, key=lambda s: (s.startswith("other"), len(s), s))
        colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    else:
        def group(n):
            return g.nodes[n].get("via") or "article"
        names = sorted({group(n) for n in g.nodes}, key=lambda r: list(RELATION_COLOURS).index(r)
                       if r in RELATION_COLOURS else 9)
        colours = {name: RELATION_COLOURS.get(name, "#7f7f7f") for name in names}
    cites = [(u, v) for u, v, d in g.edges(data=True) if d["kind"] == "cites"]
    sim = [(u, v) for u, v, d in g.edges(data=True) if d["kind"] == "similar"]
    nx.draw_networkx_edges(g, pos, edgelist=cites, ax=ax, arrows=True, width=0.6, alpha=0.5, edge_color="#555555")
    nx.draw_networkx_edges(g, pos, edgelist=sim, ax=ax, arrows=False, style="dashed", width=0.5, alpha=0.4,
                           edge_color="#9467bd")
    for name in names:
        nodes = [n for n in g.nodes if group(n) == name]
        nx.draw_networkx_nodes(g, pos, nodelist=nodes, ax=ax, node_size=[size[n] for n in nodes],
                               node_color=colours[name], label=name, edgecolors="#333333", linewidths=0.4)
    ranked = sorted(g.nodes, key=lambda n: (-g.nodes[n].get("pagerank", 0), -cited[n], n))[:PNG_LABELLED]
    nx.draw_networkx_labels(g, pos, labels={n: g.nodes[n].get("label") or str(n) for n in ranked}, ax=ax,
                            font_size=7, verticalalignment="bottom")
    ax.legend(title="colour: " + colour, loc="best", fontsize=8, title_fontsize=8, markerscale=0.6, scatterpoints=1)
    if layout == "year":
        ax.set_xlabel("publication year")
        ax.tick_params(left=False, labelleft=False, bottom=True, labelbottom=True)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    else:
        ax.axis("off")
    shown = f"; labels: the {len(ranked)} best ranked" if len(ranked) < g.number_of_nodes() else ""
    ax.set_title((f"litmeta network of PMID {seed}" if seed else "litmeta citation graph")
                 + f": {g.number_of_nodes()} articles; size: cited-by count{shown}")
    return fig


def _png(g, path: Path, seed: int | None, colour: str = "relation", layout: str = "spring") -> Path:
    import matplotlib.pyplot as plt

    if g.number_of_nodes() > PNG_MAX_NODES:
        raise ExportError(f"PNG of {g.number_of_nodes():,} articles is not drawable (limit {PNG_MAX_NODES:,}); "
                          "give --seed N for one network, or export graphml for a graph tool")
    fig = network_figure(g, seed, colour, layout)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def export(con: duckdb.DuckDBPyConnection, out: Path, formats: list[str], seed: int | None = None,
           since_run: str | None = None, png_colour: str = "relation", png_layout: str = "spring") -> list[Path]:
    """Write the requested formats under ``out``; returns the files (and partitioned folders) written."""
    after = run_end(con, since_run) if since_run else None
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in formats:
        if fmt in ("parquet", "csv"):
            if seed is not None:
                for name, sql in SEED_QUERIES.items():
                    written.append(_copy(con, sql, out / f"seed_{seed}_{name}.{fmt}", fmt, {"seed": seed}))
            else:
                for t in ALL_TABLES:
                    sql, partition = table_query(t, fmt, after)
                    path = out / (t.name if partition else f"{t.name}.{fmt}")
                    written.append(_copy(con, sql, path, fmt, after if "$after" in sql else None, partition))
        elif fmt == "graphml":
            import networkx as nx

            path = out / (f"seed_{seed}.graphml" if seed else "citations.graphml")
            nx.write_graphml(network_graph(con, seed), path)
            written.append(path)
        elif fmt == "png":
            written.append(_png(network_graph(con, seed), out / (f"seed_{seed}.png" if seed else "citations.png"), seed,
                                png_colour, png_layout))
    return written


def export_warehouse(db: str, out: Path, formats: list[str], seed: int | None = None,
                     since_run: str | None = None, png_colour: str = "relation",
                     png_layout: str = "spring") -> list[Path]:
    """`export` from the warehouse file ``db`` (read-only); a ``seed`` must be a tracked one."""
    check_path(db, must_exist=True)
    with connect(db, read_only=True, wait=10) as con:
        if seed is not None and not con.execute("SELECT count(*) FROM seeds WHERE seed_pmid = ?",
                                                [seed]).fetchall()[0][0]:
            raise UsageError(f"--seed {seed}: not a tracked seed in {db}; run 'litmeta network {seed}'")
        return export(con, out, formats, seed, since_run, png_colour, png_layout)
