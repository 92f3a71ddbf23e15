"""`litmeta report`: one self-contained HTML page of a seed's network, readable offline.

The page answers what people track a seed for (which papers matter, how they cluster, what is older
and newer, what is new, how fast citations grow), as Connected Papers and Litmaps show it. Charts are
plotly figures; plotly.js is inlined from the plotly package itself (no CDN), the page is a jinja2
template, the node positions come from networkx's spring layout (or the publication year). The data
drawn is also embedded as JSON (``<script type="application/json" id="litmeta-data">``) for other
tools and tests. Large networks are drawn with their top `DEFAULT_TOP` members by PageRank and at most
`EDGE_MAX` of the links among them (`_strongest`), both stated on the page.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from pathlib import Path

import duckdb

from litmeta.errors import UsageError
from litmeta.warehouse.db import check_path, connect
from litmeta.warehouse.digest import build_digest
from litmeta.warehouse.graph import latest_observation, observations, seed_nodes

DEFAULT_TOP = 500
EDGE_MAX = 8000  # links drawn among the drawn members: beyond this a map is a hairball and a large file
LABELLED = 40  # members labelled on the map; the others show their label on hover
TOP_WORKS = 15
COMMUNITY_COLOURS = 10  # the largest communities get their own colour; the rest are 'other'
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#aec7e8"]
RELATION_COLOURS = {"seed": "#d62728", "refs": "#1f77b4", "cited_by": "#2ca02c", "similar": "#9467bd"}

_EDGES = """
    SELECT DISTINCT citing_pmid AS source, cited_pmid AS target, 'cites' AS kind FROM citation_edges
    WHERE citing_pmid IN (SELECT pmid FROM _drawn) AND cited_pmid IN (SELECT pmid FROM _drawn)
      AND citing_pmid <> cited_pmid
    UNION ALL
    SELECT DISTINCT pmid, similar_pmid, 'similar' FROM similar_articles
    WHERE pmid IN (SELECT pmid FROM _drawn) AND similar_pmid IN (SELECT pmid FROM _drawn) AND last_seen >= $at
    ORDER BY 3, 1, 2
"""
_GROWTH = """
    SELECT observed_at, local_cited_by, global_cited_by, global_cited_by_source FROM network_metrics
    WHERE seed_pmid = $seed AND pmid = $seed ORDER BY observed_at
"""
_WORKS = """
    SELECT pmid, {count} AS n, is_member, title, pub_year FROM {view} WHERE seed_pmid = $seed
    ORDER BY n DESC, pmid LIMIT {limit}
