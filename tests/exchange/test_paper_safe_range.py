"""The paper venue tells a backtest over which prices a cross-margined short cannot be liquidated, so quiet candles
may be leapt over; the bound is the short's own liquidation price, never beyond it."""

from __future__ import annotations

from hedgebot.clock import SimClock
from hedgebot.domain.margin import rule_for
from hedgebot.domain.model import MarginMode, OrderSide, PositionSide
from hedgebot.exchange.funding import ConstantFunding
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.exchange.port import OrderRequest
from tests.helpers import D, SYMBOL, btc_market


async def test_a_cross_short_alone_is_safe_up_to_its_liquidation_price_even_where_quarterlies_are_listed() -> None:
    clock = SimClock(start=1_700_000_000.0)
    venue = PaperVenue(
        clock, [PaperMarket(btc_market(), ConstantFunding(D("0.0001")), margin_mode=MarginMode.CROSS, quarterlies=True)],
        futures={"USDT": D("20000")},
    )
    venue.update_price(SYMBOL, clock.now(), D("50000"))
    await venue.place_order(OrderRequest("c1", SYMBOL, OrderSide.SELL, D("1"), PositionSide.SHORT, False))
    legs = await venue.fetch_legs(SYMBOL)
    wallet = (await venue.fetch_futures_balance("USDT")).cross_wallet
    expected = rule_for(btc_market()).liquidation_price_of(wallet, [legs.short], btc_market().brackets)
    assert expected is not None and expected > D("50000")
    assert venue.safe_price_range(SYMBOL) == (None, expected)
