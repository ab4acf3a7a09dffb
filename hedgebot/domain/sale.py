"""Size a sale of the hedged coin that pays for the short's margin.

Selling a slice of the coin shrinks the short by its hedged share; under
isolated margin that reduction frees the slice's share of the leg's margin
(less the loss it realizes), so the sale is sized after counting it. What the
reduction frees and what the sale brings are all put back on the leg.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from hedgebot.domain.margin import rule_for
from hedgebot.domain.model import ZERO, MarginMode, Snapshot, ceil_to_step, floor_to_step

# Extra stablecoin asked for when selling spot to fund margin: covers fees and
# the move of the price between planning and the sale.
SALE_BUFFER = Decimal("0.02")


@dataclass(frozen=True)
class SaleSize:
    """A margin-raising sale: coins sold, short reduced, margin it puts on the leg, and what it leaves unfunded."""

    sell: Decimal
    reduce: Decimal
    margin: Decimal
    shortfall: Decimal


def _after_sale(snapshot: Snapshot, ratio: Decimal, sell: Decimal, price: Decimal, target: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """Return (reduction, stablecoin the sale and reduction make available, margin still missing) for selling `sell` at `price`."""
    market = snapshot.market
    short = snapshot.short
    reduce = min(ceil_to_step(sell * ratio, market.amount_step), short.size)
    left = short.size - reduce
    realized = (short.entry_price - price) * reduce - price * reduce * market.taker_fee
    proceeds = sell * price * (1 - market.spot_fee)
    if snapshot.margin_mode is MarginMode.ISOLATED:
        kept = short.margin * left / short.size if short.size > 0 else ZERO
        freed = short.margin - kept + realized
        gap = rule_for(market).margin_gap([replace(short, size=left, margin=kept)], kept, price, target, market.brackets)
        return reduce, freed + proceeds, gap
    wallet = snapshot.cross_backing + realized
    gap = rule_for(market).margin_gap([replace(short, size=left), snapshot.long], wallet, price, target, market.brackets)
    return reduce, proceeds, gap


def sale_after_reduction(sell: Decimal, reduced: Decimal, planned: Decimal, ratio: Decimal, step: Decimal) -> Decimal:
    """Return the coins a margin sale may still sell once its reduction filled `reduced` of `planned`.

    A partly filled reduction lets go of less short, so fewer coins may be sold: never so many that the
    account is left net short.
    """
    if reduced >= planned or ratio <= 0:
        return sell
    return min(sell, floor_to_step(reduced / ratio, step))


def size_sale(
    snapshot: Snapshot, ratio: Decimal, funded: Decimal, target: Decimal, price: Decimal | None = None, *, search: bool = True
) -> SaleSize | None:
    """Return the smallest sale of the hedged coin that, with `funded` from earlier sources, puts the short `target` away.

    The reduction that goes with the sale frees its share of isolated margin
    (less its realized loss), so the sale is sized after counting it; the sale
    asks for `SALE_BUFFER` more than the gap, for fees and the price's move.
    When even selling every coin falls short, that whole sale is returned with
    the shortfall left; with `search=False` the whole sale is returned either
    way (enough to tell whether the coins can pay). None when there is nothing
    to sell.
    """
    market = snapshot.market
    price = snapshot.mark_price if price is None else price
    step = market.amount_step
    most = floor_to_step(snapshot.spot_asset, step)
    least = max(market.min_tradeable(price), step)
    if most < least or not snapshot.short.is_open:
        return None

    def covered(sell: Decimal) -> tuple[bool, Decimal, Decimal, Decimal]:
        reduce, raised, gap = _after_sale(snapshot, ratio, sell, price, target)
        return funded + raised >= gap * (1 + SALE_BUFFER), reduce, raised, gap

    ok, reduce, raised, gap = covered(most)
    if not ok or not search:
        return SaleSize(most, reduce, max(raised, ZERO), max(gap * (1 + SALE_BUFFER) - funded - raised, ZERO))
    low, high = int(least / step), int(most / step)  # smallest whole number of steps that covers the gap
    while low < high:
        middle = (low + high) // 2
        if covered(middle * step)[0]:
            high = middle
        else:
            low = middle + 1
    ok, reduce, raised, gap = covered(high * step)
    return SaleSize(high * step, reduce, max(raised, ZERO), ZERO)
