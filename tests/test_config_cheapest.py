"""instrument = "cheapest": the contracts it chooses among are its symbol's margin kind, its limits are refused
with a clear message when they make no sense, and `check` says what it will compare."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from hedgebot.commands.main import main
from hedgebot.config import HedgeConfig
from hedgebot.domain.instrument import InstrumentKind, Settlement
from hedgebot.exchange.factory import instrument_problem
from tests.helpers import SYMBOL, paper_settings_dict, write_toml


def _hedge(**fields: object) -> HedgeConfig:
    data: dict[str, object] = {"name": "h", "asset": "BTC", "symbol": SYMBOL, "ratio": "1", "instrument": "cheapest"}
    data.update(fields)
    return HedgeConfig.model_validate(data)


def test_a_cheapest_hedge_chooses_between_the_perpetual_and_the_quarterly_of_its_symbols_margin_kind() -> None:
    linear = _hedge()
    assert linear.contract_kinds == (InstrumentKind.USDM_PERP, InstrumentKind.USDM_QUARTERLY)
    assert linear.settlement is Settlement.LINEAR and linear.switch_advantage == Decimal("0.02")
    inverse = _hedge(symbol="BTC/USD:BTC", margin_guard={"sources": ["futures_wallet", "spot_stablecoin"]})
    assert inverse.contract_kinds == (InstrumentKind.COINM_PERP, InstrumentKind.COINM_QUARTERLY)
    assert inverse.settlement is Settlement.INVERSE
    assert InstrumentKind.CHEAPEST.chooses and InstrumentKind.CHEAPEST.follows_delivery
    assert not InstrumentKind.CHEAPEST.delivers and not InstrumentKind.USDM_PERP.follows_delivery


def test_cheapest_among_never_mixes_linear_and_inverse_contracts() -> None:
    with pytest.raises(ValidationError, match=r"cheapest_among .*\['coinm-perp'\] are not of the margin kind of symbol 'BTC/USDT:USDT'"):
        _hedge(cheapest_among=["usdm-quarterly", "coinm-perp"])


@pytest.mark.parametrize(
    ("among", "said"),
    [
        (["usdm-perp"], "leaves nothing to choose"),
        (["usdm-perp", "usdm-perp"], "names a contract twice"),
        (["usdm-perp", "cheapest"], 'names "cheapest"'),
        (["usdm-future"], "cheapest_among"),
    ],
)
def test_a_cheapest_among_that_is_no_choice_is_refused_naming_the_field(among: list[str], said: str) -> None:
    with pytest.raises(ValidationError, match=said):
        _hedge(cheapest_among=among)


def test_choice_limits_on_a_hedge_that_names_its_contract_are_refused() -> None:
    with pytest.raises(ValidationError, match='switch_advantage apply to instrument = "cheapest" only'):
        _hedge(instrument="usdm-quarterly", switch_advantage="0.05")
    with pytest.raises(ValidationError, match="cheapest_among apply"):
        _hedge(instrument="usdm-perp", cheapest_among=["usdm-perp", "usdm-quarterly"])


def test_a_negative_switch_advantage_is_refused() -> None:
    with pytest.raises(ValidationError, match="switch_advantage"):
        _hedge(switch_advantage="-0.01")


def test_a_coin_margined_cheapest_hedge_sells_no_coins_for_margin() -> None:
    with pytest.raises(ValidationError, match="selling them raises no margin"):
        _hedge(symbol="BTC/USD:BTC", margin_guard={"sources": ["futures_wallet", "sell_spot"]})


def test_a_cheapest_short_runs_on_paper_and_on_a_live_account_and_a_cheapest_long_on_neither() -> None:
    hedge = _hedge()
    assert instrument_problem(hedge, "paper", "h") is None
    assert instrument_problem(hedge, "live", "h") is None  # which live exchanges: tests/exchange/test_live_settlements.py
    long = _hedge(side="long", amount="1")
    assert "is not supported yet on a paper account" in (instrument_problem(long, "paper", "h") or "")
    assert 'instrument = "cheapest" with side = "long" is not supported yet on a live account' in (
        instrument_problem(long, "live", "h") or ""
    )


def test_a_cheapest_hedge_on_a_paper_market_without_quarterlies_is_refused_naming_the_fix(tmp_path: Path, capsys) -> None:
    path = write_toml(tmp_path / "hedgebot.toml", paper_settings_dict(tmp_path, instrument="cheapest"))
    assert main(["check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "'cheapest' chooses among" in err and "set quarterlies = true" in err and "Traceback" not in err, err


def test_check_says_what_a_cheapest_hedge_compares_and_when_it_chooses_again(tmp_path: Path, capsys) -> None:
    data = paper_settings_dict(tmp_path, instrument="cheapest", roll_before=2 * 86400, switch_advantage="0.03")
    prices = tmp_path / "btc.csv"
    prices.write_text("date,open,high,low,close,volume\n2021-03-25T00:00:00Z,52000,52400,51800,52300,10\n"
                      "2021-03-25T01:00:00Z,52300,52500,52100,52400,10\n")
    market = data["accounts"][0]["paper"]["markets"][0]
    market.update(quarterlies=True, quarterly_basis="0.08", feed={"kind": "replay", "path": str(prices)})
    assert main(["check", "--config", str(write_toml(tmp_path / "hedgebot.toml", data))]) == 0
    out = capsys.readouterr().out
    assert f"cheapest: chooses between the perpetual {SYMBOL}" in out and "BTC/USDT:USDT-210625" in out, out
    assert "again from 2021-06-23T08:00:00Z" in out and "3.00% a year more (switch_advantage)" in out, out
    assert "annualised basis 8.00%" in out, out


def test_compare_prices_a_cheapest_hedge_on_each_contract_it_could_hold() -> None:
    from hedgebot.compare import variant

    hedge = _hedge(cheapest_among=["usdm-quarterly", "usdm-perp"], switch_advantage="0.05")
    on_quarterly = variant(hedge, InstrumentKind.USDM_QUARTERLY, SYMBOL)
    assert on_quarterly.instrument is InstrumentKind.USDM_QUARTERLY and on_quarterly.cheapest_among is None
