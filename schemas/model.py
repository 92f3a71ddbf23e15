"""The schema model: one `Table` object per warehouse table drives DDL, Arrow schemas and docs.

A column is either *extracted* (filled by a parser and carried in Arrow batches) or *managed*
(filled by the warehouse at load time: first_seen, updated_at, run ids). Arrow batch schemas
hold only extracted columns; DDL holds both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import pyarrow as pa

from litmeta.schemas.rows import row_builder

Scope = Literal["article", "edge", "state", "log"]

ARROW_TYPES: dict[str, pa.DataType] = {
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "VARCHAR": pa.string(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
    "JSON": pa.string(),
    "BLOB": pa.binary(),
}


# Compressions a text column may name (what DuckDB still writes for text). zstd: DuckDB picks it
# only for long values, and on short, nearly all distinct text such as reference citations its own
# pick compresses less at more CPU (figures in bench/README.md).
COMPRESSIONS = ("zstd", "dict_fsst", "uncompressed")
ZSTD_TEXT = "zstd"


def quote(name: str) -> str:
    """SQL identifier quoting (some contract names, like rejects.at, are reserved words)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str
    nullable: bool = True
    managed: bool = False  # filled by the warehouse, not by parsers
    # DuckDB's storage compression for the column (``USING COMPRESSION``); None: DuckDB picks one per
    # segment. Set where the pick is known to be poor, e.g. long free text (see `ZSTD_TEXT`).
    compression: str | None = None

    def __post_init__(self) -> None:
        if self.type not in ARROW_TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")
        if self.compression is not None and self.type != "VARCHAR":
            raise ValueError(f"column {self.name}: a compression is declared for VARCHAR columns only, not {self.type}")
        if self.compression is not None and self.compression not in COMPRESSIONS:
            raise ValueError(f"column {self.name}: compression {self.compression!r} is not one of {COMPRESSIONS}")

    @property
    def ddl(self) -> str:
        """The column's definition in CREATE TABLE."""
        return (f"{quote(self.name)} {self.type}{'' if self.nullable else ' NOT NULL'}"
                + (f" USING COMPRESSION {self.compression}" if self.compression else ""))

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.type]


@dataclass(frozen=True)
class Table:
    """One warehouse table.

    scope:
      article  rows belong to one article (``scope_column``) and are replaced as a set per article
      edge     facts observed over time; merged by key, ``first_seen`` kept, ``last_seen`` moved
      state    small bookkeeping tables written by the warehouse or flows (upsert by key)
      log      append-only records (runs, raw documents, rejects)
    """

    name: str
    doc: str
    scope: Scope
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    scope_column: str | None = None
    volatile: tuple[str, ...] = field(default=())  # left out of content hashes (timestamps, run ids)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: duplicate column names")
        for k in (*self.key, *((self.scope_column,) if self.scope_column else ()), *self.volatile):
            if k not in names:
                raise ValueError(f"table {self.name}: {k!r} is not a column")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def extracted(self) -> list[Column]:
        return [c for c in self.columns if not c.managed]

    @property
    def extracted_names(self) -> list[str]:
        return [c.name for c in self.extracted]

    @cached_property
    def row(self) -> Callable[..., tuple]:
        """Builds one row of this table by keyword, one argument per extracted column:
        ``row(pmid=1, ...)`` is the tuple in `extracted_names` order that `RowSink` takes. A missing or
        unknown column, or a positional argument, raises a TypeError naming ``<table>.row`` and the column.
        In hot code, `litmeta.schemas.rows.inline_rows` compiles the calls into tuple displays.
        """
        return row_builder(self.name, self.extracted_names)

    @property
    def arrow_schema(self) -> pa.Schema:
        """Schema of the Arrow batches parsers produce for this table (extracted columns only)."""
        return pa.schema([pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in self.extracted])

    @property
    def stable_columns(self) -> list[str]:
        """Columns that define table content for idempotency checks (no timestamps, no run ids)."""
        return [c for c in self.column_names if c not in self.volatile]

    def ddl(self) -> str:
        cols = [f"    {c.ddl}" for c in self.columns]
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n" + ",\n".join(cols) + "\n)"

    def markdown(self) -> str:
        lines = [
            f"## `{self.name}`",
            "",
            self.doc,
            "",
            f"Key: `({', '.join(self.key)})`. Scope: {self.scope}"
            + (f" (replaced as a set per `{self.scope_column}`)." if self.scope == "article" else "."),
            "",
            "| column | type | meaning |",
            "|---|---|---|",
        ]
        for c in self.columns:
            flags = [] if c.nullable else ["not null"]
            if c.managed:
                flags.append("set by the warehouse")
            if c.compression:
                flags.append(f"stored with {c.compression} compression")
            extra = f" ({', '.join(flags)})" if flags else ""
            lines.append(f"| `{c.name}` | {c.type} | {c.doc}{extra} |")
        return "\n".join(lines) + "\n"
