"""The settle delay (how long lookups and histories may lag) is measured on the wall clock; a forward step of
the wall clock (NTP correcting a resumed VM: the daemon raises clock_step and carries on) uses it up at once."""

from __future__ import annotations

from typing import Any

import pytest

from hedgebot.clock import SimClock
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.funding import ConstantFunding
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from tests.engine.test_keeper import SpotSaleAnsweredLate
from tests.helpers import D, SYMBOL, SteppedWallClock, btc_market, hedge_config


class HistoryLagsToo(SpotSaleAnsweredLate):
    """The lost-answer sale of SpotSaleAnsweredLate, whose order history lags like its lookups (40 s, exchange time)."""

    async def fetch_order_history(self, symbol: str, since: float, until: float) -> Any:
        history = await self.inner.fetch_order_history(symbol, since, until)
        now = self.inner.clock.now()
        shown = tuple(o for o in history.orders if now >= self.hidden_until.get(o.client_id, 0.0))
        return type(history)(shown, history.complete)


@pytest.mark.parametrize("step", [0.0, 120.0], ids=["no-step", "wall-clock-stepped-120s-forward"])
async def test_a_margin_sale_whose_answer_was_lost_is_sold_once_even_if_the_wall_clock_steps_forward(step: float) -> None:
    exchange_clock = SimClock(start=1_600_000_000.0)
    wall = SteppedWallClock(exchange_clock)
    venue = PaperVenue(exchange_clock, [PaperMarket(btc_market(), ConstantFunding(D("0.0001")))],
                       spot={"BTC": D("2")}, futures={"USDT": D("34000")})
    venue.update_price(SYMBOL, exchange_clock.now(), D("50000"))
    journal = Journal(":memory:", wall)
    port = HistoryLagsToo(venue)
    hedge = hedge_config(margin_guard={"sources": ["futures_wallet", "sell_spot"]})
    keeper = Keeper("acct", hedge, port, wall, journal, EventLog(journal, NullLogger()))
    await keeper.prepare()
    await keeper.tick()
    for number in range(15):
        await exchange_clock.advance(10)
        venue.update_price(SYMBOL, exchange_clock.now(), D("60000"), high=D("60000"))
        await keeper.tick()
        if port.sales and number == 1:
            wall.step = step  # seconds after the sale's answer was lost, NTP steps this machine's clock
    statuses = [(i.detail.get("symbol"), i.detail.get("side"), i.status.value) for i in journal.intents() if i.kind == "order"]
    assert len(port.sales) == 1, (
        f"the margin sale went out {len(port.sales)} times {port.sales} after a {step:.0f}s forward step: "
        f"{statuses} (the first sale 'proven absent' while the exchange's lookups and history still lag: 40 s, settle delay 60 s)"
    )
