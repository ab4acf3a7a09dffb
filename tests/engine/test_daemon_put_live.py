"""A live daemon keeps a put hedge on a Binance account's options: the emulator's options desk through unmodified ccxt.

In virtual time (the rig's stepping clock) the daemon buys the put nearest the floor, and days later rolls it before
expiry: the new put bought first, then the old one sold. status.json shows the floor, the expiry as an ISO date, the
premium paid, the mark value and the delta. A daemon started from the config alone builds its options book from the
account's key and api_base_url.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hedgebot.clock import RealClock
from hedgebot.config import Settings
from hedgebot.engine.daemon import Daemon
from hedgebot.engine.put_leg import PutLeg
from hedgebot.exchange.binance_options_book import BinanceOptionsBook
from hedgebot.exchange.ccxt_venue import CcxtVenue
from hedgebot.exchange.factory import VenueSetup
from tests.emulator_rig import KEY, SECRET
from tests.engine.test_put_leg_live_emulator import DAY, EXPIRIES, D, options_rig, symbol
from tests.helpers import SYMBOL

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def keys_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HB_TEST_KEY", KEY)
    monkeypatch.setenv("HB_TEST_SECRET", SECRET)
    original = CcxtVenue.connect.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(CcxtVenue, "connect", classmethod(lambda cls, *a, **k: original(cls, *a, **{**k, "rate_limit": False})))


def settings(tmp_path: Path, url: str, **hedge: Any) -> Settings:
    return Settings(**{
        "daemon": {"state_dir": str(tmp_path / "state"), "status_interval_seconds": 60},
        "journal": {"path": str(tmp_path / "state" / "journal.sqlite")},
        "http": {"enabled": False},
        "accounts": [{
            "name": "main", "mode": "live", "exchange": "binanceusdm", "api_base_url": url, "streams": False,
            "credentials": {"api_key": {"env": "HB_TEST_KEY"}, "secret": {"env": "HB_TEST_SECRET"}},
            "hedges": [{"name": "btc-put", "asset": "BTC", "symbol": SYMBOL, "ratio": "1", "instrument": "put",
                        "floor": "0.96", "expiry_days": 7, "roll_before": 2 * DAY, "max_premium_per_order": "10000",
                        "max_premium_per_month": "30000", "tick_seconds": 3600, **hedge}],
        }],
    })


async def until(condition: Callable[[], bool], what: Callable[[], str], deadline: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"never happened: {what()}")
        await asyncio.sleep(0.005)


async def test_a_live_daemon_buys_the_put_then_rolls_it_before_expiry_new_first_then_the_old_sold(tmp_path: Path) -> None:
    async with options_rig(premium_wallet="20000") as rig:
        rig.clock.every(1.0, lambda: rig.emulator.set_mark("BTCUSDT", D(50000)))
        book = rig.book()
        setup = VenueSetup(rig.clock.holding(rig.venue), options=rig.clock.holding(book))
        daemon = Daemon(settings(tmp_path, rig.url), rig.clock, allow_live=True, venue_factory=lambda a: setup)
        old, new = symbol(EXPIRIES[1], 48000), symbol(EXPIRIES[2], 48000)  # 0.96 x 50,000
        await daemon.start()
        try:
            [leg] = daemon.keepers
            assert isinstance(leg, PutLeg)
            await until(lambda: bool(rig.desk.held()), lambda: f"the put bought: {leg.status}")
            assert rig.desk.held() == {old: D(2)}
            rig.clock.advance(EXPIRIES[1] / 1000 - 1.5 * DAY - rig.clock.now())  # 1.5 days before its expiry: inside roll_before
            leg.wake.set()
            await until(lambda: len(rig.desk.executions) >= 3, lambda: f"the roll: {rig.desk.state.orders}; {leg.status}")
            sequence = [(o["symbol"], o["side"]) for o in rig.desk.state.orders.values()]
            assert sequence[:3] == [(old, "BUY"), (new, "BUY"), (old, "SELL")]
            assert rig.desk.held() == {new: D(2)}
            daemon.write_status()
            [status] = json.loads((tmp_path / "state" / "status.json").read_text())["hedges"]
            assert status["instrument"] == "put" and status["floor"] == "0.96" and status["strike"] == "48000"
            expected = datetime.fromtimestamp(EXPIRIES[2] / 1000, UTC).isoformat().replace("+00:00", "Z")
            assert status["expiry"] == expected == "2026-10-31T14:13:20Z"  # an ISO date, not an epoch
            assert D(status["premium_paid"]) > 0 and D(status["mark_value"]) > 0 and D(status["delta"]) < 0
            assert D(status["put_payoff"]) > 0  # the old put's sale
        finally:
            await daemon.stop()
        assert leg.status.state == "stopped"


async def test_a_live_daemon_started_from_its_config_builds_its_options_book_from_the_accounts_key_and_url(tmp_path: Path) -> None:
    async with options_rig() as rig:
        now = RealClock().now()
        rig.emulator._now = RealClock().now  # noqa: SLF001 - a daemon on the real clock, as `hedgebot run --live`
        rig.desk.state.expiries_ms = [int((now + days * DAY) * 1000) for days in (3, 10, 40)]
        daemon = Daemon(settings(tmp_path, rig.url), RealClock(), allow_live=True)
        await daemon.start()
        try:
            [leg] = daemon.keepers
            await until(lambda: bool(rig.desk.held()), lambda: f"a put bought: {leg.status}")
            assert isinstance(leg._book, BinanceOptionsBook)  # noqa: SLF001
            strike = next(iter(rig.desk.held())).split("-")[2]
            assert strike == "48000" and rig.desk.held()[next(iter(rig.desk.held()))] == D(2)
            keys = {r["key"] for r in rig.emulator.request_log if r["path"].startswith("/eapi/v1/order")}
            assert keys == {KEY}
        finally:
            await daemon.stop()


async def test_a_put_only_account_in_one_way_mode_with_a_futures_position_is_left_as_it_is_and_its_puts_bought(tmp_path: Path) -> None:
    from hedgebot.domain.model import OrderSide
    from hedgebot.exchange.port import OrderRequest

    async with options_rig() as rig:
        rig.emulator._now = RealClock().now  # noqa: SLF001
        now = RealClock().now()
        rig.desk.state.expiries_ms = [int((now + days * DAY) * 1000) for days in (3, 10, 40)]
        rig.emulator.deposit("futures", "USDT", D(10000))
        await rig.venue.place_order(OrderRequest("users-own", SYMBOL, OrderSide.SELL, D("0.1"), None))  # one-way mode
        daemon = Daemon(settings(tmp_path, rig.url), RealClock(), allow_live=True)
        await daemon.start()  # a put sends no futures order: it needs no hedge mode, and must not refuse to start
        try:
            [leg] = daemon.keepers
            await until(lambda: bool(rig.desk.held()), lambda: f"a put bought: {leg.status}")
            assert rig.emulator.book.dual_side is False, "the user's position mode was changed"
            assert list(rig.emulator.futures_orders()) == ["users-own"], "no futures order was sent"
        finally:
            await daemon.stop()
