"""Views for ad hoc SQL: a warehouse summary, each seed's network, co-citation and bibliographic
coupling counts, each seed's prior and derivative works, NIH projects of grants (documented, with an
example query each, in schemas/docs.py VIEW_DOCS)."""

from __future__ import annotations

import duckdb

# An NIH project number as PubMed grant lines write it: optional application type (1-9), activity code
# (R01, U10, UG1, ...), institute code (CA, HL, ...), serial number (5 or 6 digits), anything after it
# (support year, suffix: -01A1) ignored.
NIH_PROJECT_NUMBER = r"^\s*(?:[1-9]\s*)?([A-Z][0-9A-Z]{2})?\s*-?\s*([A-Z]{2})\s*-?\s*([0-9]{5,6})(?:[^0-9]|$)"

VIEWS: dict[str, str] = {
    # One line per table: how many rows it holds.
    "table_counts": """
        SELECT 'articles' AS table_name, count(*) AS n FROM articles
        UNION ALL SELECT 'authors', count(*) FROM authors
        UNION ALL SELECT 'grants', count(*) FROM grants
        UNION ALL SELECT 'mesh_headings', count(*) FROM mesh_headings
        UNION ALL SELECT 'reference_entries', count(*) FROM reference_entries
        UNION ALL SELECT 'citation_edges', count(*) FROM citation_edges
        UNION ALL SELECT 'similar_articles', count(*) FROM similar_articles
        UNION ALL SELECT 'network_members', count(*) FROM network_members
        UNION ALL SELECT 'icite_metrics', count(*) FROM icite_metrics
        UNION ALL SELECT 'id_map', count(*) FROM id_map
        UNION ALL SELECT 'rejects', count(*) FROM rejects
    """,
    # Citation edges with every origin that reports them collapsed into one row; sources: elink, icite,
    # reflist (the reference lists); resolved_by: how reference entries without a PMID were resolved.
    "citations": """
        SELECT citing_pmid, cited_pmid, list(origin ORDER BY origin) AS origins,
               list(DISTINCT CASE WHEN origin LIKE 'elink%' THEN 'elink' WHEN origin LIKE 'icite%' THEN 'icite'
                                  ELSE 'reflist' END ORDER BY 1) AS sources,
               list(DISTINCT resolved_by ORDER BY resolved_by) FILTER (WHERE resolved_by IS NOT NULL) AS resolved_by,
               min(first_seen) AS first_seen, max(last_seen) AS last_seen
        FROM citation_edges GROUP BY citing_pmid, cited_pmid
    """,
    # Each seed's network members with their article metadata.
    "seed_network": """
        SELECT m.seed_pmid, m.pmid, m.hop, m.via, a.title, a.journal_iso_abbrev, a.pub_year, a.doi,
               m.first_seen, m.last_seen
        FROM network_members m LEFT JOIN articles a USING (pmid)
    """,
    # Pairs of articles cited together, and by how many citing articles.
    "co_citation": """
        SELECT a.cited_pmid AS pmid_a, b.cited_pmid AS pmid_b, count(DISTINCT a.citing_pmid) AS n_citing
        FROM (SELECT DISTINCT citing_pmid, cited_pmid FROM citation_edges) a
        JOIN (SELECT DISTINCT citing_pmid, cited_pmid FROM citation_edges) b
          ON a.citing_pmid = b.citing_pmid AND a.cited_pmid < b.cited_pmid
        GROUP BY 1, 2
    """,
    # Pairs of articles whose reference lists share cited articles, and how many.
    "bibliographic_coupling": """
        SELECT a.citing_pmid AS pmid_a, b.citing_pmid AS pmid_b, count(DISTINCT a.cited_pmid) AS n_shared
        FROM (SELECT DISTINCT citing_pmid, cited_pmid FROM citation_edges) a
        JOIN (SELECT DISTINCT citing_pmid, cited_pmid FROM citation_edges) b
          ON a.cited_pmid = b.cited_pmid AND a.citing_pmid < b.citing_pmid
        GROUP BY 1, 2
    """,
    # Per seed: the articles its current members cite, by how many members cite them (Connected Papers'
    # prior works: the field's foundations, members or not).
    "prior_works": """
        WITH m AS (SELECT n.seed_pmid, n.pmid FROM network_members n JOIN seeds s
                   ON s.seed_pmid = n.seed_pmid AND n.last_seen = s.last_refreshed_at)
        SELECT m.seed_pmid, e.cited_pmid AS pmid, count(DISTINCT e.citing_pmid) AS n_citing_members,
               bool_or(e.cited_pmid IN (SELECT pmid FROM m m2 WHERE m2.seed_pmid = m.seed_pmid)) AS is_member,
               any_value(a.title) AS title, any_value(a.pub_year) AS pub_year
        FROM m JOIN citation_edges e ON e.citing_pmid = m.pmid LEFT JOIN articles a ON a.pmid = e.cited_pmid
        GROUP BY 1, 2
    """,
    # Per seed: the articles citing its current members, by how many members they cite (derivative works:
    # surveys and later work building on the network).
    "derivative_works": """
        WITH m AS (SELECT n.seed_pmid, n.pmid FROM network_members n JOIN seeds s
                   ON s.seed_pmid = n.seed_pmid AND n.last_seen = s.last_refreshed_at)
        SELECT m.seed_pmid, e.citing_pmid AS pmid, count(DISTINCT e.cited_pmid) AS n_cited_members,
               bool_or(e.citing_pmid IN (SELECT pmid FROM m m2 WHERE m2.seed_pmid = m.seed_pmid)) AS is_member,
               any_value(a.title) AS title, any_value(a.pub_year) AS pub_year
        FROM m JOIN citation_edges e ON e.cited_pmid = m.pmid LEFT JOIN articles a ON a.pmid = e.citing_pmid
        GROUP BY 1, 2
    """,
    # The distinct NIH project numbers behind each article's grant lines (the rule: docs/schema.md, grant_projects).
    "grant_projects": rf"""
        WITH tokens AS (
            SELECT pmid, position, agency,
                   unnest(string_split_regex(upper(grant_id), '\s*(?:[,;]|\sAND\s)\s*')) AS token
            FROM grants WHERE grant_id IS NOT NULL
        ), parsed AS (
            SELECT pmid, position, agency, regexp_extract(token, '{NIH_PROJECT_NUMBER}', ['activity', 'ic', 'serial']) AS p
            FROM tokens
        ), numbers AS (
            SELECT pmid, position, agency, nullif(p.activity, '') AS activity_code, p.ic,
                   lpad(p.serial, 6, '0') AS serial
            FROM parsed
            WHERE p.serial <> '' AND (p.activity <> '' OR regexp_matches(coalesce(agency, ''), '\bNIH\b'))
        )
        SELECT pmid, ic || serial AS project_number, arg_min(agency, position) AS agency, ic, serial,
               list(DISTINCT activity_code ORDER BY activity_code) FILTER (activity_code IS NOT NULL) AS activity_codes,
               list(DISTINCT position ORDER BY position) AS grant_positions
        FROM numbers GROUP BY pmid, ic, serial
    """,
}


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    for name, sql in VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
