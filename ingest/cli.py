"""The `b2p` command line: one subcommand per module, wired here and nowhere else.

Each subcommand module exposes `add_arguments(parser)` and `run(args) -> int`; the exit status
convention is 0 = all good, 2 = finished but some input was quarantined, 1 = could not run.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ingest.errors import UserError
from ingest.logs import configure_logging

# subcommand name -> (module, one-line help). Modules are imported lazily so `b2p --help`
# stays fast and a missing optional dependency only breaks the command that needs it.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "sample": ("ingest.sample", "generate synthetic FreeWheel v4 logs with ground truth"),
    "ingest": ("ingest.pipeline", "copy v4 log files into the partitioned Parquet lake"),
    "dimensions": ("ingest.dimensions", "fetch site/site section/series names from the API"),
    "report": ("ingest.report", "print the capacity summary from the local warehouse"),
}

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_QUARANTINED = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="b2p", description="bones2peaches: FreeWheel v4 logs to ad capacity marts."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(verbose=args.verbose)
    log = logging.getLogger("b2p")
    try:
        return int(args._module.run(args))
    except KeyboardInterrupt:
        log.error("interrupted")
        return EXIT_FAILED
    except UserError as exc:
        # a problem the user can fix: the message says what to do, a traceback would only distract
        log.error("%s", exc)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
