"""Bulk loading of parsed batches into DuckDB: one transaction per batch, Arrow in, no row-by-row INSERT.

(The batches handed out early at the end of a large file share one: see `load_batches`.)

Rules (DESIGN.md table contract):
- Article-scoped tables are replaced as a set per article when a record is accepted.
- A PubMed record is accepted unless the warehouse holds a newer one: records are ordered by
  (version, date_revised, content_sha256); the hash only breaks ties, so any load order converges.
  A re-delivered identical record rewrites nothing.
- A PMID removed by DeleteCitation is a tombstone: its rows go, and later records for it are skipped
  in any load order (delete the `deleted_articles` row to let it back in).
- PMC articles (no revision stamp in JATS) follow the same rule with content_sha256 as the order.
- Edges merge: new ones get first_seen = last_seen = now; seen again, last_seen moves; edges not
  seen again keep their old last_seen.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from litmeta.schemas import PUBMED_RECORD_TABLES, TABLES, ParsedBatch, Reject, Table
from litmeta.schemas.model import quote
from litmeta.warehouse.db import crash_point, session

_MIN_DATE = "DATE '0001-01-01'"

# Records per transaction for large files: each commit makes DuckDB's checkpoint rewrite the tables'
# partly filled last row groups, so fewer, larger transactions cost less (bench/README.md).
BATCH_RECORDS = 15_000


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass
class LoadStats:
    """What a load did; added up across batches."""

    records_new: int = 0
    records_updated: int = 0
    records_unchanged: int = 0
    records_skipped_older: int = 0
    records_skipped_deleted: int = 0
    deleted: int = 0
    rejects: int = 0
    edges_new: int = 0
    rows: Counter = field(default_factory=Counter)

    def add(self, other: LoadStats) -> None:
        for name in ("records_new", "records_updated", "records_unchanged", "records_skipped_older",
                     "records_skipped_deleted", "deleted", "rejects", "edges_new"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rows.update(other.rows)

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "rows"}
        d["rows"] = dict(sorted(self.rows.items()))
        return d


def _cols(table: Table, names: list[str] | None = None) -> str:
    return ", ".join(quote(n) for n in (names or table.extracted_names))


def merge_edges(con: duckdb.DuckDBPyConnection, table: Table, view: str, now: dt.datetime,
                extra_set: tuple[str, ...] = (), seen_again: bool = True, carried: tuple[str, ...] = ()) -> int:
    """Merge edge rows from ``view`` into ``table`` by key; returns how many edges were new.

    ``extra_set``: non-key columns overwritten by the new observation (e.g. score, rank).
    ``seen_again``: whether edges already held were observed again (their last_seen moves to ``now``);
    not so when stored documents are parsed again.
    ``carried``: managed columns of ``view`` written with new edges only (e.g. resolved_by).
    """
    key = table.key
    on = " AND ".join(f"t.{k} = b.{k}" for k in key)
    sets = ", ".join(["last_seen = ?"] + [f"{c} = b.{c}" for c in extra_set])
    cols = [*table.extracted_names, *carried]
    if seen_again:
        con.execute(f"UPDATE {table.name} AS t SET {sets} FROM (SELECT DISTINCT ON ({', '.join(key)}) * FROM {view}) b "
                    f"WHERE {on}", [now])
    before = con.execute(f"SELECT count(*) FROM {table.name}").fetchall()[0][0]
    con.execute(
        f"INSERT INTO {table.name} ({_cols(table, cols)}, first_seen, last_seen) "
        f"SELECT {', '.join('b.' + quote(c) for c in cols)}, ?, ? FROM (SELECT DISTINCT ON ({', '.join(key)}) * FROM {view}) b "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table.name} t WHERE {on})",
        [now, now],
    )
    return con.execute(f"SELECT count(*) FROM {table.name}").fetchall()[0][0] - before


def record_rejects(con: duckdb.DuckDBPyConnection, run_id: str, rejects: list[Reject], now: dt.datetime) -> None:
    if not rejects:
        return
    seen: dict[tuple[str, str], Reject] = {}
    for r in rejects:
        seen.setdefault((r.source, r.record_key), r)
    t = pa.table({
        "run_id": [run_id] * len(seen),
        "source": [r.source for r in seen.values()],
        "record_key": [r.record_key for r in seen.values()],
        "reason": [r.reason for r in seen.values()],
        "excerpt": [r.excerpt[:500] for r in seen.values()],
    })
    con.register("_rejects", t)
    try:
        con.execute(
            "DELETE FROM rejects WHERE (run_id, source, record_key) IN (SELECT (run_id, source, record_key) FROM _rejects)"
        )
        con.execute(
            "INSERT INTO rejects (run_id, source, record_key, reason, excerpt, \"at\") "
            "SELECT run_id, source, record_key, reason, excerpt, ? FROM _rejects", [now]
        )
    finally:
        con.unregister("_rejects")


class BatchLoader:
    """Loads `ParsedBatch` objects into an open warehouse connection: `load` one in a transaction of
    its own, or several in one (`add` each inside `transaction`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run_id: str, reparse: bool = False) -> None:
        """``reparse``: the batches come from documents loaded before (`litmeta reparse`): a record
        whose rows came from the same document is rewritten even when its content is unchanged, and
        its edges are not taken as observed again."""
        self.con = con
        self.run_id = run_id
        self.reparse = reparse
        self.stats = LoadStats()
        self._views: list[str] = []  # Arrow views of the batch being added

    def load(self, batch: ParsedBatch, now: dt.datetime | None = None) -> LoadStats:
        """Load ``batch`` in a transaction of its own; returns what it did."""
        with self.transaction():
            return self.add(batch, now)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction for `add`: committed when the block ends, rolled back when it raises."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
            crash_point("load-txn")  # test-only hook (LITMETA_CRASH_AT): written, not committed
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            self._release()
            raise

    def add(self, batch: ParsedBatch, now: dt.datetime | None = None) -> LoadStats:
        """Write ``batch`` in the open `transaction`; batches added in turn apply in order."""
        now = now or utcnow()
        con = self.con
        for name, arrow in batch.tables.items():
            view = f"b_{name}"
            con.register(view, arrow)
            self._views.append(view)
        notes = self._drop_key_repeats(batch)
        if batch.kind == "pubmed":
            stats = self._pubmed(batch, now)
        elif batch.kind == "pmc":
            stats = self._pmc(batch, now)
        else:
            raise ValueError(f"unknown batch kind {batch.kind!r}")
        record_rejects(con, self.run_id, batch.rejects + notes, now)
        stats.rejects = len(batch.rejects) + len(notes)
        self._release()
        self.stats.add(stats)
        return stats

    def _drop_key_repeats(self, batch: ParsedBatch) -> list[Reject]:
        """Keep only the first row of each key of an article-scoped table; note each record that lost rows.

        Replace-by-record removes a record's earlier rows before its new ones go in, so a batch can
        only break a key with itself: a record repeating an entry (e.g. a CommentsCorrections entry
        listed twice). Such a record loads without the repeat, and a reject note says what was dropped.
        """
        notes: dict[str, list[str]] = {}
        keyed = {name: ", ".join(quote(k) for k in TABLES[name].key) for name, arrow in batch.tables.items()
                 if TABLES[name].scope == "article" and arrow.num_rows}
        if not keyed:
            return []
        repeating = dict(self.con.execute(" UNION ALL ".join(
            f"SELECT '{name}', count(*) - count(DISTINCT ({key})) FROM b_{name}" for name, key in keyed.items()
        )).fetchall())
        for name in keyed:
            if not repeating[name]:
                continue
            t, arrow, key = TABLES[name], batch.tables[name], keyed[name]
            self.con.register("_numbered", arrow.append_column("_row", pa.array(range(arrow.num_rows), pa.int64())))
            try:
                ranked = f"(SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY _row) AS _nth FROM _numbered)"
                kept = self.con.sql(f"SELECT * EXCLUDE (_row, _nth) FROM {ranked} WHERE _nth = 1 "
                                    "ORDER BY _row").to_arrow_table()
                dropped = self.con.execute(f"SELECT {quote(t.scope_column)}, count(*) FROM {ranked} WHERE _nth > 1 "
                                           "GROUP BY 1 ORDER BY 1").fetchall()
            finally:
                self.con.unregister("_numbered")
            self.con.register(f"b_{name}", kept)
            for record, n in dropped:
                notes.setdefault(f"{t.scope_column} {record}", []).append(
                    f"{n} {name} row(s) repeating the key ({', '.join(t.key)}) dropped, the first kept")
        return [Reject(batch.source, record, "; ".join(reasons)) for record, reasons in notes.items()]

    def _release(self) -> None:
        """Drop the batch's views and scratch table (not possible in an aborted transaction: after ROLLBACK)."""
        for view in self._views:
            self.con.unregister(view)
        self._views.clear()
        self.con.execute("DROP TABLE IF EXISTS _acc")

    # -- PubMed ------------------------------------------------------------------------------
    def _pubmed(self, batch: ParsedBatch, now: dt.datetime) -> LoadStats:
        con, st = self.con, LoadStats()
        if batch.rows("articles"):
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE _acc AS
                SELECT b.pmid, e.pmid IS NULL AS is_new,
                       e.content_sha256 IS DISTINCT FROM b.content_sha256
                           OR ({self.reparse} AND e.source_sha256 IS NOT DISTINCT FROM b.source_sha256) AS changed,
                       e.first_seen AS old_first_seen, e.updated_at AS old_updated_at,
                       d.pmid IS NOT NULL AS is_deleted,
                       e.pmid IS NOT NULL AND (b.version, coalesce(b.date_revised, {_MIN_DATE}), b.content_sha256)
                           < (e.version, coalesce(e.date_revised, {_MIN_DATE}), e.content_sha256) AS is_older
                FROM b_articles b
                LEFT JOIN articles e ON e.pmid = b.pmid
                LEFT JOIN deleted_articles d ON d.pmid = b.pmid
            """)
            counts = con.execute("""
                SELECT count(*) FILTER (is_deleted),
                       count(*) FILTER (NOT is_deleted AND is_older),
                       count(*) FILTER (NOT is_deleted AND NOT is_older AND is_new),
                       count(*) FILTER (NOT is_deleted AND NOT is_older AND NOT is_new AND changed),
                       count(*) FILTER (NOT is_deleted AND NOT is_older AND NOT is_new AND NOT changed)
                FROM _acc
            """).fetchall()[0]
            (st.records_skipped_deleted, st.records_skipped_older, st.records_new,
             st.records_updated, st.records_unchanged) = counts
            con.execute("DELETE FROM _acc WHERE is_deleted OR is_older")
            if st.records_updated:
                replaced = "SELECT pmid FROM _acc WHERE changed AND NOT is_new"
                for t in PUBMED_RECORD_TABLES:
                    con.execute(f"DELETE FROM {t.name} WHERE pmid IN ({replaced})")
                con.execute(f"DELETE FROM reference_entries WHERE origin = 'pubmed' AND citing_pmid IN ({replaced})")
            if st.records_new or st.records_updated:
                changed = "(SELECT pmid FROM _acc WHERE changed)"
                art = TABLES["articles"]
                con.execute(
                    f"INSERT INTO articles ({_cols(art)}, run_id, first_seen, updated_at) "
                    f"SELECT {', '.join('b.' + quote(c) for c in art.extracted_names)}, ?, coalesce(a.old_first_seen, ?), ? "
                    "FROM b_articles b JOIN _acc a ON a.pmid = b.pmid WHERE a.changed",
                    [self.run_id, now, now],
                )
                st.rows["articles"] += st.records_new + st.records_updated
                for t in PUBMED_RECORD_TABLES[1:]:
                    if batch.rows(t.name):
                        n = con.execute(
                            f"INSERT INTO {t.name} ({_cols(t)}) SELECT {_cols(t)} FROM b_{t.name} WHERE pmid IN {changed}"
                        ).fetchall()[0][0]
                        st.rows[t.name] += n
                self._insert_references(batch, changed, st)
            self._merge_reference_edges(batch, now, st)
        if batch.deleted_pmids:
            st.deleted = self._delete(batch.deleted_pmids, batch.source, now)
        return st

    def _delete(self, pmids: list[int], source: str, now: dt.datetime) -> int:
        con = self.con
        unique = sorted(set(pmids))
        con.register("_deleted", pa.table({"pmid": pa.array(unique, pa.int64())}))
        try:
            n = con.execute("SELECT count(*) FROM articles WHERE pmid IN (SELECT pmid FROM _deleted)").fetchall()[0][0]
            for t in PUBMED_RECORD_TABLES:
                con.execute(f"DELETE FROM {t.name} WHERE pmid IN (SELECT pmid FROM _deleted)")
            con.execute("DELETE FROM reference_entries WHERE origin = 'pubmed' AND citing_pmid IN (SELECT pmid FROM _deleted)")
            con.execute("DELETE FROM citation_edges WHERE origin = 'pubmed_reflist' AND citing_pmid IN (SELECT pmid FROM _deleted)")
            # the smallest source name is kept, so any load order gives the same row
            con.execute("UPDATE deleted_articles SET source = least(source, ?) WHERE pmid IN (SELECT pmid FROM _deleted)",
                        [source])
            con.execute(
                "INSERT INTO deleted_articles (pmid, deleted_at, source) SELECT pmid, ?, ? FROM _deleted "
                "WHERE pmid NOT IN (SELECT pmid FROM deleted_articles)", [now, source]
            )
        finally:
            con.unregister("_deleted")
        return n

    # -- PMC -------------------------------------------------------------------------------
    def _pmc(self, batch: ParsedBatch, now: dt.datetime) -> LoadStats:
        con, st = self.con, LoadStats()
        if not batch.rows("pmc_articles"):
            return st
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _acc AS
            SELECT b.pmcid, b.pmid, e.pmcid IS NULL AS is_new,
                   e.content_sha256 IS DISTINCT FROM b.content_sha256
                           OR ({self.reparse} AND e.source_sha256 IS NOT DISTINCT FROM b.source_sha256) AS changed,
                   e.first_seen AS old_first_seen,
                   e.pmcid IS NOT NULL AND b.content_sha256 < e.content_sha256 AS is_older
            FROM b_pmc_articles b LEFT JOIN pmc_articles e ON e.pmcid = b.pmcid
        """)
        st.records_skipped_older, st.records_new, st.records_updated, st.records_unchanged = con.execute("""
            SELECT count(*) FILTER (is_older), count(*) FILTER (NOT is_older AND is_new),
                   count(*) FILTER (NOT is_older AND NOT is_new AND changed),
                   count(*) FILTER (NOT is_older AND NOT is_new AND NOT changed) FROM _acc
        """).fetchall()[0]
        con.execute("DELETE FROM _acc WHERE is_older")
        if st.records_new or st.records_updated:
            pmc = TABLES["pmc_articles"]
            con.execute("DELETE FROM pmc_articles WHERE pmcid IN (SELECT pmcid FROM _acc WHERE changed)")
            con.execute(
                "DELETE FROM reference_entries WHERE origin = 'pmc' AND citing_pmid IN "
                "(SELECT pmid FROM _acc WHERE changed AND pmid IS NOT NULL)"
            )
            con.execute(
                f"INSERT INTO pmc_articles ({_cols(pmc)}, first_seen, updated_at) "
                f"SELECT {', '.join('b.' + quote(c) for c in pmc.extracted_names)}, coalesce(a.old_first_seen, ?), ? "
                "FROM b_pmc_articles b JOIN _acc a ON a.pmcid = b.pmcid WHERE a.changed",
                [now, now],
            )
            st.rows["pmc_articles"] += st.records_new + st.records_updated
            self._insert_references(batch, "(SELECT pmid FROM _acc WHERE changed)", st)
        self._merge_reference_edges(batch, now, st)
        return st

    def _insert_references(self, batch: ParsedBatch, changed: str, st: LoadStats) -> None:
        """Insert the batch's reference entries of the records in ``changed`` (a subquery of PMIDs)."""
        if batch.rows("reference_entries"):
            ref = TABLES["reference_entries"]
            st.rows["reference_entries"] += self.con.execute(
                f"INSERT INTO reference_entries ({_cols(ref)}) SELECT {_cols(ref)} FROM b_reference_entries "
                f"WHERE citing_pmid IN {changed}"
            ).fetchall()[0][0]

    def _merge_reference_edges(self, batch: ParsedBatch, now: dt.datetime, st: LoadStats) -> None:
        """Merge the edges of the batch's reference lists whose record was accepted (in ``_acc``)."""
        if batch.rows("citation_edges"):
            self.con.execute(
                "CREATE OR REPLACE TEMP VIEW _edges AS SELECT * FROM b_citation_edges "
                "WHERE citing_pmid IN (SELECT pmid FROM _acc)"
            )
            st.edges_new += merge_edges(self.con, TABLES["citation_edges"], "_edges", now, seen_again=not self.reparse)


