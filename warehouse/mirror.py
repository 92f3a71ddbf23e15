"""The warehouse side of `litmeta mirror`: the files' bookkeeping in `source_files`, and the bulk merge of
their Parquet shards (`litmeta.schemas.shards`), DuckDB reading the shards itself.

A mirrored file's `source_files` row is keyed by its FTP name; ``md5`` (published), ``mtime`` (the index's
date), ``downloaded_at``, ``sharded_at`` and ``loaded_at`` say how far it got, so a re-run does only the rest.

`merge_shards` applies any number of files in one transaction, giving what `litmeta load` of the same files
in the same order (baseline by number, then updates by number) gives (`litmeta.warehouse.load`):

- a PMID's record is the greatest by (version, date_revised, content_sha256) among the warehouse's and the
  files' records; on a tie the one applied first stays (the warehouse's, then the earlier file's);
- a PMID deleted by any file's DeleteCitation (or deleted before) is gone with its rows, and a tombstone
  in `deleted_articles` keeps the smallest source name;
- a record's citation edges are merged when the record was accepted as it came in order: not older than
  every record before it and not deleted; edges citing a deleted PMID go.

Readers keep seeing the previous state until the transaction commits (DuckDB: one writer, snapshot reads).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from litmeta.schemas import PUBMED_RECORD_TABLES, TABLES
from litmeta.schemas.model import quote
from litmeta.schemas.shards import BATCH, DELETED, ROW, ShardSet
from litmeta.warehouse.db import crash_point, session
from litmeta.warehouse.load import LoadStats, merge_edges, record_rejects, utcnow
from litmeta.warehouse.runs import store_raw_document

_MIN_DATE = "DATE '0001-01-01'"
_KEY = f"{{'v': version, 'd': coalesce(date_revised, {_MIN_DATE}), 's': content_sha256}}"


@dataclass(frozen=True)
class MirroredFile:
    """A file's `source_files` row as the mirror reads it."""

    name: str
    md5: str | None
    mtime: dt.datetime | None
    downloaded_at: dt.datetime | None
    sharded_at: dt.datetime | None
    loaded_at: dt.datetime | None
    records: int | None
    deletions: int | None


def mirrored_files(db: str, read_only: bool = False) -> dict[str, MirroredFile]:
    """Every mirrored file's row (``md5`` set), by FTP name."""
    with session(db, read_only=read_only) as con:
        rows = con.execute("SELECT path, md5, mtime, downloaded_at, sharded_at, loaded_at, records, deletions "
                           "FROM source_files WHERE md5 IS NOT NULL").fetchall()
    return {r[0]: MirroredFile(*r) for r in rows}


def file_downloaded(db: str, run_id: str, name: str, url: str, md5: str, sha256: str, size: int,
                    listed: dt.datetime | None) -> None:
    """Record a verified download (in raw_documents too, by sha256 and its URL, before any of its rows);
    not sharded or loaded yet."""
    now = utcnow()
    with session(db) as con:
        con.execute("BEGIN TRANSACTION")
        store_raw_document(con, kind="file_pubmed", request=url, body=None, run_id=run_id, sha256=sha256)
        con.execute("DELETE FROM source_files WHERE path = ?", [name])
        con.execute("INSERT INTO source_files (path, kind, size, mtime, sha256, md5, downloaded_at, run_id) "
                    "VALUES (?, 'pubmed', ?, ?, ?, ?, ?, ?)", [name, size, listed, sha256, md5, now, run_id])
        con.execute("COMMIT")


def files_sharded(db: str, shards: Sequence[ShardSet]) -> None:
    """Record the shard sets written (in one short session: opening the warehouse costs more than the rows)."""
    if not shards:
        return
    now = utcnow()
    with session(db) as con:
        con.executemany("UPDATE source_files SET sharded_at = ?, records = ?, deletions = ? WHERE path = ?",
                        [[now, s.records, s.deletions, s.name] for s in shards])


def _files_table(shards: Sequence[ShardSet]) -> pa.Table:
    return pa.table({"seq": pa.array(range(len(shards)), pa.int64()),
                     "name": [s.name for s in shards],
                     "source": [s.source_name for s in shards],
                     "folder": [s.folder for s in shards]})


def _read(shards: Sequence[ShardSet], table: str) -> str | None:
    """A FROM clause over ``table``'s shards with each row's file order ``_seq``; None when no shard has rows."""
    paths = [s.path(table) for s in shards if s.tables.get(table)]
    if not paths:
        return None
    listed = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
    return (f"(SELECT p.*, f.seq AS _seq FROM read_parquet([{listed}], filename = true) p "
            f"JOIN _mfiles f ON p.filename = f.folder || '/{table}.parquet')")


def merge_shards(db: str, run_id: str, shards: Sequence[ShardSet], threads: int | None = None) -> LoadStats:
    """Merge the shard sets (in the order given) into the warehouse in one transaction; mark them loaded."""
    st = LoadStats()
    if not shards:
        return st
    now = utcnow()
    with session(db, threads=threads) as con:
        con.register("_mfiles_arrow", _files_table(shards))
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("CREATE OR REPLACE TEMP TABLE _mfiles AS SELECT * FROM _mfiles_arrow")
            _merge(con, run_id, shards, now, st)
            rejects = [r for s in shards for r in s.reject_objects()]
            record_rejects(con, run_id, rejects, now)
            st.rejects = len(rejects)
            con.executemany("UPDATE source_files SET loaded_at = ?, run_id = ? WHERE path = ?",
                            [[now, run_id, s.name] for s in shards])
            crash_point("mirror-merge")  # test-only hook (LITMETA_CRASH_AT): merged, not committed
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("_mfiles_arrow")
    return st


