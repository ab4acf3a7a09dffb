"""What an action whose outcome is not known yet is taken to have done, for the plan made meanwhile."""

from __future__ import annotations

from hedgebot.domain.in_flight import as_if_carried_out
from hedgebot.domain.model import OrderSide, PlaceOrder, PositionSide
from tests.helpers import D, short_leg, snapshot


def test_a_short_bought_back_at_a_loss_in_flight_leaves_the_loss_out_of_the_free_balance() -> None:
    before = snapshot(short=short_leg("2", entry="50000"), mark_price=D(60000), previous_price=D(60000), futures_free=D(1000))
    margin = before.short.margin
    buy_back = PlaceOrder(OrderSide.BUY, D("1"), PositionSide.SHORT, True, "lockstep")
    after = as_if_carried_out(before, [buy_back])
    # Half the isolated margin is freed, and the 10,000 lost on the coin bought back is realised out of it.
    assert after.short.size == D(1) and abs(after.futures_free - (D(1000) + margin / 2 - D(10000))) < D("1e-18")
    assert after.futures_wallet == before.futures_wallet - D(10000)
