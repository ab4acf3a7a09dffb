"""A hedge names its instrument and side; a bad name is refused naming field and value, and a combination no
venue trades yet is refused by `check`, `run` and `backtest`, never run as the default instrument."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from hedgebot.backtest import run_backtest
from hedgebot.commands.main import main
from hedgebot.config import HedgeConfig, load_config
from hedgebot.domain.instrument import HedgeSide, InstrumentKind
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.feeds import Candle
from hedgebot.exchange.funding import ConstantFunding
from tests.helpers import SYMBOL, paper_settings_dict, write_toml


def _config(tmp_path: Path, **hedge: object) -> str:
    return str(write_toml(tmp_path / "hedgebot.toml", paper_settings_dict(tmp_path, **hedge)))


def test_a_hedge_without_instrument_or_side_is_a_usdm_perpetual_short(tmp_path) -> None:
    hedge = load_config(Path(_config(tmp_path))).accounts[0].hedges[0]
    assert hedge.instrument is InstrumentKind.USDM_PERP and hedge.side is HedgeSide.SHORT


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("instrument", "coin-perp", "'usdm-perp', 'coinm-perp', 'usdm-quarterly', 'coinm-quarterly', 'cheapest' or 'put'"),
        ("side", "sell", "'short' or 'long'"),
    ],
)
def test_an_unknown_instrument_or_side_exits_2_naming_field_value_and_choices(tmp_path, capsys, field, value, said) -> None:
    assert main(["check", "--config", _config(tmp_path, **{field: value})]) == 2
    err = capsys.readouterr().err
    assert f"accounts[0].hedges[0].{field}" in err and repr(value) in err and said in err, err
    assert "Traceback" not in err


def test_a_coin_margined_instrument_on_a_usdt_market_is_refused_naming_both(tmp_path, capsys) -> None:
    assert main(["check", "--config", _config(tmp_path, instrument="coinm-perp")]) == 2
    err = capsys.readouterr().err
    assert "coinm-perp" in err and SYMBOL in err and "BTC/USD:BTC" in err, err


def test_a_coin_margined_market_named_as_usdm_is_refused() -> None:
    with pytest.raises(ValueError, match="coin-margined market"):
        HedgeConfig(name="h", asset="BTC", symbol="BTC/USD:BTC", ratio=Decimal(1))


@pytest.mark.parametrize(("instrument", "side"), [("usdm-quarterly", "long")])
def test_check_refuses_a_combination_not_supported_yet_and_says_so(tmp_path, capsys, instrument, side) -> None:
    data = paper_settings_dict(tmp_path, instrument=instrument, side=side, **({"amount": "5"} if side == "long" else {}))
    if instrument.startswith("coinm"):
        data["accounts"][0]["hedges"][0]["symbol"] = "BTC/USD:BTC"
        data["accounts"][0]["paper"]["markets"][0]["symbol"] = "BTC/USD:BTC"
    path = str(write_toml(tmp_path / "hedgebot.toml", data))
    assert main(["check", "--config", path]) == 2
    err = capsys.readouterr().err
    assert "accounts[0].hedges[0].instrument" in err and f'"{instrument}" with side = "{side}" is not supported yet' in err, err
    assert "config OK" not in err


def test_run_refuses_an_unsupported_instrument_and_starts_nothing(tmp_path, capsys) -> None:
    assert main(["run", "--config", _config(tmp_path, instrument="usdm-quarterly", side="long", amount="5")]) == 2
    assert "is not supported yet" in capsys.readouterr().err
    assert not (tmp_path / "state" / "journal.sqlite").exists()


def test_backtest_refuses_an_unsupported_instrument_instead_of_replaying_a_perpetual(tmp_path, capsys) -> None:
    prices = tmp_path / "btc.csv"
    prices.write_text("date,open,high,low,close,volume\n2021-01-01T00:00:00Z,29000,29400,28800,29300,10\n"
                      "2021-01-01T01:00:00Z,29300,29500,29100,29400,10\n")
    code = main(["backtest", "--config", _config(tmp_path, instrument="usdm-quarterly", side="long", amount="5"), "--hedge", "btc-core", "--prices", str(prices),
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert "is not supported yet" in capsys.readouterr().err
    assert not (tmp_path / "out" / "summary.json").exists()


async def test_a_programmatic_backtest_refuses_an_unsupported_instrument() -> None:
    hedge = HedgeConfig(name="h", asset="BTC", symbol=SYMBOL, ratio=Decimal(1), instrument=InstrumentKind.USDM_QUARTERLY,
                        side=HedgeSide.LONG, amount=Decimal(5))
    candle = Candle(1_609_459_200.0, Decimal(29000), Decimal(29400), Decimal(28800), Decimal(29300))
    with pytest.raises(ValueError, match="not supported yet"):
        await run_backtest([candle, candle], default_market(SYMBOL), ConstantFunding(Decimal(0)), hedge,
                           {"BTC": Decimal(1)}, {"USDT": Decimal(10000)}, interval_seconds=3600)


@pytest.mark.parametrize(
    ("hedge", "said"),
    [
        ({"side": "long"}, "give amount, the coins still to buy"),
        ({"amount": "5"}, 'amount 5 applies to side = "long" only'),
        ({"side": "long", "amount": "5", "exposure": {"perp_long": True}}, "exposure.perp_long and exposure.offset apply to a short"),
        ({"side": "long", "amount": "5", "margin_guard": {"sources": ["futures_wallet", "sell_spot"]}}, 'cannot hold "sell_spot"'),
        ({"side": "long", "amount": "-1"}, "amount"),
    ],
)
def test_a_long_hedge_needs_its_planned_amount_and_nothing_that_belongs_to_a_short(tmp_path, capsys, hedge, said) -> None:
    assert main(["check", "--config", _config(tmp_path, **hedge)]) == 2
    err = capsys.readouterr().err
    assert "accounts[0].hedges[0]" in err and said in err and "Traceback" not in err, err


def test_a_long_hedge_plans_for_the_coins_still_to_buy(tmp_path) -> None:
    hedge = HedgeConfig(name="h", asset="BTC", symbol=SYMBOL, ratio=Decimal(1), side=HedgeSide.LONG, amount=Decimal(5))
    policy = hedge.policy()
    assert policy.side.value == "long" and policy.offset == Decimal(5) and policy.include_spot


def test_a_usdm_long_hedge_runs_live_once_proven_on_the_emulator_and_a_coin_margined_long_is_still_refused() -> None:
    from hedgebot.exchange.factory import instrument_problem

    hedge = HedgeConfig(name="h", asset="BTC", symbol=SYMBOL, ratio=Decimal(1), side=HedgeSide.LONG, amount=Decimal(5))
    assert instrument_problem(hedge, "paper", "h") is None
    assert instrument_problem(hedge, "live", "h") is None  # tests/engine/test_long_live_emulator.py
    coinm = HedgeConfig(name="h", asset="BTC", symbol="BTC/USD:BTC", ratio=Decimal(1), side=HedgeSide.LONG,
                        amount=Decimal(5), instrument=InstrumentKind.COINM_PERP)
    for mode in ("paper", "live"):
        said = instrument_problem(coinm, mode, "h") or ""
        assert 'instrument = "coinm-perp" with side = "long" is refused' in said and 'instrument = "usdm-perp"' in said, said


@pytest.mark.parametrize("instrument", ["coinm-perp", "coinm-quarterly"])
def test_check_refuses_a_coin_margined_long_saying_it_doubles_the_exposure_and_naming_the_usdm_long(tmp_path, capsys, instrument) -> None:
    data = paper_settings_dict(tmp_path, instrument=instrument, side="long", amount="5")
    data["accounts"][0]["hedges"][0]["symbol"] = "BTC/USD:BTC"
    data["accounts"][0]["paper"]["markets"][0]["symbol"] = "BTC/USD:BTC"
    path = str(write_toml(tmp_path / "hedgebot.toml", data))
    assert main(["check", "--config", path]) == 2
    err = capsys.readouterr().err
    assert "accounts[0].hedges[0].instrument" in err and f'instrument = "{instrument}" with side = "long" is refused' in err, err
    assert "twice" in err and "halving" in err and 'hedge a planned purchase with instrument = "usdm-perp"' in err, err
    assert "not supported yet" not in err and "config OK" not in err and "Traceback" not in err, err


def test_check_shows_a_long_hedge_its_runway_below_the_mark_and_what_it_costs_to_fund(tmp_path, capsys) -> None:
    data = paper_settings_dict(tmp_path, side="long", amount="2")
    data["accounts"][0]["paper"]["spot"] = {"USDT": "10000"}
    path = str(write_toml(tmp_path / "hedgebot.toml", data))
    assert main(["check", "--config", path]) == 0
    out = capsys.readouterr().out
    assert "a long of 2.000 BTC" in out and "a planned purchase of 2 BTC, less the spot BTC bought" in out and "below 50000" in out and "config OK" in out, out


def test_a_long_hedge_refuses_until_sell_spot(tmp_path, capsys) -> None:
    assert main(["check", "--config", _config(tmp_path, side="long", amount="5", until_sell_spot=True)]) == 2
    err = capsys.readouterr().err
    assert "accounts[0].hedges[0]" in err and "until_sell_spot would sell the coins" in err, err


def test_unwind_with_sell_spot_is_refused_for_a_long_hedge_and_nothing_is_done(tmp_path, capsys) -> None:
    path = _config(tmp_path, side="long", amount="5")
    assert main(["unwind", "--config", path, "--hedge", "btc-core", "--sell-spot", "--yes"]) == 2
    err = capsys.readouterr().err
    assert "--sell-spot would sell the coins it was bought for" in err and "nothing was done" in err, err
    assert not (tmp_path / "state" / "journal.sqlite").exists()


def test_a_quarterly_short_runs_on_paper_and_live_once_proven_and_a_quarterly_long_on_neither() -> None:
    from hedgebot.exchange.factory import instrument_problem

    hedge = HedgeConfig(name="h", asset="BTC", symbol=SYMBOL, ratio=Decimal(1), instrument=InstrumentKind.USDM_QUARTERLY)
    assert instrument_problem(hedge, "paper", "h") is None
    assert instrument_problem(hedge, "live", "h") is None  # proven on the Binance emulator
    long = HedgeConfig(name="h", asset="BTC", symbol=SYMBOL, ratio=Decimal(1), instrument=InstrumentKind.USDM_QUARTERLY,
                       side="long", amount=Decimal(5))
    assert "is not supported yet on a live account" in (instrument_problem(long, "live", "h") or "")


def test_a_quarterly_hedge_on_a_paper_market_that_lists_no_quarterlies_is_refused_naming_the_fix(tmp_path, capsys) -> None:
    assert main(["check", "--config", _config(tmp_path, instrument="usdm-quarterly")]) == 2
    err = capsys.readouterr().err
    assert "accounts[0].hedges[0].instrument" in err and "set quarterlies = true" in err and "Traceback" not in err, err


def test_check_shows_the_quarterly_held_its_delivery_the_next_roll_and_the_annualised_basis(tmp_path, capsys) -> None:
    data = paper_settings_dict(tmp_path, instrument="usdm-quarterly", roll_before=2 * 86400)
    prices = tmp_path / "btc.csv"
    # 2021-03-25 00:00 UTC: the March contract (delivered 2021-03-26 08:00) is within two days, so June's is held.
    prices.write_text("date,open,high,low,close,volume\n2021-03-25T00:00:00Z,52000,52400,51800,52300,10\n"
                      "2021-03-25T01:00:00Z,52300,52500,52100,52400,10\n")
    market = data["accounts"][0]["paper"]["markets"][0]
    market.update(quarterlies=True, quarterly_basis="0.08", feed={"kind": "replay", "path": str(prices)})
    path = str(write_toml(tmp_path / "hedgebot.toml", data))
    assert main(["check", "--config", path]) == 0
    out = capsys.readouterr().out
    assert "contract held: BTC/USDT:USDT-210625, delivered 2021-06-25T08:00:00Z" in out, out
    assert "the roll to the next starts 2021-06-23T08:00:00Z" in out, out
    assert "annualised basis 8.00% (configured (quarterly_basis)); no funding on a quarterly" in out, out


def test_a_live_long_hedge_is_refused_on_an_exchange_it_is_not_proven_on_and_accepted_on_binance_okx_and_bybit(monkeypatch) -> None:
    from hedgebot.config import AccountConfig
    from hedgebot.exchange.factory import account_problems

    monkeypatch.setenv("HB_KEY", "k")
    monkeypatch.setenv("HB_SECRET", "s")
    monkeypatch.setenv("HB_PASS", "p")
    credentials = {"api_key": {"env": "HB_KEY"}, "secret": {"env": "HB_SECRET"}, "password": {"env": "HB_PASS"}}
    hedge = HedgeConfig(name="h", asset="BTC", symbol=SYMBOL, ratio=Decimal(1), side=HedgeSide.LONG, amount=Decimal(5))
    for exchange in ("binanceusdm", "okx", "bybit"):  # tests/exchange/test_long_on_okx_and_bybit.py for the last two
        proven = AccountConfig(name="main", exchange=exchange, mode="live", credentials=credentials, hedges=(hedge,))
        assert [p for p in account_problems(proven) if p] == [], exchange
    account = AccountConfig(name="main", exchange="aster", mode="live", credentials=credentials, hedges=(hedge,))
    said = [p for p in account_problems(account) if p]
    assert any('side = "long" is not supported yet on \'aster\'' in p and "binanceusdm, bybit, okx" in p for p in said), said
