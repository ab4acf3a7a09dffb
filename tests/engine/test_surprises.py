"""The surprise watch names why the short moved without an order of ours, whichever report comes first."""

from __future__ import annotations

from hedgebot.domain.model import Leg, PositionSide
from hedgebot.engine.surprises import ADL, UNKNOWN, ShortWatch
from tests.helpers import D, short_leg, snapshot


def _closed_whole_at(mark: str) -> tuple[ShortWatch, object]:
    watch = ShortWatch()
    assert watch.check(snapshot(short=short_leg("1", entry="50000")), None, liquidated=False) is None
    # The exchange's own report of the auto-deleveraging has not arrived yet: polling sees the short gone first.
    return watch, watch.check(snapshot(mark_price=D(mark), short=Leg(PositionSide.SHORT)), D("66000"), liquidated=False)


def test_a_short_in_profit_closed_whole_before_the_exchange_reports_it_is_named_auto_deleveraging() -> None:
    _watch, surprise = _closed_whole_at("45000")
    assert surprise is not None and surprise.cause == ADL, surprise
    assert "entry 50000" in surprise.explanation and "closed whole" in surprise.explanation


def test_a_short_at_a_loss_closed_whole_below_its_liquidation_price_is_not_blamed_on_the_exchange() -> None:
    _watch, surprise = _closed_whole_at("52000")
    assert surprise is not None and surprise.cause == UNKNOWN, surprise
