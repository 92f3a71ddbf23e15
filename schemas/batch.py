"""Columnar batches: what parsers produce and the warehouse loads.

Parsers append plain tuples (in the table's extracted-column order, see `Table.extracted_names`)
to a `RowSink`; `RowSink.to_arrow()` turns them into one `pyarrow.Table` per table with the
schema from `schemas.tables`. A `ParsedBatch` also carries rejects and DeleteCitation PMIDs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa

from schemas.tables import TABLES


@dataclass(frozen=True)
class Reject:
    """A record (or whole input) that could not be parsed, and why."""

    source: str
    record_key: str
    reason: str
    excerpt: str = ""

    def message(self) -> str:
        return f"{self.source}: {self.record_key}: {self.reason}"


class RowSink:
    """Per-table row lists for one batch."""

    __slots__ = ("rows",)

    def __init__(self, table_names: Iterable[str]) -> None:
        self.rows: dict[str, list[tuple]] = {name: [] for name in table_names}

    def to_arrow(self) -> dict[str, pa.Table]:
        out: dict[str, pa.Table] = {}
        for name, rows in self.rows.items():
            schema = TABLES[name].arrow_schema
            if rows:
                columns = list(zip(*rows, strict=True))
                if len(columns) != len(schema):
                    raise ValueError(f"{name}: rows have {len(columns)} values, schema has {len(schema)} columns")
                arrays = [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)]
                out[name] = pa.Table.from_arrays(arrays, schema=schema)
            else:
                out[name] = schema.empty_table()
        return out


@dataclass
class ParsedBatch:
    """One batch of parsed records, ready for `warehouse.load`.

    kind: 'pubmed' (article-scoped tables keyed by pmid) or 'pmc' (pmc_articles keyed by pmcid,
    reference_entries with origin 'pmc').
    """

    kind: str
    source: str
    tables: dict[str, pa.Table]
    rejects: list[Reject] = field(default_factory=list)
    deleted_pmids: list[int] = field(default_factory=list)
    n_records: int = 0

    def rows(self, table: str) -> int:
        t = self.tables.get(table)
        return 0 if t is None else t.num_rows
