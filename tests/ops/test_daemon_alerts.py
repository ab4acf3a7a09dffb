"""The daemon's alerts end to end: the start-up summary, liquidation warnings, and a
receiver that hangs while the keepers carry on."""

from __future__ import annotations

import asyncio

from hedgebot.clock import SimClock
from hedgebot.domain.model import Wallet
from hedgebot.engine.daemon import Daemon
from hedgebot.ops.watch import LIQUIDATION_LOW
from tests.helpers import D, SYMBOL
from tests.ops.support import Receiver, eventually, paper_settings


def webhook(url: str) -> dict:
    return {"alerts": {"senders": [{"kind": "webhook", "name": "ops", "url": {"value": f"{url}/hook"}, "min_severity": "warning"}]}}


async def test_a_hanging_receiver_never_holds_up_the_keepers_and_gets_the_summary_later(tmp_path) -> None:
    receiver = Receiver(release=asyncio.Event())
    url = await receiver.start()
    clock = SimClock()
    daemon = Daemon(paper_settings(tmp_path, webhook(url)), clock)
    await daemon.start()
    try:
        await clock.advance(3)
        await eventually(lambda: receiver.arrivals >= 1)  # the summary is stuck in the receiver
        venue = daemon.accounts[0].venue
        venue.deposit(Wallet.SPOT, "BTC", D("0.5"))
        daemon.keepers[0].notify_balance()
        await clock.advance(2)
        assert (await venue.fetch_legs(SYMBOL)).short.size == D("2.5")
        assert daemon.ops.healthy()
        receiver.release.set()
        await clock.advance(30)
        await eventually(lambda: daemon.alerts.outboxes[0].sent == 1)
        # A delivery that timed out in simulated time while the receiver hung is
        # sent again, so the receiver may have it twice: what matters is that it arrived.
        summary = receiver.received[0]
        assert {b["kind"] for b in receiver.received} == {"startup_summary"} and summary["severity"] == "info"
        assert "paper/btc-core hedged: exposure 2.000, short 2.000, target 2.000, liquidation distance" in summary["text"]
    finally:
        await clock.run(daemon.stop())
        await receiver.close()


async def test_a_distance_below_the_warning_level_is_warned_once_and_always_in_the_summary(tmp_path) -> None:
    receiver = Receiver()
    url = await receiver.start()
    clock = SimClock()
    daemon = Daemon(paper_settings(tmp_path, webhook(url), liquidation_warning="0.9"), clock)
    await daemon.start()
    try:
        await clock.advance(20)
        await eventually(lambda: daemon.alerts.outboxes[0].sent == 2)
        kinds = list(dict.fromkeys((b["kind"], b["code"], b["severity"]) for b in receiver.received))
        assert kinds == [("alert", LIQUIDATION_LOW, "warning"), ("startup_summary", None, "warning")]
        assert "below the warning level 90.00%" in receiver.received[-1]["text"]
        raised = [e for e in daemon.journal.events(kind="alert") if e.detail["code"] == LIQUIDATION_LOW]
        assert len(raised) == 1  # not one per tick
    finally:
        await clock.run(daemon.stop())
        await receiver.close()
