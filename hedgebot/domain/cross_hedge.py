"""A holding hedged on another instrument: its exposure in the instrument's coins, and the ratio that is its beta.

Holding SOL and shorting ETH, the short that removes the most variance is
beta x the holding's value / ETH's price (the minimum-variance ratio, in
instrument notional per unit of the holding's value). The policy sizes a
short as ratio x exposure in the instrument's coins: so the holding's coins
are turned into the ETH they are worth, and the ratio becomes the beta. Every
rule of the policy (band, slices, margin guard) then applies unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hedgebot.domain.model import HedgePolicy, Snapshot

ZERO = Decimal(0)


def in_instrument_terms(snapshot: Snapshot, policy: HedgePolicy, beta: Decimal, holding_price: Decimal) -> tuple[Snapshot, HedgePolicy]:
    """Return the snapshot and policy with the holding counted in the instrument's coins and the ratio set to `beta`.

    `snapshot.spot_asset`, the coins held elsewhere and `policy.offset` are the holding's coins on entry; the mark
    is the instrument's. A price that is not positive leaves the exposure at zero: nothing is grown on it.
    """
    mark = snapshot.mark_price
    worth = holding_price / mark if mark.is_finite() and mark > 0 and holding_price.is_finite() and holding_price > 0 else ZERO
    elsewhere = snapshot.elsewhere
    if elsewhere is not None:
        elsewhere = replace(elsewhere, amount=elsewhere.amount * worth)
    converted = replace(snapshot, spot_asset=snapshot.spot_asset * worth, elsewhere=elsewhere)
    return converted, replace(policy, ratio=beta, offset=policy.offset * worth, standing_ratio=None)
