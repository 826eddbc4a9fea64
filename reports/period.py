"""The period a report covers: an ISO week, a date range or a term, in the school's timezone.

Reports count by the school's calendar, not by UTC: a week runs from Monday 00:00 to the next
Monday 00:00 local time, so across a DST change it lasts 167 or 169 hours. The queries get
the period's UTC bounds and the UTC offsets in force inside it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from addons.config import Term

_ISO_WEEK = re.compile(r"(\d{4})-W(\d{2})\Z")
_HOUR = dt.timedelta(hours=1)


class PeriodError(ValueError):
    """A period a person asked for that does not exist (bad week, unknown term)."""


@dataclass(frozen=True)
class Period:
    """Whole local days from `start` to `end`, both inclusive."""

    kind: Literal["week", "range", "term"]
    label: str  # 2026-W47 | 2026-11-02 to 2026-11-13 | Autumn 2026
    start: dt.date
    end: dt.date
    timezone: ZoneInfo

    @property
    def since(self) -> dt.datetime:
        """The first moment of the period, as naive UTC like the incident log."""
        return _utc(self.start, self.timezone)

    @property
    def until(self) -> dt.datetime:
        """The first moment after the period, as naive UTC."""
        return _utc(self.end + dt.timedelta(days=1), self.timezone)

    @property
    def slug(self) -> str:
        """The period in a file name: 2026-W47, 2026-11-02_2026-11-13, autumn-2026."""
        if self.kind == "range":
            return f"{self.start}_{self.end}"
        if self.kind == "week":
            return self.label
        return re.sub(r"[^A-Za-z0-9-]+", "-", self.label).strip("-").lower() or "term"

    def previous(self) -> Period:
        """The period of the same length just before this one (last week, for a week)."""
        length = self.end - self.start + dt.timedelta(days=1)
        start, end = self.start - length, self.start - dt.timedelta(days=1)
        if self.kind == "week":
            return week_of(start, self.timezone)
        return Period("range", f"{start} to {end}", start, end, self.timezone)

    def weeks(self) -> list[Period]:
        """The ISO weeks that overlap the period, each clipped to it (a term's first week)."""
        monday = self.start - dt.timedelta(days=self.start.weekday())
        weeks = []
        while monday <= self.end:
            week = week_of(monday, self.timezone)
            start, end = max(week.start, self.start), min(week.end, self.end)
            weeks.append(Period("week", week.label, start, end, self.timezone))
            monday += dt.timedelta(days=7)
        return weeks

    def utc_offsets(self) -> list[tuple[dt.datetime, int]]:
        """(naive UTC moment, offset in ms) pairs: each offset holds from its moment on.

        The first pair starts at `since`; one more follows each DST change inside the period.
        """
        moment = self.since.replace(tzinfo=dt.UTC)
        end = self.until.replace(tzinfo=dt.UTC)
        changes = [(self.since, _offset_ms(moment, self.timezone))]
        while moment < end:
            step = min(moment + _HOUR, end)
            if _offset_ms(step, self.timezone) != changes[-1][1]:
                change = _first_moment_with_new_offset(moment, step, self.timezone)
                changes.append((change.replace(tzinfo=None), _offset_ms(change, self.timezone)))
            moment = step
        return changes


def _utc(day: dt.date, timezone: ZoneInfo) -> dt.datetime:
    local = dt.datetime.combine(day, dt.time(), timezone)
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def _offset_ms(moment: dt.datetime, timezone: ZoneInfo) -> int:
    offset = moment.astimezone(timezone).utcoffset()
    assert offset is not None
    return int(offset.total_seconds() * 1000)


def _first_moment_with_new_offset(
    before: dt.datetime, after: dt.datetime, timezone: ZoneInfo
) -> dt.datetime:
    """Bisect to the second: zones change at whole seconds, not always at whole hours."""
    old = _offset_ms(before, timezone)
    while after - before > dt.timedelta(seconds=1):
        middle = before + (after - before) / 2
        middle = middle.replace(microsecond=0)
        if _offset_ms(middle, timezone) == old:
            before = middle
        else:
            after = middle
    return after


def week_of(day: dt.date, timezone: ZoneInfo) -> Period:
    """The ISO week (Monday to Sunday) that holds `day`."""
    year, week, _ = day.isocalendar()
    monday = day - dt.timedelta(days=day.weekday())
    return Period("week", f"{year}-W{week:02d}", monday, monday + dt.timedelta(days=6), timezone)


def iso_week(text: str, timezone: ZoneInfo) -> Period:
    """The week named like 2026-W47."""
    found = _ISO_WEEK.match(text.strip())
    if found is None:
        raise PeriodError(f"--week {text!r} is not an ISO week (like 2026-W47)")
    try:
        monday = dt.date.fromisocalendar(int(found[1]), int(found[2]), 1)
    except ValueError:
        raise PeriodError(f"--week {text!r}: {found[1]} has no week {found[2]}") from None
    return week_of(monday, timezone)


def last_complete_week(now: dt.datetime, timezone: ZoneInfo) -> Period:
    """The last Monday-to-Sunday week that has ended, in the school's timezone."""
    return week_of(now.astimezone(timezone).date() - dt.timedelta(days=7), timezone)


def date_range(first: str, last: str, timezone: ZoneInfo) -> Period:
    """The whole days from `first` to `last` (YYYY-MM-DD, both inclusive)."""
    start, end = _date("--from", first), _date("--to", last)
    if end < start:
        raise PeriodError(f"--to {end} is before --from {start}")
    return Period("range", f"{start} to {end}", start, end, timezone)


def _date(option: str, text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def term_named(name: str, terms: Sequence[Term], timezone: ZoneInfo) -> Period:
    """The term the config calls `name` (case and spacing ignored)."""
    wanted = " ".join(name.split()).casefold()
    for term in terms:
        if " ".join(term.name.split()).casefold() == wanted:
            return Period("term", term.name, term.start, term.end, timezone)
    known = ", ".join(t.name for t in terms) or "none: add school_day.terms to the config"
    raise PeriodError(f"--term {name!r} is not a term in the config (known: {known})")


def term_holding(period: Period, terms: Sequence[Term]) -> Period | None:
    """The term that the period ends in, from its start up to the period's end, if any."""
    for term in terms:
        if term.start <= period.end <= term.end:
            return Period("term", term.name, term.start, period.end, period.timezone)
    return None
