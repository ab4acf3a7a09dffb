"""Schedules: which ratio holds when, and when the hedge ends."""

from __future__ import annotations

from decimal import Decimal

from hedgebot.domain.schedule import CalendarEvent, Schedule, Window, around_events

D = Decimal


def test_a_window_holds_from_its_start_to_just_before_its_end_and_the_hedges_ratio_outside() -> None:
    schedule = Schedule.of([Window("fomc", 100, 200, D("1"))])
    assert [schedule.ratio_at(D("0.5"), t) for t in (99.9, 100, 199.9, 200)] == [D("0.5"), D("1"), D("1"), D("0.5")]


def test_where_windows_overlap_the_one_that_began_last_holds() -> None:
    schedule = Schedule.of([Window("week", 0, 1000, D("0.8")), Window("cpi", 400, 500, D("1"))])
    assert schedule.window_at(450).name == "cpi" and schedule.window_at(600).name == "week"


def test_the_next_change_is_the_nearest_start_end_or_end_of_the_hedge() -> None:
    schedule = Schedule.of([Window("a", 100, 200, D("1"))], ends_at=150)
    assert [schedule.next_change(t) for t in (0, 100, 150, 200)] == [100, 150, 200, None]
    assert schedule.next_window(0).name == "a" and schedule.next_window(100) is None
    assert not schedule.ended(149.9) and schedule.ended(150)


def test_a_window_around_an_event_name_stands_for_every_event_of_that_name() -> None:
    events = [CalendarEvent("FOMC", 10_000), CalendarEvent("CPI", 20_000), CalendarEvent("FOMC", 30_000)]
    windows = around_events("fomc", "FOMC", events, before=3600, after=1800, ratio=D("1"))
    assert [(w.start, w.end) for w in windows] == [(6_400, 11_800), (26_400, 31_800)]
