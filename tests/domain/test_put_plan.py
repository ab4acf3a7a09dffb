"""The put planner's choice of expiry and strike, its sizing, and the short's cost beside it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hedgebot.domain.options import OptionKind, black_scholes
from hedgebot.domain.put_plan import NoSensibleQuote, PutQuote, limit_price, plan_puts, short_cost

D = Decimal
NOW = 1_000_000_000.0
DAY = 86400.0


def put(strike: int, days: float, iv: float | None = 0.5, mark: Decimal | None = None, step: str = "0.01", size: str = "1") -> PutQuote:
    expiry = NOW + days * DAY
    price = D(repr(black_scholes(OptionKind.PUT, 90000.0, float(strike), days / 365, iv or 0.5).price)) if mark is None else mark
    return PutQuote(f"P{strike}-{days:g}", D(strike), expiry, price, D(90000), iv, -0.2, D(size), D(step), False)


def test_the_first_expiry_covering_the_horizon_is_chosen_over_a_nearer_one_that_ends_too_soon() -> None:
    chain = [put(75000, 20), put(75000, 45), put(75000, 90)]
    plan = plan_puts(chain, D(90000), D(1), D("0.85"), 30, NOW)
    assert plan.pick.quote.symbol == "P75000-45" and plan.covers_horizon


def test_with_no_expiry_reaching_the_horizon_the_latest_is_used_and_the_plan_says_so() -> None:
    plan = plan_puts([put(75000, 7), put(75000, 14)], D(90000), D(1), D("0.85"), 30, NOW)
    assert plan.pick.quote.symbol == "P75000-14" and not plan.covers_horizon


@pytest.mark.parametrize(("floor", "strike"), [("0.85", 75000), ("0.9", 80000), ("0.7", 65000), ("0.95", 85000)])
def test_the_strike_nearest_floor_times_spot_is_picked(floor: str, strike: int) -> None:
    chain = [put(k, 40) for k in range(60000, 90000, 5000)]
    assert plan_puts(chain, D(90000), D(1), D(floor), 30, NOW).pick.quote.strike == strike


def test_contracts_are_rounded_down_to_the_step_so_no_more_is_insured_than_held() -> None:
    plan = plan_puts([put(75000, 40, step="1", size="0.01")], D(90000), D("1.2345"), D("0.85"), 30, NOW)
    assert plan.pick.contracts == 123 and plan.pick.protected == D(75000) * D("1.23")


def test_a_put_priced_at_its_own_volatility_reprices_to_its_mark() -> None:
    plan = plan_puts([put(75000, 40)], D(90000), D(1), D("0.85"), 30, NOW)
    assert abs(plan.pick.model_error) < D("0.0001")


@pytest.mark.parametrize(
    "bad",
    [put(75000, 40, mark=D(0)), put(75000, 40, iv=None), put(75000, 40, iv=0.0), put(75000, 40, iv=25.0),
     put(75000, 40, mark=D(80000)), put(75000, -1, mark=D(900))],
)
def test_a_chain_of_only_senseless_quotes_is_refused(bad: PutQuote) -> None:
    with pytest.raises(NoSensibleQuote):
        plan_puts([bad], D(90000), D(1), D("0.85"), 30, NOW)


def test_senseless_quotes_are_left_out_and_named() -> None:
    plan = plan_puts([put(75000, 40, mark=D(0)), put(80000, 40)], D(90000), D(1), D("0.85"), 30, NOW)
    assert plan.pick.quote.strike == 80000 and plan.unquoted == ("P75000-40",)


def test_the_premium_per_year_is_the_premium_over_spot_annualised() -> None:
    plan = plan_puts([put(75000, 73, mark=D(900))], D(90000), D(1), D("0.85"), 30, NOW)
    assert plan.pick.premium_per_year == D("0.05")  # 900 / 90000 x 365 / 73


def test_a_short_paid_by_positive_funding_expects_income_over_the_horizon() -> None:
    cost = short_cost(D(2), D(50000), [D("0.0001"), D("0.0003")], 8.0, 30, D(33000), D(70000))
    assert cost.expected_funding == D(100000) * D("0.0002") * 90
    assert short_cost(D(2), D(50000), [D("-0.0002")], 8.0, 30, D(0), None).expected_funding < 0


def test_a_purchase_is_limited_within_one_tick_above_the_mark_and_a_sale_within_one_below() -> None:
    assert limit_price(D("0.01950763"), D("0.0005"), "buy") == D("0.0200")
    assert limit_price(D("0.01950763"), D("0.0005"), "sell") == D("0.0195")
    assert limit_price(D("1920"), D("5"), "buy") == D("1920")


def test_no_price_is_offered_above_the_premium_cap_or_on_a_senseless_mark() -> None:
    assert limit_price(D("0.0196"), D("0.0005"), "buy", most=D("0.0199")) is None
    assert limit_price(D("0"), D("0.0005"), "buy") is None
    assert limit_price(D("NaN"), D("0.0005"), "sell") is None
    assert limit_price(D("0.0002"), D("0.0005"), "sell") is None  # rounds to zero: nothing to sell at
