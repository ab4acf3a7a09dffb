"""Holdings hedged on another instrument: the policy sizes sum(beta x value) / the instrument's price."""

from __future__ import annotations

from dataclasses import replace

from hedgebot.domain.cross_hedge import Holding, in_instrument_terms
from hedgebot.domain.model import HedgePolicy, HeldElsewhere
from hedgebot.domain.policy import exposure_of, plan
from tests.helpers import D, snapshot


def _policy(**fields: object) -> HedgePolicy:
    return HedgePolicy(ratio=D(1), band=D("0.02"), min_order=D("0.001"), max_order=D("100"), **fields)  # type: ignore[arg-type]


def test_one_holding_with_its_offset_and_coins_held_elsewhere_is_shorted_at_beta_times_its_worth() -> None:
    # 100 SOL in the account, 20 elsewhere, 30 as offset, at 150; the BTC instrument at 50,000 (the snapshot's mark).
    held = snapshot(spot_asset=D(100), elsewhere=HeldElsewhere(D(20), 1000.0, "custody"))
    converted, policy = in_instrument_terms(held, _policy(offset=D(30)), Holding(D(150), D("1.2")))
    target = policy.ratio * exposure_of(converted, policy)
    assert target == D("1.2") * 150 * 150 / 50_000
    assert plan(converted, policy, 1000.0).target == target


def test_a_basket_shorts_the_sum_of_each_holdings_beta_times_its_value() -> None:
    held = snapshot(spot_asset=D(100))  # 100 ETH at 3,000, hedged at beta 1.3; 1,000 SOL at 150 at beta 0.6
    converted, policy = in_instrument_terms(held, _policy(), Holding(D(3000), D("1.3")), [Holding(D(150), D("0.6"), D(1000))])
    expected = (D("1.3") * 100 * 3000 + D("0.6") * 1000 * 150) / 50_000
    assert abs(policy.ratio * exposure_of(converted, policy) - expected) < D("1e-20")  # the weighted ratio's last digit


def test_spot_not_counted_leaves_a_baskets_spot_holdings_out_and_a_price_of_zero_counts_nothing() -> None:
    held = snapshot(spot_asset=D(100))
    converted, policy = in_instrument_terms(
        held, _policy(include_spot=False, offset=D(10)), Holding(D(3000), D(1)), [Holding(D(150), D(1), D(1000))]
    )
    assert policy.ratio * exposure_of(converted, policy) == D(10) * 3000 / 50_000
    converted, policy = in_instrument_terms(replace(held), _policy(), Holding(D(0), D(1)))
    assert exposure_of(converted, policy) == 0
