"""The daemon keeps a put hedge on a paper account with the put leg, not a futures short: it buys the puts once,
shows them in status.json, and a restarted daemon resumes the saved options book without buying again."""

from __future__ import annotations

import json
from typing import Any

from hedgebot.clock import SimClock
from hedgebot.config import Settings
from hedgebot.engine.daemon import Daemon
from hedgebot.engine.put_leg import PutLeg
from tests.helpers import D, SYMBOL, paper_settings_dict


def _settings(tmp_path: Any) -> Settings:
    data = paper_settings_dict(tmp_path)
    data["accounts"][0]["hedges"] = [{
        "name": "btc-put", "asset": "BTC", "symbol": SYMBOL, "ratio": "1", "instrument": "put", "floor": "0.85",
        "expiry_days": 30, "max_premium_per_order": "10000", "max_premium_per_month": "20000", "tick_seconds": 2,
    }]
    return Settings(**data)


async def test_the_daemon_buys_puts_for_a_put_hedge_and_opens_no_short(tmp_path) -> None:
    clock = SimClock()
    daemon = Daemon(_settings(tmp_path), clock)
    await daemon.start()
    try:
        await clock.advance(5)
        leg = daemon.keepers[0]
        assert isinstance(leg, PutLeg)
        venue = daemon.accounts[0].venue
        assert sum(venue.options.held.values()) == D(2)
        assert (await venue.fetch_legs(SYMBOL)).short.size == 0
        daemon.write_status()
        hedge = json.loads((tmp_path / "state" / "status.json").read_text())["hedges"][0]
        assert hedge["instrument"] == "put" and hedge["floor"] == "0.85" and hedge["expiry"] is not None
        assert D(hedge["premium_paid"]) > 0 and D(hedge["mark_value"]) > 0 and D(hedge["delta"]) < 0
        ready, reasons = daemon.ops.ready()
        assert ready, reasons
        assert daemon.ops.status_json()["hedges"][0]["state"] == "active"
    finally:
        await daemon.stop()


async def test_a_restarted_daemon_keeps_the_puts_it_bought_without_buying_again(tmp_path) -> None:
    clock = SimClock()
    first = Daemon(_settings(tmp_path), clock)
    await first.start()
    await clock.advance(5)
    await first.stop()
    fills = len(first.accounts[0].venue.options.fills)
    cash = first.accounts[0].venue.spot["USDT"]
    second = Daemon(_settings(tmp_path), clock)
    await second.start()
    try:
        await clock.advance(5)
        venue = second.accounts[0].venue
        assert len(venue.options.fills) == fills and sum(venue.options.held.values()) == D(2)
        assert venue.spot["USDT"] == cash  # the saved paper wallet paid the premium once
    finally:
        await second.stop()


async def test_status_shows_the_floor_expiry_premium_mark_value_and_delta_of_a_put_hedge(tmp_path, capsys) -> None:
    from hedgebot.commands.main import main
    from hedgebot.config import load_config
    from tests.helpers import write_toml

    data = paper_settings_dict(tmp_path)
    data["accounts"][0]["hedges"] = [{
        "name": "btc-put", "asset": "BTC", "symbol": SYMBOL, "ratio": "1", "instrument": "put", "floor": "0.85",
        "expiry_days": 30, "max_premium_per_order": "10000", "max_premium_per_month": "20000", "tick_seconds": 2,
    }]
    path = write_toml(tmp_path / "hedgebot.toml", data)
    clock = SimClock()
    daemon = Daemon(load_config(path), clock)
    await daemon.start()
    await clock.advance(5)
    await daemon.stop()
    assert main(["status", "--config", str(path)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("paper ") and "btc-put" in x)
    assert "floor 0.85" in line and "2 of 2 puts at strike" in line and "expiry 20" in line, line
    assert "premium paid" in line and "mark value" in line and "delta -" in line, line


async def test_two_put_hedges_on_one_paper_account_are_refused_at_start(tmp_path) -> None:
    import pytest

    from hedgebot.engine.keeper import StartupRefused

    data = _settings(tmp_path).model_dump(mode="json")
    second = {**data["accounts"][0]["hedges"][0], "name": "eth-put", "asset": "ETH", "symbol": "ETH/USDT:USDT"}
    data["accounts"][0]["hedges"].append(second)
    feed = {"kind": "synthetic", "start_price": "3000", "step_seconds": 1, "volatility": 0.5, "seed": 4}
    data["accounts"][0]["paper"]["markets"].append({"symbol": "ETH/USDT:USDT", "feed": feed})
    daemon = Daemon(Settings(**data), SimClock())
    with pytest.raises(StartupRefused, match="2 put hedges"):
        await daemon.start()


async def test_status_after_a_stop_does_not_show_the_put_leg_as_active(tmp_path, capsys) -> None:
    from hedgebot.commands.main import main
    from hedgebot.config import load_config
    from tests.helpers import write_toml

    data = paper_settings_dict(tmp_path)
    data["accounts"][0]["hedges"] = [{
        "name": "btc-put", "asset": "BTC", "symbol": SYMBOL, "ratio": "1", "instrument": "put", "floor": "0.85",
        "expiry_days": 30, "max_premium_per_order": "10000", "max_premium_per_month": "20000", "tick_seconds": 2,
    }]
    path = write_toml(tmp_path / "hedgebot.toml", data)
    clock = SimClock()
    daemon = Daemon(load_config(path), clock)
    await daemon.start()
    await clock.advance(5)
    assert daemon.keepers[0].status.state == "active"
    await daemon.stop()
    assert main(["status", "--config", str(path)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("paper ") and "btc-put" in x)
    assert line.rstrip().endswith("stopped") and "active" not in line, line


def test_a_wide_quote_is_said_in_whole_percent_not_six_decimals() -> None:
    from hedgebot.engine.put_leg import quote_problem
    from hedgebot.exchange.paper_options import OptionQuoteBook, PutSeries

    series = PutSeries(D(40000), 1.0)
    wide = OptionQuoteBook(series, D(100), D(90), D(120), 0.6, -0.2, D(50000))
    said = quote_problem(wide, "buy", tick=D("0.1"))
    assert said == "ask 120 is more than 5% above the mark 100", said
