"""The paper venue's quarterly contracts: listed by Binance's calendar, priced from spot with a decaying basis,
without funding, closed to orders before delivery, and settled at the delivery price."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from hedgebot.clock import SimClock
from hedgebot.domain.model import OrderSide, PositionSide
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.funding import ConstantFunding
from hedgebot.exchange.paper import PRE_DELIVERY_SECONDS, PaperMarket, PaperVenue
from hedgebot.exchange.port import InvalidOrder, OrderRequest

D = Decimal
PERP = "BTC/USDT:USDT"
MARCH = datetime(2026, 3, 27, 8, tzinfo=UTC).timestamp()  # the last Friday of March 2026, 08:00 UTC
JUNE = datetime(2026, 6, 26, 8, tzinfo=UTC).timestamp()


def _venue(start: float, *, basis: str | None = "0.10", symbol: str = PERP, futures: dict[str, str] | None = None) -> PaperVenue:
    market = default_market(symbol)
    assert market is not None
    clock = SimClock(start=start)
    venue = PaperVenue(
        clock, [PaperMarket(market, ConstantFunding(D("0.0001")), leverage=3, quarterlies=True,
                            quarterly_basis=D(basis) if basis is not None else None)],
        futures={k: D(v) for k, v in (futures or {"USDT": "100000"}).items()},
    )
    venue.update_price(symbol, start, D("50000"))
    return venue


async def _price(venue: PaperVenue, seconds: float, price: str, symbol: str = PERP) -> None:
    await venue.clock.advance(seconds)
    venue.update_price(symbol, venue.clock.now(), D(price), open_=D(price))


async def test_the_current_and_next_quarter_are_listed_with_their_delivery_dates_in_the_symbol() -> None:
    venue = _venue(datetime(2026, 1, 10, tzinfo=UTC).timestamp())
    contracts = await venue.fetch_delivery_contracts(PERP)
    assert [(c.symbol, c.expiry, c.tradable) for c in contracts] == [
        ("BTC/USDT:USDT-260327", MARCH, True), ("BTC/USDT:USDT-260626", JUNE, True),
    ]
    market = await venue.load_market("BTC/USDT:USDT-260327")
    assert market.expiry == MARCH and market.delivers and not (await venue.load_market(PERP)).delivers


async def test_coin_margined_quarterlies_are_named_after_the_inverse_market() -> None:
    venue = _venue(datetime(2026, 1, 10, tzinfo=UTC).timestamp(), symbol="BTC/USD:BTC", futures={"BTC": "1"})
    contracts = await venue.fetch_delivery_contracts("BTC/USD:BTC")
    assert [c.symbol for c in contracts] == ["BTC/USD:BTC-260327", "BTC/USD:BTC-260626"]
    assert (await venue.load_market(contracts[0].symbol)).inverse


async def test_a_quarterly_is_priced_above_spot_by_a_basis_that_decays_to_nothing_at_delivery() -> None:
    start = MARCH - 365 * 86_400 / 4  # a quarter of a year before delivery
    venue = _venue(start)
    await venue.fetch_delivery_contracts(PERP)
    far = (await venue.fetch_mark_price("BTC/USDT:USDT-260327")).price
    assert far == D("51250.00"), "10 % a year over a quarter: 2.5 % over spot"
    await _price(venue, MARCH - start - 7200, "50000")
    near = (await venue.fetch_mark_price("BTC/USDT:USDT-260327")).price
    assert D("50000") < near < D("50002"), "two hours before delivery the basis is almost gone"


async def test_a_quarterly_basis_can_be_derived_from_the_funding_file() -> None:
    venue = _venue(datetime(2026, 1, 10, tzinfo=UTC).timestamp(), basis=None)
    # 0.01 % every 8 hours is 10.95 % a year.
    assert venue.annual_basis_of(PERP) == D("0.0001") * 3 * 365


async def test_a_quarterly_short_pays_and_receives_no_funding() -> None:
    venue = _venue(datetime(2026, 1, 10, tzinfo=UTC).timestamp())
    symbol = (await venue.fetch_delivery_contracts(PERP))[0].symbol
    await venue.place_order(OrderRequest("q1", symbol, OrderSide.SELL, D("1"), PositionSide.SHORT))
    cash = venue.cash["USDT"]
    for _ in range(6):
        await _price(venue, 8 * 3600, "50000")
    assert not [e for e in venue.events if e.kind == "funding" and e.symbol == symbol]
    assert venue.cash["USDT"] == cash


async def test_every_order_is_refused_in_the_pre_delivery_window_and_the_contract_shows_untradable() -> None:
    venue = _venue(MARCH - PRE_DELIVERY_SECONDS - 600)
    symbol = "BTC/USDT:USDT-260327"
    await venue.fetch_delivery_contracts(PERP)
    await venue.place_order(OrderRequest("q1", symbol, OrderSide.SELL, D("1"), PositionSide.SHORT))
    await _price(venue, 600, "50000")
    listed = {c.symbol: c.tradable for c in await venue.fetch_delivery_contracts(PERP)}
    assert listed[symbol] is False
    for side in (OrderSide.SELL, OrderSide.BUY):  # neither growing nor closing the leg
        with pytest.raises(InvalidOrder, match="PRE_DELIVERING"):
            await venue.place_order(OrderRequest(f"q-{side}", symbol, side, D("0.1"), PositionSide.SHORT))
    assert (await venue.fetch_legs(symbol)).short.size == D("1")


async def test_a_short_still_held_at_delivery_is_settled_at_the_delivery_price_into_the_wallet() -> None:
    venue = _venue(MARCH - 86_400)
    symbol = "BTC/USDT:USDT-260327"
    await venue.fetch_delivery_contracts(PERP)
    sold = await venue.place_order(OrderRequest("q1", symbol, OrderSide.SELL, D("2"), PositionSide.SHORT))
    cash = venue.cash["USDT"]
    await _price(venue, 86_400, "48000")  # the candle that opens at delivery
    assert (await venue.fetch_legs(symbol)).short.size == 0, "the leg is gone"
    fee = (D("2") * D("48000") * venue.markets[symbol].market.taker_fee).quantize(D("1e-8"))
    assert venue.cash["USDT"] == cash + D("2") * (sold.average_price - D("48000")) - fee
    delivered = [e for e in venue.events if e.kind == "delivery"]
    assert [(e.symbol, e.amount, e.price) for e in delivered] == [(symbol, D("2"), D("48000"))]
    assert symbol not in [c.symbol for c in await venue.fetch_delivery_contracts(PERP)], "a delivered contract is not listed"
    with pytest.raises(InvalidOrder, match="delivered"):
        await venue.place_order(OrderRequest("q2", symbol, OrderSide.SELL, D("1"), PositionSide.SHORT))


async def test_a_restarted_paper_account_keeps_its_quarterly_legs() -> None:
    venue = _venue(datetime(2026, 1, 10, tzinfo=UTC).timestamp())
    symbol = (await venue.fetch_delivery_contracts(PERP))[1].symbol
    await venue.place_order(OrderRequest("q1", symbol, OrderSide.SELL, D("1.5"), PositionSide.SHORT))
    again = _venue(venue.clock.now())
    again.restore(venue.to_dict())
    assert (await again.fetch_legs(symbol)).short.size == D("1.5")
    assert (await again.load_market(symbol)).expiry == JUNE
