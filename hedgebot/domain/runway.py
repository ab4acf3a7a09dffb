"""The runway: how far a rally the margin sources can pay for.

The runway is the highest mark price at which the guard's sources, used in
their configured order (a sale asking for its buffer), can still put the
short back at its trigger distance from liquidation. Beyond it the guard
runs dry: the short is liquidated unless money is added by hand. Funding
to come is not counted; it only lengthens the runway of a short that is paid.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from hedgebot.domain.margin import rule_for
from hedgebot.domain.exposure import exposure_from
from hedgebot.domain.model import ZERO, HedgePolicy, Leg, MarginMode, Market, PositionSide, Snapshot, floor_to_step
from hedgebot.domain.sale import size_sale

UNLIMITED = Decimal("Infinity")
# The search for a sale-funded runway stops this many times above the mark (reported unlimited beyond).
_CEILING = Decimal(1000)
_ROUNDS = 40
_PRECISION = Decimal("1e-6")


def runway_price(snapshot: Snapshot, policy: HedgePolicy) -> Decimal | None:
    """Return the price up to which the configured sources keep the short above its trigger.

    Returns None with no short, and `UNLIMITED` when no rally exhausts the
    sources (selling coins that fully hedge the short pays for any rally).
    A long hedge's runway is the mirror: the price DOWN to which the sources
    keep the long above its trigger, 0 when no fall exhausts them (no coin is
    sold for a long: a planned purchase has none).
    """
    leg = snapshot.leg_of(policy.side)
    if not leg.is_open:
        return None
    guard = policy.guard
    funds = ZERO
    if guard.from_futures_wallet and snapshot.margin_mode is MarginMode.ISOLATED:
        funds += max(snapshot.futures_free, ZERO)
    if guard.from_spot_stablecoin:
        funds += snapshot.spot_quote
    if policy.side is PositionSide.LONG:
        wallet, others = snapshot.backing_of(PositionSide.LONG)
        below, _ = rule_for(snapshot.market).liquidation_prices(wallet + funds, [leg, *others], snapshot.market.brackets, leg.entry_price)
        # distance = (mark - liquidation) / mark reaches the trigger at mark = liquidation / (1 - trigger)
        return below / (1 - guard.trigger) if below is not None and guard.trigger < 1 else ZERO
    return _runway(
        snapshot.market, snapshot.margin_mode, snapshot.short, snapshot.long, snapshot.cross_backing,
        funds, snapshot.spot_asset if guard.sell_spot else ZERO, policy.sale_ratio, guard.trigger,
    )


@lru_cache(maxsize=1024)
def _runway(market, margin_mode, short, long, cross_wallet, funds, coins, ratio, trigger):  # type: ignore[no-untyped-def]
    """Return the runway for these holdings (cached: between trades and funding they do not change, whatever the mark)."""
    reference = short.entry_price
    snapshot = Snapshot(
        taken_at=0.0, market=market, mark_price=reference, price_time=0.0, spot_asset=coins, spot_quote=ZERO,
        futures_free=ZERO, futures_wallet=cross_wallet, short=short, long=long, margin_mode=margin_mode,
        leverage=1, cross_wallet=cross_wallet,
    )
    wallet, others = snapshot.short_backing()
    _, above = rule_for(market).liquidation_prices(wallet + funds, [short, *others], market.brackets, reference)
    without_sale = above / (1 + trigger) if above is not None else UNLIMITED
    if coins <= 0 or without_sale == UNLIMITED:
        return without_sale

    def pays(price: Decimal) -> bool:
        sale = size_sale(snapshot, ratio, funds, trigger, price, search=False)
        return sale is not None and sale.shortfall <= 0

    low = without_sale  # the stablecoin alone pays up to here; the sale only adds
    high = low * _CEILING
    if pays(high):
        return UNLIMITED
    for _ in range(_ROUNDS):
        if high - low <= low * _PRECISION:
            break
        middle = (low * high).sqrt()
        if pays(middle):
            low = middle
        else:
            high = middle
    return low


def opening_snapshot(
    market: Market, price: Decimal, spot: dict[str, Decimal], futures: dict[str, Decimal],
    policy: HedgePolicy, leverage: int, margin_mode: MarginMode,
) -> Snapshot:
    """Return the account as it would be just after opening the hedge at `price` from these balances.

    The opening's margin and fee come out of the futures wallet first, then (as the keeper's opening
    transfer does) out of the spot wallet of the margin asset: the coins themselves, on a coin-margined
    contract, whose futures wallet's coins count as held too.
    """
    rule = rule_for(market)
    coins = spot.get(market.base, ZERO)
    if market.inverse and policy.side is PositionSide.SHORT:
        coins += futures.get(market.base, ZERO)
    exposure = exposure_from(policy, coins, ZERO)
    size = floor_to_step(rule.size_for(policy.ratio * exposure, price), market.amount_step)
    notional = rule.notional(size, price)
    initial = notional / leverage
    leg = Leg(policy.side, size, price, initial if margin_mode is MarginMode.ISOLATED else ZERO)
    posted = initial if margin_mode is MarginMode.ISOLATED else ZERO
    wallet = futures.get(market.margin_asset, ZERO)
    spot_margin = spot.get(market.margin_asset, ZERO)
    moved = min(max(notional * market.taker_fee + posted - wallet, ZERO), spot_margin)  # the opening's transfer
    cash = wallet + moved - notional * market.taker_fee - posted
    spot_after = {**spot, market.margin_asset: spot_margin - moved}
    return Snapshot(
        taken_at=0.0, market=market, mark_price=price, price_time=0.0,
        spot_asset=spot_after.get(market.base, ZERO), spot_quote=spot_after.get(market.margin_asset, ZERO),
        futures_free=max(cash - (initial if margin_mode is MarginMode.CROSS else ZERO), ZERO),
        futures_wallet=cash + posted,
        short=leg if policy.side is PositionSide.SHORT else Leg(PositionSide.SHORT),
        long=leg if policy.side is PositionSide.LONG else Leg(PositionSide.LONG),
        margin_mode=margin_mode, leverage=leverage, cross_wallet=cash,
    )
