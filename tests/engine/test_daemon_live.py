"""A live account's start-up checks, against the Binance emulator through the real ccxt venue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hedgebot.clock import RealClock
from hedgebot.config import Settings
from hedgebot.engine.daemon import Daemon
from hedgebot.engine.keeper import StartupRefused
from hedgebot.exchange.ccxt_venue import CcxtVenue
from hedgebot.exchange.port import OrderRequest
from hedgebot.domain.model import OrderSide
from hedgebot.testing.binance_emulator import Emulator
from tests.emulator_rig import BTC, KEY, SECRET, emulator_rig
from tests.helpers import D, SYMBOL

pytestmark = pytest.mark.slow


def live_settings(tmp_path: Path, url: str, **hedge: Any) -> Settings:
    return Settings(**{
        "daemon": {"state_dir": str(tmp_path / "state"), "status_interval_seconds": 60},
        "journal": {"path": str(tmp_path / "state" / "journal.sqlite")},
        "accounts": [{
            "name": "main", "mode": "live", "exchange": "binanceusdm", "api_base_url": url,
            "credentials": {"api_key": {"env": "HB_TEST_KEY"}, "secret": {"env": "HB_TEST_SECRET"}},
            "hedges": [{"name": "btc", "asset": "BTC", "symbol": SYMBOL, "ratio": "1", "tick_seconds": 3600,
                        "leverage": 3, **hedge}],
        }],
    })


@pytest.fixture(autouse=True)
def keys_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HB_TEST_KEY", KEY)
    monkeypatch.setenv("HB_TEST_SECRET", SECRET)
    # ccxt's client-side throttle only slows a local emulator down; the subprocess test keeps it on.
    original = CcxtVenue.connect.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(CcxtVenue, "connect", classmethod(lambda cls, *a, **k: original(cls, *a, **{**k, "rate_limit": False})))


async def start(tmp_path: Path, url: str, **hedge: Any) -> Daemon:
    daemon = Daemon(live_settings(tmp_path, url, **hedge), RealClock(), allow_live=True)
    await daemon.start()
    return daemon


async def test_hedge_mode_is_switched_on_for_a_flat_account(tmp_path: Path) -> None:
    async with emulator_rig(hedge_mode=False) as rig:
        rig.emulator._now = RealClock().now
        daemon = await start(tmp_path, rig.url)
        try:
            assert rig.emulator.book.dual_side
            spec = rig.emulator.book.symbols[BTC]
            assert (spec.margin_type, spec.leverage) == ("ISOLATED", 3)
        finally:
            await daemon.stop()


async def test_hedge_mode_is_refused_with_open_positions_and_nothing_trades(tmp_path: Path) -> None:
    async with emulator_rig(hedge_mode=False) as rig:
        emulator: Emulator = rig.emulator
        emulator._now = RealClock().now
        await rig.venue.place_order(OrderRequest("manual", SYMBOL, OrderSide.SELL, D("0.1"), None))
        with pytest.raises(StartupRefused, match="oneway position mode .* hedge mode"):
            await start(tmp_path, rig.url)
        assert not emulator.book.dual_side and list(emulator.futures_orders()) == ["manual"]


async def test_a_key_that_can_withdraw_is_refused(tmp_path: Path) -> None:
    async with emulator_rig() as rig:
        rig.emulator.add_key(KEY, SECRET, can_withdraw=True)
        with pytest.raises(StartupRefused, match="can withdraw"):
            await start(tmp_path, rig.url)
        assert rig.emulator.futures_orders() == {}


async def test_multi_assets_and_portfolio_margin_accounts_are_refused(tmp_path: Path) -> None:
    async with emulator_rig() as rig:
        rig.emulator.book.multi_assets = True
        with pytest.raises(StartupRefused, match="multi-assets"):
            await start(tmp_path, rig.url)
        rig.emulator.book.multi_assets = False
        rig.emulator.book.portfolio_margin = True
        with pytest.raises(StartupRefused, match="portfolio-margin"):
            await start(tmp_path, rig.url)


async def test_a_key_without_ip_restriction_gets_a_warning(tmp_path: Path) -> None:
    async with emulator_rig() as rig:
        rig.emulator._now = RealClock().now
        rig.emulator.add_key(KEY, SECRET, ip_restrict=False)
        daemon = await start(tmp_path, rig.url)
        try:
            assert [e.kind for e in daemon.journal.events(kind="api_key_unrestricted")] == ["api_key_unrestricted"]
        finally:
            await daemon.stop()


async def test_wrong_credentials_are_refused_with_what_to_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with emulator_rig() as rig:
        monkeypatch.setenv("HB_TEST_SECRET", "not-the-secret")
        with pytest.raises(StartupRefused, match="refused the API key"):
            await start(tmp_path, rig.url)


async def test_leverage_above_the_brackets_maximum_and_a_too_small_min_order_are_refused(tmp_path: Path) -> None:
    async with emulator_rig(spot={"BTC": "100"}) as rig:
        # 100 BTC at 50,000 is a 5M notional: Binance's bracket there allows 50x at most.
        with pytest.raises(StartupRefused, match="leverage 75 is above 50"):
            await start(tmp_path, rig.url, leverage=75, max_order="5")
        with pytest.raises(StartupRefused, match="min_order 0.0001 is below"):
            await start(tmp_path, rig.url, min_order="0.0001")
        assert rig.emulator.futures_orders() == {}
