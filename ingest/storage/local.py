"""The Storage interface on a local folder.

Writes go to a hidden temp file renamed into place. A process killed while writing leaves that
temp file behind: the writer holds an exclusive `flock` on it until it is renamed, and the kernel
drops that lock when the process dies however it dies, so `sweep_temp_files` can tell an
abandoned temp file (lock free) from one a live writer, in this or another process, is still
filling (lock held).

A dangling symbolic link is listed with a version derived from the link itself (`lstat`), so it
can be recorded as unreadable and is tried again once the link changes. A folder below the root
that cannot be listed stops the listing with a `UserError`: its files would otherwise be missed
without a word.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ingest.errors import UserError
from ingest.storage.base import AccessDenied, BrokenLink, ObjectChanged, ObjectInfo

# Temp files start with '.' so DuckDB globs, Athena and Hive all ignore them.
TEMP_PREFIX = ".tmp-"
BROKEN_LINK_ETAG_PREFIX = "broken-link-"


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
        for dirpath, dirnames, filenames in os.walk(start, onerror=_unlistable_folder):
            dirnames.sort()
            for name in sorted(filenames):
                if name.startswith(TEMP_PREFIX):
                    continue
                info = self._listed(Path(dirpath) / name)
                if info is not None:
                    yield info

    def _listed(self, path: Path) -> ObjectInfo | None:
        """The entry as listed; None when it vanished since the folder was read."""
        try:
            return self._info(path)
        except FileNotFoundError:
            pass
        try:  # a dangling link: listed, so that reading it can say what is wrong
            link = path.lstat()
        except FileNotFoundError:
            return None  # deleted meanwhile, e.g. a record another run just removed
        key = path.relative_to(self._base).as_posix()
        return ObjectInfo(key=key, size=0, etag=f"{BROKEN_LINK_ETAG_PREFIX}{link.st_mtime_ns}")

    def _info(self, path: Path) -> ObjectInfo:
        st = path.stat()
        key = path.relative_to(self._base).as_posix()
        return ObjectInfo(key=key, size=st.st_size, etag=f"{st.st_size}-{st.st_mtime_ns}")

    def info(self, key: str) -> ObjectInfo | None:
        """Size and ETag of one file, or None when it does not exist."""
        path = self.path(key)
        return self._info(path) if path.is_file() else None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    @contextlib.contextmanager
    def open_read(self, key: str, etag: str | None = None) -> Iterator[BinaryIO]:
        """The file; with `etag`, only if it is still that version (else `ObjectChanged`)."""
        path = self.path(key)
        if path.is_symlink() and not path.exists():
            raise BrokenLink(
                f"{self.uri(key)} is a symbolic link to {os.readlink(path)}, which does not exist"
            )
        if etag is not None and not path.is_file():
            raise ObjectChanged(f"{self.uri(key)} no longer exists")
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the with block below
        except PermissionError as exc:
            raise AccessDenied(f"{self.uri(key)} cannot be read: permission denied") from exc
        with handle:
            if etag is not None:
                st = os.fstat(handle.fileno())
                if f"{st.st_size}-{st.st_mtime_ns}" != etag:
                    raise ObjectChanged(f"{self.uri(key)} changed since it was listed")
            yield handle

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.open_write(key) as handle:
            handle.write(data)

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        """Yield a file to write; it appears under `key` only if the block completes."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = _locked_temp_file(target.parent)
        # the lock lives as long as any duplicate of the descriptor: held until the rename
        # is done, even if the caller closes the handle first
        lock_fd = os.dup(fd)
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
        finally:
            os.close(lock_fd)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def delete_tree(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix), ignore_errors=True)

    def check_listable(self, option: str) -> None:
        """The root is a folder this process can list (a source)."""
        if not self._base.exists():
            raise UserError(
                f"{option} {self.root} does not exist; pass the folder holding the log files"
            )
        if not self._base.is_dir():
            raise UserError(
                f"{option} {self.root} is a file, not a folder; pass the folder that holds it "
                "(every *.csv, *.csv.gz and *.gz below the folder is read)"
            )
        if not os.access(self._base, os.R_OK | os.X_OK):
            raise UserError(f"{option} {self.root} cannot be listed: permission denied")

    def check_writable(self, option: str, probe_key: str) -> None:
        """The root is (or can become) a folder this process can write and delete in (a lake):
        a file is created and deleted beside `probe_key`."""
        if self._base.exists() and not self._base.is_dir():
            raise UserError(f"{option} {self.root} is a file, not a folder; pass a folder")
        folder = self.path(probe_key).parent
        try:  # create and delete a file where the ingest log goes (no fsync: nothing is kept)
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
            os.close(fd)
            os.unlink(name)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise UserError(
                f"{option} {self.root} cannot be written ({reason}); make it a folder this "
                "user can write, or pass another one"
            ) from exc

    def sweep_temp_files(self) -> int:
        """Delete temp files whose writer is dead (killed mid-write); returns how many."""
        removed = 0
        for dirpath, _dirnames, filenames in os.walk(self._base):
            for name in filenames:
                if name.startswith(TEMP_PREFIX) and _remove_if_abandoned(Path(dirpath) / name):
                    removed += 1
        return removed


def _unlistable_folder(error: OSError) -> None:
    if isinstance(error, FileNotFoundError):
        return  # removed while the tree was walked
    raise UserError(
        f"cannot list the folder {error.filename} ({error.strerror}); the files in it would be "
        "missed, so nothing was done: fix its permissions and run again"
    ) from error


def _locked_temp_file(directory: Path) -> tuple[int, str]:
    """A new temp file in `directory`, exclusively locked by this process until closed."""
    while True:
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
        fcntl.flock(fd, fcntl.LOCK_EX)
        # A sweeper may have taken the lock-free file between mkstemp and flock; it unlinks
        # while holding the lock, so once we hold it the name either is still ours or is gone.
        try:
            if os.stat(name).st_ino == os.fstat(fd).st_ino:
                return fd, name
        except FileNotFoundError:
            pass
        os.close(fd)


def _remove_if_abandoned(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live writer holds it
        try:
            if os.stat(path).st_ino != os.fstat(fd).st_ino:
                return False  # renamed into place and the name reused meanwhile
        except FileNotFoundError:
            return False  # its writer renamed it into place
        path.unlink()
        return True
    finally:
        os.close(fd)