"""


def report_data(con: duckdb.DuckDBPyConnection, seed: int, top: int = DEFAULT_TOP) -> dict:
    """Everything the page shows, as plain data (the ``litmeta-data`` JSON block holds nodes and edges)."""
    import pyarrow as pa

    at = latest_observation(con, seed)
    members = seed_nodes(con, seed, at)
    nodes = members[:top]
    con.register("_drawn", pa.table({"pmid": pa.array([n["pmid"] for n in nodes], pa.int64())}))
    try:
        rows = con.execute(_EDGES, {"at": at}).fetchall()
    finally:
        con.unregister("_drawn")
    cited = {(a, b) for a, b, kind in rows if kind == "cites"}
    edges = [{"source": a, "target": b, "kind": kind} for a, b, kind in rows  # a cited pair is drawn as a citation
             if kind == "cites" or ((a, b) not in cited and (b, a) not in cited)]
    links = len(edges)
    layout_pairs = [(e["source"], e["target"]) for e in edges]  # the layout uses every link
    if links > EDGE_MAX:
        edges = _strongest(edges, nodes)
    seed_row = con.execute("SELECT title, journal_title, pub_year, doi FROM articles WHERE pmid = ?", [seed]).fetchall()

    def works(view: str, count: str) -> list[dict]:
        sql = _WORKS.format(view=view, count=count, limit=TOP_WORKS)
        return [dict(zip(("pmid", "n", "is_member", "title", "year"), r, strict=True))
                for r in con.execute(sql, {"seed": seed}).fetchall()]

    seen = observations(con, seed)
    return {
        "seed": seed,
        "seed_title": seed_row[0][0] if seed_row else None,
        "seed_journal": seed_row[0][1] if seed_row else None,
        "seed_year": seed_row[0][2] if seed_row else None,
        "seed_doi": seed_row[0][3] if seed_row else None,
        "observed_at": at.isoformat(sep=" ", timespec="seconds"),
        "observations": len(seen),
        "members": len(members),
        "drawn": len(nodes),
        "top": top,
        "communities": len({m["community"] for m in members}),
        "betweenness": "computed" if members and members[0]["betweenness"] is not None else "skipped (network too large)",
        "nodes": [{k: n[k] for k in ("pmid", "title", "year", "first_author", "community", "pagerank", "cited_by",
                                      "label", "journal", "doi", "hop", "via", "pagerank_rank")} for n in nodes],
        "edges": edges,
        "layout_pairs": layout_pairs,
        "links": links,
        "edge_max": EDGE_MAX,
        "growth": [dict(zip(("observed_at", "local_cited_by", "global_cited_by", "source"), r, strict=True))
                   for r in con.execute(_GROWTH, {"seed": seed}).fetchall()],
        "prior_works": works("prior_works", "n_citing_members"),
        "derivative_works": works("derivative_works", "n_cited_members"),
        "digest": build_digest(con, seed, "last"),
    }


def _strongest(edges: list[dict], nodes: list[dict]) -> list[dict]:
    """At most EDGE_MAX links, spread over the members: each keeps its links to its best ranked neighbours
    (an equal share each, best ranked members first), so every member still shows where it belongs."""
    rank = {n["pmid"]: n["pagerank_rank"] for n in nodes}
    share = max(1, EDGE_MAX // max(1, len(nodes)))
    by_node: dict[int, list[dict]] = {}
    for e in edges:
        by_node.setdefault(e["source"], []).append(e)
        by_node.setdefault(e["target"], []).append(e)
    kept: dict[tuple, dict] = {}
    for n in sorted(by_node, key=lambda p: rank[p]):
        own = sorted(by_node[n], key=lambda e: (rank[e["target"] if e["source"] == n else e["source"]], e["kind"]))
        for e in own[:share]:
            if len(kept) < EDGE_MAX:
                kept[(e["source"], e["target"], e["kind"])] = e
    return sorted(kept.values(), key=lambda e: (e["kind"], e["source"], e["target"]))


# -- figures -----------------------------------------------------------------------------------
def _positions(data: dict) -> tuple[dict, dict]:
    """(spring layout, timeline layout) positions by PMID: networkx's layout, and x = publication year
    (members of one year spread over y by PageRank rank)."""
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(n["pmid"] for n in data["nodes"])
    g.add_edges_from(data.get("layout_pairs") or [(e["source"], e["target"]) for e in data["edges"]])
    spring = nx.spring_layout(g, seed=1, iterations=50 if g.number_of_nodes() <= 200 else 30) if len(g) else {}
    timeline: dict[int, tuple[float | None, float]] = {}
    by_year: dict[object, list[dict]] = {}
    for n in data["nodes"]:
        by_year.setdefault(n["year"], []).append(n)
    for year, group in by_year.items():
        group.sort(key=lambda n: n["pagerank_rank"])
        for i, n in enumerate(group):
            y = (i + 1) / (len(group) + 1)
            timeline[n["pmid"]] = (float(year) if year else None, y)
    return {p: (float(x), float(y)) for p, (x, y) in spring.items()}, timeline


def _sizes(nodes: list[dict], key: str) -> list[float]:
    vals = [max(0.0, float(n[key] or 0)) for n in nodes]
    top = max(vals) if vals else 0.0
    return [7 + 28 * math.sqrt(v / top) if top else 9 for v in vals]


def _categories(nodes: list[dict]) -> dict[str, list[tuple[str, str, list[int]]]]:
    """Per colour mode: (legend name, colour, indexes of the nodes in it)."""
    def group(key) -> dict:
        out: dict = {}
        for i, n in enumerate(nodes):
            out.setdefault(key(n), []).append(i)
        return out

    comm = group(lambda n: n["community"] if n["community"] < COMMUNITY_COLOURS else COMMUNITY_COLOURS)
    rel = group(lambda n: n["via"])
    hop = group(lambda n: n["hop"])
    return {
        "community": [(f"community {c + 1}" if c < COMMUNITY_COLOURS else "other communities",
                       PALETTE[min(c, len(PALETTE) - 1)], idx) for c, idx in sorted(comm.items())],
        "relation": [(r, RELATION_COLOURS.get(r, "#7f7f7f"), idx) for r, idx in
                     sorted(rel.items(), key=lambda kv: list(RELATION_COLOURS).index(kv[0])
                            if kv[0] in RELATION_COLOURS else 9)],
        "hop": [(f"hop {h}", PALETTE[h % len(PALETTE)], idx) for h, idx in sorted(hop.items())],
    }


def map_figure(data: dict):
    """The network map: nodes labelled first author + year, sized, coloured by a selectable grouping,
    with a switch to the timeline layout. Plotly's own buttons (updatemenus) do the switching."""
    import plotly.graph_objects as go

    nodes = data["nodes"]
    spring, timeline = _positions(data)
    layouts = {"network": spring, "timeline": timeline}
    cats = _categories(nodes)
    sizes = {"cited by": _sizes(nodes, "cited_by"), "PageRank": _sizes(nodes, "pagerank")}
    hover = [f"<b>{_esc(n['title'] or 'PMID ' + str(n['pmid']))}</b><br>{_esc(n['label'])} · {_esc(n['journal'] or '')} "
             f"{n['year'] or ''}<br>DOI {_esc(n['doi'] or '-')}<br>PMID {n['pmid']} · {n['via']}, hop {n['hop']}<br>"
             f"cited by {n['cited_by'] if n['cited_by'] is not None else '?'} · PageRank rank {n['pagerank_rank']}"
             for n in nodes]
    text = [n["label"] if i < LABELLED else "" for i, n in enumerate(nodes)]

    def edge_xy(kind: str, pos: dict) -> tuple[list, list]:
        xs: list = []
        ys: list = []
        for e in data["edges"]:
            if e["kind"] == kind and e["source"] in pos and e["target"] in pos:
                (x0, y0), (x1, y1) = pos[e["source"]], pos[e["target"]]
                xs += [x0, x1, None]
                ys += [y0, y1, None]
        return xs, ys

    fig = go.Figure()
    for kind, style in (("cites", {"color": "rgba(90,90,90,0.35)", "width": 0.8}),
                        ("similar", {"color": "rgba(148,103,189,0.35)", "width": 0.8, "dash": "dot"})):
        xs, ys = edge_xy(kind, spring)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=style, hoverinfo="skip", name=f"{kind} edges",
                                 showlegend=True, meta="edges"))
    modes = list(cats)
    node_traces: list[tuple[str, list[int]]] = []
    for mode in modes:
        for name, colour, idx in cats[mode]:
            fig.add_trace(go.Scatter(
                x=[spring[nodes[i]["pmid"]][0] for i in idx], y=[spring[nodes[i]["pmid"]][1] for i in idx],
                mode="markers+text", text=[text[i] for i in idx], textposition="top center",
                textfont={"size": 10}, hovertext=[hover[i] for i in idx], hoverinfo="text",
                customdata=[nodes[i]["pmid"] for i in idx], name=name, legendgroup=mode,
                marker={"size": [sizes["cited by"][i] for i in idx], "color": colour,
                        "line": {"width": 0.5, "color": "#333"}},
                visible=mode == modes[0], meta="nodes"))
            node_traces.append((mode, idx))
    n_edges = 2

    def xy(pos: dict) -> dict:
        ex, ey = zip(*(edge_xy(k, pos) for k in ("cites", "similar")), strict=True)
        return {"x": list(ex) + [[pos[nodes[i]["pmid"]][0] for i in idx] for _, idx in node_traces],
                "y": list(ey) + [[pos[nodes[i]["pmid"]][1] for i in idx] for _, idx in node_traces]}

    colour_buttons = [{"label": f"colour: {m}", "method": "restyle",
                       "args": [{"visible": [True] * n_edges + [mm == m for mm, _ in node_traces]}]} for m in modes]
    size_buttons = [{"label": f"size: {k}", "method": "restyle",
                     "args": [{"marker.size": [None] * n_edges + [[v[i] for i in idx] for _, idx in node_traces]}]}
                    for k, v in sizes.items()]
    layout_buttons = [{"label": f"layout: {k}", "method": "update",
                       "args": [xy(pos), {"xaxis.visible": k == "timeline", "xaxis.title.text":
                                          "publication year" if k == "timeline" else ""}]}
                      for k, pos in layouts.items()]
    menus = [{"buttons": b, "direction": "down", "x": x, "y": 1.12, "xanchor": "left", "yanchor": "top",
              "showactive": True} for b, x in ((colour_buttons, 0.0), (size_buttons, 0.22), (layout_buttons, 0.42))]
    fig.update_layout(
        updatemenus=menus, hovermode="closest", height=720, margin={"l": 10, "r": 10, "t": 60, "b": 30},
        xaxis={"visible": False, "showgrid": False, "zeroline": False},
        yaxis={"visible": False, "showgrid": False, "zeroline": False},
        legend={"itemsizing": "constant"}, plot_bgcolor="white", paper_bgcolor="white",
    )
    return fig


