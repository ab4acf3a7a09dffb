"""A put hedge names its floor, horizon and premium limits; settings that make no sense for a bought put are
refused naming the field and value, never with a traceback."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from hedgebot.config import HedgeConfig
from hedgebot.domain.instrument import InstrumentKind

SYMBOL = "BTC/USDT:USDT"


def _put(**overrides: Any) -> HedgeConfig:
    fields: dict[str, Any] = {
        "name": "h", "asset": "BTC", "symbol": SYMBOL, "ratio": Decimal(1), "instrument": "put",
        "floor": Decimal("0.85"), "expiry_days": 30, "max_premium_per_order": Decimal(2000),
        "max_premium_per_month": Decimal(5000),
    }
    fields.update(overrides)
    return HedgeConfig(**fields)


def test_a_put_hedge_keeps_its_floor_horizon_and_premium_limits() -> None:
    hedge = _put(roll_before=3 * 86400, roll_up_when=Decimal("1.25"))
    assert hedge.instrument is InstrumentKind.PUT and hedge.instrument.option
    assert hedge.floor == Decimal("0.85") and hedge.expiry_days == 30
    assert hedge.put_roll_before == 3 * 86400 and hedge.roll_up_when == Decimal("1.25")


def test_a_put_hedge_without_roll_before_rolls_two_days_ahead() -> None:
    assert _put().put_roll_before == 2 * 86400


@pytest.mark.parametrize(("field", "value"), [("floor", Decimal("1")), ("floor", Decimal("0")), ("roll_up_when", Decimal("1"))])
def test_a_floor_outside_zero_one_or_a_roll_up_not_above_one_is_refused_naming_it(field: str, value: Decimal) -> None:
    with pytest.raises(ValidationError, match=field):
        _put(**{field: value})


def test_a_put_hedge_without_floor_or_premium_limits_is_refused_naming_them() -> None:
    with pytest.raises(ValidationError, match="needs floor, max_premium_per_month"):
        _put(floor=None, max_premium_per_month=None)


def test_a_long_put_hedge_is_refused_because_a_put_protects_coins_held() -> None:
    with pytest.raises(ValidationError, match='side = "long"'):
        _put(side="long", amount=Decimal(1))


@pytest.mark.parametrize(
    ("field", "value"),
    [("margin_guard", {"trigger": "0.3"}), ("liquidation_warning", Decimal("0.2")), ("leverage", 5)],
)
def test_margin_settings_on_a_put_hedge_are_refused_since_a_put_has_no_margin(field: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=f"no margin and cannot be liquidated, so {field}"):
        _put(**{field: value})


def test_put_settings_on_a_perpetual_short_are_refused_naming_them() -> None:
    with pytest.raises(ValidationError, match=r'floor = 0.85 apply to instrument = "put" only'):
        HedgeConfig(name="h", asset="BTC", symbol=SYMBOL, ratio=Decimal(1), floor=Decimal("0.85"))


def test_a_premium_per_order_above_the_monthly_cap_is_refused() -> None:
    with pytest.raises(ValidationError, match="max_premium_per_order 6000 is above max_premium_per_month 5000"):
        _put(max_premium_per_order=Decimal(6000))


def test_a_roll_before_as_long_as_the_horizon_is_refused() -> None:
    with pytest.raises(ValidationError, match="roll_before 2592000.0s is not shorter than expiry_days 30"):
        _put(roll_before=30 * 86400.0)


def test_check_describes_a_paper_put_hedge_as_puts_not_a_short(tmp_path, capsys) -> None:
    from hedgebot.commands.main import main
    from tests.helpers import paper_settings_dict, write_toml

    data = paper_settings_dict(tmp_path)
    data["accounts"][0]["hedges"] = [{
        "name": "btc-put", "asset": "BTC", "symbol": SYMBOL, "ratio": "1", "instrument": "put", "floor": "0.85",
        "expiry_days": 30, "max_premium_per_order": "1000", "max_premium_per_month": "3000",
    }]
    assert main(["check", "--config", str(write_toml(tmp_path / "h.toml", data))]) == 0
    out = capsys.readouterr().out
    assert "via long puts" in out and "floor 0.85" in out and "a model" in out and "short" not in out, out


def test_check_refuses_a_put_hedge_on_a_live_account_and_says_where_it_runs() -> None:
    from hedgebot.exchange.factory import instrument_problem

    problem = instrument_problem(_put(), "live", "hedge 'h'", "okx")
    assert problem is not None and "paper accounts, in backtests and on live binanceusdm accounts" in problem
    assert "not on 'okx'" in problem
    assert instrument_problem(_put(), "live", "hedge 'h'") is not None  # an exchange not named is never taken as proven
    assert instrument_problem(_put(), "paper", "hedge 'h'") is None


def test_a_put_hedge_on_a_live_binance_account_passes_check_as_binance_options_keep_it() -> None:
    from hedgebot.exchange.factory import instrument_problem

    assert instrument_problem(_put(), "live", "hedge 'h'", "binanceusdm") is None


def test_a_put_hedge_survives_a_dump_and_reload_with_every_default_written() -> None:
    hedge = _put(roll_up_when=Decimal("1.3"))
    assert HedgeConfig(**hedge.model_dump()) == hedge
