"""Errors a user can act on, and the exit statuses every `b2p` command returns.

A `UserError`'s message is printed as is, without a traceback: it says what to do.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # could not run, or a file failed unexpectedly (the next run retries it)
EXIT_QUARANTINED = 2  # finished, but some input was quarantined (see the lake's _ingest/)


class UserError(Exception):
    """A problem with input or configuration; the message says what to do about it."""
