"""Alerts: raised when a condition begins, repeated at an interval while it lasts, resolved when it clears."""

from __future__ import annotations

from hedgebot.domain.model import Wallet
from tests.helpers import D, hedge_config, make_rig


async def _rally_to_unfunded(rig) -> None:
    """Open the short, then rally until its margin cannot be topped up (no funds anywhere)."""
    await rig.keeper.tick()
    for price in ("55000", "58000", "62000"):
        await rig.set_price(price, advance=10)
        await rig.keeper.tick()


def _lifecycle(rig, code: str) -> list[tuple[str, str]]:
    """Return (kind, state) of every alert event of `code`, in order."""
    return [
        (e.kind, e.detail.get("state", ""))
        for e in rig.journal.events()
        if e.kind in ("alert", "alert_resolved") and e.detail.get("code") == code
    ]


async def test_a_persisting_alert_is_raised_once_repeated_every_15_minutes_and_resolved_when_it_clears() -> None:
    rig = await make_rig(spot={"BTC": "1"}, futures={"USDT": "17000"})
    await _rally_to_unfunded(rig)
    assert _lifecycle(rig, "margin_unfunded") == [("alert", "raised")]
    for _ in range(6 * 40):  # 40 minutes of 10-second ticks with the condition unchanged
        await rig.set_price("62000", advance=10)
        await rig.keeper.tick()
    assert _lifecycle(rig, "margin_unfunded") == [("alert", "raised"), ("alert", "repeated"), ("alert", "repeated")]
    assert rig.keeper.status.state == "alert"
    rig.venue.deposit(Wallet.FUTURES, "USDT", D("100000"))  # a person acts
    await rig.set_price("62000", advance=10)
    await rig.keeper.tick()
    assert _lifecycle(rig, "margin_unfunded")[-1] == ("alert_resolved", "resolved")
    resolved = rig.journal.events(kind="alert_resolved")[-1]
    assert resolved.severity == "info" and D(resolved.detail["lasted_seconds"]) > 40 * 60


async def test_an_alert_that_appears_mid_tick_goes_out_at_once() -> None:
    # At 20x the freshly opened short sits about 5 % from liquidation and the
    # futures wallet cannot fund the top-up: the alert appears only after the
    # first action of the tick, and must not wait for the next tick.
    rig = await make_rig(spot={"BTC": "1"}, futures={"USDT": "3000"}, hedge=hedge_config(leverage=20))
    await rig.keeper.tick()
    assert await rig.short() == D("1")
    assert _lifecycle(rig, "margin_unfunded") == [("alert", "raised")]


async def test_the_repeat_interval_comes_from_the_config() -> None:
    from hedgebot.config import AlertsConfig

    assert AlertsConfig().repeat_seconds == 900
    rig = await make_rig(spot={"BTC": "1"}, futures={"USDT": "17000"})
    rig.keeper.alerts.repeat_seconds = 60
    await _rally_to_unfunded(rig)
    for _ in range(10):
        await rig.set_price("62000", advance=10)
        await rig.keeper.tick()
    assert _lifecycle(rig, "margin_unfunded") == [("alert", "raised"), ("alert", "repeated")]


async def test_subscribers_hear_every_event_that_passes_through_the_event_log() -> None:
    rig = await make_rig(spot={"BTC": "1"}, futures={"USDT": "17000"})
    heard = []
    rig.events.subscribe(heard.append)
    await _rally_to_unfunded(rig)
    kinds = [e.kind for e in heard]
    assert "hedge_opened" in kinds and "alert" in kinds
    # (the runway warning goes out too; this test follows the margin alert)
    alert = next(e for e in heard if e.kind == "alert" and e.detail["code"] == "margin_unfunded")
    assert (alert.account, alert.hedge, alert.severity.value, alert.detail["code"]) == ("acct", "btc", "critical", "margin_unfunded")
    assert alert.at == next(e for e in rig.journal.events(kind="alert") if e.detail["code"] == "margin_unfunded").at


