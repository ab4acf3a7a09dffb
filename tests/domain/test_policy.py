"""The policy: what to trade, in what order, and how much."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from hedgebot.domain.model import (
    AdjustMargin,
    HedgePolicy,
    Leg,
    MarginGuard,
    MarginMode,
    OrderSide,
    PlaceOrder,
    PositionSide,
    RaiseFromSpot,
    Snapshot,
    Transfer,
    Wallet,
    floor_to_step,
)
from hedgebot.domain.margin import liquidation_price_of, short_topup_needed
from hedgebot.domain.policy import plan
from tests.helpers import D, hedge_config, short_leg, snapshot

NOW = 1000.0


def policy(**overrides: object) -> HedgePolicy:
    base: dict[str, object] = {"ratio": D(1), "band": D("0.02"), "min_order": D("0.001"), "max_order": D("10")}
    base.update(overrides)
    return HedgePolicy(**base)  # type: ignore[arg-type]


def orders(p) -> list[PlaceOrder]:
    return [a for a in p.actions if isinstance(a, PlaceOrder)]


def test_hedge_is_established_from_zero_at_the_target_ratio() -> None:
    p = plan(snapshot(spot_asset=D("2.5")), policy(), NOW)
    assert [(o.side, o.position_side, o.amount, o.reduce) for o in orders(p)] == [
        (OrderSide.SELL, PositionSide.SHORT, D("2.500"), False)
    ]


def test_spot_increase_grows_the_short_by_the_difference() -> None:
    p = plan(snapshot(spot_asset=D("1.5"), short=short_leg("1")), policy(), NOW)
    assert [(o.side, o.amount) for o in orders(p)] == [(OrderSide.SELL, D("0.500"))]


def test_spot_decrease_reduces_short_before_topping_up_margin() -> None:
    # Short 1 BTC, spot fell to 0.5, and the short is also close to liquidation.
    risky = short_leg("1", entry="50000", margin="1500")
    p = plan(snapshot(spot_asset=D("0.5"), short=risky, mark_price=D("50000")), policy(), NOW)
    first = p.actions[0]
    assert isinstance(first, PlaceOrder)
    assert (first.side, first.position_side, first.reduce, first.amount) == (OrderSide.BUY, PositionSide.SHORT, True, D("0.5"))
    assert any(isinstance(a, AdjustMargin) for a in p.actions[1:])


def test_drift_inside_the_band_trades_nothing() -> None:
    p = plan(snapshot(spot_asset=D("1.015"), short=short_leg("1")), policy(band=D("0.02")), NOW)
    assert p.in_band and p.actions == ()


def test_half_ratio_keeps_half_of_the_exposure() -> None:
    p = plan(snapshot(spot_asset=D("3")), policy(ratio=D("0.5")), NOW)
    assert sum(o.amount for o in orders(p)) == D("1.5")


def test_offset_and_perp_long_count_as_exposure() -> None:
    long_leg = Leg(PositionSide.LONG, D("0.5"), D("50000"), D("0"))
    p = plan(snapshot(spot_asset=D("1"), long=long_leg), policy(offset=D("2"), include_perp_long=True), NOW)
    assert p.exposure == D("3.5") and sum(o.amount for o in orders(p)) == D("3.5")


def test_stale_price_trades_nothing() -> None:
    p = plan(snapshot(spot_asset=D("2"), price_time=NOW - 31), policy(staleness_seconds=30), NOW)
    assert p.actions == () and p.blocked is not None and "stale" in p.blocked


def test_absurd_prices_trade_nothing() -> None:
    for price in (D(0), D(-5), D("NaN"), D("Infinity")):
        p = plan(snapshot(spot_asset=D("2"), mark_price=price), policy(), NOW)
        assert p.actions == () and p.blocked is not None, price


def test_a_price_jump_beyond_the_guard_trades_nothing() -> None:
    p = plan(snapshot(spot_asset=D("2"), mark_price=D("80000"), previous_price=D("50000")), policy(max_jump=D("0.15")), NOW)
    assert p.actions == () and "jumped" in (p.blocked or "")


def test_drift_below_the_minimum_order_is_reported_not_traded() -> None:
    # 5% under-hedged but only 0.0005 BTC: below the 0.001 step / 100 USDT minimum.
    p = plan(snapshot(spot_asset=D("0.0105"), short=short_leg("0.010")), policy(band=D("0.02")), NOW)
    assert not p.in_band and orders(p) == [] and any("below the minimum" in n for n in p.notes)


def test_over_hedge_reduction_is_rounded_up_so_the_short_ends_at_or_below_target() -> None:
    p = plan(snapshot(spot_asset=D("0.9995"), short=short_leg("1.1")), policy(), NOW)
    total = sum(o.amount for o in orders(p))
    assert D("1.1") - total <= D("0.9995")


def test_short_with_no_exposure_is_closed() -> None:
    p = plan(snapshot(spot_asset=D("0"), short=short_leg("0.4")), policy(), NOW)
    assert [(o.side, o.amount) for o in orders(p)] == [(OrderSide.BUY, D("0.4"))]


def test_margin_comes_from_the_futures_wallet_first_then_spot_stablecoin() -> None:
    risky = short_leg("1", entry="50000", margin="1500")
    p = plan(snapshot(spot_asset=D("1"), short=risky, futures_free=D("1000"), spot_quote=D("100000")), policy(), NOW)
    transfer, add = p.actions[0], p.actions[1]
    assert isinstance(transfer, Transfer) and transfer.source.value == "spot"
    assert isinstance(add, AdjustMargin) and add.amount == D("1000") + transfer.amount


def test_no_margin_source_raises_a_critical_alert_and_the_plan_carries_on() -> None:
    risky = short_leg("1", entry="50000", margin="1500")
    p = plan(snapshot(spot_asset=D("1"), short=risky, futures_free=D("0"), spot_quote=D("0")), policy(), NOW)
    assert [a.code for a in p.alerts] == ["margin_unfunded"] and p.alerts[0].severity.value == "critical"


def test_under_hedge_without_margin_moves_stablecoin_from_spot_first() -> None:
    p = plan(snapshot(spot_asset=D("2"), futures_free=D("100"), spot_quote=D("50000")), policy(), NOW)
    assert isinstance(p.actions[0], Transfer) and p.actions[0].destination.value == "futures"


# ---- properties ---------------------------------------------------------------------

amounts = st.decimals(min_value=D("0"), max_value=D("50"), places=3, allow_nan=False, allow_infinity=False)
prices = st.decimals(min_value=D("100"), max_value=D("200000"), places=2, allow_nan=False, allow_infinity=False)
ratios = st.decimals(min_value=D("0"), max_value=D("1"), places=2)
bands = st.decimals(min_value=D("0.005"), max_value=D("0.5"), places=3)
max_orders = st.decimals(min_value=D("0.25"), max_value=D("10"), places=3)


def _apply(s: Snapshot, order: PlaceOrder) -> Snapshot:
    """Fill an order exactly, as far as sizes go (margin is plentiful here)."""
    size = s.short.size - order.amount if order.reduce else s.short.size + order.amount
    return replace(s, short=Leg(PositionSide.SHORT, size, s.mark_price, size * s.mark_price))


@settings(max_examples=200, deadline=None)
@given(spot=amounts, short=amounts, price=prices, ratio=ratios, band=bands, max_order=max_orders)
def test_property_orders_are_on_the_step_and_reductions_never_exceed_the_live_short(
    spot: Decimal, short: Decimal, price: Decimal, ratio: Decimal, band: Decimal, max_order: Decimal
) -> None:
    s = snapshot(spot_asset=spot, short=short_leg(str(short), entry=str(price), margin=str(short * price)), mark_price=price, futures_free=D("1e12"))
    p = plan(s, policy(ratio=ratio, band=band, max_order=max_order), NOW)
    step = s.market.amount_step
    reduced = D(0)
    for o in orders(p):
        assert o.amount > 0 and o.amount == floor_to_step(o.amount, step)
        # At most max_order, except where what a max_order slice would leave could not be traded on its
        # own: then the whole amount goes, over the cap by less than the market minimum (README, "Orders
        # the market can fill").
        assert o.amount <= max(max_order, step) or o.amount - max_order < s.market.min_tradeable(price)
        if o.reduce:
            assert o.position_side is PositionSide.SHORT and o.side is OrderSide.BUY
            reduced += o.amount
    assert reduced <= short


@settings(max_examples=200, deadline=None)
@given(spot=amounts, short=amounts, price=prices, ratio=ratios, band=bands, max_order=max_orders)
def test_property_never_net_short_beyond_the_band_after_a_rebalance(
    spot: Decimal, short: Decimal, price: Decimal, ratio: Decimal, band: Decimal, max_order: Decimal
) -> None:
    s = snapshot(spot_asset=spot, short=short_leg(str(short), entry=str(price), margin=str(short * price)), mark_price=price, futures_free=D("1e12"))
    pol = policy(ratio=ratio, band=band, max_order=max_order, guard=MarginGuard(enabled=False))
    over_hedged_at_start = short - ratio * spot > band * ratio * spot
    rebalancing = False
    for step_no in range(int(D("60") / max_order) + 10):
        p = plan(s, pol, NOW, rebalancing)
        todo = orders(p)
        if step_no == 0 and over_hedged_at_start:
            assert todo and todo[0].reduce, "an over-hedge is answered by reducing first"
        if not todo:
            break
        rebalancing = True
        s = _apply(s, todo[0])
    else:
        raise AssertionError("the keeper loop did not converge")
    lot = s.market.amount_step
    assert s.short.size <= ratio * spot * (1 + band) + lot


# ---- issue 7: the margin guard's sources, slicing and measurements ------------------


def guarded(**margin_guard: object) -> HedgePolicy:
    """Return the policy a config with this margin_guard section gives (max_order 5)."""
    return hedge_config(margin_guard=margin_guard).policy()


def test_margin_sources_are_used_in_the_configured_order() -> None:
    risky = short_leg("1", entry="50000", margin="1500")
    s = snapshot(spot_asset=D("1"), short=risky, futures_free=D("100000"), spot_quote=D("100000"))
    p = plan(s, guarded(sources=["spot_stablecoin", "futures_wallet"]), NOW)
    transfer, add = p.actions[0], p.actions[1]
    assert isinstance(transfer, Transfer) and transfer.source is Wallet.SPOT
    assert isinstance(add, AdjustMargin) and add.amount == transfer.amount, "spot stablecoin alone covers the need"


def test_a_disabled_guard_moves_no_money_even_to_grow_the_short() -> None:
    s = snapshot(spot_asset=D("2"), futures_free=D("100"), spot_quote=D("50000"))
    p = plan(s, guarded(enabled=False), NOW)
    assert [a for a in p.actions if isinstance(a, (Transfer, AdjustMargin, RaiseFromSpot))] == []
    assert [a.code for a in p.alerts] == ["under_hedged_no_margin"]


def test_a_net_long_cross_account_is_guarded_against_the_fall_that_would_liquidate_it() -> None:
    # 3 BTC long and 1 BTC short on a 12,000 USDT cross wallet: net long 2 BTC, liquidated on a fall.
    long_leg = Leg(PositionSide.LONG, D("3"), D("50000"))
    short = Leg(PositionSide.SHORT, D("1"), D("50000"))
    s = snapshot(
        spot_asset=D("1"), short=short, long=long_leg, margin_mode=MarginMode.CROSS,
        futures_wallet=D("12000"), futures_free=D("0"), spot_quote=D("200000"),
    )
    p = plan(s, guarded(), NOW)
    assert p.liquidation_price is not None and p.liquidation_price < s.mark_price
    assert p.distance is not None and D(0) < p.distance < D("0.20")
    transfers = [a for a in p.actions if isinstance(a, Transfer)]
    assert transfers and transfers[0].destination is Wallet.FUTURES
    wallet = s.futures_wallet + transfers[0].amount
    below = liquidation_price_of(wallet, [short, long_leg], s.market.brackets)
    assert below is not None and (s.mark_price - below) / s.mark_price >= D("0.35")


def test_max_order_below_the_market_minimum_raises_an_alert_instead_of_orders_the_venue_refuses() -> None:
    # 0.001 BTC at 50,000 is 50 USDT: below Binance's 100 USDT minimum notional.
    p = plan(snapshot(spot_asset=D("1")), policy(max_order=D("0.001")), NOW)
    assert orders(p) == []
    assert [(a.code, a.severity.value) for a in p.alerts] == [("order_below_minimum", "warning")]


def test_the_plan_holds_only_the_next_slice_and_counts_the_rest() -> None:
    p = plan(snapshot(spot_asset=D("1000"), futures_free=D("1e12")), policy(max_order=D("0.002")), NOW)
    assert [o.amount for o in orders(p)] == [D("0.002")]
    assert p.orders_remaining == 499_999


def test_a_large_rebalance_done_step_by_step_is_sliced_by_max_order() -> None:
    s = snapshot(spot_asset=D("2.3"))
    amounts: list[Decimal] = []
    rebalancing = False
    for _ in range(10):
        p = plan(s, policy(max_order=D("1")), NOW, rebalancing)
        if not orders(p):
            break
        if not amounts:
            assert p.orders_remaining == 2
        amounts.append(orders(p)[0].amount)
        s = _apply(s, orders(p)[0])
        rebalancing = True
    assert max(amounts) <= D("1") and sum(amounts) == D("2.3") and len(amounts) == 3


def test_a_shortfall_funded_only_in_part_still_raises_a_critical_alert() -> None:
    risky = short_leg("1", entry="50000", margin="1500")
    p = plan(snapshot(spot_asset=D("1"), short=risky, futures_free=D("1000"), spot_quote=D("0")), policy(), NOW)
    assert [(type(a), a.amount) for a in p.actions] == [(AdjustMargin, D("1000"))]
    assert [(a.code, a.severity.value) for a in p.alerts] == [("margin_unfunded", "critical")]


def test_sale_proceeds_reach_the_short_margin_in_the_same_action() -> None:
    # 2 BTC short at 50,000, 3x isolated, now 64,000: 8.6 % from liquidation, nothing but coins to sell.
    short = short_leg("2", entry="50000")
    s = snapshot(spot_asset=D("2"), short=short, mark_price=D("64000"), futures_free=D("0"), spot_quote=D("0"))
    p = plan(s, guarded(sources=["sell_spot"]), NOW)
    raises = [a for a in p.actions if isinstance(a, RaiseFromSpot)]
    assert len(raises) == 1
    sale = raises[0]
    # The same action carries the proceeds onto the leg: its top-up covers the margin the smaller short needs.
    smaller = Leg(PositionSide.SHORT, short.size - sale.reduce_amount, short.entry_price, short.margin * (short.size - sale.reduce_amount) / short.size)
    needed = short_topup_needed(smaller, [], smaller.margin, s.mark_price, D("0.35"), s.market.brackets, D("0.01"))
    assert sale.margin_amount >= needed > 0
    # Sized after counting the margin the reduction frees and its realized loss: proceeds (less the
    # spot fee) pay for no more than that top-up plus the 2 % sale buffer.
    freed = short.margin * sale.reduce_amount / short.size - (s.mark_price - short.entry_price) * sale.reduce_amount
    proceeds = sale.sell_amount * s.mark_price * (1 - D("0.001"))
    assert freed + proceeds >= needed
    assert freed + proceeds - s.mark_price * s.market.amount_step <= needed * D("1.02") + s.mark_price * D("0.001") * 2


# ---- issue 17: the guard on real accounts -------------------------------------------


def test_margin_unfunded_stays_up_while_the_runway_is_short_even_when_this_topup_is_funded() -> None:
    # 1 BTC short at 50,000 (3x isolated), mark 60,000: a top-up is due and the futures wallet pays it,
    # but what is left keeps the short only a little way above the mark: the money has run dry.
    s = snapshot(spot_asset=D("1"), short=short_leg("1"), mark_price=D("60000"), futures_free=D("15000"), futures_wallet=D("15000"))
    p = plan(s, policy(), NOW, unfunded=True)
    assert any(isinstance(a, AdjustMargin) for a in p.actions), "the top-up itself is funded"
    assert p.runway is not None and p.runway < D("0.30")
    assert [(a.code, a.severity.value) for a in p.alerts] == [("margin_unfunded", "critical")]


def test_growth_slices_meet_a_minimum_larger_than_the_step_when_max_order_is_under_twice_it() -> None:
    coarse = replace(snapshot().market, min_amount=D("0.01"))
    s = snapshot(market=coarse, spot_asset=D("0.015"))
    p = plan(s, policy(max_order=D("0.012")), NOW)
    assert orders(p) and all(o.amount >= D("0.01") for o in orders(p)), [o.amount for o in orders(p)]


def test_an_over_hedge_reduction_slice_meets_a_minimum_larger_than_the_step() -> None:
    coarse = replace(snapshot().market, min_amount=D("0.01"))
    s = snapshot(market=coarse, spot_asset=D("1"), short=short_leg("1.025"))
    p = plan(s, policy(max_order=D("0.012")), NOW)
    assert orders(p) and all(o.amount >= D("0.01") for o in orders(p)), [o.amount for o in orders(p)]


def test_a_margin_sale_of_coins_the_hedge_does_not_count_never_cuts_the_short() -> None:
    # The hedge protects 2 BTC held elsewhere (an offset); the 2 BTC in spot are not part of it.
    offset_only = replace(guarded(sources=["futures_wallet", "sell_spot"]), include_spot=False, offset=D("2"))
    s = snapshot(spot_asset=D("2"), short=short_leg("2"), mark_price=D("64000"), futures_free=D("0"), futures_wallet=D("0"))
    p = plan(s, offset_only, NOW)
    sales = [a for a in p.actions if isinstance(a, RaiseFromSpot)]
    assert sales, p
    assert sales[0].reduce_amount == 0, "the short hedges the offset coins; selling other coins must not cut it"


def test_no_coin_is_sold_for_margin_on_an_unconfirmed_jumped_price() -> None:
    selling = guarded(sources=["sell_spot"])
    s = snapshot(
        spot_asset=D("2"), short=short_leg("2"), mark_price=D("59000"), previous_price=D("50000"),
        futures_free=D("0"), futures_wallet=D("0"),
    )
    p = plan(s, selling, NOW)
    assert p.blocked is not None and "jumped" in p.blocked
    assert p.distance is not None and p.distance < selling.guard.trigger, "a top-up is due"
    assert not [a for a in p.actions if isinstance(a, RaiseFromSpot)]


@settings(max_examples=200, deadline=None)
@given(
    ratio=st.sampled_from([D("1"), D("0.75"), D("0.5"), D("0.333")]),
    spot=st.integers(min_value=100, max_value=5000),
    mark=st.integers(min_value=55000, max_value=66000),
    fill=st.sampled_from([D("1"), D("0.7"), D("0.31"), D("0")]),
    minimum=st.sampled_from([D("0.001"), D("0.01")]),
)
def test_a_margin_sale_never_leaves_the_account_net_short(ratio: Decimal, spot: int, mark: int, fill: Decimal, minimum: Decimal) -> None:
    from hedgebot.domain.sale import sale_after_reduction, size_sale

    market = replace(snapshot().market, min_amount=minimum)
    step = market.amount_step
    spot_asset = step * spot
    short = floor_to_step(spot_asset * ratio, step)
    s = snapshot(
        market=market, spot_asset=spot_asset, short=short_leg(str(short)), mark_price=D(mark),
        futures_free=D("0"), futures_wallet=D("0"),
    )
    sale = size_sale(s, ratio, D("0"), D("0.35"))
    if sale is None:
        return
    assert sale.sell >= minimum, "a sale below the market's minimum would be refused"
    assert short - sale.reduce <= ratio * (spot_asset - sale.sell), "the sale left the account net short"
    # The reduction may fill only in part: the sale then shrinks with it.
    reduced = floor_to_step(sale.reduce * fill, step)
    sell = sale_after_reduction(sale.sell, reduced, sale.reduce, ratio, step)
    assert short - reduced <= ratio * (spot_asset - sell), "a partly filled reduction left the account net short"


@settings(max_examples=150, deadline=None)
@given(
    spot=st.decimals(min_value=D("0.05"), max_value=D("20"), places=3),
    short=st.decimals(min_value=D("0"), max_value=D("20"), places=3),
    ratio=st.decimals(min_value=D("0.1"), max_value=D("1"), places=2),
    max_order=st.decimals(min_value=D("0.01"), max_value=D("3"), places=3),
    fill=st.sampled_from([D("1"), D("0.6"), D("0.35")]),
)
def test_property_a_rebalance_with_partial_fills_and_a_coarse_minimum_sends_only_orders_the_market_accepts(
    spot: Decimal, short: Decimal, ratio: Decimal, max_order: Decimal, fill: Decimal
) -> None:
    coarse = replace(snapshot().market, min_amount=D("0.01"))
    step = coarse.amount_step
    s = snapshot(market=coarse, spot_asset=spot, short=short_leg(str(short), margin=str(short * D("50000"))), futures_free=D("1e12"))
    pol = policy(ratio=ratio, max_order=max_order, guard=MarginGuard(enabled=False))
    rebalancing = False
    for _ in range(4000):
        p = plan(s, pol, NOW, rebalancing)
        todo = orders(p)
        if not todo:
            break
        order = todo[0]
        minimum = coarse.min_amount if order.reduce else coarse.min_tradeable(s.mark_price)
        assert order.amount >= minimum, f"{order.amount} is below the market's minimum {minimum}"
        assert not order.reduce or order.amount <= s.short.size
        # The venue may fill part of it; a part that would leave less than the minimum is filled whole.
        filled = floor_to_step(order.amount * fill, step)
        if filled < coarse.min_amount or order.amount - filled < coarse.min_amount:
            filled = order.amount
        s = _apply(s, replace(order, amount=filled))
        rebalancing = True
    else:
        raise AssertionError("the rebalance did not converge")
    target = ratio * spot
    assert s.short.size <= target * (1 + pol.band) + coarse.min_amount, "ended net short"
    assert s.short.size >= target * (1 - pol.band) - coarse.min_amount - step, "ended under-hedged beyond the band"


def test_runway_short_is_raised_once_while_the_price_hovers_at_the_warning_level_and_clears_clearly_above_it() -> None:
    from hedgebot.clock import SimClock
    from hedgebot.ops.alerts import AlertBook
    from hedgebot.ops.events import EventLog, NullLogger

    # 1 BTC short at 50,000 with 26,000 of margin and 4,000 free: the sources pay up to a fixed runway.
    held = snapshot(short=short_leg("1", margin="26000"), futures_free=D("4000"), futures_wallet=D("30000"))
    guarded = policy(guard=MarginGuard(runway_warning=D("0.30")))
    runway = plan(held, guarded, NOW).runway_price
    assert runway is not None and runway.is_finite()
    clock = SimClock(start=NOW)
    seen: list = []
    events = EventLog(None, NullLogger(), clock)
    events.subscribe(seen.append)
    book = AlertBook(events, clock, "acct", "btc")
    # The runway hovers about the 30 % level: 29 %, 31 %, 29.5 %, 31.5 %, ... then 34 %, clearly above.
    for above in ("0.29", "0.31", "0.295", "0.315", "0.29", "0.32", "0.34"):
        mark = (runway / (1 + D(above))).quantize(D("0.01"))
        warned = "runway_short" in book.active
        p = plan(replace(held, mark_price=mark, previous_price=mark), guarded, NOW, runway_warned=warned)
        for alert in p.alerts:
            book.raise_alert(alert.code, alert.severity, alert.message)
        book.end_tick(plan_judged=True)
    states = [(e.kind, e.detail.get("state")) for e in seen if e.detail.get("code") == "runway_short"]
    assert states == [("alert", "raised"), ("alert_resolved", "resolved")]


def test_with_fund_target_by_selling_an_unfunded_target_sells_n_over_l_plus_1_coins_first() -> None:
    # 12 BTC at 30,000, no short, nothing in the futures wallet, 3x: sell 3 BTC, hedge the other 9.
    empty = snapshot(spot_asset=D(12), futures_free=D(0), futures_wallet=D(0))
    selling = MarginGuard(sources=("futures_wallet", "sell_spot"), fund_target_by_selling=True)
    p = plan(replace(empty, mark_price=D(30000), previous_price=D(30000)), policy(guard=selling), NOW)
    sales = [a for a in p.actions if isinstance(a, RaiseFromSpot)]
    assert len(sales) == 1 and sales[0].reduce_amount == 0
    assert abs(sales[0].sell_amount - D(3)) <= D("0.01"), sales[0]
    assert not any(a.code == "under_hedged_no_margin" for a in p.alerts)
    # Without the opt-in the same account is told it cannot fund the short, and nothing is sold.
    plain = plan(replace(empty, mark_price=D(30000), previous_price=D(30000)), policy(guard=replace(selling, fund_target_by_selling=False)), NOW)
    assert not any(isinstance(a, RaiseFromSpot) for a in plain.actions)
    assert any(a.code == "under_hedged_no_margin" for a in plain.alerts)


def test_isolated_margin_above_the_guards_target_funds_the_shorts_growth_before_it_is_called_unfunded() -> None:
    # 1 BTC short at 50,000 carrying 40,000 of margin (80 % away), 2 BTC held, an empty wallet.
    stuck = snapshot(spot_asset=D(2), short=short_leg("1", margin="40000"), futures_free=D(0), futures_wallet=D(40000))
    p = plan(stuck, policy(), NOW)
    assert not any(a.code == "under_hedged_no_margin" for a in p.alerts)
    assert isinstance(p.actions[0], AdjustMargin) and p.actions[0].amount < 0
    released = -p.actions[0].amount
    leg = replace(stuck.short, margin=stuck.short.margin - released)
    # Taken down to the guard's 35 % target, not below it.
    liquidation = liquidation_price_of(leg.margin, [leg], stuck.market.brackets)
    assert liquidation is not None and D("0.349") <= liquidation / stuck.mark_price - 1 <= D("0.352")


def test_the_plans_notes_give_the_drift_and_band_on_the_amount_step() -> None:
    import re

    # 1.234 BTC hedged at a third: the target 0.4113... BTC has more digits than any order can have.
    held = snapshot(spot_asset=D("1.234"), short=short_leg("0.411"))
    p = plan(held, policy(ratio=D("0.3333")), NOW)
    note = next(n for n in p.notes if "within band" in n)
    assert re.fullmatch(r"drift -?\d+\.\d{3} within band ±\d+\.\d{3}", note), note


def _figure(message: str, before: str) -> Decimal:
    """Return the number that follows `before` in an alert's text."""
    import re

    found = re.search(re.escape(before) + r" ([0-9.]+)", message)
    assert found, (before, message)
    return Decimal(found.group(1))


