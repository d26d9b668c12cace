"""The `b2p` command line: one subcommand per module, wired here and nowhere else.

Each subcommand module exposes `add_arguments(parser)` and `run(args) -> int`; the exit status
convention (`ingest.errors`) is 0 = all good, 2 = finished but some input was quarantined,
1 = could not run.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from ingest.errors import EXIT_FAILED, EXIT_OK, UserError
from ingest.structured_logging import configure_logging

# subcommand name -> (module, one-line help). Only the invoked subcommand's module is imported:
# an ingest worker does not pay for DuckDB or boto3 it never uses (~15 MB of RSS), and
# `b2p --help` stays fast.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "sample": ("ingest.sample.command", "generate synthetic FreeWheel v4 logs with ground truth"),
    "inspect": ("ingest.inspect.command", "show how a delivery's files map onto the log contract"),
    "ingest": ("ingest.logs.command", "copy v4 log files into the partitioned Parquet lake"),
    "dimensions": ("ingest.names.command", "fetch site/site section/series names from the API"),
    "report": ("ingest.report", "print the capacity summary from the local warehouse"),
    "backfill": ("ingest.backfill", "build history on Athena in bounded chunks of days"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported (and so only its arguments known)."""
    parser = argparse.ArgumentParser(
        prog="b2p", description="bones2peaches: FreeWheel v4 logs to ad capacity marts."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(sub_parser)
            sub_parser.set_defaults(_module=module)
    return parser


def requested_command(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line, if any (options before it are global flags)."""
    return next((arg for arg in argv if arg in SUBCOMMANDS), None)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(requested_command(arguments))
    args = parser.parse_args(arguments)
    configure_logging(verbose=args.verbose)
    log = logging.getLogger("b2p")
    try:
        return int(args._module.run(args))
    except KeyboardInterrupt:
        log.error("interrupted")
        return EXIT_FAILED
    except BrokenPipeError:
        # the reader went away (`b2p report | head`): not an error; keep Python from
        # complaining again when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except UserError as exc:
        # a problem the user can fix: the message says what to do, a traceback would only distract
        log.error("%s", exc)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
