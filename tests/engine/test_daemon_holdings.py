"""Coins held on another account of the config (a holdings account): counted by the hedges that name it, read-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hedgebot.clock import SimClock
from hedgebot.config import ConfigError, Settings, load_config
from hedgebot.domain.model import Wallet
from hedgebot.engine.daemon import Daemon
from hedgebot.exchange.port import VenueUnavailable
from tests.helpers import D, SYMBOL, paper_settings_dict, write_toml


def with_holdings(tmp_path: Path, **exposure: Any) -> dict[str, Any]:
    """A paper config: account `paper` hedges 2 BTC of its own and counts account `cold`, which holds 3 BTC."""
    data = paper_settings_dict(tmp_path, tick_seconds=10, exposure={"accounts": ["cold"], **exposure})
    data["accounts"].append({"name": "cold", "mode": "paper", "paper": {"spot": {"BTC": "3"}}})
    return data


async def test_a_hedge_counts_the_coins_of_the_holdings_account_it_names_and_sends_it_nothing_but_reads(tmp_path: Path) -> None:
    clock = SimClock()
    daemon = Daemon(Settings(**with_holdings(tmp_path)), clock)
    await daemon.start()
    try:
        await clock.advance(30)
        [keeper] = daemon.keepers
        assert keeper.status.exposure == D("5") and keeper.status.short == D("5")
        assert keeper.status.exposure_elsewhere == D("3")
        # Shown per source, each with the time it was counted, and journaled with each action.
        [source] = keeper.status.to_json()["exposure_sources"]
        assert source["source"] == "account cold" and source["amount"] == "3.000" and source["at"].endswith("Z")
        orders = [i for i in keeper.journal.intents() if i.kind == "order"]
        assert orders and orders[-1].detail["exposure_sources"]["account cold"]["amount"] == "3.000"
        assert orders[-1].detail["exposure_sources"]["account cold"]["at"].endswith("Z")  # an ISO time, as events show
        cold = daemon._holdings["cold"].venue
        assert not cold.orders and not cold.movements  # read, never traded or moved
        cold.spot["BTC"] = D("4")  # one more coin arrives in cold storage
        await clock.advance(30)
        assert keeper.status.short == D("6")
    finally:
        await daemon.stop()


async def test_a_holdings_account_that_cannot_be_read_keeps_its_last_count_then_holds_growth_but_never_the_reduction(
    tmp_path: Path,
) -> None:
    clock = SimClock()
    daemon = Daemon(Settings(**with_holdings(tmp_path, accounts_max_age_seconds=120)), clock)
    await daemon.start()
    try:
        await clock.advance(30)
        [keeper] = daemon.keepers
        assert keeper.status.short == D("5")
        cold = daemon._holdings["cold"].venue

        async def down() -> dict:
            raise VenueUnavailable("cold: 503 service unavailable")

        cold.fetch_spot_balances = down  # type: ignore[method-assign]
        venue = daemon.accounts[0].setup.venue  # type: ignore[union-attr]
        venue.deposit(Wallet.SPOT, "BTC", D("1"))
        await clock.advance(60)  # the last count (3) still stands: the new coin is hedged
        assert keeper.status.short == D("6") and "exposure_stale" not in keeper.alerts.active
        await clock.advance(90)  # the last count is now past its limit
        venue.deposit(Wallet.SPOT, "BTC", D("1"))
        await clock.advance(30)  # no growth on a count this old, and a critical alert
        assert keeper.status.short == D("6")
        alert = keeper.alerts.active["exposure_stale"]
        assert alert.severity.value == "critical" and "account cold" in alert.message and "503" in alert.message
        venue.spot["BTC"] = D("1")  # coins leave the hedged account: the reduction (to 1 + 3 counted) still goes out
        await clock.advance(30)
        assert keeper.status.short == D("4")
    finally:
        await daemon.stop()


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda d: d["accounts"][1].update(name="vault"), "counts the coins of account 'cold', which the config does not have"),
        (lambda d: d["accounts"][0]["hedges"][0].update(exposure={}), "'cold' have no hedges and no hedge counts their coins"),
        (lambda d: d["accounts"][1].update(hedges=[{**d["accounts"][0]["hedges"][0], "exposure": {}}],
                                           paper={"spot": {"BTC": "3"}, "markets": d["accounts"][0]["paper"]["markets"]}),
         "which has hedges of its own"),
        (lambda d: d["accounts"].insert(1, {**d["accounts"][0], "name": "second", "hedges": [{**d["accounts"][0]["hedges"][0], "name": "two"}]}),
         "all count the BTC of account cold, at ratios adding up to 2"),
        (lambda d: d["accounts"][-1]["paper"].update(script=[{"asset": "BTC", "every_seconds": 60, "amounts": ["1"]}]),
         "would never run"),
    ],
)
def test_a_holdings_account_misnamed_unused_or_hedged_is_refused_with_a_message(tmp_path: Path, change: Any, said: str) -> None:
    data = with_holdings(tmp_path)
    change(data)
    with pytest.raises(ConfigError) as caught:
        load_config(write_toml(tmp_path / "hedgebot.toml", data))
    assert said in str(caught.value)


def test_check_says_which_hedge_counts_a_holdings_account_and_sizes_the_target_with_its_coins(tmp_path: Path, capsys) -> None:
    from hedgebot.commands.main import main

    config = write_toml(tmp_path / "hedgebot.toml", with_holdings(tmp_path))
    assert main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "exposure: spot BTC + the spot BTC of holdings account cold" in out
    assert "account cold: paper on binanceusdm\n  holdings account: its spot coins are counted by paper/btc-core" in out
    assert "fundability: a short of 5.000 BTC" in out  # 2 held in the account + 3 in cold storage


def test_a_backtest_of_a_hedge_counting_coins_held_elsewhere_is_refused_with_what_to_do(tmp_path: Path, capsys) -> None:
    from hedgebot.commands.main import main
    from tests.helpers import shared_file

    config = write_toml(tmp_path / "hedgebot.toml", with_holdings(tmp_path))
    args = ["backtest", "--config", str(config), "--hedge", "btc-core", "--prices", str(shared_file("BTCUSDT-1h-spot-2020-2021.csv")),
            "--out", str(tmp_path / "out"), "--no-chart"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "counts coins held elsewhere (account cold)" in err and "exposure.offset" in err and "Traceback" not in err


async def test_a_paper_daemon_reading_a_live_holdings_account_needs_no_live_flag(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HB_COLD_KEY", "k")
    monkeypatch.setenv("HB_COLD_SECRET", "s")
    data = with_holdings(tmp_path)
    data["accounts"][1] = {"name": "cold", "mode": "live", "api_base_url": "http://127.0.0.1:9",  # nobody answers
                           "credentials": {"api_key": {"env": "HB_COLD_KEY"}, "secret": {"env": "HB_COLD_SECRET"}}}
    clock = SimClock()
    daemon = Daemon(Settings(**data), clock)  # no allow_live: nothing live is traded
    await daemon.start()
    try:
        await clock.advance(5)
        [keeper] = daemon.keepers
        assert "exposure_unknown" in keeper.alerts.active and keeper.status.short == D(0)  # held both ways, said
    finally:
        await daemon.stop()


async def test_status_shows_where_the_exposure_came_from(tmp_path: Path, capsys) -> None:
    from hedgebot.commands.main import main

    data = with_holdings(tmp_path)
    clock = SimClock()
    daemon = Daemon(Settings(**data), clock)
    await daemon.start()
    try:
        await clock.advance(30)
        daemon.write_status()
    finally:
        await daemon.stop()
    capsys.readouterr()
    assert main(["status", "--config", str(write_toml(tmp_path / "hedgebot.toml", data))]) == 0
    assert "exposure: spot 2.000 + held elsewhere 3.000 (counted 20" in capsys.readouterr().out