def test_a_lost_shorts_reopen_hold_reads_needed_and_missing_rounded_up_and_held_down_so_depositing_it_funds_it() -> None:
    for mark in ("51003.37", "51111.11", "52345.67", "53999.99"):
        for free in ("1000.015", "200.125", "0.005", "3.333"):
            s = snapshot(spot_asset=D("1"), mark_price=D(mark), previous_price=D(mark), futures_free=D(free), futures_wallet=D(free), spot_quote=D(0))
            [alert] = [a for a in plan(s, policy(), NOW, reopening=True).alerts if a.code == "reopen_unfunded"]
            held = _figure(alert.message, "the sources hold")
            missing = Decimal(alert.message.split(": ")[1].split(" ")[0])
            assert held <= D(free), alert.message  # never more than the sources hold
            topped = D(free) + missing  # deposit exactly the figure shown
            funded = plan(replace(s, futures_free=topped, futures_wallet=topped), policy(), NOW, reopening=True)
            assert not [a for a in funded.alerts if a.code == "reopen_unfunded"], (mark, free, alert.message)


def test_the_runway_price_in_an_alert_is_rounded_toward_the_mark_never_promising_more_room() -> None:
    guarded = policy(guard=MarginGuard(runway_warning=D("0.30")))
    for margin in ("26000.37", "25999.99", "26123.45", "26500.55"):
        held = snapshot(short=short_leg("1", margin=margin), futures_free=D("4000.005"), futures_wallet=D("30000"))
        runway = plan(held, guarded, NOW).runway_price
        assert runway is not None and runway.is_finite()
        mark = (runway / D("1.2")).quantize(D("0.01"))
        p = plan(replace(held, mark_price=mark, previous_price=mark), guarded, NOW)
        [alert] = [a for a in p.alerts if a.code == "runway_short"]
        true_runway = plan(replace(held, mark_price=mark, previous_price=mark), guarded, NOW).runway_price
        assert true_runway is not None and _figure(alert.message, "up to") <= true_runway, (alert.message, true_runway)
