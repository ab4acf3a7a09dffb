"""The paper venue behaves as the exchange does where a hedge cares."""

from __future__ import annotations

import pytest

from hedgebot.clock import SimClock
from hedgebot.domain.margin import liquidation_price, liquidation_price_of
from hedgebot.domain.model import MarginMode, OrderSide, PositionMode, PositionSide, Wallet
from hedgebot.exchange.funding import ConstantFunding, ReplayFunding
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.exchange.port import DuplicateClientId, FundsQuery, InsufficientFunds, InvalidOrder, ModeError, OrderRequest
from tests.helpers import D, SYMBOL, btc_market

START = 1_600_000_000.0  # 8 h funding boundaries fall at multiples of 28,800 s
NEXT_FUNDING = 1_600_012_800.0


def venue(
    *, mode: MarginMode = MarginMode.ISOLATED, leverage: int = 3, futures: str = "100000",
    position_mode: PositionMode = PositionMode.HEDGE, funding=None,
) -> PaperVenue:
    clock = SimClock(start=START)
    v = PaperVenue(
        clock,
        [PaperMarket(btc_market(), funding or ConstantFunding(D("0.0001")), leverage=leverage, margin_mode=mode)],
        spot={"BTC": D("2"), "USDT": D("1000")},
        futures={"USDT": D(futures)},
        slippage=D("0"),
        position_mode=position_mode,
    )
    v.update_price(SYMBOL, START, D("50000"))
    return v


def order(cid: str, side: OrderSide, amount: str, position_side: PositionSide | None = PositionSide.SHORT, symbol: str = SYMBOL) -> OrderRequest:
    return OrderRequest(cid, symbol, side, D(amount), position_side)


async def test_hedge_mode_keeps_long_and_short_legs_independent() -> None:
    v = venue()
    await v.place_order(order("a", OrderSide.SELL, "1"))
    await v.place_order(order("b", OrderSide.BUY, "0.4", PositionSide.LONG))
    legs = await v.fetch_legs(SYMBOL)
    assert (legs.short.size, legs.long.size) == (D("1"), D("0.4"))
    assert legs.short.margin == D("50000") / 3 and legs.long.margin == D("0.4") * D("50000") / 3


async def test_one_way_mode_refuses_an_order_naming_a_position_side() -> None:
    v = venue(position_mode=PositionMode.ONE_WAY)
    with pytest.raises(InvalidOrder, match="one-way mode"):
        await v.place_order(order("a", OrderSide.SELL, "1"))


async def test_position_mode_cannot_change_while_a_position_is_open() -> None:
    v = venue(position_mode=PositionMode.ONE_WAY)
    await v.place_order(order("a", OrderSide.SELL, "0.5", None))
    with pytest.raises(ModeError, match="positions are open"):
        await v.set_position_mode(PositionMode.HEDGE)
    assert await v.fetch_position_mode() is PositionMode.ONE_WAY


async def test_opening_posts_margin_and_charges_the_taker_fee() -> None:
    v = venue()
    result = await v.place_order(order("a", OrderSide.SELL, "1"))
    fee = D("50000") * btc_market().taker_fee
    assert result.fee == fee
    balance = await v.fetch_futures_balance("USDT")
    assert balance.wallet == D("100000") - fee
    assert balance.free == D("100000") - D("50000") / 3 - fee


async def test_closing_a_short_realizes_its_pnl_and_releases_its_margin() -> None:
    v = venue()
    await v.place_order(order("a", OrderSide.SELL, "1"))
    v.update_price(SYMBOL, START + 60, D("45000"))
    await v.place_order(order("b", OrderSide.BUY, "1"))
    fees = (D("50000") + D("45000")) * btc_market().taker_fee
    assert v.cash["USDT"] == D("100000") + D("5000") - fees
    assert (await v.fetch_legs(SYMBOL)).short.size == 0


async def test_an_order_beyond_free_margin_is_rejected_and_nothing_changes() -> None:
    v = venue(futures="1000")
    with pytest.raises(InsufficientFunds, match="margin"):
        await v.place_order(order("a", OrderSide.SELL, "1"))
    assert (await v.fetch_legs(SYMBOL)).short.size == 0 and v.cash["USDT"] == D("1000")


async def test_closing_more_than_the_leg_is_rejected() -> None:
    v = venue()
    await v.place_order(order("a", OrderSide.SELL, "0.5"))
    with pytest.raises(InvalidOrder, match="exceeds"):
        await v.place_order(order("b", OrderSide.BUY, "0.6"))


async def test_market_rules_are_enforced() -> None:
    v = venue()
    with pytest.raises(InvalidOrder, match="step"):
        await v.place_order(order("a", OrderSide.SELL, "0.0015"))
    with pytest.raises(InvalidOrder, match="minimum"):
        await v.place_order(order("b", OrderSide.SELL, "0.001"))  # 50 USDT < 100 minimum notional


