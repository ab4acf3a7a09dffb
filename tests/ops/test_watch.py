"""Crossings: one event when a hedge leaves its band, and a liquidation-distance alert raised once
when the distance falls below the warning level and resolved when it recovers; never one per tick."""

from __future__ import annotations

from decimal import Decimal

from hedgebot.clock import SimClock
from hedgebot.domain.model import Severity
from hedgebot.domain.policy import Plan
from hedgebot.ops.alerts import ALERT, ALERT_RESOLVED, AlertBook
from hedgebot.ops.events import EventLog, EventRecord, NullLogger
from hedgebot.ops.watch import LIQUIDATION_LOW, HedgeWatch

D = Decimal


def plan(distance: str | None = "0.5", in_band: bool = True) -> Plan:
    return Plan(
        exposure=D(2), target=D(2), short=D(2) if in_band else D("1.5"), drift=D(0) if in_band else D("-0.5"),
        in_band=in_band, liquidation_price=D(60000), distance=D(distance) if distance is not None else None,
        actions=(), alerts=(), notes=(),
    )


def watched() -> tuple[HedgeWatch, AlertBook, list[EventRecord], SimClock]:
    clock = SimClock(start=0)
    events = EventLog(None, NullLogger(), clock)
    seen: list[EventRecord] = []
    events.subscribe(seen.append)
    book = AlertBook(events, clock, "acct", "btc", repeat_seconds=10_000)

    def emit(kind: str, severity: Severity = Severity.INFO, **detail: object) -> None:
        events.emit("acct", "btc", kind, severity, **detail)

    return HedgeWatch(book, emit, clock.now), book, seen, clock


def test_a_liquidation_warning_is_raised_once_per_crossing_and_resolved_above_the_level() -> None:
    watch, book, seen, clock = watched()
    level = D("0.20")
    for distance in ("0.30", "0.19", "0.15", "0.12", "0.21", "0.18", "0.23", "0.30", "0.10"):
        watch.observe(plan(distance), level)
        book.end_tick(plan_judged=True)
    assert [(e.kind, e.severity, e.detail["code"]) for e in seen] == [
        (ALERT, Severity.WARNING, LIQUIDATION_LOW), (ALERT_RESOLVED, Severity.INFO, LIQUIDATION_LOW), (ALERT, Severity.WARNING, LIQUIDATION_LOW),
    ]
    low, resolved, again = (e.detail for e in seen)
    assert low["distance"] == D("0.19") and low["level"] == level
    assert resolved["worst_distance"] == D("0.12") and resolved["distance"] == D("0.23")
    assert again["distance"] == D("0.10")


def test_closing_the_short_resolves_a_low_distance() -> None:
    watch, book, seen, clock = watched()
    watch.observe(plan("0.1"), D("0.2"))
    watch.observe(plan(None), D("0.2"))
    assert [e.kind for e in seen] == [ALERT, ALERT_RESOLVED]


async def test_leaving_and_reentering_the_band_are_one_event_each_with_the_time_outside() -> None:
    watch, book, seen, clock = watched()
    for at, in_band in ((0, True), (10, False), (20, False), (30, False), (45, True), (50, True)):
        await clock.set(at)
        watch.observe(plan(in_band=in_band), D("0.05"))
    assert [(e.kind, e.detail.get("seconds_outside")) for e in seen] == [("band_left", None), ("band_returned", 35)]


def test_a_hedge_not_meant_to_follow_its_target_ends_its_stretch_outside_and_leaves_no_band() -> None:
    _, book, seen, _ = watched()
    now = [0.0]
    watch = HedgeWatch(book, lambda kind, severity=Severity.INFO, **d: book.events.emit("acct", "btc", kind, severity, **d),
                       lambda: now[0])
    watch.observe(plan(in_band=False), D("0.2"))
    now[0] = 60.0
    watch.observe(plan(in_band=False), D("0.2"), meant=False)  # paused by a person, or closed
    now[0] = 660.0
    watch.observe(plan(in_band=False), D("0.2"), meant=False)
    assert [e.kind for e in seen] == ["band_left", "band_unwatched"]
    assert seen[1].detail["seconds_outside"] == 60
