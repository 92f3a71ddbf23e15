"""One definition of every warehouse table (see `litmeta.schemas.tables`); DDL, Arrow schemas and docs derive from it."""

from litmeta.schemas.batch import ParsedBatch, Reject, RowSink, concat_batches, merge_batches
from litmeta.schemas.model import Column, Table
from litmeta.schemas.tables import ALL_TABLES, PUBMED_RECORD_TABLES, TABLES

__all__ = ["ALL_TABLES", "PUBMED_RECORD_TABLES", "TABLES", "Column", "ParsedBatch", "Reject", "RowSink", "Table", "concat_batches", "merge_batches"]
