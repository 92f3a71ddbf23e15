"""Provenance bookkeeping: ingest_runs rows, raw documents, run summaries."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa

from litmeta.warehouse.db import session
from litmeta.warehouse.load import LoadStats, utcnow

SECRET_KEYS = {"api_key", "apikey", "key", "password", "token"}


def scrub(params: dict) -> dict:
    """Parameters without secrets (the api_key never reaches the warehouse)."""
    out = {}
    for k, v in params.items():
        if k.lower() in SECRET_KEYS:
            continue
        out[k] = scrub(v) if isinstance(v, dict) else v
    return out


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, flow: str, parameters: dict) -> None:
    con.execute(
        "INSERT INTO ingest_runs (run_id, flow, started_at, status, parameters) VALUES (?, ?, ?, 'running', ?)",
        [run_id, flow, utcnow(), json.dumps(scrub(parameters), default=str, sort_keys=True)],
    ).fetchall()


def mark_interrupted(con: duckdb.DuckDBPyConnection) -> int:
    """Mark runs still 'running' as 'interrupted' (finished_at stays NULL); returns how many.

    Only correct while holding the writer lock (`litmeta.warehouse.db.writer_lock`): then no other run can
    be alive, so a 'running' row belongs to a process that was killed or lost its machine.
    """
    return con.execute(
        "UPDATE ingest_runs SET status = 'interrupted' WHERE status = 'running'"
    ).fetchall()[0][0]


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, status: str, counts: dict, http_requests: int) -> None:
    con.execute(
        "UPDATE ingest_runs SET finished_at = ?, status = ?, counts = ?, http_requests = ? WHERE run_id = ?",
        [utcnow(), status, json.dumps(counts, default=str, sort_keys=True), http_requests, run_id],
    ).fetchall()


def store_raw_document(con: duckdb.DuckDBPyConnection, *, kind: str, request: str, body: bytes | None,
                       run_id: str, n_records: int | None = None, sha256: str | None = None,
                       fetched_at: dt.datetime | None = None) -> str:
    """Store a fetched document (gzip-compressed) once per sha256; returns the sha256."""
    digest = sha256 or hashlib.sha256(body or b"").hexdigest()
    con.execute(
        "INSERT INTO raw_documents (sha256, kind, request, fetched_at, n_records, body, run_id) "
        "SELECT ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM raw_documents WHERE sha256 = ?)",
        [digest, kind, request, fetched_at or utcnow(), n_records,
         gzip.compress(body, compresslevel=6) if body is not None else None, run_id, digest],
    ).fetchall()
    return digest


class Document(Protocol):
    """A fetched answer as the E-utilities client hands it over (its `RawDocument`)."""

    kind: str
    request: str
    body: bytes
    fetched_at: dt.datetime
    n_records: int
    sha256: str


def store_documents(db: str, run_id: str, docs: Iterable[Document]) -> int:
    """Keep every fetched answer in raw_documents (compressed, request without api_key); returns how many."""
    docs = list(docs)
    if not docs:
        return 0
    with session(db) as con:
        for d in docs:
            store_raw_document(con, kind=d.kind, request=d.request, body=d.body, run_id=run_id,
                               n_records=d.n_records, sha256=d.sha256, fetched_at=d.fetched_at)
    return len(docs)


def record_file(con: duckdb.DuckDBPyConnection, run_id: str, kind: str, path: Path, sha256: str, size: int,
                mtime: dt.datetime) -> None:
    """Record a local input file, in the transaction of its first rows: in raw_documents (by sha256;
    its bytes stay in the file) and in source_files (by absolute path, not loaded until `mark_file_loaded`)."""
    resolved = str(path.resolve())
    store_raw_document(con, kind=f"file_{kind}", request=resolved, body=None, run_id=run_id, sha256=sha256)
    con.execute("DELETE FROM source_files WHERE path = ?", [resolved])
    con.execute("INSERT INTO source_files (path, kind, size, mtime, sha256, run_id) VALUES (?, ?, ?, ?, ?, ?)",
                [resolved, kind, size, mtime, sha256, run_id])


def mark_file_loaded(con: duckdb.DuckDBPyConnection, path: Path, records: int, deletions: int) -> None:
    """Mark a file of `record_file` as completely loaded (in the transaction of its last rows)."""
    con.execute("UPDATE source_files SET loaded_at = ?, records = ?, deletions = ? WHERE path = ?",
                [utcnow(), records, deletions, str(path.resolve())])


def loaded_before(db: str, stamps: dict[Path, tuple[int, dt.datetime]]) -> dict[Path, tuple[str, dt.datetime]]:
    """Of the files ``stamps`` names (path -> (size, mtime)), those loaded completely as they are now:
    path -> (run_id, loaded_at)."""
    if not stamps:
        return {}
    by_name = {str(p.resolve()): p for p in stamps}
    asked = pa.table({"path": list(by_name), "size": [stamps[p][0] for p in by_name.values()],
                      "mtime": pa.array([stamps[p][1] for p in by_name.values()], pa.timestamp("us"))})
    with session(db) as con:
        con.register("_asked", asked)
        rows = con.execute("SELECT s.path, s.run_id, s.loaded_at FROM source_files s JOIN _asked a USING (path) "
                           "WHERE s.size = a.size AND s.mtime = a.mtime AND s.loaded_at IS NOT NULL").fetchall()
    return {by_name[path]: (run_id, at) for path, run_id, at in rows}


@dataclass
class RunRecorder:
    """Writes the ingest_runs row of one run and adds up what it did."""

    db: str
    run_id: str
    flow: str
    parameters: dict
    stats: LoadStats = field(default_factory=LoadStats)
    extra: dict = field(default_factory=dict)
    http_requests: int = 0

    def start(self) -> None:
        with session(self.db) as con:
            mark_interrupted(con)  # the caller holds the writer lock: a 'running' row is a dead run
            start_run(con, self.run_id, self.flow, self.parameters)

    def finish(self, failed: bool = False, interrupted: bool = False) -> dict:
        counts = {**self.stats.as_dict(), **self.extra}
        status = ("interrupted" if interrupted else "failed" if failed
                  else "completed_with_rejects" if self.stats.rejects else "completed")
        with session(self.db) as con:
            finish_run(con, self.run_id, status, counts, self.http_requests)
        return {"run_id": self.run_id, "status": status, "http_requests": self.http_requests, **counts}


#: raw_documents kinds that carry records, by the kind of record
RECORD_DOCUMENTS = {"pubmed": ("efetch_pubmed",), "pmc": ("efetch_pmc",)}


@dataclass(frozen=True)
class StoredDocument:
    """A stored answer to parse again: its body comes from the warehouse (`stored_body`)."""

    sha256: str
    kind: str  # 'pubmed' or 'pmc'
    request: str


def stored_documents(db: str, kinds: Iterable[str], since: dt.datetime | None = None) -> list[StoredDocument]:
    """The stored answers carrying records of ``kinds`` ('pubmed', 'pmc'), fetched since ``since``, oldest first."""
    by_kind = {doc_kind: k for k in kinds for doc_kind in RECORD_DOCUMENTS[k]}
    if not by_kind:
        return []
    with session(db) as con:
        rows = con.execute(
            f"SELECT sha256, kind, request FROM raw_documents WHERE body IS NOT NULL "
            f"AND kind IN ({', '.join('?' * len(by_kind))}) AND (? IS NULL OR fetched_at >= ?) "
            "ORDER BY fetched_at, sha256", [*by_kind, since, since]).fetchall()
    return [StoredDocument(sha, by_kind[kind], request) for sha, kind, request in rows]


def stored_body(db: str, sha256: str) -> bytes:
    """The uncompressed body of a stored answer."""
    with session(db) as con:
        (body,) = con.execute("SELECT body FROM raw_documents WHERE sha256 = ?", [sha256]).fetchall()[0]
    return gzip.decompress(body)


def loaded_files(db: str, kinds: Iterable[str], since: dt.datetime | None = None) -> list[tuple[Path, str, str]]:
    """(path, kind, sha256) of the files completely loaded (source_files) since ``since``, oldest first."""
    kinds = list(kinds)
    if not kinds:
        return []
    with session(db) as con:
        rows = con.execute(
            f"SELECT path, kind, sha256 FROM source_files WHERE loaded_at IS NOT NULL "
            f"AND kind IN ({', '.join('?' * len(kinds))}) AND (? IS NULL OR loaded_at >= ?) ORDER BY loaded_at, path",
            [*kinds, since, since]).fetchall()
    return [(Path(p), k, sha) for p, k, sha in rows]