_UNREAD = object()  # the next batch has not been taken from the iterator yet


@dataclass
class LoadInput:
    """One input (a small file): its batches, and what to write with its first and after its last batch."""

    batches: Iterable[ParsedBatch]
    first: Callable[[duckdb.DuckDBPyConnection], None] | None = None
    last: Callable[[duckdb.DuckDBPyConnection], None] | None = None


def load_inputs(db: str, run_id: str, inputs: Iterable[LoadInput],
                on_batch: Callable[[ParsedBatch, LoadStats], None] | None = None,
                reparse: bool = False) -> LoadStats:
    """Load small inputs in order, several to a write session and transaction, a new one when a batch
    would follow BATCH_RECORDS records; returns the summed stats.

    Opening and checkpointing the warehouse costs more than a small file's rows, so small files are
    written in transactions of a large file's size; between them the file is closed, so a reader or
    the next writer gets in. An input's ``first`` is written before its first batch, its ``last``
    with its last. Inputs are taken (and parsed) inside the transaction: give local ones only, never
    answers still to be fetched.
    """

    def steps() -> Iterator[ParsedBatch | Callable[[duckdb.DuckDBPyConnection], None]]:
        for item in inputs:
            if item.first is not None:
                yield item.first
            yield from item.batches
            if item.last is not None:
                yield item.last

    total = LoadStats()
    it = steps()
    step = next(it, None)
    while step is not None:
        with session(db) as con:
            loader = BatchLoader(con, run_id, reparse=reparse)
            records = 0
            with loader.transaction():
                while step is not None:
                    if isinstance(step, ParsedBatch):
                        if records >= BATCH_RECORDS:
                            break
                        stats = loader.add(step)
                        if on_batch:
                            on_batch(step, stats)
                        records += step.n_records
                    else:
                        step(con)
                    step = next(it, None)
        crash_point("between-batches")  # test-only hook (LITMETA_CRASH_AT)
        total.add(loader.stats)
    return total


