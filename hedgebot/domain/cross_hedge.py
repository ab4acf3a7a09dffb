"""Holdings hedged on another instrument: their exposure in the instrument's coins, and the ratio that is their beta.

Holding SOL and shorting ETH, the short that removes the most variance is
beta x the holding's value / ETH's price (the minimum-variance ratio, in
instrument notional per unit of the holding's value). A basket of holdings
hedged by one instrument, each by its own beta, shorts the sum of theirs.

The policy sizes a short as ratio x exposure in the instrument's coins: so the
holdings' coins are turned into the ETH they are worth, and the ratio becomes
their value-weighted beta, which makes ratio x exposure exactly the sum of
beta x value / price. Every rule of the policy (band, slices, margin guard)
then applies unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from hedgebot.domain.model import HedgePolicy, Snapshot

ZERO = Decimal(0)


@dataclass(frozen=True)
class Holding:
    """One holding of a beta hedge: its price, the beta it is hedged with, and (for a basket's others) its coins."""

    price: Decimal
    beta: Decimal
    coins: Decimal = ZERO  # the hedge's own holding's coins are the snapshot's (spot, elsewhere, offset)


def in_instrument_terms(
    snapshot: Snapshot, policy: HedgePolicy, own: Holding, others: Sequence[Holding] = (),
) -> tuple[Snapshot, HedgePolicy]:
    """Return the snapshot and policy with the holdings counted in the instrument's coins and the ratio their beta.

    `snapshot.spot_asset`, the coins held elsewhere and `policy.offset` are the hedge's own holding's coins on
    entry; `others` are a basket's other holdings, counted with the spot when the hedge counts spot. The mark is
    the instrument's. A price that is not positive counts its holding as worth nothing: nothing is grown on it.
    """
    mark = snapshot.mark_price
    priced = mark.is_finite() and mark > 0

    def worth(price: Decimal) -> Decimal:
        return price / mark if priced and price.is_finite() and price > 0 else ZERO

    own_worth = worth(own.price)
    elsewhere = snapshot.elsewhere
    own_coins = snapshot.spot_asset * int(policy.include_spot) + policy.offset + (elsewhere.amount if elsewhere is not None else ZERO)
    extra = [(h.coins * int(policy.include_spot) * worth(h.price), h.beta) for h in others]
    values = [(own_coins * own_worth, own.beta), *extra]
    total = sum((value for value, _ in values), ZERO)
    ratio = sum((value * beta for value, beta in values), ZERO) / total if total > 0 else own.beta
    if elsewhere is not None:
        elsewhere = replace(elsewhere, amount=elsewhere.amount * own_worth)
    spot = snapshot.spot_asset * own_worth + sum((value for value, _ in extra), ZERO)
    converted = replace(snapshot, spot_asset=spot, elsewhere=elsewhere)
    return converted, replace(policy, ratio=ratio, offset=policy.offset * own_worth, standing_ratio=None)
