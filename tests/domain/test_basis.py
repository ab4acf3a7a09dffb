"""The carry of a hedge's instrument: a modelled basis that decays to zero at delivery, and funding as a yearly rate."""

from __future__ import annotations

from hedgebot.domain.basis import (
    annual_basis,
    annual_basis_from_funding,
    modelled_future_price,
    short_carry,
    years_left,
)
from tests.helpers import D

YEAR = 365 * 86_400.0


def test_the_modelled_future_converges_to_spot_at_delivery() -> None:
    assert modelled_future_price(D("50000"), now=0.0, expiry=YEAR / 4, annual_basis=D("0.08")) == D("51000")
    assert modelled_future_price(D("50000"), now=YEAR / 4, expiry=YEAR / 4, annual_basis=D("0.08")) == D("50000")
    assert modelled_future_price(D("50000"), now=YEAR, expiry=YEAR / 4, annual_basis=D("0.08")) == D("50000")


def test_the_basis_of_a_quoted_future_is_read_back_per_year() -> None:
    assert annual_basis(D("51000"), D("50000"), now=0.0, expiry=YEAR / 4) == D("0.08")
    assert annual_basis(D("51000"), D("50000"), now=YEAR, expiry=YEAR / 4) is None
    assert years_left(0.0, YEAR / 2) == D("0.5")


def test_funding_of_a_hundredth_percent_every_eight_hours_is_ten_point_95_percent_a_year() -> None:
    assert annual_basis_from_funding([D("0.0001")] * 9) == D("0.1095")
    assert annual_basis_from_funding([]) == 0


def test_a_short_earns_a_positive_carry_and_pays_a_negative_one() -> None:
    assert short_carry(D("100000"), D("0.08"), D("0.25")) == D("2000")
    assert short_carry(D("100000"), D("-0.02"), D("1")) == D("-2000")


def test_a_funding_historys_interval_is_its_own_spacing_and_a_spacing_under_an_hour_is_not_believed() -> None:
    from hedgebot.domain.basis import settlement_interval_hours

    four_hourly = [(t * 4 * 3600.0, D("0.0001")) for t in range(10)]
    assert settlement_interval_hours(four_hourly) == D(4)
    assert settlement_interval_hours([(0.0, D("0.0001"))]) == D(8)
    assert settlement_interval_hours([(0.0, D("0.0001")), (1.0, D("0.0001"))]) == D(8)


def test_a_legs_carrying_cost_is_received_by_a_short_paid_by_a_long_and_counted_over_its_horizon() -> None:
    from hedgebot.domain.basis import carrying_cost
    from hedgebot.domain.model import PositionSide

    short = carrying_cost(D(100_000), D("0.1095"), PositionSide.SHORT, "test", horizon_years=D("0.5"))
    assert short.per_year == D("10950.0000") and short.over_horizon == D("5475.00000")
    long = carrying_cost(D(100_000), D("0.1095"), PositionSide.LONG, "test")
    assert long.per_year == D("-10950.0000") and long.over_horizon is None
