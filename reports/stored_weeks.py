"""Finished weeks' counts, stored so that each Monday's trend counts only the week just ended.

The weekly report shows every earlier week of the term. Counting a week's attempts sorts its
rows; a count of its rows and their times (`queries.fingerprint`) does not, so a stored count
is checked for a tenth of the cost and reused while the rows it read are unchanged. Storing is
best effort: a log at an older schema revision, or one the reader may not write to, is still
reported, its weeks counted every time.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import Engine, Row, delete, insert, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from addons.incidents import WeekCount
from reports import queries
from reports.model import Tally
from reports.queries import Scope

logger = logging.getLogger(__name__)


class StoredWeeks:
    """The stored counts of one site's weeks, read once per report."""

    def __init__(self, engine: Engine, site: str, now: dt.datetime) -> None:
        self.engine = engine
        self.now = now.astimezone(dt.UTC).replace(tzinfo=None)  # naive UTC, as stored
        self.usable = inspect(engine).has_table(WeekCount.__tablename__)
        self.known: dict[tuple[dt.datetime, dt.datetime], Row[Any]] = {}
        if self.usable:
            query = select(WeekCount.__table__).where(WeekCount.site == site)
            with engine.connect() as connection:
                for week in connection.execute(query):
                    self.known[week.since, week.until] = week

    def counts(self, scope: Scope) -> Tally:
        """Requests and attempts in `scope`: stored if its rows are as they were, else counted
        (and stored, when the week is over and none of its rows is past retention)."""
        if not (self.usable and self._storable(scope)):
            return queries.counts(self.engine, scope)
        period = scope.period
        rows, ms_total = queries.fingerprint(self.engine, scope)  # before counting: see _store
        stored = self.known.get((period.since, period.until))
        if stored is not None and (stored.rows, stored.ms_total) == (rows, ms_total):
            return Tally(requests=stored.requests, attempts=stored.attempts)
        tally = queries.counts(self.engine, scope)
        self._store(scope, rows, ms_total, tally)
        return tally

    def _storable(self, scope: Scope) -> bool:
        # a week partly past retention reads fewer rows each day: nothing to reuse
        return (
            scope.period.until <= self.now
            and queries.first_read(scope) == scope.period.since - queries.ATTEMPT_GAP
        )

    def _store(self, scope: Scope, rows: int, ms_total: int, tally: Tally) -> None:
        """Replace the week's stored count. The fingerprint was taken before the count, so a
        row written in between makes the next report count the week again, never reuse a
        count that misses it."""
        period = scope.period
        key = (
            WeekCount.site == scope.site,
            WeekCount.since == period.since,
            WeekCount.until == period.until,
        )
        values = {
            "site": scope.site,
            "since": period.since,
            "until": period.until,
            "rows": rows,
            "ms_total": ms_total,
            "requests": tally.requests,
            "attempts": tally.attempts,
            "counted_at": self.now,
        }
        try:
            with self.engine.begin() as connection:
                connection.execute(delete(WeekCount).where(*key))
                connection.execute(insert(WeekCount).values(values))
        except SQLAlchemyError as e:  # read-only, or another report stored it first
            logger.debug("week %s not stored: %s", period.label, e)
