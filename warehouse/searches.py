"""Saved searches: what `litmeta search --save` keeps and `litmeta serve` schedules."""

from __future__ import annotations

import json

from litmeta.warehouse.db import session


def save_search(db: str, query: str, parameters: dict) -> None:
    """Keep ``query`` (once; a query saved again keeps its first parameters)."""
    with session(db) as con:
        con.execute(
            "INSERT INTO saved_searches (query, parameters, added_at) SELECT ?, ?, now()::TIMESTAMP "
            "WHERE NOT EXISTS (SELECT 1 FROM saved_searches WHERE query = ?)",
            [query, json.dumps(parameters), query],
        ).fetchall()


def saved_searches(db: str) -> list[tuple[str, dict]]:
    """(query, parameters) of every saved search, by query."""
    with session(db) as con:
        rows = con.execute("SELECT query, parameters FROM saved_searches ORDER BY query").fetchall()
    return [(q, json.loads(p or "{}")) for q, p in rows]
