"""A live daemon on Binance COIN-M: its start-up checks and first hedge against the emulator's /dapi/, through the real ccxt venue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hedgebot.clock import RealClock
from hedgebot.config import Settings
from hedgebot.engine.daemon import Daemon
from hedgebot.exchange.ccxt_venue import CcxtVenue
from tests.emulator_rig import BTC_COINM, COINM_SYMBOL, KEY, SECRET, emulator_rig
from tests.helpers import D

pytestmark = pytest.mark.slow


def coinm_settings(tmp_path: Path, url: str, **hedge: Any) -> Settings:
    return Settings(**{
        "daemon": {"state_dir": str(tmp_path / "state"), "status_interval_seconds": 60},
        "journal": {"path": str(tmp_path / "state" / "journal.sqlite")},
        "accounts": [{
            "name": "coinm", "mode": "live", "exchange": "binancecoinm", "api_base_url": url,
            "credentials": {"api_key": {"env": "HB_TEST_KEY"}, "secret": {"env": "HB_TEST_SECRET"}},
            "hedges": [{"name": "btc", "asset": "BTC", "symbol": COINM_SYMBOL, "instrument": "coinm-perp", "ratio": "1",
                        "tick_seconds": 3600, "leverage": 1, "margin_mode": "isolated", "max_order": "5",
                        "margin_guard": {"sources": ["futures_wallet", "spot_stablecoin"]}, **hedge}],
        }],
    })


@pytest.fixture(autouse=True)
def keys_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HB_TEST_KEY", KEY)
    monkeypatch.setenv("HB_TEST_SECRET", SECRET)
    original = CcxtVenue.connect.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(CcxtVenue, "connect", classmethod(lambda cls, *a, **k: original(cls, *a, **{**k, "rate_limit": False})))


async def test_a_live_daemon_switches_coin_m_to_hedge_mode_and_hedges_the_coins_in_spot_and_the_coin_m_wallet(tmp_path: Path) -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}, coinm="0.5", hedge_mode=False) as rig:
        rig.emulator._now = RealClock().now
        daemon = Daemon(coinm_settings(tmp_path, rig.url), RealClock(), allow_live=True)
        await daemon.start()
        try:
            [keeper] = daemon.keepers
            await keeper.tick()
            book = rig.emulator.book
            assert book.coinm_dual_side and not book.dual_side  # COIN-M's own position mode, USDⓈ-M's untouched
            spec = book.symbols[BTC_COINM]
            assert (spec.margin_type, spec.leverage) == ("ISOLATED", 1)
            contracts = D(rig.emulator.position(BTC_COINM, "SHORT").amount)
            assert D(740) <= contracts <= D(750)  # 1.5 BTC at 50,000 in contracts of 100 USD, less the fee
            assert rig.emulator.futures_orders() and all(k.startswith("futures|BTCUSD_PERP|") for k in book.orders)
            assert not any(r["path"].startswith("/fapi/") for r in rig.emulator.request_log)
        finally:
            await daemon.stop()
