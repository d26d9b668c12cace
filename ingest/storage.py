"""Where the lake lives: a local folder or an S3 prefix, behind one small interface.

Keys are '/'-separated paths relative to the lake root (e.g. 'v4_events/event_date=…/x.parquet').
Writes are atomic: a reader sees either the previous object or the complete new one, never a
partial file. Locally that is a hidden temp file renamed into place; on S3 a PUT (or a completed
multipart upload) is atomic by itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class ObjectInfo:
    key: str  # relative to the storage root
    size: int
    etag: str  # S3 ETag without quotes; locally size-mtime_ns (cheap, changes on rewrite)


class Storage(Protocol):
    root: str  # the URI the user gave: a folder path or s3://bucket/prefix

    def uri(self, key: str) -> str: ...
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...
    def exists(self, key: str) -> bool: ...
    def read_bytes(self, key: str) -> bytes: ...
    def open_read(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]: ...
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def open_write(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]: ...
    def delete(self, key: str) -> None: ...


# Temp files start with '.' so DuckDB globs, Athena and Hive all ignore them.
TEMP_PREFIX = ".tmp-"


class LocalStorage:
    """A folder on disk."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = str(root)
        self._base = Path(root).resolve()

    def path(self, key: str) -> Path:
        return self._base / key

    def uri(self, key: str) -> str:
        return str(self.path(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        start = self._base / prefix if prefix else self._base
        if start.is_file():
            yield self._info(start)
            return
        if not start.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames.sort()
            for name in sorted(filenames):
                if name.startswith(TEMP_PREFIX):
                    continue
                yield self._info(Path(dirpath) / name)

    def _info(self, path: Path) -> ObjectInfo:
        st = path.stat()
        key = path.relative_to(self._base).as_posix()
        return ObjectInfo(key=key, size=st.st_size, etag=f"{st.st_size}-{st.st_mtime_ns}")

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        with open(self.path(key), "rb") as handle:
            yield handle

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.open_write(key) as handle:
            handle.write(data)

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        """Yield a file to write; it appears under `key` only if the block completes."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def delete_tree(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix), ignore_errors=True)


def open_storage(uri: str | os.PathLike[str]) -> Storage:
    """The storage for a lake or source URI: `s3://bucket/prefix` or a local folder."""
    text = str(uri)
    if text.startswith("s3://"):
        from ingest.s3 import S3Storage  # boto3 is imported only when S3 is used

        return S3Storage.from_uri(text)
    return LocalStorage(text)