async def test_a_price_wandering_over_the_point_where_the_margin_money_ran_out_raises_one_alert_not_one_per_crossing() -> None:
    rig = await make_rig(spot={"BTC": "1"}, futures={"USDT": "17000"})
    await _rally_to_unfunded(rig)
    trigger = rig.keeper.policy.guard.trigger
    for _ in range(4):
        await rig.set_price("54000", advance=10)
        await rig.keeper.tick()
        assert rig.keeper.last_plan.distance > trigger  # back above the trigger: no top-up is asked for here
        assert rig.keeper.status.state == "alert"  # but the money is still not there
        await rig.set_price("62000", advance=10)
        await rig.keeper.tick()
    assert _lifecycle(rig, "margin_unfunded") == [("alert", "raised")]
    rig.venue.deposit(Wallet.FUTURES, "USDT", D("100000"))  # a person acts
    await rig.set_price("62000", advance=10)
    await rig.keeper.tick()
    assert _lifecycle(rig, "margin_unfunded") == [("alert", "raised"), ("alert_resolved", "resolved")]


def test_a_resolved_alert_says_the_figures_at_resolution_not_those_it_was_raised_with() -> None:
    from hedgebot.clock import SimClock
    from hedgebot.domain.model import Severity
    from hedgebot.ops.alerts import AlertBook
    from hedgebot.ops.events import EventLog, NullLogger

    clock = SimClock(start=0)
    seen: list = []
    events = EventLog(None, NullLogger(), clock)
    events.subscribe(seen.append)
    book = AlertBook(events, clock, "acct", "btc")
    book.describe = lambda code: "now runway 80,000.00 (45.00% above the mark)"
    book.raise_alert("runway_short", Severity.WARNING, "runway 60,000.00 (20.00% above the mark)")
    book.end_tick(plan_judged=True)
    book.end_tick(plan_judged=True)  # not seen again: resolved with the figures the hedge has now
    resolved = seen[-1].detail
    assert "80,000.00" in resolved["message"] and "60,000.00" not in resolved["message"]
    assert resolved["raised_message"] == "runway 60,000.00 (20.00% above the mark)"
    book.raise_alert("liquidation_distance_low", Severity.WARNING, "liquidation distance 15.00% is below 20.00%")
    book.resolve("liquidation_distance_low", "liquidation distance back to 23.00%")
    assert "back to 23.00%" in seen[-1].detail["message"] and "15.00%" not in seen[-1].detail["message"]


def test_log_lines_show_a_hedges_figures_at_its_markets_steps_and_the_journal_keeps_them_as_recorded() -> None:
    from decimal import Decimal

    from hedgebot.clock import SimClock
    from hedgebot.domain.model import Severity
    from hedgebot.ops.events import EventLog
    from hedgebot.ops.figures import Precision

    lines: list[dict] = []

    class Capture:
        def __getattr__(self, level: str):
            return lambda event, **fields: lines.append({"event": event, **fields})

    seen: list = []
    events = EventLog(None, Capture(), SimClock(start=1_700_000_000))
    events.subscribe(seen.append)
    events.show_figures("acct", "btc", Precision(Decimal("0.001"), Decimal("0.1"), Decimal("0.01")))
    events.emit("acct", "btc", "rebalanced", Severity.INFO, short=Decimal("1.23456789"), mark=Decimal("50012.3456"),
                distance=Decimal("0.3218446601941747572815533981"), since=1_699_999_000.0)
    assert lines[-1]["short"] == "1.235" and lines[-1]["mark"] == "50012.3" and lines[-1]["distance"] == "0.3218"
    assert lines[-1]["since"] == "2023-11-14T21:56:40Z"
    assert seen[-1].detail["short"] == Decimal("1.23456789")  # subscribers and the journal get the figures as they are


def test_how_long_an_alert_lasted_is_measured_on_the_monotonic_clock_across_a_step_of_the_wall_clock() -> None:
    from hedgebot.domain.model import Severity
    from hedgebot.ops.alerts import AlertBook
    from hedgebot.ops.events import EventLog, NullLogger

    class SteppedClock:
        wall, mono = 1_700_000_000.0, 500.0

        def now(self) -> float:
            return self.wall

        def monotonic(self) -> float:
            return self.mono

    clock = SteppedClock()
    seen: list = []
    events = EventLog(None, NullLogger(), clock)
    events.subscribe(seen.append)
    book = AlertBook(events, clock, "acct", "btc")  # type: ignore[arg-type]
    book.raise_alert("runway_short", Severity.WARNING, "runway short")
    clock.mono += 8.0
    clock.wall += 8.0 - 300.0  # the wall clock is stepped back 300 s meanwhile
    book.resolve("runway_short", "runway back")
    resolved = seen[-1].detail
    assert resolved["lasted_seconds"] == 8.0 and "resolved after 8s" in resolved["message"], resolved["message"]
