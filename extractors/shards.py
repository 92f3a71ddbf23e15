"""One PubMed file parsed into Parquet shards: one Parquet file per table, written atomically as a set.

A Dask worker runs `write_shards` for one downloaded file: the existing parser
(`litmeta.extractors.pubmed_xml.iter_batches`) streams its batches, each table's rows go to
``{shards}/{name}/{table}.parquet`` with ``_row`` and ``_batch`` columns (`litmeta.schemas.shards`), DeleteCitation PMIDs to ``_deleted.parquet``, and ``manifest.json`` says what
is there (records, deletions, rejects, the file's sha256). Everything is written in a hidden sibling
folder first and renamed into place, so a shard set is either whole or absent: a worker killed part-way
leaves only a hidden folder, which the next try replaces. The shard folder must be a filesystem path
every worker and the merging process see (local disk for a local cluster, a shared mount otherwise).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from litmeta.extractors import pubmed_xml
from litmeta.schemas import TABLES
from litmeta.schemas.shards import BATCH, DELETED, MANIFEST, ROW, ShardSet


def write_shards(path: str, name: str, shards: str, source_name: str, sha256: str,
                 batch_records: int) -> ShardSet:
    """Parse the PubMed file ``path`` into the shard set ``{shards}/{name}`` (replacing any earlier one)."""
    root = Path(shards)
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    for stale in root.glob(f".{name}.*.tmp"):  # left by a worker killed part-way through this file
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    out = ShardSet(name, str(final), source_name, sha256)
    writers: dict[str, pq.ParquetWriter] = {}
    deleted: list[int] = []
    try:
        for n, batch in enumerate(pubmed_xml.iter_batches(path, source_name=source_name, source_sha256=sha256,
                                                          batch_size=batch_records)):
            out.records += batch.n_records
            deleted.extend(batch.deleted_pmids)
            out.rejects.extend(asdict(r) for r in batch.rejects)
            for table, arrow in batch.tables.items():
                if not arrow.num_rows:
                    continue
                key = list(TABLES[table].key)
                repeats = arrow.num_rows - arrow.select(key).group_by(key).aggregate([]).num_rows
                if repeats:  # a record listing an entry twice: the merge keeps the first (as litmeta load does)
                    out.repeats[table] = out.repeats.get(table, 0) + repeats
                start = out.tables.get(table, 0)
                arrow = arrow.append_column(ROW, pa.array(range(start, start + arrow.num_rows), pa.int64()))
                arrow = arrow.append_column(BATCH, pa.array([n] * arrow.num_rows, pa.int32()))
                if table not in writers:
                    writers[table] = pq.ParquetWriter(tmp / f"{table}.parquet", arrow.schema, compression="zstd")
                writers[table].write_table(arrow)
                out.tables[table] = start + arrow.num_rows
        for w in writers.values():
            w.close()
        writers.clear()
        out.deletions = len(deleted)
        if deleted:
            pq.write_table(pa.table({"pmid": pa.array(deleted, pa.int64()),
                                     ROW: pa.array(range(len(deleted)), pa.int64())}), tmp / f"{DELETED}.parquet")
            out.tables[DELETED] = len(deleted)
        (tmp / MANIFEST).write_text(json.dumps(asdict(out), indent=1))
        if final.exists():
            old = root / f".{name}.{uuid.uuid4().hex[:8]}.old"
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        for w in writers.values():
            w.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def remove_shards(shard: ShardSet) -> None:
    """Delete a shard set once merged (the warehouse holds its rows; a re-run does not need it)."""
    shutil.rmtree(shard.folder, ignore_errors=True)
