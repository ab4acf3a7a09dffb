"""A coin-margined (inverse) perpetual short: a holder of coins only hedges them with the coins themselves as margin."""

from __future__ import annotations

from decimal import Decimal

from hedgebot.clock import SimClock
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.funding import ConstantFunding
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from tests.helpers import D, hedge_config

COINM = "BTC/USD:BTC"


async def coin_only_holder(leverage: int = 1, rate: str = "0.0001") -> tuple[Keeper, PaperVenue, SimClock]:
    """10 BTC in spot and nothing else; the short on Binance COIN-M's BTCUSD perpetual (contracts of 100 USD)."""
    clock = SimClock(start=1_600_000_000.0)
    market = default_market(COINM)
    assert market is not None and market.inverse
    venue = PaperVenue(clock, [PaperMarket(market, ConstantFunding(D(rate)))], spot={"BTC": D(10)}, futures={})
    venue.update_price(COINM, clock.now(), D(30000))
    journal = Journal(":memory:", clock)
    hedge = hedge_config(symbol=COINM, instrument="coinm-perp", leverage=leverage, max_order=D(20), min_order=D("0.001"),
                         margin_guard={"sources": ["futures_wallet", "spot_stablecoin"]})
    keeper = Keeper("main", hedge, venue, clock, journal, EventLog(journal, NullLogger()))
    await keeper.prepare()
    return keeper, venue, clock


async def move(keeper: Keeper, venue: PaperVenue, clock: SimClock, price: str) -> None:
    await clock.advance(600)
    venue.update_price(COINM, clock.now(), D(price), high=D(price), low=D(price))
    for _ in range(4):
        await keeper.tick()


def dollar_value(venue: PaperVenue, price: Decimal) -> Decimal:
    """The account's whole value in dollars: its spot coins and its COIN-M wallet with the legs' PnL."""
    from hedgebot.domain.margin import INVERSE

    legs = venue._legs_of(COINM)
    equity = venue.cash.get("BTC", D(0)) + sum((s.margin for s in venue.legs.values()), D(0))
    equity += INVERSE.pnl(legs.short, price) + INVERSE.pnl(legs.long, price)
    return (venue.spot.get("BTC", D(0)) + equity) * price


async def test_a_coin_only_holder_is_hedged_at_1x_with_the_coins_as_margin_and_no_rally_liquidates_it() -> None:
    keeper, venue, clock = await coin_only_holder()
    await move(keeper, venue, clock, "30000")
    assert keeper.status.exposure is not None and abs(keeper.status.exposure - D(10)) < D("0.01")
    assert abs(keeper.status.short - D(10)) <= D("0.2")  # in coins, within the band: 3,000 contracts of 100 USD
    assert venue.spot.get("BTC", D(0)) < D(1)  # the coins went to the COIN-M wallet as margin; none was sold
    start = dollar_value(venue, D(30000))
    for price in ("45000", "90000", "150000", "12000", "30000"):  # a rally to 5x and a crash, no deposit anywhere
        await move(keeper, venue, clock, price)
        assert [e for e in venue.events if e.kind == "liquidation"] == [], price
        # The dollar value stays where it was, less fees and funding (received here: shorts are paid).
        assert abs(dollar_value(venue, D(price)) - start) < start * D("0.01"), (price, dollar_value(venue, D(price)))
    assert not [o for o in venue.orders.values() if ":" not in o.symbol]  # no spot sale


async def test_funding_and_fees_of_an_inverse_leg_are_paid_in_coins() -> None:
    keeper, venue, clock = await coin_only_holder(rate="0.0001")
    await move(keeper, venue, clock, "30000")
    [fill] = [o for o in venue.orders.values()]
    assert fill.fee < D("0.01")  # 0.05 % of about 10 BTC: coins, not dollars
    for _ in range(50):
        await move(keeper, venue, clock, "30000")  # past a funding settlement (every 8 hours)
    payments = [e for e in venue.events if e.kind == "funding"]
    assert payments and all(abs(p.amount) < D("0.01") for p in payments)  # 0.01 % of 10 BTC, in BTC


