"""Errors a user can act on. Their message is printed as is, without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with input or configuration; the message says what to do about it."""
