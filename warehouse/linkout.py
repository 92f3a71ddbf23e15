"""LinkOut links (elink prlinks/llinks) of network members into full_text_links, one transaction per write."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from litmeta.warehouse.db import session
from litmeta.warehouse.network import merge_full_text_links


def write_full_text_links(db: str, arrow: pa.Table, now: dt.datetime) -> int:
    """Merge ``arrow`` (full_text_links rows) by (pmid, provider, url); returns the links new to the table."""
    if arrow.num_rows == 0:
        return 0
    with session(db) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            new = merge_full_text_links(con, arrow, now)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return new