async def test_at_2x_the_guard_tops_an_inverse_short_up_with_spot_coins_and_the_dollar_value_holds() -> None:
    keeper, venue, clock = await coin_only_holder(leverage=2)
    await move(keeper, venue, clock, "30000")
    assert venue.spot["BTC"] > D(4)  # half the coins back the short, the rest wait in spot
    start = dollar_value(venue, D(30000))
    for price in ("36000", "42000", "50000", "60000", "75000"):
        await move(keeper, venue, clock, price)
        assert [e for e in venue.events if e.kind == "liquidation"] == [], price
        assert keeper.status.distance is None or keeper.status.distance >= D("0.2"), (price, keeper.status.distance)
        assert abs(dollar_value(venue, D(price)) - start) < start * D("0.01"), price
    topups = [i for i in keeper.journal.intents() if i.kind in ("transfer", "margin") and i.detail["reason"] == "margin top-up"]
    assert topups and all(i.detail["asset"] == "BTC" for i in topups)  # the coins themselves are the margin


async def test_an_inverse_short_unwinds_in_slices_of_max_order_coins_and_sells_no_coin() -> None:
    from hedgebot.store.control import Request

    keeper, venue, clock = await coin_only_holder()
    await move(keeper, venue, clock, "30000")
    keeper.hedge = keeper.hedge.model_copy(update={"max_order": D(4)})  # 4 coins a slice: 1,200 contracts at 30,000
    said = await keeper._start_unwind(Request(0, "main", "btc", "unwind", {"sell_spot": True}, "test", "tester", 0.0, None, None, None))
    assert said.startswith("refused") and keeper.unwind is None  # its margin is the coins: none is sold
    await keeper._start_unwind(Request(1, "main", "btc", "unwind", {}, "test", "tester", 0.0, None, None, None))
    for _ in range(10):
        await move(keeper, venue, clock, "30000")
    assert venue._legs_of(COINM).short.size == 0
    slices = [o.amount for o in venue.orders.values() if o.side.value == "buy"]
    assert slices and max(slices) <= D(120000) and not [o for o in venue.orders.values() if ":" not in o.symbol]



def test_a_coin_margined_hedge_refuses_every_way_of_selling_its_coins_for_margin() -> None:
    import pytest

    for guard in ({"sources": ["futures_wallet", "sell_spot"]}, {"sources": ["sell_spot"], "fund_target_by_selling": True}):
        with pytest.raises(ValueError, match="selling them raises no margin"):
            hedge_config(symbol=COINM, instrument="coinm-perp", margin_guard=guard)
    with pytest.raises(ValueError, match="selling them raises no margin"):
        hedge_config(symbol=COINM, instrument="coinm-perp", until_sell_spot=True, until="2030-01-01T00:00:00Z")


async def test_opening_an_inverse_short_leaves_room_for_its_fee_in_coins_so_no_contract_is_bought_back() -> None:
    # The opening fee is paid in the hedged coins, which lowers the exposure and so the target: an order sized to the
    # target before its fee ends over it and would be bought back at once (a second order and fee for nothing).
    keeper, venue, clock = await coin_only_holder(leverage=2)
    await move(keeper, venue, clock, "30000")
    await move(keeper, venue, clock, "30000")
    orders = list(venue.orders.values())
    assert [(o.side.value, o.position_side.value) for o in orders] == [("sell", "short")], [(o.side, o.amount) for o in orders]
    # At the target within what the fill's distance from the mark cost in coins: under twice the fee (0.1 %).
    assert keeper.status.drift is not None and keeper.status.target is not None
    assert abs(keeper.status.drift) <= D("0.001") * keeper.status.target, (keeper.status.drift, keeper.status.target)
