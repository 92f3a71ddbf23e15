"""The errors every stage shares, rooted in one class; the CLI maps each kind to its exit code.

`UsageError` is bad usage or bad input (exit 2): its message names the input and says what to do.
Stage-specific errors (`litmeta.extractors.errors`, `litmeta.warehouse.db.WarehouseError`) derive
from `LitmetaError` too.
"""

from __future__ import annotations


class LitmetaError(Exception):
    """Base class of litmeta's own errors: the message is one line a user can act on."""


class UsageError(LitmetaError):
    """Bad usage or bad input; nothing was written. The message names it and what to do instead."""
