"""What a hedge protects, in coins: the coins held for a short, the coins still to buy for a long."""

from __future__ import annotations

from decimal import Decimal

from hedgebot.domain.model import ZERO, HedgePolicy, PositionSide


def exposure_from(policy: HedgePolicy, spot_asset: Decimal, long_leg: Decimal) -> Decimal:
    """Return the amount of the asset the hedge protects, from the spot coin and the LONG leg held.

    A short protects coins held (spot, coins elsewhere, a counted long leg). A long protects a planned
    purchase: `offset` coins to buy, less the spot already bought (when spot is counted), never below zero.
    """
    if policy.side is PositionSide.LONG:
        bought = spot_asset if policy.include_spot else ZERO
        return max(policy.offset - bought, ZERO)
    exposure = policy.offset
    if policy.include_spot:
        exposure += spot_asset
    if policy.include_perp_long:
        exposure += long_leg
    return max(exposure, ZERO)