def growth_figure(data: dict):
    import plotly.graph_objects as go

    g = data["growth"]
    fig = go.Figure()
    xs = [r["observed_at"] for r in g]
    fig.add_trace(go.Scatter(x=xs, y=[r["global_cited_by"] for r in g], mode="lines+markers",
                             name="cited by (all sources known)"))
    fig.add_trace(go.Scatter(x=xs, y=[r["local_cited_by"] for r in g], mode="lines+markers",
                             name="cited by members of the network"))
    fig.update_layout(height=320, margin={"l": 40, "r": 10, "t": 30, "b": 40}, yaxis={"title": {"text": "citing articles"},
                      "rangemode": "tozero"}, xaxis={"title": {"text": "observation"}})
    return fig


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


CLICK_SCRIPT = """
var plot = document.getElementById('{plot_id}');
plot.on('plotly_click', function (ev) {
  var p = ev.points && ev.points[0];
  if (p && p.customdata) { window.open('https://pubmed.ncbi.nlm.nih.gov/' + p.customdata + '/', '_blank'); }
});
"""


def render(data: dict) -> str:
    """The HTML page: jinja2 template, plotly figures with plotly.js inlined once."""
    import jinja2
    import plotly.io as pio

    config = {"displaylogo": False, "responsive": True}
    map_html = pio.to_html(map_figure(data), include_plotlyjs=True, full_html=False, div_id="map", config=config,
                           post_script=CLICK_SCRIPT, default_height="720px", validate=False)
    growth_html = pio.to_html(growth_figure(data), include_plotlyjs=False, full_html=False, div_id="growth",
                              config=config, default_height="320px", validate=False)
    blob = json.dumps({"seed": data["seed"], "observed_at": data["observed_at"], "members": data["members"],
                       "drawn": data["drawn"], "links": data["links"], "nodes": data["nodes"], "edges": data["edges"]},
                      ensure_ascii=False, default=str).replace("</", "<\\/")
    env = jinja2.Environment(loader=jinja2.PackageLoader("litmeta.warehouse", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    return env.get_template("report.html.j2").render(
        d=data, digest=data["digest"], map_html=map_html, growth_html=growth_html, data_json=blob,
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def check_out(out: Path) -> Path:
    """Refuse an --out that cannot be written, before any work (exit 2, saying what to do)."""
    out = Path(out).expanduser()
    if out.is_dir():
        raise UsageError(f"--out {out}: is a directory; give a file name such as {out / 'report.html'}")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"--out {out}: folder {folder} does not exist; create it first (mkdir -p {folder})")
    if not os.access(out if out.exists() else folder, os.W_OK):
        raise UsageError(f"--out {out}: not writable by this user; choose another path or fix permissions")
    return out


def write_report(db: str, seed: int, out: Path, top: int | None = None) -> tuple[Path, int, int]:
    """Write the report of ``seed`` to ``out``; returns (path, members drawn, members)."""
    out = check_out(out)
    check_path(db, must_exist=True)
    with connect(db, read_only=True, wait=10) as con:
        data = report_data(con, seed, top or DEFAULT_TOP)
    html = render(data)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return out, data["drawn"], data["members"]
