"""The unwind plan: short slices first, never net short, never beyond the live leg, ends flat."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from hedgebot.domain.model import OrderSide, PlaceOrder, PositionSide, Transfer, Wallet, floor_to_step
from hedgebot.domain.unwind import (
    SHORT_SLICE,
    SPOT_SLICE,
    UnwindSpec,
    UnwindView,
    apply_fill,
    next_step,
    plan_unwind,
    slice_size,
)
from tests.helpers import D, btc_market

MARKET = btc_market()
STEP = MARKET.amount_step


def view(short: str, spot: str, elsewhere: str = "0", free: str = "0") -> UnwindView:
    return UnwindView(MARKET, D("50000"), D(short), D(spot), D(elsewhere), D(free))


def test_short_slices_come_first_each_followed_by_its_matching_spot_slice() -> None:
    steps = plan_unwind(view("2.5", "3"), UnwindSpec(D("1"), sell_spot=True))
    assert [(s.reason, s.amount) for s in steps] == [
        (SHORT_SLICE, D("1")), (SPOT_SLICE, D("1")),
        (SHORT_SLICE, D("1")), (SPOT_SLICE, D("1")),
        (SHORT_SLICE, D("0.5")), (SPOT_SLICE, D("0.5")),
    ]
    short_orders = [s for s in steps if s.reason == SHORT_SLICE]
    assert all((s.side, s.position_side) == (OrderSide.BUY, PositionSide.SHORT) for s in short_orders)


def test_without_sell_spot_only_the_short_is_closed() -> None:
    steps = plan_unwind(view("1.2", "3"), UnwindSpec(D("0.5")))
    assert [s.amount for s in steps] == [D("0.5"), D("0.5"), D("0.2")]
    assert all(not s.spot for s in steps)


def test_margin_asked_back_moves_to_spot_once_the_short_is_flat() -> None:
    steps = plan_unwind(view("0.4", "1", free="100"), UnwindSpec(D("1"), sell_spot=True, margin_to_spot=D("6000")))
    assert isinstance(steps[-1], Transfer) and steps[-1].source is Wallet.FUTURES and steps[-1].destination is Wallet.SPOT
    # After the close the venue shows the released margin as free; the plan assumed 100 free.
    assert steps[-1].amount == D("100")
    assert [type(s) for s in steps[:-1]] == [PlaceOrder, PlaceOrder]


def test_a_spot_sale_never_leaves_the_account_net_short() -> None:
    # Coins held elsewhere count; a short larger than the holdings gets no spot sale until it is below them.
    partway = replace(view("0.7", "0.5", elsewhere="0.5"), reduced=D("0.3"))
    step = next_step(partway, UnwindSpec(D("1"), sell_spot=True))
    assert isinstance(step, PlaceOrder) and step.spot and step.amount == D("0.3")
    over = replace(view("2", "1"), reduced=D("0.5"))
    step = next_step(over, UnwindSpec(D("1"), sell_spot=True))
    assert isinstance(step, PlaceOrder) and not step.spot, "net short: reduce before selling anything"


def test_slices_asked_by_count_are_on_the_step_and_never_above_max_order() -> None:
    assert slice_size(D("1"), D("5"), 3, MARKET) == D("0.334")
    assert slice_size(D("10"), D("2"), 3, MARKET) == D("2")
    assert slice_size(D("1"), D("0.0004"), None, MARKET) == D("0.001")


def test_a_remainder_too_small_to_close_alone_is_not_left_behind() -> None:
    steps = plan_unwind(view("1.0005", "0"), UnwindSpec(D("1")))
    assert sum(s.amount for s in steps) == D("1.0005")
    assert all(s.amount <= D("1") for s in steps)


# ---- properties over random positions, spot amounts, slice counts and fill outcomes -----------

amounts = st.decimals(min_value=D("0"), max_value=D("30"), places=3)
OUTCOMES = ["full", "partial", "rejected", "timeout_executed", "timeout_lost"]


def _filled(action: object, amount: Decimal, outcome: str, rng: random.Random) -> Decimal:
    """What the venue executed, as the journal would learn it (a lost answer is settled by lookup)."""
    if outcome in ("rejected", "timeout_lost"):
        return D(0)
    if outcome == "partial" and isinstance(action, PlaceOrder):
        return floor_to_step(amount * D(rng.randint(1, 99)) / 100, STEP)
    return amount


@settings(max_examples=300, deadline=None)
@given(
    short=amounts,
    spot=amounts,
    elsewhere=st.sampled_from(["0", "0", "0.5", "3"]),
    max_order=st.decimals(min_value=D("0.05"), max_value=D("5"), places=3),
    slices=st.one_of(st.none(), st.integers(min_value=1, max_value=40)),
    sell_spot=st.booleans(),
    outcomes=st.lists(st.sampled_from(OUTCOMES), max_size=60),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_no_state_is_net_short_no_reduction_exceeds_the_leg_and_the_unwind_ends_flat(
    short: Decimal, spot: Decimal, elsewhere: str, max_order: Decimal, slices: int | None,
    sell_spot: bool, outcomes: list[str], seed: int,
) -> None:
    rng = random.Random(seed)
    spec = UnwindSpec(slice_size(short, max_order, slices, MARKET), sell_spot=sell_spot, margin_to_spot=D("250"))
    state = UnwindView(MARKET, D("50000"), short, spot, D(elsewhere), D("1000"))
    net_short_at_start = max(state.short - state.holdings, D(0))
    steps = 0
    while True:
        action = next_step(state, spec)
        if action is None:
            break
        steps += 1
        assert steps < 5_000, "the unwind does not converge"
        outcome = outcomes[steps - 1] if steps <= len(outcomes) else "full"
        if isinstance(action, PlaceOrder) and not action.spot:
            assert (action.side, action.position_side) == (OrderSide.BUY, PositionSide.SHORT), "close form only"
            assert 0 < action.amount <= state.short, "a reducing order never exceeds the live leg"
            assert action.amount <= spec.slice_size
        elif isinstance(action, PlaceOrder):
            assert action.side is OrderSide.SELL and 0 < action.amount <= state.spot_asset
            assert sell_spot, "spot is sold only when asked"
        else:
            assert isinstance(action, Transfer) and state.short == 0
        state = apply_fill(state, action, _filled(action, action.amount, outcome, rng))
        net_short = max(state.short - state.holdings, D(0))
        assert net_short <= net_short_at_start, f"net short by {net_short} after {action}"
    assert state.short == 0, "the unwind ends flat"
    assert state.reduced == short, "every coin of the short was bought back by our own slices"
    if sell_spot:
        assert state.sold <= state.reduced, "never more spot sold than short bought back"
        if spot >= short:
            assert state.reduced - state.sold < MARKET.min_amount, "the matching spot was sold"
    else:
        assert state.sold == 0


# ---- issue 17: minimums larger than the step -----------------------------------------

COARSE = replace(MARKET, min_amount=D("0.01"))  # a minimum of ten steps, as on many contracts


def test_the_last_two_unwind_slices_both_meet_a_minimum_larger_than_the_step() -> None:
    start = UnwindView(COARSE, D("50000"), D("0.011"), D("1"), D("0"), D("0"))
    steps = plan_unwind(start, UnwindSpec(D("0.01")))
    assert steps and all(s.amount >= COARSE.min_amount for s in steps), [s.amount for s in steps]
    assert sum(s.amount for s in steps) == D("0.011")


@settings(max_examples=200, deadline=None)
@given(
    short_steps=st.integers(min_value=10, max_value=5000),
    slice_steps=st.integers(min_value=10, max_value=800),
    fill_fraction=st.sampled_from([D("1"), D("0.5"), D("0.37")]),
)
def test_every_unwind_slice_meets_the_minimum_and_the_short_ends_flat_with_partial_fills(
    short_steps: int, slice_steps: int, fill_fraction: Decimal
) -> None:
    step = COARSE.amount_step
    current = UnwindView(COARSE, D("50000"), step * short_steps, D("100"), D("0"), D("0"))
    spec = UnwindSpec(slice_size(current.short, step * slice_steps, None, COARSE))
    for _ in range(10_000):
        action = next_step(current, spec)
        if action is None:
            break
        assert action.amount >= COARSE.min_amount, f"slice {action.amount} is below the minimum {COARSE.min_amount}"
        assert action.amount <= current.short
        # A partial fill never leaves a remainder that no order could close.
        filled = floor_to_step(action.amount * fill_fraction, step)
        if action.amount - filled < COARSE.min_amount or current.short - filled < COARSE.min_amount:
            filled = action.amount
        current = apply_fill(current, action, filled)
    assert current.short == 0
