"""A Parquet shard set: one PubMed file's parsed rows, one Parquet file per table (`litmeta mirror`).

Written by `litmeta.extractors.shards` on a Dask worker, merged by `litmeta.warehouse.mirror`:
``{shards}/{name}/{table}.parquet`` with the table's columns, ``_row`` (the row's position in the
file) and ``_batch`` (the parser's batch it came in: a batch never holds a PMID twice, so (``_batch``,
PMID) names one record of the file even when the file repeats a PMID), ``_deleted.parquet`` (DeleteCitation PMIDs) and ``manifest.json`` (this `ShardSet`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from litmeta.schemas.batch import Reject

MANIFEST = "manifest.json"
DELETED = "_deleted"
ROW = "_row"
BATCH = "_batch"


@dataclass
class ShardSet:
    """What `write_shards` wrote for one file (also its ``manifest.json``)."""

    name: str
    folder: str
    source_name: str
    sha256: str
    records: int = 0
    deletions: int = 0
    tables: dict[str, int] = field(default_factory=dict)  # rows per table written
    repeats: dict[str, int] = field(default_factory=dict)  # rows repeating an earlier row's key, per table
    rejects: list[dict] = field(default_factory=list)

    def path(self, table: str) -> str:
        return str(Path(self.folder) / f"{table}.parquet")

    def reject_objects(self) -> list[Reject]:
        return [Reject(**r) for r in self.rejects]


def read_manifest(folder: str | Path) -> ShardSet | None:
    """The shard set in ``folder``, or None when there is none (never written, or not completely)."""
    p = Path(folder) / MANIFEST
    if not p.is_file():
        return None
    return ShardSet(**json.loads(p.read_text()))
