"""Liquidation price and margin sizing, checked against hand-worked Binance examples and their definition."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedgebot.domain.margin import (
    bracket_for,
    distance_to_liquidation,
    liquidation_price,
    liquidation_price_of,
    maintenance_margin,
    short_topup_needed,
)
from hedgebot.domain.model import Leg, PositionSide
from hedgebot.exchange.binance_rules import default_brackets
from tests.helpers import D

BTC = default_brackets("BTC")
assert BTC is not None


def close(a: Decimal, b: Decimal, rel: str = "1e-9") -> bool:
    return abs(a - b) <= abs(b) * D(rel)


def test_isolated_short_in_the_first_bracket_matches_binance_simplified_rule() -> None:
    # 1 BTC short at 2,000, 10x: margin 200. Tier 1 (MMR 0.4%, cum 0):
    # LP = EP x (1 + 1/L) / (1 + MMR) = 2000 x 1.1 / 1.004
    lp = liquidation_price("short", D("1"), D("2000"), D("200"), BTC)
    assert close(lp, D("2200") / D("1.004"))
    assert lp.quantize(D("0.01")) == D("2191.24")


def test_isolated_short_uses_the_bracket_of_the_notional_at_the_liquidation_price() -> None:
    # 1 BTC short at 60,000 with 20,000 margin (3x). At the entry the notional
    # (60k) is already bracket 2 (MMR 0.5%, cum 50): LP = (20000 + 50 + 60000) / 1.005
    lp = liquidation_price("short", D("1"), D("60000"), D("20000"), BTC)
    assert lp.quantize(D("0.01")) == D("79651.74")
    # A smaller short whose notional at LP stays under 50k uses bracket 1 (MMR 0.4 %, cum 0):
    # LP = (10000 + 0.5 x 60000) / (0.5 x 1.004) = 79,681.27, a notional of 39,840.64.
    small = liquidation_price("short", D("0.5"), D("60000"), D("10000"), BTC)
    assert small.quantize(D("0.01")) == D("79681.27")
    assert bracket_for(D("0.5") * small, BTC) == BTC[0]


def test_isolated_long_matches_the_worked_example() -> None:
    # 0.1 BTC long at 60,000 with 600 margin (10x), tier 1:
    # LP = (600 - 0.1 x 60000) / (0.1 x 0.004 - 0.1) = 54,216.87
    lp = liquidation_price("long", D("0.1"), D("60000"), D("600"), BTC)
    assert lp.quantize(D("0.01")) == D("54216.87")


def test_overmargined_long_has_no_liquidation_price() -> None:
    assert liquidation_price("long", D("1"), D("100"), D("1000"), BTC) == 0


def test_bad_inputs_are_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="size"):
        liquidation_price("short", D("0"), D("100"), D("10"), BTC)
    with pytest.raises(ValueError, match="entry_price"):
        liquidation_price("short", D("1"), D("-1"), D("10"), BTC)
    with pytest.raises(ValueError):
        liquidation_price("sideways", D("1"), D("100"), D("10"), BTC)


def test_cross_margin_with_one_leg_equals_isolated_with_the_same_wallet() -> None:
    leg = Leg(PositionSide.SHORT, D("2"), D("30000"), D("0"))
    assert liquidation_price_of(D("15000"), [leg], BTC) == liquidation_price("short", D("2"), D("30000"), D("15000"), BTC)


def test_cross_margin_long_and_short_of_equal_size_are_far_from_liquidation() -> None:
    legs = [Leg(PositionSide.SHORT, D("1"), D("50000")), Leg(PositionSide.LONG, D("1"), D("50000"))]
    lp = liquidation_price_of(D("1000"), legs, BTC)
    assert lp is None or lp > D("100000")


def test_topup_moves_the_short_exactly_to_the_target_distance() -> None:
    short = Leg(PositionSide.SHORT, D("1"), D("50000"), D("16000"))
    mark = D("60000")
    lp = liquidation_price_of(short.margin, [short], BTC)
    assert distance_to_liquidation(PositionSide.SHORT, lp, mark) < D("0.20")
    need = short_topup_needed(short, [], short.margin, mark, D("0.35"), BTC, D("0.01"))
    topped = Leg(PositionSide.SHORT, short.size, short.entry_price, short.margin + need)
    distance = distance_to_liquidation(PositionSide.SHORT, liquidation_price_of(topped.margin, [topped], BTC), mark)
    assert distance is not None and D("0.35") <= distance < D("0.35") + D("0.0001")


@settings(max_examples=300, deadline=None)
@given(
    size=st.decimals(min_value=D("0.001"), max_value=D("2000"), places=3),
    entry=st.decimals(min_value=D("1000"), max_value=D("100000"), places=2),
    leverage=st.integers(min_value=1, max_value=50),
    side=st.sampled_from(["long", "short"]),
)
def test_property_at_the_liquidation_price_equity_equals_maintenance_margin(
    size: Decimal, entry: Decimal, leverage: int, side: str
) -> None:
    margin = size * entry / leverage
    lp = liquidation_price(side, size, entry, margin, BTC)
    if lp == 0:
        return
    sign = 1 if side == "long" else -1
    equity = margin + sign * size * (lp - entry)
    assert abs(equity - maintenance_margin(size * lp, BTC)) <= D("1e-12") * size * lp
    # And where the leverage leaves initial margin above maintenance (as the
    # exchange's leverage caps ensure), it sits on the losing side of the entry.
    if 1 / D(leverage) > bracket_for(size * entry, BTC).maint_margin_rate * 2:
        assert (lp < entry) if side == "long" else (lp > entry)


def test_brackets_may_be_given_as_plain_tuples_in_any_order_and_numbers_as_ints() -> None:
    as_tuples = [(b.notional_floor, b.notional_cap, b.maint_margin_rate, b.maint_amount) for b in reversed(BTC)]
    assert liquidation_price("SHORT", 1, 60000, 20000, as_tuples) == liquidation_price("short", D("1"), D("60000"), D("20000"), BTC)
    with pytest.raises(ValueError, match="margin"):
        liquidation_price("short", D("1"), D("60000"), D("NaN"), BTC)


def test_the_nearer_of_two_liquidation_prices_is_the_one_guarded() -> None:
    # A net-long cross account: liquidated on a fall to about 42,000, and (through the top brackets) on an absurd rally.
    from hedgebot.domain.margin import liquidation_prices, nearer_liquidation

    legs = [Leg(PositionSide.LONG, D("1.3"), D("50000")), Leg(PositionSide.SHORT, D("1.1"), D("50000"))]
    below, above = liquidation_prices(D("2000"), legs, default_brackets("BTC"), D("50000"))
    assert below is not None and above is not None and above > D("1000000")
    price, distance = nearer_liquidation(D("2000"), legs, default_brackets("BTC"), D("50000"))
    assert price == below and distance == (D("50000") - below) / D("50000")
