"""What every storage offers: the `Storage` interface and the facts it returns.

Keys are '/'-separated paths relative to the storage root (e.g. 'v4_events/event_date=…/x.parquet').
Writes are atomic: a reader sees either the previous object or the complete new one, never a
partial file. `open_read(key, etag=...)` reads exactly that version or raises `ObjectChanged`, so
an object replaced between listing and reading is never ingested under the listed version's ETag.

A listing is a snapshot: an object deleted while it is being listed is simply not in it (two runs
share a lake, and one deletes records the other is listing). Reading an object the storage is
not allowed to read raises `AccessDenied`; a local symbolic link whose target is missing is
listed (so it is not silently skipped) and raises `BrokenLink` when read. `check_listable` and
`check_writable` are the checks a command runs before it touches anything: they raise
`UserError` with a message that names the option to fix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class ObjectInfo:
    key: str  # relative to the storage root
    size: int
    etag: str  # S3 ETag without quotes; locally size-mtime_ns (cheap, changes on rewrite)


class ObjectChanged(OSError):
    """The object is no longer the version asked for (replaced or deleted since it was listed)."""


class AccessDenied(PermissionError):
    """The storage refused to read the object (no read permission, S3 403). Someone can grant
    it, so it is not final at once; see `ingest.logs.attempt` for when it counts as lasting."""


class BrokenLink(OSError):
    """A symbolic link in a local folder whose target does not exist."""


class Storage(Protocol):
    root: str  # the URI the user gave: a folder path or s3://bucket/prefix

    def uri(self, key: str) -> str: ...
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...
    def info(self, key: str) -> ObjectInfo | None: ...
    def exists(self, key: str) -> bool: ...
    def read_bytes(self, key: str) -> bytes: ...
    def open_read(
        self, key: str, etag: str | None = None
    ) -> contextlib.AbstractContextManager[BinaryIO]: ...
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def open_write(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]: ...
    def delete(self, key: str) -> None: ...
    def sweep_temp_files(self) -> int: ...
    def check_listable(self, option: str) -> None: ...
    def check_writable(self, option: str, probe_key: str) -> None: ...
