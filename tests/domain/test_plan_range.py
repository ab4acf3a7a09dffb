"""Each plan states the price range over which it stays the policy's decision."""

from __future__ import annotations

from hedgebot.domain import policy
from hedgebot.domain.model import AdjustMargin
from tests.helpers import D, hedge_config, short_leg, snapshot


def _settled(**guard: object) -> tuple[policy.Plan, object]:
    config = hedge_config(margin_guard={"enabled": True, **guard})
    pol = config.policy()
    snap = snapshot(spot_asset=D("1"), short=short_leg("1"))
    return policy.plan(snap, pol, 1000.0), pol


def test_a_settled_plan_holds_until_the_margin_guard_would_trigger() -> None:
    plan, pol = _settled()
    assert plan.actions == () and plan.valid_high is not None and plan.liquidation_price is not None
    assert plan.valid_high == plan.liquidation_price / (1 + pol.guard.trigger)
    # Just past the edge, the same account plans a top-up: the range was exact.
    above = policy.plan(snapshot(spot_asset=D("1"), short=short_leg("1"), mark_price=plan.valid_high * D("1.0001"), previous_price=D("50000")), pol, 1000.0)
    assert any(isinstance(a, AdjustMargin) for a in above.actions)
    inside = policy.plan(snapshot(spot_asset=D("1"), short=short_leg("1"), mark_price=plan.valid_high * D("0.9999"), previous_price=D("50000")), pol, 1000.0)
    assert inside.actions == ()


def test_the_jump_guard_bounds_the_range_from_below_and_a_release_level_raises_that_bound() -> None:
    plan, pol = _settled()
    assert plan.valid_low == D("50000") * (1 - pol.max_jump)
    released, pol = _settled(release="0.40")
    assert released.valid_low == released.liquidation_price / (1 + pol.guard.release)
    assert released.valid_low > plan.valid_low


def test_a_plan_with_work_to_do_holds_at_its_own_price_only() -> None:
    pol = hedge_config().policy()
    plan = policy.plan(snapshot(spot_asset=D("2"), short=short_leg("1")), pol, 1000.0)
    assert plan.actions
    assert plan.holds_at(D("50000")) and not plan.holds_at(D("50000.01")) and not plan.holds_at(D("49999.99"))
