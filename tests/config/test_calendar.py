"""Reading dated events from an iCalendar file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hedgebot.config import ConfigError
from hedgebot.config.calendar import read_calendar


def ics(*events: str) -> str:
    body = "".join(f"BEGIN:VEVENT\r\nUID:{i}@test\r\nDTSTAMP:20261201T000000Z\r\n{e}END:VEVENT\r\n" for i, e in enumerate(events))
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{body}END:VCALENDAR\r\n"


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()


def test_events_are_read_with_their_summary_and_start_in_utc(tmp_path: Path) -> None:
    path = tmp_path / "events.ics"
    path.write_text(ics(
        "SUMMARY:FOMC\r\nDTSTART:20261216T190000Z\r\n",
        "SUMMARY:CPI\r\nDTSTART;TZID=America/New_York:20261210T083000\r\n",
        "SUMMARY:Unlock\r\nDTSTART;VALUE=DATE:20270101\r\n",
        "SUMMARY:Floating\r\nDTSTART:20270102T120000\r\n",
    ))
    events = read_calendar(path)
    assert [(e.name, e.at) for e in events] == [
        ("FOMC", at(2026, 12, 16, 19)),
        ("CPI", at(2026, 12, 10, 13, 30)),  # 08:30 in New York is 13:30 UTC in December
        ("Unlock", at(2027, 1, 1)),  # a date alone: midnight UTC
        ("Floating", at(2027, 1, 2, 12)),  # no zone: read as UTC
    ]


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (ics("SUMMARY:FOMC\r\nDTSTART:20261216T190000Z\r\nRRULE:FREQ=MONTHLY;COUNT=3\r\n"), "repeats (RRULE/RDATE)"),
        (ics("DTSTART:20261216T190000Z\r\n"), "has no SUMMARY"),
        (ics("SUMMARY:FOMC\r\n"), "has no DTSTART"),
        ("this is not a calendar", "not an iCalendar file"),
    ],
    ids=["repeating", "no-summary", "no-start", "not-ics"],
)
def test_a_calendar_hedgebot_cannot_read_whole_is_refused_naming_the_file_and_the_event(tmp_path: Path, content: str, said: str) -> None:
    path = tmp_path / "events.ics"
    path.write_text(content)
    with pytest.raises(ConfigError) as refused:
        read_calendar(path)
    assert str(path) in str(refused.value) and said in str(refused.value)


def test_a_missing_calendar_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="calendar.file .*missing.ics: cannot be read"):
        read_calendar(tmp_path / "missing.ics")


@pytest.mark.parametrize(
    ("dtstart", "said"),
    [
        ("DTSTART:20271345T000000Z\r\n", "DTSTART '20271345T000000Z' is not a date or a date-time"),
        ("DTSTART;VALUE=PERIOD:20271201T100000Z/PT1H\r\n", "is not a date or a date-time"),
        ("DTSTART:20271201T100000Z\r\nDTSTART:20271202T100000Z\r\n", "has 2 DTSTART lines"),
        ("DTSTART;TZID=Mars/Olympus:20271201T100000\r\n", "time zone 'Mars/Olympus' is not one hedgebot knows"),
    ],
    ids=["month-13", "period", "two-starts", "unknown-zone"],
)
def test_an_event_start_that_is_not_one_date_or_time_is_refused_naming_the_file_the_event_and_the_text(
    tmp_path: Path, dtstart: str, said: str
) -> None:
    path = tmp_path / "events.ics"
    path.write_text(ics(f"SUMMARY:FOMC\r\n{dtstart}"))
    with pytest.raises(ConfigError) as refused:
        read_calendar(path)
    assert str(path) in str(refused.value) and "event 1 ('FOMC')" in str(refused.value) and said in str(refused.value), refused.value


def test_an_event_with_two_names_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.ics"
    path.write_text(ics("SUMMARY:FOMC\r\nSUMMARY:CPI\r\nDTSTART:20271201T100000Z\r\n"))
    with pytest.raises(ConfigError, match="has 2 SUMMARY lines"):
        read_calendar(path)
