"""Provenance bookkeeping: ingest_runs rows, raw documents, run summaries."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from pathlib import Path

import duckdb

from litmeta.warehouse.load import utcnow

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


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()
