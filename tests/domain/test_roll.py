"""The roll from an expiring delivery contract to the next: never less short than at its start, one slice of overlap at most."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from hedgebot.domain.model import floor_to_step
from hedgebot.domain.roll import (
    CLOSE_EXPIRING,
    OPEN_NEXT,
    Contract,
    RollView,
    apply_fill,
    contract_to_hold,
    next_roll_step,
    overlap_after,
    roll_due,
)
from tests.helpers import D

DAY = 86_400.0
MARCH = Contract("BTC/USDT:USDT-270326", 100 * DAY)
JUNE = Contract("BTC/USDT:USDT-270625", 191 * DAY)
SEPTEMBER = Contract("BTC/USDT:USDT-270924", 282 * DAY)


def test_the_hedge_holds_the_nearest_contract_more_than_roll_before_from_expiry() -> None:
    contracts = [JUNE, MARCH, SEPTEMBER]
    assert contract_to_hold(contracts, now=10 * DAY, roll_before=3 * DAY) == MARCH
    assert contract_to_hold(contracts, now=98 * DAY, roll_before=3 * DAY) == JUNE  # March is 2 days out
    assert contract_to_hold(contracts, now=300 * DAY, roll_before=3 * DAY) is None


def test_the_roll_is_due_roll_before_ahead_of_expiry() -> None:
    assert not roll_due(MARCH, now=96 * DAY, roll_before=3 * DAY)
    assert roll_due(MARCH, now=97 * DAY, roll_before=3 * DAY)


def test_the_roll_opens_the_next_contract_first_then_buys_back_the_same_amount() -> None:
    view = RollView(expiring=D("2.5"), next=D("0"), base=D("2.5"))
    first = next_roll_step(view, max_order=D("1"), step=D("0.001"), minimum=D("0.002"))
    assert first is not None and (first.reason, first.amount) == (OPEN_NEXT, D("1"))
    view = apply_fill(view, first, D("1"))
    second = next_roll_step(view, D("1"), D("0.001"), D("0.002"))
    assert second is not None and (second.reason, second.amount) == (CLOSE_EXPIRING, D("1"))
    view = apply_fill(view, second, D("1"))
    assert (view.expiring, view.next) == (D("1.5"), D("1"))


def test_a_partial_fill_on_the_next_contract_is_bought_back_for_what_filled_only() -> None:
    view = RollView(expiring=D("2"), next=D("0"), base=D("2"))
    opened = next_roll_step(view, D("1"), D("0.001"), D("0.002"))
    assert opened is not None
    view = apply_fill(view, opened, D("0.37"))
    close = next_roll_step(view, D("1"), D("0.001"), D("0.002"))
    assert close is not None and (close.reason, close.amount) == (CLOSE_EXPIRING, D("0.37"))


def test_a_resumed_roll_after_a_crash_between_the_two_legs_buys_back_and_opens_nothing_twice() -> None:
    # The daemon died after the next contract's slice filled and before the buy-back was sent:
    # the legs alone say what is owed.
    view = RollView(expiring=D("2"), next=D("1"), base=D("2"))
    step = next_roll_step(view, D("1"), D("0.001"), D("0.002"))
    assert step is not None and (step.reason, step.amount) == (CLOSE_EXPIRING, D("1"))


def test_a_remainder_below_the_minimum_is_split_over_the_last_two_slices_none_above_max_order() -> None:
    view = RollView(expiring=D("1.001"), next=D("0"), base=D("1.001"))
    step = next_roll_step(view, max_order=D("1"), step=D("0.001"), minimum=D("0.002"))
    assert step is not None and step.amount == D("0.501")
    view = RollView(expiring=D("0.5"), next=D("0.501"), base=D("1.001"))
    assert next_roll_step(view, D("1"), D("0.001"), D("0.002")) is not None


def test_a_leg_under_twice_the_minimum_above_the_cap_goes_in_one_slice() -> None:
    # max_order 0.004, minimum 0.003: 0.005 cannot be cut into two slices of the minimum under the cap.
    view = RollView(expiring=D("0.005"), next=D("0"), base=D("0.005"))
    step = next_roll_step(view, max_order=D("0.004"), step=D("0.001"), minimum=D("0.003"))
    assert step is not None and step.amount == D("0.005")


amounts = st.decimals(min_value=D("0.001"), max_value=D("5"), places=3)
caps = st.decimals(min_value=D("0.05"), max_value=D("10"), places=3)
minimums = st.decimals(min_value=D("0.001"), max_value=D("0.05"), places=3)


@settings(max_examples=300, deadline=None)
@given(
    expiring=amounts, max_order=caps, minimum=minimums,
    fills=st.lists(st.decimals(min_value=D("0.1"), max_value=D("1"), places=2), min_size=1, max_size=40),
)
def test_property_the_roll_never_leaves_the_account_less_short_and_overlaps_by_one_slice_at_most(
    expiring: Decimal, max_order: Decimal, minimum: Decimal, fills: list[Decimal]
) -> None:
    step_size = D("0.001")
    view = RollView(expiring=expiring, next=D("0"), base=expiring)
    cap = max(floor_to_step(max_order, step_size), step_size)
    for n in range(10_000):
        step = next_roll_step(view, max_order, step_size, minimum)
        if step is None:
            break
        assert step.amount > 0 and step.amount == floor_to_step(step.amount, step_size)
        # A slice is at most max_order (or the minimum, if larger), except where the leg left cannot be
        # cut into two slices of the minimum: then that whole leg goes in one.
        largest = max(cap, minimum) if view.expiring >= 2 * minimum else max(cap, minimum, view.expiring)
        assert step.amount <= largest
        assert overlap_after(view, step) <= largest
        # Partial fills (the share drawn), but an order the exchange would take fills at least the step.
        share = fills[n % len(fills)]
        filled = max(step_size, floor_to_step(step.amount * share, step_size))  # buy-backs fill in part too
        view = apply_fill(view, step, min(filled, step.amount))
        assert view.expiring + view.next >= view.base, "the account was less short than when the roll began"
    else:
        raise AssertionError("the roll did not finish")
    assert view.expiring == 0
    assert view.base <= view.next < view.base + minimum
