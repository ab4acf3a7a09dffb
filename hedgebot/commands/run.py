"""`hedgebot run`: run the daemon until SIGINT or SIGTERM, re-reading the config on SIGHUP.

Owns the daemon's start from the command line: the same preflight as `check`, the signals, and the exit
code each way the start can end. It may NOT decide anything the daemon decides (hedgebot.engine.daemon).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

from hedgebot.access import denied, obstacle
from hedgebot.clock import RealClock
from hedgebot.commands.args import EXIT_OK, fail, with_config
from hedgebot.commands.check import refuse
from hedgebot.commands.preflight import preflight
from hedgebot.config import Settings, load_config
from hedgebot.engine.keeper import StartupDeferred, StartupRefused, StartupStopped
from hedgebot.ops.logging import configure_logging

EXIT_TRY_AGAIN = 75  # EX_TEMPFAIL: something the start needs does not answer yet; the unit restarts the daemon


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGINT or SIGTERM; bad input exits 2 with the messages `check` gives."""
    settings = load_config(args.config)
    problems = preflight(settings)
    if problems:
        return refuse(args.config, problems)
    configure_logging(settings.daemon.log_format, settings.daemon.log_level)
    return asyncio.run(_run(settings, args.live, args.config, standby=args.standby))


async def _run(settings: Settings, live: bool, config_path: Path, *, standby: bool = False) -> int:
    from hedgebot.engine.daemon import Daemon

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    daemon = Daemon(settings, RealClock(), allow_live=live, serve_http=True, standby=standby)
    loop.add_signal_handler(signal.SIGHUP, daemon.reload_file, config_path)
    try:
        await daemon.run(stop)
    except StartupStopped as exc:
        print(f"hedgebot: {exc}", file=sys.stderr)
        return EXIT_OK
    except StartupDeferred as exc:
        return fail(f"not started yet: {exc}", EXIT_TRY_AGAIN)
    except StartupRefused as exc:
        return fail(f"refused to start: {exc}")
    except PermissionError as exc:
        return fail(denied(obstacle(exc.filename or config_path)))
    except (OSError, sqlite3.Error) as exc:
        return fail(f"refused to start: {exc}")
    return EXIT_OK


def register(sub: Any) -> None:
    """Add `run` to the `hedgebot` parser."""
    run = with_config(sub.add_parser("run", help="run the daemon"))
    run.add_argument("--live", action="store_true", help="allow accounts in live mode to trade real money")
    run.add_argument(
        "--standby", action="store_true",
        help="([journal] url only) lead no account at start: wait for each account's lease to expire, take it with "
        "the next epoch, reconcile, then trade",
    )
    run.set_defaults(func=cmd_run)
