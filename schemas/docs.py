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


def render() -> str:
    index = "\n".join(f"- [`{t.name}`](#{t.name}): {t.doc}" for t in ALL_TABLES)
    return HEADER + index + "\n\n" + "\n".join(t.markdown() for t in ALL_TABLES) + render_views()


def render_views() -> str:
    """The analyst-facing views (litmeta.warehouse.views.VIEW_DOCS), each with its example query."""
    from litmeta.warehouse.views import VIEW_DOCS

    parts = ["\n# Views\n\nViews for common questions; each example runs as written (`litmeta sql \"...\"`).\n"]
    for name, (doc, example) in VIEW_DOCS.items():
        parts.append(f"\n## `{name}` (view)\n\n{doc}\n\n```sql\n{example}\n```\n")
    return "".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render())
