"""The choice of a cheapest hedge: the contract whose carry pays its leg the most, another than the one it would
hold only for more than the threshold a year; an unknown carry never wins."""

from __future__ import annotations

from decimal import Decimal

from hedgebot.domain.basis import funding_annual_rate
from hedgebot.domain.choice import Carry, choose
from hedgebot.domain.model import PositionSide

D = Decimal
PERP, QUARTERLY = "BTC/USDT:USDT", "BTC/USDT:USDT-260327"


def _carries(perp: str | None, quarterly: str | None) -> list[Carry]:
    return [
        Carry(PERP, None if perp is None else D(perp), "funding"),
        Carry(QUARTERLY, None if quarterly is None else D(quarterly), "basis"),
    ]


def test_a_short_takes_the_higher_income_at_opening() -> None:
    assert choose(_carries("-0.05", "0.08"), PERP, PositionSide.SHORT, D(0)).symbol == QUARTERLY
    assert choose(_carries("0.30", "0.08"), PERP, PositionSide.SHORT, D(0)).symbol == PERP


def test_a_long_pays_the_rate_so_it_takes_the_lower_one() -> None:
    assert choose(_carries("0.30", "0.08"), PERP, PositionSide.LONG, D(0)).symbol == QUARTERLY


def test_the_contract_held_stays_unless_another_earns_more_than_the_threshold() -> None:
    below = choose(_carries("0.10", "0.08"), QUARTERLY, PositionSide.SHORT, D("0.02"))
    assert below.symbol == QUARTERLY and below.advantage == D("0.02") and "not above" in below.reason
    above = choose(_carries("0.1001", "0.08"), QUARTERLY, PositionSide.SHORT, D("0.02"))
    assert above.symbol == PERP and above.advantage == D("0.0201")


def test_a_tie_keeps_the_default_contract() -> None:
    assert choose(_carries("0.08", "0.08"), PERP, PositionSide.SHORT, D(0)).symbol == PERP


def test_an_unknown_carry_keeps_the_default_and_says_which_is_unknown() -> None:
    made = choose(_carries(None, "0.50"), QUARTERLY, PositionSide.SHORT, D(0))
    assert made.symbol == QUARTERLY and made.advantage is None and PERP in made.reason
    assert choose(_carries("0.9", None), QUARTERLY, PositionSide.SHORT, D(0)).symbol == QUARTERLY


def test_a_perpetuals_carry_is_its_settlements_at_their_own_pace_for_a_year() -> None:
    hourly = [(3600.0 * n, D("0.00001")) for n in range(10)]
    assert funding_annual_rate(hourly) == D("0.00001") * 24 * 365
    assert funding_annual_rate([]) is None
