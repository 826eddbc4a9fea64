"""The school day: which moments the policy's `school_day` rules apply to."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from addons.config import SchoolDayConfig


class SchoolDay:
    """Listed weekdays, `start` (inclusive) to `end` (exclusive) in the school's timezone,
    inside a term when terms are given, never on a closure."""

    def __init__(self, config: SchoolDayConfig, timezone: ZoneInfo) -> None:
        self.config = config
        self.timezone = timezone

    def is_school_date(self, day: dt.date) -> bool:
        """True when `day` is a day the school is open (ignoring the time of day)."""
        c = self.config
        if day.weekday() not in c.weekdays or day in c.closures:
            return False
        return not c.terms or any(t.start <= day <= t.end for t in c.terms)

    def contains(self, moment: dt.datetime) -> bool:
        """True when `moment` (timezone-aware) falls inside the school day."""
        local = moment.astimezone(self.timezone)
        return self.config.start <= local.time().replace(
            tzinfo=None
        ) < self.config.end and self.is_school_date(local.date())

    def contains_timestamp(self, epoch: float) -> bool:
        """`contains` for a POSIX timestamp, as the proxy's clock gives it."""
        return self.contains(dt.datetime.fromtimestamp(epoch, self.timezone))
