"""One definition of every warehouse table (see `schemas.tables`); DDL, Arrow schemas and docs derive from it."""

from schemas.batch import ParsedBatch, Reject, RowSink, concat_batches, merge_batches
from schemas.model import Column, Table
from schemas.tables import ALL_TABLES, PUBMED_RECORD_TABLES, TABLES

__all__ = ["ALL_TABLES", "PUBMED_RECORD_TABLES", "TABLES", "Column", "ParsedBatch", "Reject", "RowSink", "Table", "concat_batches", "merge_batches"]
