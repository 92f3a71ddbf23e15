"""docs/schema.md, generated from schemas.tables: `python -m litmeta.schemas.docs > docs/schema.md`."""

from __future__ import annotations

import sys

from litmeta.schemas.tables import ALL_TABLES

HEADER = """# Warehouse tables

Generated from `schemas/tables.py` by `python -m litmeta.schemas.docs > docs/schema.md` (a test keeps it in sync).
Positions are 1-based in document order. *Scope* says how rows are written: **article** tables are
replaced as a set when a newer record of the article arrives; **edge** tables keep `first_seen` and move
`last_seen` each time a fact is observed again; **state** and **log** tables are bookkeeping.

"""


# Views (warehouse/views.py defines them): name, what a row is and how it is derived, an example query.
VIEW_DOCS: tuple[tuple[str, str, str], ...] = (
    ("grant_projects",
     "One row per article and NIH project: the distinct NIH project numbers behind the article's `grants` "
     "lines (which stay as delivered), so that funded projects can be counted. Columns: `pmid`, "
     "`project_number` (institute code + 6-digit serial, e.g. `CA180886`), `agency` (of the first grant line "
     "naming the project), `ic`, `serial`, `activity_codes` (e.g. `[U10]`), `grant_positions` (the "
     "`grants.position`s naming it).\n\n"
     "Normalisation rule: a `grant_id` is upper-cased and split at commas, semicolons and ' AND ' "
     "(`U10CA180820, U10CA180794` gives two). Each part is read as an NIH project number "
     "`[type digit] [activity code] [institute code] [serial] [-support year and suffix]`, spaces and dashes "
     "between them optional: `R01 CA123456-01A1`, `5R01CA123456`, `U10 CA180886`, `P30 CA-08748`. "
     "The project number is institute code + serial, the serial left-padded to 6 digits (`CA008748`); the "
     "application type, activity code, support year and suffix are not part of it, so `R01 CA123456-01A1` and "
     "`CA123456` are one project. A part without an activity code (`CA123456`) counts only when the line's "
     "agency names NIH (`NCI NIH HHS`); contracts (`HHSN...`), other funders' numbers and serials of 7 digits "
     "give no row.",
     "SELECT project_number, count(DISTINCT pmid) AS articles FROM grant_projects "
     "GROUP BY project_number ORDER BY articles DESC, project_number LIMIT 10"),
    ("co_citation",
     "Pairs of articles cited together (`pmid_a` < `pmid_b`), and by how many citing articles (`n_citing`).",
     "SELECT pmid_a, pmid_b, n_citing FROM co_citation WHERE pmid_a = 39047240 OR pmid_b = 39047240 "
     "ORDER BY n_citing DESC LIMIT 10"),
    ("bibliographic_coupling",
     "Pairs of citing articles (`pmid_a` < `pmid_b`) whose references share `n_shared` cited articles.",
     "SELECT pmid_a, pmid_b, n_shared FROM bibliographic_coupling ORDER BY n_shared DESC LIMIT 10"),
    ("prior_works",
     "Per seed, the articles cited by its current members (those its latest observation reached), with how many "
     "members cite each (`n_citing_members`), whether it is a member itself (`is_member`), `title` and "
     "`pub_year`: Connected Papers' prior works, the field's foundations.",
     "SELECT pmid, n_citing_members, pub_year, title FROM prior_works WHERE seed_pmid = 39047240 "
     "ORDER BY n_citing_members DESC, pmid LIMIT 10"),
    ("derivative_works",
     "Per seed, the articles citing its current members, with how many members each cites "
     "(`n_cited_members`), `is_member`, `title` and `pub_year`: later work building on the network.",
     "SELECT pmid, n_cited_members, pub_year, title FROM derivative_works WHERE seed_pmid = 39047240 "
     "ORDER BY n_cited_members DESC, pmid LIMIT 10"),
)


def render_views() -> str:
    parts = ["# Views\n"]
    for name, doc, example in VIEW_DOCS:
        parts.append(f"## `{name}`\n\n{doc}\n\nExample:\n\n```sql\n{example}\n```\n")
    return "\n".join(parts)


def render() -> str:
    index = "\n".join(f"- [`{t.name}`](#{t.name}): {t.doc}" for t in ALL_TABLES)
    views = "\n".join(f"- [`{name}`](#{name}) (view)" for name, _, _ in VIEW_DOCS)
    return (HEADER + index + "\n" + views + "\n\n" + "\n".join(t.markdown() for t in ALL_TABLES)
            + "\n" + render_views())


if __name__ == "__main__":
    sys.stdout.write(render())
