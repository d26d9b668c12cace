"""A one-line progress bar on stderr, drawn only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

_REDRAW_SECONDS = 0.2
_BAR_WIDTH = 30


class ProgressBar:
    def __init__(self, total_bytes: int, total_files: int, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self.enabled = self._stream.isatty()
        self._total_bytes = max(total_bytes, 1)
        self._total_files = total_files
        self._bytes = 0
        self._files = 0
        self._started = time.monotonic()
        self._drawn_at = 0.0

    def advance(self, nbytes: int) -> None:
        self._bytes += nbytes
        self._draw()

    def file_done(self) -> None:
        self._files += 1
        self._draw(force=True)

    def clear(self) -> None:
        """Erase the bar so a log line can be printed on a clean line."""
        if self.enabled:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()

    def close(self) -> None:
        self.clear()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < _REDRAW_SECONDS:
            return
        self._drawn_at = now
        share = min(self._bytes / self._total_bytes, 1.0)
        filled = int(share * _BAR_WIDTH)
        rate = self._bytes / 1e6 / max(now - self._started, 1e-6)
        self._stream.write(
            f"\r\x1b[2K[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {share:4.0%} "
            f"{self._files}/{self._total_files} files  {rate:.1f} MB/s (compressed)"
        )
        self._stream.flush()
