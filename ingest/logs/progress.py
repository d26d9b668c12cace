"""The ingest's progress bar on stderr (tqdm), drawn only when stderr is a terminal.

    with ProgressBar(total_bytes, total_files) as progress:
        ...  progress.advance(nbytes) ... log lines ... progress.file_done() ...

Inside the `with`, log lines for the terminal go through tqdm, which clears the bar, prints the
line and draws the bar again under it. Elsewhere (a pipe, a file, CloudWatch, Lambda) nothing is
drawn and tqdm is not even imported: on a terminal it costs about 3.5 MB of RSS (import, its
logging helper, drawing) in the ingest's own process, which runs close to its memory budget.

tqdm rather than rich: its logging redirect keeps the project's handler and formatter as they
are, it draws without a thread in the process that forks the workers, and it is one small
package (rich brings pygments and markdown-it, 13 MB, for the same RSS).
"""

from __future__ import annotations

import contextlib
import sys
from types import TracebackType
from typing import Any, TextIO

_REDRAW_SECONDS = 0.2
_FORMAT = (
    "{percentage:3.0f}%|{bar}| {n_fmt}B/{total_fmt}B compressed, {rate_fmt}, "
    "{remaining} left{postfix}"
)


class ProgressBar:
    """Compressed bytes read (with rate and time left) and files done."""

    def __init__(self, total_bytes: int, total_files: int, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self.enabled = self._stream.isatty() and total_files > 0
        self._total_files = total_files
        self._files = 0
        self._bar: Any = None
        self._logging = contextlib.ExitStack()
        if self.enabled:
            self._bar = _new_bar(self._stream, total_bytes, self._files_done())

    def __enter__(self) -> ProgressBar:
        if self._bar is not None:
            from tqdm.contrib.logging import logging_redirect_tqdm

            # the root logger's terminal handler writes through tqdm while the bar is up
            self._logging.enter_context(logging_redirect_tqdm(tqdm_class=type(self._bar)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def advance(self, nbytes: int) -> None:
        if self._bar is not None:
            self._bar.update(nbytes)

    def file_done(self) -> None:
        self._files += 1
        if self._bar is not None:
            self._show_files()

    def close(self) -> None:
        """Erase the bar (the run's summary follows) and give logging its handlers back."""
        if self._bar is not None:
            self._bar.close()
        self._logging.close()

    def _show_files(self) -> None:
        self._bar.set_postfix_str(self._files_done(), refresh=True)

    def _files_done(self) -> str:
        return f"{self._files}/{self._total_files} files"


def _new_bar(stream: TextIO, total_bytes: int, postfix: str) -> Any:
    from tqdm import tqdm

    class Bar(tqdm):  # type: ignore[misc]
        # tqdm's monitor thread only tunes bars that are updated too rarely; a thread in the
        # process that forks the worker pool is a risk for nothing
        monitor_interval = 0

    return Bar(
        total=total_bytes,
        file=stream,
        unit="B",
        unit_scale=True,
        unit_divisor=1000,
        mininterval=_REDRAW_SECONDS,
        dynamic_ncols=True,
        leave=False,
        bar_format=_FORMAT,
        postfix=postfix,
    )
