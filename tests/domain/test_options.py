"""Black-Scholes prices against published values, and volatilities read back from prices."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedgebot.domain.options import OptionKind, as_money, black_scholes, implied_volatility, in_coin
from tests.helpers import D


def test_prices_match_hulls_worked_example() -> None:
    # The textbook example (Hull, Options, Futures and Other Derivatives, the Black-Scholes chapter): S 42, K 40, r 10 %, sigma 20 %, T 0.5
    # gives a call of 4.76 and a put of 0.81.
    call = black_scholes(OptionKind.CALL, 42, 40, 0.5, 0.2, 0.1)
    put = black_scholes(OptionKind.PUT, 42, 40, 0.5, 0.2, 0.1)
    assert round(call.price, 2) == 4.76 and round(put.price, 2) == 0.81


def test_put_call_parity_holds() -> None:
    spot, strike, years, vol, rate = 60_000.0, 51_000.0, 30 / 365, 0.65, 0.03
    call = black_scholes(OptionKind.CALL, spot, strike, years, vol, rate).price
    put = black_scholes(OptionKind.PUT, spot, strike, years, vol, rate).price
    assert math.isclose(call - put, spot - strike * math.exp(-rate * years), rel_tol=1e-12)


def test_a_put_at_expiry_is_worth_its_intrinsic_value() -> None:
    assert black_scholes(OptionKind.PUT, 40_000, 51_000, 0.0, 0.8).price == 11_000
    assert black_scholes(OptionKind.PUT, 60_000, 51_000, 0.0, 0.8).price == 0


@settings(max_examples=200, deadline=None)
@given(
    spot=st.floats(min_value=1_000, max_value=200_000),
    moneyness=st.floats(min_value=0.5, max_value=1.2),
    days=st.integers(min_value=1, max_value=365),
    vol=st.floats(min_value=0.1, max_value=2.5),
)
def test_property_the_volatility_read_back_from_a_put_price_reprices_it_within_a_hundredth_of_a_percent(
    spot: float, moneyness: float, days: int, vol: float
) -> None:
    strike = spot * moneyness
    price = black_scholes(OptionKind.PUT, spot, strike, days / 365, vol).price
    if price < spot * 1e-9:
        return  # too far out of the money to carry information about volatility
    implied = implied_volatility(OptionKind.PUT, price, spot, strike, days / 365)
    assert implied is not None
    assert math.isclose(black_scholes(OptionKind.PUT, spot, strike, days / 365, implied).price, price, rel_tol=1e-4)


def test_a_price_below_intrinsic_value_implies_no_volatility() -> None:
    assert implied_volatility(OptionKind.PUT, 500.0, 40_000, 51_000, 0.1) is None


def test_a_put_delta_is_between_minus_one_and_zero_and_vega_is_positive() -> None:
    quote = black_scholes(OptionKind.PUT, 60_000, 51_000, 30 / 365, 0.6)
    assert -1 < quote.delta < 0 and quote.vega > 0


def test_coin_settled_premiums_and_money_figures() -> None:
    assert in_coin(600.0, 60_000.0) == 0.01
    assert as_money(0.1 + 0.2) == D("0.30000000")


def test_bad_inputs_name_what_was_wrong() -> None:
    with pytest.raises(ValueError, match="spot"):
        black_scholes(OptionKind.PUT, 0, 40_000, 0.1, 0.5)
    with pytest.raises(ValueError, match="volatility"):
        black_scholes(OptionKind.PUT, 40_000, 40_000, 0.1, math.nan)
