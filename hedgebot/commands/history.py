"""`hedgebot history`: the journal's trail for one hedge, oldest first, with the intents still open.

Owns how the journal's events read to a person, secrets redacted. It may NOT write to the journal.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from hedgebot.clock import RealClock
from hedgebot.commands.args import EXIT_NOTHING, EXIT_OK, fail, hedge_account, positive_int, precision_of, with_config
from hedgebot.config import ConfigError, load_config
from hedgebot.ops.figures import iso_utc, render_detail
from hedgebot.ops.report import untold_outcomes
from hedgebot.redact import redact, redact_value
from hedgebot.store.factory import open_journal
from hedgebot.store.journal import JournalUnavailable


def cmd_history(args: argparse.Namespace) -> int:
    """Print the journal's trail for one hedge."""
    settings = load_config(args.config)
    try:
        account = hedge_account(settings, args.hedge, args.account)
    except ValueError as exc:
        return fail(str(exc))
    journal_path = settings.journal.path
    if settings.journal.url is None and not journal_path.exists():
        return fail(f"no journal at {journal_path}: the daemon has not run with this config yet", EXIT_NOTHING)
    try:
        journal = open_journal(settings.journal, RealClock())  # PostgreSQL when [journal] url is set
    except (JournalUnavailable, ConfigError) as exc:
        return fail(str(exc))
    try:
        events = journal.events(account=account, hedge=args.hedge)
        events = sorted(events + untold_outcomes(journal, account, args.hedge), key=lambda e: e.at)
        if args.limit is not None:
            events = events[-args.limit :]
        open_intents = journal.open_intents(account=account, hedge=args.hedge)
    finally:
        journal.close()
    shown = precision_of(settings, account, args.hedge)
    if args.json:
        print(json.dumps([{"at": iso_utc(e.at), "account": e.account, "kind": e.kind, "severity": e.severity, **redact_value(e.detail)} for e in events], indent=2))
        return EXIT_OK
    for e in events:
        when = datetime.fromtimestamp(e.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        detail = redact(" ".join(f"{k}={v}" for k, v in render_detail(e.detail, shown).items() if v not in (None, "")))
        print(f"{when}  {e.severity:<8} {e.account}/{e.hedge}  {e.kind:<22} {detail}")
    for intent in open_intents:
        print(redact(f"open intent {intent.client_id} ({intent.kind}, {intent.status.value}): {intent.detail}"))
    if not events:
        print(f"no events for hedge {args.hedge!r} yet")
    return EXIT_OK


def register(sub: Any) -> None:
    """Add `history` to the `hedgebot` parser."""
    history = with_config(sub.add_parser("history", help="show a hedge's journal"))
    history.add_argument("--hedge", required=True, help="hedge name")
    history.add_argument("--account", help="the account of the hedge (needed when two accounts have a hedge of that name)")
    history.add_argument("--limit", type=positive_int, default=None, help="only the last N events (N >= 1)")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(func=cmd_history)
