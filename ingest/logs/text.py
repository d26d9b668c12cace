"""The decompressed bytes of one log file, checked on the way in.

Every byte the reader sees passes through `TextStream.read`, which is where a file that cannot
be text CSV is recognised early, before any block is cut or parsed:

- gzip: only the decompressor's verdicts on the data quarantine the file (`UnreadableFile`); a
  broken source read (`S3ReadError`, a disk error) propagates, so the file is retried. A valid
  gzip stream followed by other bytes (trailing garbage) says so, instead of advising a gzip
  re-delivery;
- NUL bytes: a CSV text file never holds one, so the first NUL quarantines the file (binary
  data, a UTF-16/UTF-32 export, a damaged file with a run of zeros) at once, however large the
  file is (`bytes.find` is a memchr: no measurable cost);
- line endings: a file whose first line ends in a lone CR (old Mac exports) is read with every
  CR turned into LF, so such a file is read like any other and its line numbers count CRs.
  LF and CRLF files pass unchanged (a CR inside a CRLF file's quoted value stays a CR).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

try:  # ISA-L inflates ~3x faster than zlib; the standard gzip module is the fallback
    from isal.isal_zlib import _GzipReader
    from isal.isal_zlib import error as _IsalError
except ImportError:  # pragma: no cover - depends on the environment
    _GzipReader = None
    _IsalError = zlib.error

GZIP_MAGIC = b"\x1f\x8b"
_NUL = b"\x00"
_CR, _LF = b"\r", b"\n"
_CR_TO_LF = bytes.maketrans(_CR, _LF)
_GZIP_READ_BUFFER = 128 * 1024  # compressed bytes the reader takes from the source at a time
_FIRST_READ_BYTES = 64 * 1024  # enough of the start to see how the first line ends
_NOT_GZIP_ADVICE = "re-deliver it gzip-compressed, or name it *.csv if it is plain text"


class UnreadableFile(Exception):
    """The file as a whole cannot be read; it is quarantined. The message says what to do."""


def open_gzip(raw: BinaryIO) -> BinaryIO:
    """A decompressing reader: ISA-L's when the `isal` package is installed, else zlib's.

    A stream that does not start like gzip is refused here, as `gzip.BadGzipFile`: ISA-L
    reports a short non-gzip stream as truncated, which would send the user the wrong way.
    """
    magic = raw.read(len(GZIP_MAGIC))
    if magic and magic != GZIP_MAGIC:
        raise gzip.BadGzipFile(f"it starts with {magic!r}, not the gzip magic bytes 1f 8b")
    stream = _Prefixed(magic, raw)
    if _GzipReader is not None:
        # ISA-L's reader itself (what `isal.igzip.IGzipFile` wraps): its `readinto` inflates
        # straight into the caller's buffer with the GIL released, where a GzipFile's makes a
        # new `bytes` per call and copies it
        return io.BufferedReader(_GzipReader(stream, _GZIP_READ_BUFFER))
    return gzip.GzipFile(fileobj=stream, mode="rb")


class _Prefixed(io.RawIOBase):
    """A read-only stream: `prefix`, then the rest of `raw`."""

    def __init__(self, prefix: bytes, raw: BinaryIO) -> None:
        super().__init__()
        self._prefix = prefix
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        if self._prefix:
            head, self._prefix = self._prefix[:size], self._prefix[size:]
            buffer[: len(head)] = head
            return len(head)
        data = self._raw.read(size)
        buffer[: len(data)] = data
        return len(data)


class TextStream:
    """The file's bytes after decompression, NUL check and line-ending translation."""

    def __init__(self, raw: BinaryIO, name: str) -> None:
        self._name = name
        self.compressed = name.lower().endswith(".gz")
        self.uncompressed_bytes = 0
        self.cr_line_ends: bool | None = None  # decided by the first bytes read
        self._stream = self._open(raw)
        self._held = b""  # read ahead by the first read, handed out by the next ones

    def _open(self, raw: BinaryIO) -> BinaryIO:
        if not self.compressed:
            return raw
        try:
            return open_gzip(raw)
        except gzip.BadGzipFile as exc:
            raise UnreadableFile(f"not a valid gzip file ({exc}); {_NOT_GZIP_ADVICE}") from exc

    def read(self, size: int) -> bytes:
        """Up to `size` bytes; b"" at the end of the file."""
        if self._held:
            chunk, self._held = self._held[:size], self._held[size:]
            return chunk
        first = self.cr_line_ends is None
        chunk = self._decompressed(max(size, _FIRST_READ_BYTES) if first else size)
        if not chunk:
            return chunk
        if not self.uncompressed_bytes and not self.compressed and chunk.startswith(GZIP_MAGIC):
            raise UnreadableFile(
                f"the file is gzip-compressed but not named *.gz; rename it {self._name}.gz"
            )
        self._check_nul(chunk.find(_NUL))
        self.uncompressed_bytes += len(chunk)
        if self.cr_line_ends is None:
            self.cr_line_ends = _ends_lines_with_cr(chunk)
        if self.cr_line_ends:
            chunk = chunk.translate(_CR_TO_LF)
        if first and len(chunk) > size:
            chunk, self._held = chunk[:size], chunk[size:]
        return chunk

    def readinto(self, buffer: bytearray, start: int, end: int) -> int:
        """Fill `buffer[start:end]` with up to `end - start` bytes; 0 at the end of the file.

        The reader's blocks are decompressed straight into buffers it reuses: a new 8 MB
        `bytes` per read would be mmapped and page-faulted afresh every time.
        """
        if self._held or self.cr_line_ends is None:  # the start of the file: `read` decides
            chunk = self.read(end - start)
            buffer[start : start + len(chunk)] = chunk
            return len(chunk)
        with memoryview(buffer) as whole, whole[start:end] as target:
            count = self._decompressed_into(target)
        if not count:
            return 0
        nul = buffer.find(_NUL, start, start + count)
        self._check_nul(nul - start if nul >= 0 else -1)
        self.uncompressed_bytes += count
        if self.cr_line_ends:
            buffer[start : start + count] = buffer[start : start + count].translate(_CR_TO_LF)
        return count

    def _check_nul(self, offset: int) -> None:
        """`offset`: of the first NUL in the chunk read now, or -1."""
        if offset >= 0:
            at = self.uncompressed_bytes + offset
            raise UnreadableFile(
                f"it holds NUL bytes (0x00), the first at byte {at:,} "
                "of its text: it is not a text CSV file (binary data, a UTF-16 or UTF-32 export, "
                "or a damaged file); re-export it as UTF-8 CSV or ask for a re-delivery"
            )

    def _decompressed(self, size: int) -> bytes:
        with self._decompressor_verdicts():
            return self._stream.read(size)

    def _decompressed_into(self, target: memoryview) -> int:
        with self._decompressor_verdicts():
            readinto = getattr(self._stream, "readinto", None)
            if readinto is not None:
                return int(readinto(target))
            data = self._stream.read(len(target))
            target[: len(data)] = data
            return len(data)

    @contextlib.contextmanager
    def _decompressor_verdicts(self) -> Iterator[None]:
        try:
            yield
        except EOFError as exc:
            raise UnreadableFile(
                "the gzip stream ends early (truncated file, e.g. an incomplete upload); ask "
                "for a complete re-delivery — a new version is picked up by the next run"
            ) from exc
        except (gzip.BadGzipFile, zlib.error, _IsalError) as exc:
            # Only the decompressor's verdicts on the data: any other OSError (a broken source
            # read such as `S3ReadError`, a disk error) propagates, so the file is `failed` and
            # retried by the next run instead of being quarantined for good.
            if not self.compressed:
                raise
            raise UnreadableFile(self._gzip_problem(exc)) from exc

    def _gzip_problem(self, exc: Exception) -> str:
        # The first member's magic bytes were checked by `open_gzip`: a later "Not a gzipped
        # file" is about the bytes after a complete member (trailing garbage).
        if isinstance(exc, gzip.BadGzipFile) and "Not a gzipped file" in str(exc):
            return (
                "the file holds complete gzip data followed by bytes that are not gzip "
                f"(trailing garbage: {exc}), e.g. something appended to a finished upload; "
                "nothing of it was ingested: ask for a clean re-delivery, or strip the extra "
                "bytes (gzip -dc decompresses up to them) and deliver the result"
            )
        if not self.uncompressed_bytes:
            return f"not a valid gzip file ({exc}); {_NOT_GZIP_ADVICE}"
        return (
            f"the gzip data is damaged after {self.uncompressed_bytes:,} bytes of text ({exc}); "
            "nothing of it was ingested: ask for a re-delivery"
        )


def _ends_lines_with_cr(first: bytes) -> bool:
    """Whether the first line ends in a lone CR, not LF or CRLF."""
    cr = first.find(_CR)
    if cr < 0:
        return False
    lf = first.find(_LF, 0, cr + 2)
    return lf < 0 or lf > cr + 1
