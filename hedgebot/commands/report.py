"""`hedgebot report`: each hedge's funding, fees, margin, orders, time outside the band and PnL over a period.

Owns the command's arguments and where the figures go (a table, JSON, or the ledger as CSV); the figures
themselves are built from the journal by hedgebot.ops.report. It may NOT write to the journal.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hedgebot.clock import RealClock
from hedgebot.commands.args import EXIT_NOTHING, EXIT_OK, fail, parse_date, precision_of, with_config
from hedgebot.config import ConfigError, load_config
from hedgebot.ops.report import Period, build_reports, ledger, render_csv, render_table
from hedgebot.store.factory import open_journal
from hedgebot.store.journal import JournalUnavailable


def cmd_report(args: argparse.Namespace) -> int:
    """Print each hedge's funding, fees, margin, orders, time outside the band and PnL over a period."""
    settings = load_config(args.config)
    try:
        period = Period(
            parse_date(args.since, "--since") if args.since else None,
            parse_date(args.until, "--until") if args.until else None,
        )
    except ValueError as exc:
        return fail(str(exc))
    if period.since is not None and period.until is not None and period.until <= period.since:
        return fail(f"--until {args.until} is not after --since {args.since}")
    accounts = [a for a in settings.accounts if args.account in (None, a.name)]
    if not accounts:
        names = ", ".join(a.name for a in settings.accounts)
        return fail(f"--account {args.account!r} is not in {args.config} (accounts: {names})")
    journal_path = settings.journal.path
    if settings.journal.url is None and not journal_path.exists():
        return fail(f"no journal at {journal_path}: the daemon has not run with this config yet", EXIT_NOTHING)
    hedges = [(a.name, h.name, h.symbol) for a in accounts for h in a.hedges]
    clock = RealClock()
    try:
        journal = open_journal(settings.journal, clock)  # PostgreSQL when [journal] url is set
    except (JournalUnavailable, ConfigError) as exc:
        return fail(str(exc))
    try:
        if args.csv:
            print(render_csv(ledger(journal, [(a, h) for a, h, _ in hedges], period)), end="")
            return EXIT_OK
        reports = build_reports(journal, hedges, period, clock.now(), lambda a, h: precision_of(settings, a, h))
    finally:
        journal.close()
    if args.json:
        print(json.dumps({"since": period.since, "until": period.until, "hedges": [r.to_json() for r in reports]}, indent=2))
    else:
        print(render_table(reports, period))
    return EXIT_OK


def register(sub: Any) -> None:
    """Add `report` to the `hedgebot` parser."""
    report = with_config(sub.add_parser("report", help="funding, fees, margin, orders and PnL per hedge over a period"))
    report.add_argument("--since", help="start of the period: a date (2026-11-01) or date and time, UTC by default")
    report.add_argument("--until", help="end of the period (not included)")
    report.add_argument("--account", help="only this account's hedges")
    output = report.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON")
    output.add_argument("--csv", action="store_true", help="print every fill, funding payment, transfer and margin change as CSV")
    report.set_defaults(func=cmd_report)
