"""`schoolgate status`: is the gateway up, which policy does it enforce, is the log keeping up?

Two halves, because they live in two places: the running proxy knows its policy, its lists,
its reloads and its queue (it answers `/schoolgate/status` with `proxy_status`, to loopback
clients only); the database knows today's incidents and its size (`database_figures`, read
by the command, so it answers even when the proxy is down).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from addons.destinations import describe
from addons.incidents import Incident
from addons.policy import Policy

PATH = "/schoolgate/status"


@dataclass(frozen=True)
class PolicyEvent:
    """One attempt to load the policy: at start or on a reload, loaded or refused."""

    at: dt.datetime
    how: str  # "start" | "reload"
    result: str  # "loaded" | "refused"
    version: str | None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(timespec="seconds"),
            "how": self.how,
            "result": self.result,
            "version": self.version,
            "error": self.error,
        }


def proxy_status(
    policy: Policy,
    loaded: PolicyEvent,
    last: PolicyEvent,
    started_at: dt.datetime,
    queued: int,
    written: int,
) -> dict[str, Any]:
    """What the running proxy reports about itself (JSON-ready)."""
    index = policy.index
    return {
        "proxy": "up",
        "pid": os.getpid(),
        "started_at": started_at.isoformat(timespec="seconds"),
        "site": policy.config.school.site,
        "config": str(policy.config.path),
        "policy_version": loaded.version,
        "policy_loaded_at": loaded.at.isoformat(timespec="seconds"),
        "lists": [
            {"category": source.category, "path": str(source.path), "entries": count}
            for source, count in zip(index.sources, index.entries_per_source, strict=True)
        ],
        "entries": index.entries,
        "last_reload": last.as_json(),
        "incidents_queued": queued,
        "incidents_written": written,
        "destinations": describe(policy.config.proxy),
    }


def database_figures(engine: Engine, timezone: ZoneInfo, now: dt.datetime) -> dict[str, Any]:
    """Incidents since midnight in the school's timezone, and the database's size in bytes."""
    midnight = now.astimezone(timezone).replace(hour=0, minute=0, second=0, microsecond=0)
    since = midnight.astimezone(dt.UTC).replace(tzinfo=None)
    try:
        with engine.connect() as connection:
            today = connection.scalar(
                select(func.count()).select_from(Incident).where(Incident.occurred_at >= since)
            )
            size = _size(engine, connection)
    except SQLAlchemyError as e:  # no database yet, no table yet, or the server is down
        return {"database": engine.url.render_as_string(), "error": str(e).splitlines()[0]}
    return {
        "database": engine.url.render_as_string(),  # the password shown as ***
        "incidents_today": today,
        "database_bytes": size,
    }


def _size(engine: Engine, connection: Any) -> int | None:
    """The one dialect-specific figure: how much disk the incident log takes."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database or ""
        files = (database, f"{database}-wal", f"{database}-shm")
        return sum(os.path.getsize(f) for f in files if os.path.exists(f))
    if engine.dialect.name == "postgresql":
        return connection.scalar(text("SELECT pg_database_size(current_database())"))
    return None