def _merge(con, run_id: str, shards: Sequence[ShardSet], now: dt.datetime, st: LoadStats) -> None:
    arts = _read(shards, "articles")
    deleted = _read(shards, DELETED)
    con.execute("CREATE OR REPLACE TEMP TABLE _tomb AS "
                + (f"SELECT d.pmid, min(f.source) AS source FROM {deleted} d JOIN _mfiles f ON f.seq = d._seq "
                   "GROUP BY d.pmid" if deleted else "SELECT NULL::BIGINT AS pmid, NULL::VARCHAR AS source LIMIT 0"))
    gone = "(SELECT pmid FROM _tomb UNION SELECT pmid FROM deleted_articles)"
    if arts:
        # the candidates' keys only: the articles' other columns are read from the shards once, by the insert
        con.execute(f"CREATE OR REPLACE TEMP TABLE _cand AS SELECT pmid, _seq, {ROW}, {BATCH}, version, "
                    f"date_revised, content_sha256 FROM {arts}")
        # every record of a PMID in application order (the warehouse's first), with the greatest key before it
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _ranked AS
            SELECT *, max(k) OVER (PARTITION BY pmid ORDER BY _seq, {ROW}
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev,
                      row_number() OVER (PARTITION BY pmid ORDER BY k DESC, _seq, {ROW}) AS nth
            FROM (SELECT pmid, _seq, {ROW}, {BATCH}, {_KEY} AS k FROM _cand
                  UNION ALL
                  SELECT pmid, -1, 0, 0, {_KEY} FROM articles WHERE pmid IN (SELECT pmid FROM _cand))
            WHERE pmid NOT IN {gone}
        """)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _win AS SELECT r.pmid, r._seq, r.{ROW}, r.{BATCH}, "
                    "e.pmid IS NULL AS is_new, "
                    "e.first_seen AS old_first_seen FROM _ranked r LEFT JOIN articles e ON e.pmid = r.pmid "
                    "WHERE r.nth = 1 AND r._seq >= 0")
        con.execute(f"CREATE OR REPLACE TEMP TABLE _accepted AS SELECT pmid, _seq, {BATCH} FROM _ranked "
                    "WHERE _seq >= 0 AND (prev IS NULL OR k >= prev)")
        st.records_new, st.records_updated = con.execute(
            "SELECT count(*) FILTER (is_new), count(*) FILTER (NOT is_new) FROM _win").fetchall()[0]
        st.records_skipped_deleted = con.execute(f"SELECT count(*) FROM _cand WHERE pmid IN {gone}").fetchall()[0][0]
    st.deleted = con.execute("SELECT count(*) FROM articles WHERE pmid IN (SELECT pmid FROM _tomb)").fetchall()[0][0]
    replaced = "(SELECT pmid FROM _tomb" + (" UNION SELECT pmid FROM _win)" if arts else ")")
    for t in PUBMED_RECORD_TABLES:
        con.execute(f"DELETE FROM {t.name} WHERE pmid IN {replaced}")
    con.execute(f"DELETE FROM reference_entries WHERE origin = 'pubmed' AND citing_pmid IN {replaced}")
    con.execute("DELETE FROM citation_edges WHERE origin = 'pubmed_reflist' AND citing_pmid IN (SELECT pmid FROM _tomb)")
    if arts:
        art = TABLES["articles"]
        cols = ", ".join(quote(c) for c in art.extracted_names)
        con.execute(f"INSERT INTO articles ({cols}, run_id, first_seen, updated_at) "
                    f"SELECT {', '.join('c.' + quote(c) for c in art.extracted_names)}, ?, coalesce(w.old_first_seen, ?), ? "
                    f"FROM {arts} c JOIN _win w ON w.pmid = c.pmid AND w._seq = c._seq AND w.{ROW} = c.{ROW}",
                    [run_id, now, now])
        st.rows["articles"] += st.records_new + st.records_updated
        for t in [*PUBMED_RECORD_TABLES[1:], TABLES["reference_entries"]]:
            src = _read(shards, t.name)
            if src is None:
                continue
            pmid = "citing_pmid" if t.name == "reference_entries" else "pmid"
            cols = ", ".join(quote(c) for c in t.extracted_names)
            key = ", ".join(f"c.{quote(k)}" for k in t.key)
            # a key repeated within a record (its shard counted them): the first row is kept, as litmeta load does
            first = (f" QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY c.{ROW}) = 1"
                     if any(s.repeats.get(t.name) for s in shards) else "")
            n = con.execute(
                f"INSERT INTO {t.name} ({cols}) SELECT {', '.join('c.' + quote(c) for c in t.extracted_names)} "
                f"FROM {src} c JOIN _win w ON w.pmid = c.{pmid} AND w._seq = c._seq AND w.{BATCH} = c.{BATCH}"
                f"{first}").fetchall()[0][0]
            st.rows[t.name] += n
        edges = _read(shards, "citation_edges")
        if edges is not None:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _edges AS SELECT c.* FROM {edges} c "
                        f"JOIN _accepted a ON a.pmid = c.citing_pmid AND a._seq = c._seq AND a.{BATCH} = c.{BATCH}")
            st.edges_new += merge_edges(con, TABLES["citation_edges"], "_edges", now)
    con.execute("UPDATE deleted_articles d SET source = least(d.source, t.source) FROM _tomb t WHERE d.pmid = t.pmid")
    con.execute("INSERT INTO deleted_articles (pmid, deleted_at, source) SELECT pmid, ?, source FROM _tomb "
                "WHERE pmid NOT IN (SELECT pmid FROM deleted_articles)", [now])
    for name in ("_tomb", "_cand", "_ranked", "_win", "_accepted", "_edges"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
