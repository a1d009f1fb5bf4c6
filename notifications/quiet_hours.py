"""Quiet hours: whether a moment falls in a user's window, and when that window ends.

Pure arithmetic on `zoneinfo` (with the `tzdata` package, so it works where the OS has no zone
files). A window is local wall-clock time in the user's zone: 22:00-07:00 crosses midnight and
belongs to the day it starts on (`days`). Moments are compared in UTC, so a window that spans a
DST change is as long as the clocks say, and a start or end that falls in a DST gap is read as
the same wall time after the clocks moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Window:
    start: time
    end: time
    days: frozenset[int] | None = None  # weekday numbers (Monday 0) the window may start on; None: every day

    @classmethod
    def parse(cls, start: str, end: str, days: list[str] | None = None) -> Window:
        return cls(
            start=parse_clock(start),
            end=parse_clock(end),
            days=frozenset(DAYS.index(d) for d in days) if days is not None else None,
        )

    def end_of(self, now: datetime, zone: ZoneInfo) -> datetime | None:
        """The end (UTC) of the window `now` falls in, or None when it falls in none."""
        today = now.astimezone(zone).date()
        # a window crossing midnight that started yesterday may still be open today
        for day in (today - timedelta(days=1), today):
            if self.days is not None and day.weekday() not in self.days:
                continue
            opens, closes = self._bounds(day, zone)
            if opens <= now < closes:
                return closes
        return None

    def _bounds(self, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
        end_day = day + timedelta(days=1) if self.end <= self.start else day
        return _instant(day, self.start, zone), _instant(end_day, self.end, zone)


def _instant(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """A local wall time as a UTC instant. In a DST gap the local time does not exist: it is
    taken at the offset in force before the gap, which lands just after the clocks moved."""
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def parse_clock(value: str) -> time:
    """'HH:MM', 24-hour."""
    hours, sep, minutes = value.partition(":")
    if not sep or len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        raise ValueError("must be a time of day as HH:MM")
    h, m = int(hours), int(minutes)
    if h > 23 or m > 59:
        raise ValueError("must be a time of day as HH:MM (00:00 to 23:59)")
    return time(h, m)


def zone(name: str) -> ZoneInfo:
    """An IANA time zone; ValueError for anything else."""
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Berlin)") from exc
