"""What a hedge protects, in coins: the coins held for a short, the coins still to buy for a long."""

from __future__ import annotations

from decimal import Decimal

from hedgebot.domain.model import ZERO, HedgePolicy, PositionSide


def exposure_from(policy: HedgePolicy, spot_asset: Decimal, long_leg: Decimal, elsewhere: Decimal = ZERO) -> Decimal:
    """Return the amount of the asset the hedge protects, from the spot coin, the LONG leg and coins held elsewhere.

    A short protects coins held (spot, a fixed offset, coins a custody file counts, a counted long leg). A long
    protects a planned purchase: `offset` coins to buy, less what is already bought (the spot when it is counted,
    and the coins counted elsewhere), never below zero.
    """
    if policy.side is PositionSide.LONG:
        bought = (spot_asset if policy.include_spot else ZERO) + elsewhere
        return max(policy.offset - bought, ZERO)
    exposure = policy.offset + elsewhere
    if policy.include_spot:
        exposure += spot_asset
    if policy.include_perp_long:
        exposure += long_leg
    return max(exposure, ZERO)