async def test_a_reused_client_id_executes_again_as_on_binance() -> None:
    # Binance keeps newClientOrderId unique among open orders only, and a market order is never left open.
    v = venue()
    await v.place_order(order("same", OrderSide.SELL, "0.1"))
    await v.place_order(order("same", OrderSide.SELL, "0.1"))
    assert (await v.fetch_legs(SYMBOL)).short.size == D("0.2")
    assert sorted(v.orders) == ["same", "same#1"], "both executions stay on record"


async def test_funding_equals_notional_at_mark_times_rate_for_each_leg() -> None:
    v = venue(mode=MarginMode.CROSS)
    await v.place_order(order("s", OrderSide.SELL, "2"))
    await v.place_order(order("l", OrderSide.BUY, "0.5", PositionSide.LONG))
    cash_before = v.cash["USDT"]
    marks = [D("51000"), D("52500"), D("49000")]
    for i, mark in enumerate(marks):
        # Each candle opens at the settlement (the mark used), closes 1 h later.
        t = NEXT_FUNDING + i * 28_800
        v.update_price(SYMBOL, t + 3600, mark + 10, open_=mark)
    rate = D("0.0001")
    short_received = sum(D("2") * m * rate for m in marks)
    long_paid = sum(D("0.5") * m * rate for m in marks)
    by_leg = {side: sum(e.amount for e in v.events if e.kind == "funding" and e.side == side) for side in ("short", "long")}
    assert by_leg == {"short": short_received, "long": -long_paid}
    assert v.cash["USDT"] - cash_before == short_received - long_paid


async def test_isolated_funding_settles_into_the_legs_own_margin() -> None:
    v = venue(mode=MarginMode.ISOLATED)
    await v.place_order(order("s", OrderSide.SELL, "1"))
    margin = (await v.fetch_legs(SYMBOL)).short.margin
    v.update_price(SYMBOL, NEXT_FUNDING + 60, D("50000"), open_=D("50000"))
    assert (await v.fetch_legs(SYMBOL)).short.margin == margin + D("50000") * D("0.0001")


async def test_replayed_funding_uses_the_files_rates_at_their_times() -> None:
    rows = [(NEXT_FUNDING, D("0.0003")), (NEXT_FUNDING + 28_800, D("-0.0002"))]
    v = venue(mode=MarginMode.CROSS, funding=ReplayFunding(rows))
    await v.place_order(order("s", OrderSide.SELL, "1"))
    v.update_price(SYMBOL, NEXT_FUNDING + 30_000, D("50000"), open_=D("50000"))
    payments = [e.amount for e in v.events if e.kind == "funding"]
    assert payments == [D("50000") * D("0.0003"), D("50000") * D("-0.0002")]


async def test_an_isolated_short_is_liquidated_at_the_formula_price_when_a_candle_high_reaches_it() -> None:
    v = venue()
    await v.place_order(order("s", OrderSide.SELL, "1"))
    leg = (await v.fetch_legs(SYMBOL)).short
    expected = liquidation_price("short", leg.size, leg.entry_price, leg.margin, btc_market().brackets)
    cash = v.cash["USDT"]
    # The candle closes calmly, but its high touched the liquidation price first.
    v.update_price(SYMBOL, START + 3600, D("52000"), open_=D("50000"), high=expected + 1, low=D("49900"))
    liquidations = [e for e in v.events if e.kind == "liquidation"]
    assert [(e.side, e.amount, e.price) for e in liquidations] == [("short", D("1"), expected)]
    assert (await v.fetch_legs(SYMBOL)).short.size == 0
    assert v.cash["USDT"] == cash  # the isolated margin is lost, the rest of the wallet is not


async def test_a_short_just_below_its_liquidation_price_survives() -> None:
    v = venue()
    await v.place_order(order("s", OrderSide.SELL, "1"))
    leg = (await v.fetch_legs(SYMBOL)).short
    expected = liquidation_price("short", leg.size, leg.entry_price, leg.margin, btc_market().brackets)
    v.update_price(SYMBOL, START + 3600, expected - 1, high=expected - D("0.5"))
    assert not [e for e in v.events if e.kind == "liquidation"]


async def test_cross_legs_are_liquidated_when_equity_falls_to_maintenance() -> None:
    v = venue(mode=MarginMode.CROSS, futures="20000")
    await v.place_order(order("s", OrderSide.SELL, "1"))
    lp = liquidation_price_of(v.cash["USDT"], [(await v.fetch_legs(SYMBOL)).short], btc_market().brackets)
    v.update_price(SYMBOL, START + 1800, lp - 1)
    assert not [e for e in v.events if e.kind == "liquidation"]
    v.update_price(SYMBOL, START + 3600, lp + 1)
    assert [e.kind for e in v.events if e.kind == "liquidation"] == ["liquidation"]
    assert v.cash["USDT"] >= 0 and (await v.fetch_legs(SYMBOL)).short.size == 0


