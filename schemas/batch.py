"""Columnar batches: what parsers produce and the warehouse loads.

Parsers append rows to a `RowSink`, each built by column name with the table's `Table.row`
(``TABLES["authors"].row(pmid=..., position=..., ...)``: a plain tuple in `Table.extracted_names` order);
`RowSink.to_arrow()` turns them into one `pyarrow.Table` per table with the schema from
`litmeta.schemas.tables`. A `ParsedBatch` also carries rejects and DeleteCitation PMIDs.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache

import pyarrow as pa

from litmeta.schemas.tables import TABLES


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
    """Per-table row lists for one batch; build each row with `Table.row` of its table."""

    __slots__ = ("rows",)

    def __init__(self, table_names: Iterable[str]) -> None:
        self.rows: dict[str, list[tuple]] = {name: [] for name in table_names}

    def to_arrow(self) -> dict[str, pa.Table]:
        """One Arrow table per table name, rows in append order."""
        with gc_paused():
            return {name: _table(name, rows) for name, rows in self.rows.items()}


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (when on) for a bulk of allocations that makes few reference cycles.

    Building rows and Arrow arrays allocates many objects; collections would mostly rescan them. The few
    cycles made meanwhile are collected once the collector runs again.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@cache
def _row_type(name: str) -> tuple[pa.Schema, pa.StructType]:
    """Arrow schema of table ``name`` and the struct type of one of its rows."""
    schema = TABLES[name].arrow_schema
    return schema, pa.struct(schema)


def _table(name: str, rows: list[tuple]) -> pa.Table:
    """``rows`` (tuples in the schema's column order) as a table of ``name``'s Arrow schema.

    Converted in one pass as a struct array (no transposing in Python), then split into columns.
    """
    schema, row_type = _row_type(name)
    if not rows:
        return schema.empty_table()
    if set(map(len, rows)) != {len(schema)}:
        n = len(list(zip(*rows, strict=True)))  # raises when the rows differ in length
        raise ValueError(f"{name}: rows have {n} values, schema has {len(schema)} columns")
    batch = pa.RecordBatch.from_struct_array(pa.array(rows, type=row_type))
    return pa.Table.from_batches([batch], schema=schema)


@dataclass
class ParsedBatch:
    """One batch of parsed records, ready for `litmeta.warehouse.load`.

    kind: 'pubmed' (article-scoped tables keyed by pmid) or 'pmc' (pmc_articles keyed by pmcid,
    reference_entries with origin 'pmc').
    """

    kind: str
    source: str
    tables: dict[str, pa.Table]
    rejects: list[Reject] = field(default_factory=list)
    deleted_pmids: list[int] = field(default_factory=list)
    n_records: int = 0
    # handed out before it was full because the consumer would otherwise wait (`merge_batches`
    # ``flush``): the loader may write the next batches in the same transaction
    partial: bool = False

    def rows(self, table: str) -> int:
        t = self.tables.get(table)
        return 0 if t is None else t.num_rows

    def __reduce__(self) -> tuple:
        """Pickles (parse workers send batches back) with the tables in Arrow's IPC stream format, in
        one buffer: about 2.5 times cheaper to write than pickling them array by array."""
        sink = pa.BufferOutputStream()
        spans = []
        for name, table in self.tables.items():
            start = sink.tell()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            spans.append((name, start, sink.tell()))
        return (_unpickle_batch, (self.kind, self.source, spans, sink.getvalue().to_pybytes(), self.rejects,
                                  self.deleted_pmids, self.n_records, self.partial))


def _unpickle_batch(kind: str, source: str, spans: list[tuple[str, int, int]], data: bytes, rejects: list[Reject],
                    deleted_pmids: list[int], n_records: int, partial: bool) -> ParsedBatch:
    """`ParsedBatch.__reduce__` undone; the tables read ``data`` in place (no copy)."""
    buf = pa.py_buffer(data)
    tables = {name: pa.ipc.open_stream(buf.slice(start, end - start)).read_all() for name, start, end in spans}
    return ParsedBatch(kind, source, tables, rejects, deleted_pmids, n_records, partial)


_RECORD_KEY = {"pubmed": ("articles", "pmid"), "pmc": ("pmc_articles", "pmcid")}


def _keys(batch: ParsedBatch) -> set:
    table, column = _RECORD_KEY[batch.kind]
    t = batch.tables.get(table)
    return set() if t is None else set(t.column(column).to_pylist())


def concat_batches(batches: list[ParsedBatch]) -> ParsedBatch:
    """One batch holding the records, rejects and deletions of ``batches``, in order (same kind and source)."""
    if len(batches) == 1:
        return batches[0]
    first = batches[0]
    tables = {name: pa.concat_tables([b.tables[name] for b in batches]) for name in first.tables}
    return ParsedBatch(first.kind, first.source, tables,
                       [r for b in batches for r in b.rejects],
                       [p for b in batches for p in b.deleted_pmids],
                       sum(b.n_records for b in batches))


def merge_batches(batches: Iterable[ParsedBatch], batch_size: int,
                  flush: Callable[[int], bool] | None = None) -> Iterator[ParsedBatch]:
    """Merge consecutive small batches into batches of up to ``batch_size`` records.

    Keeps the batch rules of the parsers: a merged batch never holds the same record key twice, and a
    batch with deletions ends the merged batch it joins (deletions apply after its records).
    ``flush(n)``: asked before each wait for the next batch, with the number of records merged so
    far; when it says so, they are yielded at once, marked `ParsedBatch.partial` (e.g. the
    consumer would otherwise sit idle while the last pieces are parsed).
    """
    acc: list[ParsedBatch] = []
    keys: set = set()
    n = 0
    it = iter(batches)
    while True:
        if acc and flush is not None and flush(n):
            early = concat_batches(acc)
            early.partial = True
            yield early
            acc, keys, n = [], set(), 0
        batch = next(it, None)
        if batch is None:
            break
        bkeys = _keys(batch)
        if acc and (n + batch.n_records > batch_size or not keys.isdisjoint(bkeys)):
            yield concat_batches(acc)
            acc, keys, n = [], set(), 0
        acc.append(batch)
        keys |= bkeys
        n += batch.n_records
        if batch.deleted_pmids:
            yield concat_batches(acc)
            acc, keys, n = [], set(), 0
    if acc:
        yield concat_batches(acc)
