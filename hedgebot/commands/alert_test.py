"""`hedgebot alert-test`: one test message through every configured alert sender, saying which arrived.

Owns the test message and the lines saying each sender's outcome. It may NOT change a sender's config.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from hedgebot.clock import RealClock
from hedgebot.commands.args import EXIT_NOTHING, EXIT_OK, fail, with_config
from hedgebot.config import Settings, load_config
from hedgebot.domain.model import Severity


def cmd_alert_test(args: argparse.Namespace) -> int:
    """Send one test message through every configured alert sender and say which arrived."""
    settings = load_config(args.config)
    return asyncio.run(_alert_test(settings))


async def _alert_test(settings: Settings) -> int:
    from hedgebot.ops.senders import AlertMessage, build_dispatcher

    clock = RealClock()
    dispatcher = build_dispatcher(settings, clock)
    for problem in dispatcher.misconfigured:
        print(f"sender {problem}")
    if not dispatcher.outboxes and not dispatcher.misconfigured:
        return fail("no alert senders are configured ([[alerts.senders]] or [[accounts.alerts]])", EXIT_NOTHING)
    failed = len(dispatcher.misconfigured)
    for box in dispatcher.outboxes:
        scope = f"account {box.account}" if box.account else "all accounts"
        message = AlertMessage(
            "alert_test", Severity.INFO, box.account or "", "",
            f"hedgebot alert test through sender {box.sender.name!r} ({scope}): if you read this, alerts reach you.",
            clock.now(),
        )
        reason = await dispatcher.send_now(box.sender, message)
        if reason is None:
            print(f"sender {box.sender.name} ({scope}): delivered")
        else:
            failed += 1
            print(f"sender {box.sender.name} ({scope}): NOT delivered: {reason}")
    return EXIT_OK if failed == 0 else EXIT_NOTHING


def register(sub: Any) -> None:
    """Add `alert-test` to the `hedgebot` parser."""
    with_config(sub.add_parser("alert-test", help="send a test message through every alert sender")).set_defaults(func=cmd_alert_test)
