"""Fundability: whether a hedge's sources can pay the margin its whole target needs, and what would close a gap.

The target's margin is what opening it costs at the configured leverage (the
initial margin, never less than what keeps it at the guard's trigger distance)
plus the opening fee. The sources that pay are the futures wallet, the spot
stablecoin when the guard may move it, and, when the guard may fund the
target by selling (`fund_target_by_selling`), the coins themselves: selling
x of N coins at leverage L leaves N - x to hedge with x's proceeds, so
x = N / (L + 1) from an empty wallet, before fees.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from hedgebot.domain.margin import rule_for
from hedgebot.domain.exposure import exposure_from
from hedgebot.domain.model import ZERO, HedgePolicy, Leg, Market, PositionSide, ceil_to_step, floor_to_step


@dataclass(frozen=True)
class Fundability:
    """What a hedge's target needs, what its sources hold, and the ways to close a gap (all None when funded)."""

    price: Decimal
    target: Decimal  # the short the config asks for, in coins
    needed: Decimal  # margin plus opening fee for the whole target, in the quote
    available: Decimal  # what the sources can put on the short without selling coins
    sources: tuple[tuple[str, Decimal], ...]  # each source and what it holds
    affordable: Decimal  # the part of the target `available` opens
    deposit: Decimal | None = None  # quote to add to a source
    sell: Decimal | None = None  # coins to sell (the rest then fully hedged)
    ratio: Decimal | None = None  # the highest ratio `available` funds
    leverage: int | None = None  # the lowest leverage that funds the target (None: no leverage does, at the trigger)
    sells_itself: bool = False  # the guard funds the target by selling `sell` coins

    @property
    def funded(self) -> bool:
        """Tell whether the sources pay for the whole target without selling coins."""
        return self.affordable >= self.target


COIN_DIGITS = Decimal("0.00000001")


def _cost_per_unit(
    market: Market, price: Decimal, leverage: int, trigger: Decimal, size: Decimal, side: PositionSide = PositionSide.SHORT,
) -> Decimal:
    """Return the margin and fee one coin of a `size` leg costs to open: initial margin, never below the trigger's need."""
    unit = rule_for(market).notional(Decimal(1), price)  # one unit of the leg, in the margin asset
    per_unit = unit / Decimal(leverage)
    if size > 0 and trigger > 0:
        at_trigger = rule_for(market).margin_gap([Leg(side, size, price)], ZERO, price, trigger, market.brackets) / size
        per_unit = max(per_unit, at_trigger)
    return per_unit + unit * market.taker_fee


def fundability(
    market: Market, price: Decimal, spot: dict[str, Decimal], futures: dict[str, Decimal], policy: HedgePolicy, leverage: int,
) -> Fundability:
    """Return whether these balances fund the hedge's whole target at `price`, and what would close a gap."""
    guard = policy.guard
    rule = rule_for(market)
    coins = spot.get(market.base, ZERO)
    # On a coin-margined contract the coins posted as margin are still the holding (see policy.exposure_of).
    collateral = futures.get(market.base, ZERO) if market.inverse and policy.side is PositionSide.SHORT else ZERO
    exposure = exposure_from(policy, coins + collateral, ZERO)
    target = floor_to_step(rule.size_for(policy.ratio * exposure, price), market.amount_step)
    trigger = guard.trigger if guard.enabled else ZERO
    cost = _cost_per_unit(market, price, leverage, trigger, target, policy.side)
    sources: list[tuple[str, Decimal]] = [("futures wallet", futures.get(market.margin_asset, ZERO))]
    if guard.from_spot_stablecoin:
        sources.append(("spot stablecoin", spot.get(market.margin_asset, ZERO)))
    available = sum((amount for _, amount in sources), ZERO)
    needed = (target * cost).quantize(market.margin_step, rounding=ROUND_CEILING)
    affordable = min(floor_to_step(available / cost, market.amount_step), target) if cost > 0 else target
    def shown(units: Decimal) -> Decimal:  # the leg's size as the user reads it: coins
        return rule.coins(units, price).quantize(COIN_DIGITS) if market.inverse else units

    result = Fundability(price, shown(target), needed, available, tuple(sources), shown(affordable))
    if affordable >= target:
        return result
    sell = None
    if guard.sell_spot and coins > 0 and not market.inverse:  # an inverse short's margin is the coins: none to sell for it
        # (target - ratio * x) * cost = available + x * price * (1 - fee)
        x = (target * cost - available) / (price * (1 - market.taker_fee) + policy.sale_ratio * cost)
        sell = min(ceil_to_step(x, market.amount_step), coins)
    leverage_needed = None
    highest = (rule_for(market).bracket_at(target, price, market.brackets).max_leverage if market.brackets else None) or 125
    for candidate in range(leverage + 1, highest + 1):
        if target * _cost_per_unit(market, price, candidate, trigger, target, policy.side) <= available:
            leverage_needed = candidate
            break
    return Fundability(
        price, shown(target), needed, available, tuple(sources), shown(affordable),
        deposit=needed - available,
        sell=sell,
        ratio=(policy.ratio * affordable / target).quantize(Decimal("0.0001"), ROUND_FLOOR) if target > 0 else None,
        leverage=leverage_needed,
        sells_itself=guard.fund_target_by_selling and guard.sell_spot,
    )
