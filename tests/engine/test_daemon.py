"""The daemon: start-up checks, locks, recovery, and a stop that leaves positions alone."""

from __future__ import annotations

import json

import pytest

from hedgebot.clock import SimClock
from hedgebot.config import Settings
from hedgebot.domain.model import OrderSide, PositionMode, PositionSide, Wallet
from hedgebot.engine.daemon import Daemon
from hedgebot.engine.keeper import StartupRefused
from hedgebot.engine.ownership import AccountLocked
from hedgebot.exchange.port import OrderRequest
from tests.helpers import D, SYMBOL, paper_settings_dict


def settings(tmp_path, **hedge) -> Settings:
    return Settings(**paper_settings_dict(tmp_path, **hedge))


async def test_daemon_opens_the_hedge_then_rebalances_after_a_spot_change(tmp_path) -> None:
    clock = SimClock()
    daemon = Daemon(settings(tmp_path), clock)
    await daemon.start()
    try:
        await clock.advance(3)
        venue = daemon.accounts[0].venue
        assert (await venue.fetch_legs(SYMBOL)).short.size == D("2")
        venue.deposit(Wallet.SPOT, "BTC", D("0.5"))
        daemon.keepers[0].notify_balance()
        await clock.advance(1)
        assert (await venue.fetch_legs(SYMBOL)).short.size == D("2.5")
    finally:
        await daemon.stop()


async def test_stopping_leaves_positions_unchanged_and_saves_the_paper_account(tmp_path) -> None:
    clock = SimClock()
    daemon = Daemon(settings(tmp_path), clock)
    await daemon.start()
    await clock.advance(5)
    venue = daemon.accounts[0].venue
    legs = await venue.fetch_legs(SYMBOL)
    orders = len(venue.orders)
    await daemon.stop()
    assert await venue.fetch_legs(SYMBOL) == legs and legs.short.size > 0
    assert len(venue.orders) == orders
    saved = json.loads((tmp_path / "state" / "paper-paper.json").read_text())
    assert D(saved["legs"][f"{SYMBOL}|short"][0]) == legs.short.size
    status = json.loads((tmp_path / "state" / "status.json").read_text())
    assert status["hedges"][0]["state"] == "stopped"


async def test_a_restarted_daemon_resumes_the_paper_account_without_trading_again(tmp_path) -> None:
    clock = SimClock()
    first = Daemon(settings(tmp_path), clock)
    await first.start()
    await clock.advance(5)
    await first.stop()
    orders = len(first.accounts[0].venue.orders)
    second = Daemon(settings(tmp_path), clock)
    await second.start()
    await clock.advance(5)
    venue = second.accounts[0].venue
    assert (await venue.fetch_legs(SYMBOL)).short.size == D("2") and len(venue.orders) == orders
    await second.stop()




async def test_one_way_mode_with_an_open_position_is_refused_with_a_clear_message(tmp_path) -> None:
    clock = SimClock()
    s = settings(tmp_path)
    from hedgebot.exchange.paper import PaperMarket, PaperVenue
    from tests.helpers import btc_market

    venue = PaperVenue(clock, [PaperMarket(btc_market())], futures={"USDT": D("100000")}, position_mode=PositionMode.ONE_WAY)
    venue.update_price(SYMBOL, clock.now(), D("50000"))
    await venue.place_order(OrderRequest("manual", SYMBOL, OrderSide.SELL, D("0.5"), None))
    daemon = Daemon(s, clock, venue_factory=lambda account: venue)
    with pytest.raises(StartupRefused, match="oneway position mode .* hedge mode"):
        await daemon.start()
    assert daemon.keepers == [] and venue.position_mode is PositionMode.ONE_WAY
    # Nothing was started and the lock was let go: a corrected daemon may start.
    venue.legs.clear()
    again = Daemon(s, clock, venue_factory=lambda account: venue)
    await again.start()
    assert venue.position_mode is PositionMode.HEDGE
    await again.stop()


async def test_a_live_account_needs_the_live_flag(tmp_path) -> None:
    data = paper_settings_dict(tmp_path)
    data["accounts"][0].update(mode="live", credentials={"api_key": {"env": "K"}, "secret": {"env": "S"}})
    daemon = Daemon(Settings(**data), SimClock())
    with pytest.raises(StartupRefused, match="--live"):
        await daemon.start()
    assert not (tmp_path / "state" / "journal.sqlite").exists()


async def test_a_second_daemon_on_the_same_account_is_refused(tmp_path) -> None:
    clock = SimClock()
    first = Daemon(settings(tmp_path), clock)
    await first.start()
    try:
        with pytest.raises(AccountLocked, match="already run by a daemon"):
            await Daemon(settings(tmp_path), clock).start()
    finally:
        await first.stop()
    second = Daemon(settings(tmp_path), clock)  # the lock is free again
    await second.start()
    await second.stop()


async def test_a_position_change_hedgebot_did_not_make_is_reported_at_start(tmp_path) -> None:
    clock = SimClock()
    first = Daemon(settings(tmp_path), clock)
    await first.start()
    await clock.advance(5)
    await first.stop()
    venue = first.accounts[0].venue
    await venue.place_order(OrderRequest("by-hand", SYMBOL, OrderSide.BUY, D("0.5"), PositionSide.SHORT))  # a manual trade
    second = Daemon(settings(tmp_path), clock)
    await second.start()
    surprises = second.journal.events(kind="position_differs_from_journal")
    assert [(e.detail["venue_short"], e.detail["journal_short"]) for e in surprises] == [("1.5", "2")]
    await second.stop()


async def test_a_live_price_keeps_the_exchanges_timestamp_so_a_stale_price_trades_nothing(tmp_path, monkeypatch) -> None:
    from hedgebot.exchange import factory
    from hedgebot.exchange.feeds import LiveFeed

    clock = SimClock()

    class StaleExchange:
        """A public ticker whose mark price is two minutes old."""

        id = "stale"
        has = {"fetchMarkPrice": True}

        async def fetch_mark_price(self, symbol: str) -> dict:
            return {"markPrice": "50000", "timestamp": (clock.now() - 120) * 1000}

        async def close(self) -> None:
            return None

    class StaleFeed(LiveFeed):
        def __init__(self, exchange_id: str, symbol: str) -> None:
            super().__init__(exchange_id, symbol, exchange=StaleExchange())

    monkeypatch.setattr(factory, "LiveFeed", StaleFeed)
    data = paper_settings_dict(tmp_path)
    data["accounts"][0]["paper"]["markets"][0]["feed"] = {"kind": "live", "poll_seconds": 1}
    daemon = Daemon(Settings(**data), clock)
    await daemon.start()
    try:
        await clock.advance(5)
        venue = daemon.accounts[0].venue
        assert venue.marks[SYMBOL][1] <= clock.now() - 120
        assert (await venue.fetch_legs(SYMBOL)).short.size == 0
        assert daemon.keepers[0].status.state == "blocked" and "stale" in daemon.keepers[0].status.note
    finally:
        await daemon.stop()
