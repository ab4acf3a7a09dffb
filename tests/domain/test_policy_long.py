"""A long hedge for a planned purchase: the policy keeps a LONG leg equal to the coins still to buy, reduces it
first as coins arrive, and guards it against a fall as it guards a short against a rally."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from hedgebot.domain.margin import liquidation_price_of
from hedgebot.domain.model import AdjustMargin, HedgePolicy, Leg, OrderSide, PlaceOrder, PositionSide, Transfer
from hedgebot.domain.policy import plan
from tests.helpers import D, snapshot

NOW = 1000.0


def buying(planned: str, **overrides: object) -> HedgePolicy:
    base: dict[str, object] = {
        "ratio": D(1), "band": D("0.02"), "min_order": D("0.001"), "max_order": D("10"), "offset": D(planned),
        "side": PositionSide.LONG,
    }
    base.update(overrides)
    return HedgePolicy(**base)  # type: ignore[arg-type]


def long_leg(size: str, entry: str = "50000", margin: str | None = None, leverage: int = 3) -> Leg:
    m = D(margin) if margin is not None else D(size) * D(entry) / leverage
    return Leg(PositionSide.LONG, D(size), D(entry), m)


def orders(p) -> list[PlaceOrder]:
    return [a for a in p.actions if isinstance(a, PlaceOrder)]


def test_a_planned_purchase_opens_a_long_of_the_coins_still_to_buy() -> None:
    p = plan(snapshot(spot_asset=D("0")), buying("5"), NOW)
    assert p.exposure == D("5") and p.target == D("5")
    assert [(o.side, o.position_side, o.amount, o.reduce) for o in orders(p)] == [
        (OrderSide.BUY, PositionSide.LONG, D("5.000"), False)
    ]


def test_coins_bought_reduce_the_long_by_the_same_amount_in_its_close_form() -> None:
    p = plan(snapshot(spot_asset=D("2")), buying("5"), NOW)  # 2 of the 5 coins bought: 3 left to hedge
    p = plan(snapshot(spot_asset=D("2"), long=long_leg("5")), buying("5"), NOW)
    assert p.target == D("3")
    [order] = orders(p)
    assert (order.side, order.position_side, order.reduce, order.amount) == (OrderSide.SELL, PositionSide.LONG, True, D("2"))


def test_a_long_inside_its_band_trades_nothing_and_the_short_leg_is_never_touched() -> None:
    p = plan(snapshot(spot_asset=D("1"), long=long_leg("3.05")), buying("4"), NOW)
    assert p.in_band and p.actions == () and p.drift == D("0.05")


def test_all_coins_bought_closes_the_long_whole() -> None:
    p = plan(snapshot(spot_asset=D("5"), long=long_leg("0.4")), buying("5"), NOW)
    assert p.target == 0
    [order] = orders(p)
    assert (order.side, order.position_side, order.reduce, order.amount) == (OrderSide.SELL, PositionSide.LONG, True, D("0.4"))


def test_a_long_below_its_band_grows_toward_the_target_in_slices() -> None:
    p = plan(snapshot(spot_asset=D("0"), long=long_leg("1")), buying("5", max_order=D("2")), NOW)
    [order] = orders(p)
    assert (order.side, order.position_side, order.reduce) == (OrderSide.BUY, PositionSide.LONG, False)
    assert order.amount == D("2") and p.orders_remaining == 1


def test_a_long_has_its_liquidation_below_the_mark() -> None:
    leg = long_leg("1", entry="50000", leverage=3)
    p = plan(snapshot(spot_asset=D("0"), long=leg), buying("1"), NOW)
    assert p.liquidation_price is not None and p.liquidation_price < D("50000")
    assert p.liquidation_price == liquidation_price_of(leg.margin, [leg], snapshot().market.brackets)


def test_a_long_near_liquidation_after_a_fall_is_topped_up_on_its_own_leg() -> None:
    # Entered at 50,000 with 5,000 of margin (10x); the mark fell to 46,000.
    leg = long_leg("1", entry="50000", margin="5000")
    p = plan(snapshot(spot_asset=D("0"), long=leg, mark_price=D("46000")), buying("1"), NOW)
    assert p.distance is not None and p.distance < D("0.20")
    [topup] = [a for a in p.actions if isinstance(a, AdjustMargin)]
    assert topup.position_side is PositionSide.LONG and topup.amount > 0
    topped = Leg(PositionSide.LONG, leg.size, leg.entry_price, leg.margin + topup.amount)
    after = liquidation_price_of(topped.margin, [topped], snapshot().market.brackets)
    assert after is not None and (D("46000") - after) / D("46000") >= D("0.35")


def test_a_long_topup_takes_stablecoin_from_spot_when_the_futures_wallet_is_empty() -> None:
    leg = long_leg("1", entry="50000", margin="5000")
    snap = snapshot(spot_asset=D("0"), spot_quote=D("50000"), futures_free=D("0"), long=leg, mark_price=D("46000"))
    p = plan(snap, buying("1"), NOW)
    assert isinstance(p.actions[0], Transfer) and isinstance(p.actions[1], AdjustMargin)
    assert p.actions[1].position_side is PositionSide.LONG


@settings(max_examples=200, deadline=None)
@given(
    planned=st.decimals("0.1", "20", places=3),
    bought=st.decimals("0", "25", places=3),
    held=st.decimals("0", "25", places=3),
)
def test_a_long_hedge_never_stays_above_what_is_left_to_buy(planned: Decimal, bought: Decimal, held: Decimal) -> None:
    """The mirror of 'never net short': after the planned orders, the long is at most the coins left to buy plus the band."""
    policy = buying(str(planned), max_order=D("100"))
    p = plan(snapshot(spot_asset=bought, long=long_leg(str(held))), policy, NOW)
    left = max(planned - bought, D(0))
    after = held
    for order in orders(p):
        assert order.position_side is PositionSide.LONG
        after += order.amount if order.side is OrderSide.BUY else -order.amount
        assert order.reduce == (order.side is OrderSide.SELL)
    assert after >= 0
    assert after <= left * (1 + policy.band) + snapshot().market.amount_step
