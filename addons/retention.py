"""Retention: incidents are personal data, kept for `retention_days` and no longer.

The running proxy deletes its own site's expired incidents once a day (`RetentionTimer`, first
shortly after start), `schoolgate db purge` does it on demand, and the reports read nothing
older than `retention_cutoff`, so what is past retention is never shown, even before a purge.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy import ColumnElement, Engine, delete, func, select, true
from sqlalchemy.exc import SQLAlchemyError

from addons.background import Background
from addons.config import Config
from addons.incidents import Incident

logger = logging.getLogger(__name__)

FIRST_PURGE_DELAY = 5.0  # seconds: after the schema is ready, long before a day has passed
PURGE_INTERVAL = 86_400.0
RETRY_INTERVAL = 3_600.0  # after a failed purge (the database was down)
PURGE_BATCH = 10_000  # rows a transaction: the writer never waits long for the lock


def retention_cutoff(config: Config, now: dt.datetime) -> dt.datetime:
    """The oldest moment still kept, as naive UTC like the log: anything before it is past
    retention, never to be shown or kept."""
    return (now.astimezone(dt.UTC) - dt.timedelta(days=config.retention_days)).replace(tzinfo=None)


def of_site(site: str | None) -> ColumnElement[bool]:
    """Incidents of one site, or of every site (None): a trust's database holds several."""
    return Incident.site == site if site is not None else true()


def expired_by_site(engine: Engine, cutoff: dt.datetime, site: str | None) -> dict[str, int]:
    """How many incidents `purge` would delete, per site."""
    query = (
        select(Incident.site, func.count())
        .where(Incident.occurred_at < cutoff, of_site(site))
        .group_by(Incident.site)
        .order_by(Incident.site)
    )
    with engine.connect() as connection:
        return {site: count for site, count in connection.execute(query)}


def purge(engine: Engine, cutoff: dt.datetime, site: str | None) -> int:
    """Delete the incidents before `cutoff`, a batch a transaction; how many were deleted."""
    batch = (
        select(Incident.id)
        .where(Incident.occurred_at < cutoff, of_site(site))
        .limit(PURGE_BATCH)
        .scalar_subquery()
    )
    deleted = 0
    while True:
        with engine.begin() as connection:
            count = connection.execute(delete(Incident).where(Incident.id.in_(batch))).rowcount
        deleted += count
        if count < PURGE_BATCH:
            return deleted


class RetentionTimer(Background):
    """A thread that purges the gateway's own site's expired incidents once a day.

    `current` gives the engine and config in force at each run, so a reload that changes
    `retention_days` or the database applies from the next purge.
    """

    def __init__(
        self, current: Callable[[], tuple[Engine, Config]], first: float = FIRST_PURGE_DELAY
    ) -> None:
        super().__init__("schoolgate-retention")
        self._current = current
        self._first = first

    def _run(self) -> None:
        delay = self._first
        while not self._stop.wait(delay):
            delay = PURGE_INTERVAL if self.purge_now() else RETRY_INTERVAL

    def purge_now(self) -> bool:
        """One purge of the site in force; False if the database refused (logged)."""
        engine, config = self._current()
        cutoff = retention_cutoff(config, dt.datetime.now(dt.UTC))
        try:
            deleted = purge(engine, cutoff, config.school.site)
        except SQLAlchemyError as e:  # the log may be down: try again within the hour
            logger.warning("schoolgate: retention purge failed, retrying in an hour: %s", e)
            return False
        if deleted:
            logger.info(
                "schoolgate: retention: deleted %d incident(s) of site %s before %s UTC "
                "(retention_days: %d)",
                deleted,
                config.school.site,
                cutoff.isoformat(timespec="seconds"),
                config.retention_days,
            )
        return True