def load_batches(db: str, run_id: str, batches: Iterable[ParsedBatch],
                 on_batch: Callable[[ParsedBatch, LoadStats], None] | None = None,
                 threads: int | None = None, reparse: bool = False,
                 first: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
                 last: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
                 short_batch_ends_input: bool = True) -> LoadStats:
    """Load the batches, each in a short write session and transaction; returns the summed stats.

    A batch handed out early (`ParsedBatch.partial`: the last ones of a large file, while its last
    pieces are parsed) shares its transaction with the batches after it, until that holds
    BATCH_RECORDS records, so the end of a file costs one checkpoint instead of one per batch.
    Between transactions the file is closed, so a reader or the next writer gets in.
    ``on_batch`` is called for each batch once written (progress; its transaction commits after).
    ``threads``: DuckDB's threads in those sessions (default: one per core). ``reparse``: see `BatchLoader`.
    ``first`` and ``last`` write in the transaction of the first and of the last batch (e.g. record the
    file the batches come from, and mark it loaded), so a small file costs one session, not three.
    To find the last, the iterator is asked for the next batch inside the transaction after a batch
    shorter than BATCH_RECORDS when ``short_batch_ends_input`` (true of one process's parse, whose only
    short batch is its last; not of a worker pool's, whose batches of whole pieces are all short:
    waiting for the next one there would hold a large transaction open); otherwise ``last`` gets a
    session of its own.
    """
    total = LoadStats()
    it = iter(batches)
    batch = next(it, None)
    if batch is None and first is None and last is None:
        return total
    while True:
        with session(db, threads=threads) as con:
            loader = BatchLoader(con, run_id, reparse=reparse)
            with loader.transaction():
                if first is not None:
                    first(con)
                    first = None
                records = 0
                while batch is not None:
                    stats = loader.add(batch)
                    if on_batch:
                        on_batch(batch, stats)
                    records += batch.n_records
                    coalescing = batch.partial and records < BATCH_RECORDS  # the last pieces are being parsed
                    ends_file = (last is not None and short_batch_ends_input and not batch.partial
                                 and batch.n_records < BATCH_RECORDS)
                    if not (coalescing or ends_file):
                        batch = _UNREAD
                        break
                    batch = next(it, None)
                    if batch is not None and not coalescing:
                        break  # written in a transaction of its own
                if batch is None and last is not None:
                    last(con)
        crash_point("between-batches")  # test-only hook (LITMETA_CRASH_AT)
        total.add(loader.stats)
        if batch is _UNREAD:
            batch = next(it, None)
            if batch is None and last is None:
                break
        elif batch is None:
            break
    return total
