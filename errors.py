"""The errors every stage shares, rooted in one class; the CLI maps each kind to its exit code.

    LitmetaError        litmeta's own errors: a message of one line a user can act on
    ├── UsageError      bad usage or bad input, nothing written (exit 2): the message names it
    └── CouldNotFinish  a reason outside the input: a service unreachable or still failing after
                        its retries, the warehouse busy, a worker process killed (exit 3); what
                        was loaded stays, and running the same command again finishes the job

Stage-specific errors (`litmeta.extractors.errors`, `litmeta.warehouse.db`) derive from these.
Any other exception is a bug (exit 4, traceback in a log file), never a reject.
"""

from __future__ import annotations


class LitmetaError(Exception):
    """Base class of litmeta's own errors."""


class UsageError(LitmetaError):
    """Bad usage or bad input; nothing was written. The message names it and what to do instead."""


class CouldNotFinish(LitmetaError):
    """The run could not finish for a reason outside its input; re-running it later finishes the job."""


#: what a CouldNotFinish message ends with when it does not say so itself
RERUN_HINT = "what was loaded stays: re-run the same command later to finish"
