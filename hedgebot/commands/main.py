"""The `hedgebot` command line: the parser of every command, and the exit codes of what no command catches.

Owns the order the commands are listed in and what an error that reaches the top becomes (a line, never a
traceback). Each command lives in its own module beside this one and adds itself with `register(sub)`; to add
a command, write its module and register it here. It may NOT hold a command's own work.

Exit codes: 0 success, 1 nothing to show, 2 bad input or a refused start (75: `run` should be tried again).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from hedgebot.access import denied, obstacle
from hedgebot.commands import alert_test, check, compare, control, history, journal, plan_put, report, run, status
from hedgebot.commands.args import EXIT_OK, fail
from hedgebot.commands.backtest import command as backtest
from hedgebot.config import ConfigError


def _version() -> str:
    try:
        return version("hedgebot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser."""
    parser = argparse.ArgumentParser(prog="hedgebot", description="Keep crypto holdings hedged with a perp short.")
    parser.add_argument("--version", action="version", version=f"hedgebot {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (check, run, status, history, report, alert_test, backtest, journal, control, plan_put, compare):
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        return fail(f"invalid config {args.config}:\n{exc}")
    except PermissionError as exc:
        # A state dir, journal, status file or config owned by the service user, read by someone else.
        return fail(denied(obstacle(exc.filename or getattr(args, "config", "."))))
    except sqlite3.DatabaseError as exc:
        return fail(f"cannot read the journal named in {getattr(args, 'config', 'the config')}: {exc}")
    except BrokenPipeError:
        # The reader went away (`hedgebot history ... | head -1`): that is not an error.
        # Point stdout at /dev/null so the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
