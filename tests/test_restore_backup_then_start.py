"""A journal restored from a backup (README: copy it in place, `hedgebot journal recover`, start) lets a live account
start after the daemon traded past the backup: orders under the journal's own earlier prefix are its lost orders, told
by a critical journal_lost_orders, not another daemon's; a prefix it never had is still refused."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from hedgebot.clock import SimClock
from hedgebot.config import Settings
from hedgebot.domain.model import Wallet
from hedgebot.engine.daemon import Daemon
from hedgebot.engine.keeper import StartupRefused
from hedgebot.exchange.factory import build_paper_venue
from hedgebot.store import integrity
from tests.helpers import SYMBOL, paper_settings_dict


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HB_OWNER_KEY", "the-api-key-of-one-account")
    monkeypatch.setenv("HB_OWNER_SECRET", "s3cret")


def live_settings(tmp_path: Path) -> Settings:
    data = paper_settings_dict(tmp_path)
    data["accounts"][0].update(mode="live", credentials={"api_key": {"env": "HB_OWNER_KEY"}, "secret": {"env": "HB_OWNER_SECRET"}})
    data["accounts"][0]["paper"]["markets"][0]["feed"]["volatility"] = 0.0
    data["http"] = {"enabled": False}
    return Settings(**data)


async def test_a_journal_restored_from_a_backup_as_readme_says_lets_the_daemon_start_and_reconcile(tmp_path: Path) -> None:
    settings = live_settings(tmp_path)
    clock = SimClock()
    venue = build_paper_venue(settings.accounts[0], settings.accounts[0].paper, clock, None)  # the one exchange account
    venue.update_price(SYMBOL, clock.now(), Decimal("50000"))
    journal = settings.journal.path
    daemon = Daemon(settings, clock, allow_live=True, venue_factory=lambda _a: venue)
    await daemon.start()
    try:
        await clock.advance(5)
        assert (await venue.fetch_legs(SYMBOL)).short.size == Decimal("2")
        integrity.backup(journal, tmp_path / "nightly.sqlite")  # `hedgebot journal backup` from a daily timer
        venue.deposit(Wallet.SPOT, "BTC", Decimal("0.5"))  # later that day the hedge grows
        await clock.advance(5)
        assert (await venue.fetch_legs(SYMBOL)).short.size == Decimal("2.5")
    finally:
        await daemon.stop()
    # The journal is lost; README: "copy it in place of the journal and run `hedgebot journal recover` before starting".
    shutil.copy(tmp_path / "nightly.sqlite", journal)
    integrity.recover(journal, clock)
    again = Daemon(live_settings(tmp_path), clock, allow_live=True, venue_factory=lambda _a: venue)
    try:
        await again.start()
    except StartupRefused as exc:
        pytest.fail(f"the restored journal's daemon refused to start: {exc}")
    try:
        assert again.journal is not None
        [lost] = again.journal.events(kind="journal_lost_orders")
        assert lost.severity == "critical" and lost.detail["client_ids"] and "restored from a backup" in lost.detail["message"]
        await clock.advance(5)
        assert (await venue.fetch_legs(SYMBOL)).short.size == Decimal("2.5")  # hedging 2.5 BTC held, nothing doubled
    finally:
        await again.stop()