async def test_adding_margin_moves_the_liquidation_price_away() -> None:
    v = venue()
    await v.place_order(order("s", OrderSide.SELL, "1"))
    before = (await v.fetch_legs(SYMBOL)).short
    await v.adjust_margin(SYMBOL, PositionSide.SHORT, D("5000"))
    after = (await v.fetch_legs(SYMBOL)).short
    brackets = btc_market().brackets
    assert after.margin == before.margin + 5000
    assert liquidation_price("short", after.size, after.entry_price, after.margin, brackets) > liquidation_price(
        "short", before.size, before.entry_price, before.margin, brackets
    )
    found = await v.find_funds_movement(FundsQuery("margin", "USDT", D("5000"), START - 60, START + 60))
    assert found is not None and found.amount == D("5000")
    # Like Binance, the history answers by asset, amount and time: a movement already owned is not found twice.
    assert await v.find_funds_movement(FundsQuery("margin", "USDT", D("5000"), START - 60, START + 60, claimed=frozenset({found.venue_id}))) is None


async def test_transfers_move_stablecoin_between_wallets() -> None:
    v = venue()
    await v.transfer("USDT", D("400"), Wallet.SPOT, Wallet.FUTURES)
    assert v.spot["USDT"] == D("600") and v.cash["USDT"] == D("100400")
    with pytest.raises(InsufficientFunds):
        await v.transfer("USDT", D("601"), Wallet.SPOT, Wallet.FUTURES)


async def test_selling_spot_turns_the_coin_into_stablecoin_less_the_fee() -> None:
    v = venue()
    result = await v.place_order(order("x", OrderSide.SELL, "0.5", None, symbol="BTC/USDT"))
    assert v.spot["BTC"] == D("1.5")
    assert v.spot["USDT"] == D("1000") + D("25000") - result.fee


async def test_state_survives_save_and_restore(tmp_path) -> None:
    v = venue()
    v.state_path = tmp_path / "venue.json"
    await v.place_order(order("s", OrderSide.SELL, "1"))
    await v.adjust_margin(SYMBOL, PositionSide.SHORT, D("100"))
    again = PaperVenue(SimClock(START), [PaperMarket(btc_market())], state_path=tmp_path / "venue.json")
    assert again.load()
    assert await again.fetch_legs(SYMBOL) == await v.fetch_legs(SYMBOL)
    assert await again.fetch_order(SYMBOL, "s") == await v.fetch_order(SYMBOL, "s")
    assert again.cash == v.cash and again.spot == v.spot
    assert await again.fetch_margin_mode(SYMBOL) is MarginMode.ISOLATED and await again.fetch_leverage(SYMBOL) == 3
    await again.place_order(order("s", OrderSide.SELL, "1"))  # the id is free again, as on Binance
    assert sorted(again.orders) == ["s", "s#1"], "the restored order stays on record beside the new one"


def test_absurd_prices_are_refused() -> None:
    v = venue()
    for bad in (D(0), D(-1), D("NaN")):
        with pytest.raises(Exception, match="absurd"):
            v.update_price(SYMBOL, START + 1, bad)
    assert v.marks[SYMBOL][0] == D("50000")




async def test_hedge_mode_refuses_reduce_only_as_binance_does() -> None:
    v = venue()
    await v.place_order(order("s", OrderSide.SELL, "1"))
    with pytest.raises(InvalidOrder, match="reduceOnly"):
        await v.place_order(OrderRequest("r", SYMBOL, OrderSide.BUY, D("0.5"), PositionSide.SHORT, reduce_only=True))
    assert (await v.fetch_legs(SYMBOL)).short.size == D("1")
    # The hedge-mode way to close: BUY on the SHORT position side.
    await v.place_order(order("c", OrderSide.BUY, "0.5"))
    assert (await v.fetch_legs(SYMBOL)).short.size == D("0.5")


async def test_isolated_margin_cannot_be_removed_below_initial_margin() -> None:
    v = venue()
    await v.place_order(order("s", OrderSide.SELL, "1"))
    await v.adjust_margin(SYMBOL, PositionSide.SHORT, D("5000"))
    with pytest.raises(InsufficientFunds, match="initial margin"):
        await v.adjust_margin(SYMBOL, PositionSide.SHORT, D("-5000.01"))
    await v.adjust_margin(SYMBOL, PositionSide.SHORT, D("-5000"))
    assert (await v.fetch_legs(SYMBOL)).short.margin == D("50000") / 3


async def test_a_partial_close_of_an_isolated_short_releases_its_share_of_margin() -> None:
    v = venue()
    await v.place_order(order("s", OrderSide.SELL, "1"))
    margin, cash = (await v.fetch_legs(SYMBOL)).short.margin, v.cash["USDT"]
    result = await v.place_order(order("c", OrderSide.BUY, "0.4"))
    assert (await v.fetch_legs(SYMBOL)).short.margin == margin * D("0.6")
    assert v.cash["USDT"] == cash + margin * D("0.4") - result.fee  # the price did not move: no PnL


async def test_unrealized_cross_profit_is_not_free_margin() -> None:
    # Binance counts unrealized losses against what is free but never lends the profit out: it can vanish.
    v = venue(mode=MarginMode.CROSS, futures="20000")
    await v.place_order(order("s", OrderSide.SELL, "1"))
    v.update_price(SYMBOL, START + 60, D("40000"))  # the short is 10,000 in profit
    free = (await v.fetch_futures_balance("USDT")).free
    assert free == v.cash["USDT"] - D("40000") / 3
