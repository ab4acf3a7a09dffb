"""Read dated events from an iCalendar (.ics) file, for schedules and hedges that end after an event.

The project ships no calendar and looks nothing up on the network: the user
exports one (FOMC meetings, CPI releases, token unlocks) and names it in
`[calendar] file`. Each VEVENT gives its SUMMARY as the event's name and its
DTSTART as the event's time: a date alone is midnight UTC, a time without a
zone (floating) is read as UTC. A repeating event (RRULE, RDATE) is refused
rather than half-read: list each occurrence.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from hedgebot.access import denied
from hedgebot.config.errors import ConfigError
from hedgebot.domain.schedule import CalendarEvent


def read_calendar(path: Path) -> tuple[CalendarEvent, ...]:
    """Return the events of the iCalendar file at `path`; raise ConfigError naming the file and what is wrong."""
    import icalendar

    try:
        raw = path.read_bytes()
    except PermissionError:
        raise ConfigError(denied(path, "read")) from None
    except OSError as exc:
        raise ConfigError(f"calendar.file {path}: cannot be read ({exc.strerror or exc})") from None
    try:
        calendar = icalendar.Calendar.from_ical(raw)
    except ValueError as exc:
        raise ConfigError(f"calendar.file {path}: not an iCalendar file ({exc})") from None
    events = []
    for number, component in enumerate(calendar.walk("VEVENT"), start=1):
        summary = component.get("SUMMARY", "")
        where = f"calendar.file {path}: event {number}"
        if isinstance(summary, list):
            raise ConfigError(f"{where} has {len(summary)} SUMMARY lines; give it one name")
        name = str(summary).strip()
        where += f" ({name!r})" if name else ""
        if not name:
            raise ConfigError(f"{where} has no SUMMARY, which schedules use as its name")
        if component.get("RRULE") is not None or component.get("RDATE") is not None:
            raise ConfigError(f"{where} repeats (RRULE/RDATE), which hedgebot does not expand: list each occurrence")
        events.append(CalendarEvent(name, _start(component, where)))
    return tuple(events)


def _start(component: Any, where: str) -> float:
    """Return the event's DTSTART as epoch seconds; raise ConfigError for one that is not a single date or date-time."""
    raw = component.get("DTSTART")
    if raw is None:
        raise ConfigError(f"{where} has no DTSTART")
    if isinstance(raw, list):
        raise ConfigError(f"{where} has {len(raw)} DTSTART lines; give it one start")
    text = raw.to_ical().decode(errors="replace") if hasattr(raw, "to_ical") else str(raw)
    try:
        value = component.decoded("DTSTART")
    except (ValueError, TypeError, KeyError):
        value = None
    if not isinstance(value, date):  # a datetime is a date too
        raise ConfigError(f"{where}: DTSTART {text!r} is not a date or a date-time")
    if isinstance(value, datetime):
        zone = raw.params.get("TZID") if hasattr(raw, "params") else None
        if value.tzinfo is None and zone:
            raise ConfigError(f"{where}: DTSTART's time zone {zone!r} is not one hedgebot knows (an IANA name, e.g. America/New_York)")
        return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()
    return datetime.combine(value, time(0), tzinfo=UTC).timestamp()
