"""The database model: the incident log (`incidents`) and the record of policy changes.

The same model serves the proxy (writes), the CLI and the reports (reads), on SQLite and
PostgreSQL alike. Times are stored as naive UTC.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import threading
import time
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from addons.hosts import registrable_domain
from addons.policy import Decision


class Base(DeclarativeBase):
    pass


class Incident(Base):
    """One attempt the policy blocked or monitored."""

    __tablename__ = "incidents"

    # Assigned by the proxy, not the database, so the block page can show it before the row
    # is written (writes are batched): see `new_incident_id`.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime)  # UTC
    site: Mapped[str] = mapped_column(String(64))
    client_ip: Mapped[str] = mapped_column(String(45))
    username: Mapped[str | None] = mapped_column(String(255))
    client_group: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str] = mapped_column(String(255))
    category: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16))  # GET, POST, ..., CONNECT, TLS (SNI only)
    url: Mapped[str | None] = mapped_column(String(2048))  # None where only the host is known
    user_agent: Mapped[str | None] = mapped_column(String(512))

    __table_args__ = (
        Index("ix_incidents_occurred_at", "occurred_at"),
        Index("ix_incidents_site_occurred_at", "site", "occurred_at"),
    )


class PolicyChange(Base):
    """A documented decision: one list edit (`add`, `remove`, `import`) or one policy `reload`.

    The DfE filtering and monitoring standards ask the SLT to document what is blocked or
    allowed and why; the governors' statement lists these rows.
    """

    __tablename__ = "policy_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime)  # UTC
    site: Mapped[str] = mapped_column(String(64))
    who: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(16))  # add | remove | import | reload
    category: Mapped[str | None] = mapped_column(String(64))
    entries: Mapped[str] = mapped_column(Text, default="")  # one entry per line
    reason: Mapped[str] = mapped_column(Text, default="")
    policy_version: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_policy_changes_site_occurred_at", "site", "occurred_at"),)


def make_engine(url: str) -> Engine:
    """An engine for the configured URL; SQLite gets WAL so reports read while the proxy writes."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        database = engine.url.database
        if database and database != ":memory:":
            os.makedirs(os.path.dirname(database) or ".", exist_ok=True)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_schema(engine: Engine) -> None:
    """Create the tables and indexes that do not exist yet."""
    Base.metadata.create_all(engine)


_EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: keeps reference numbers short
_PROCESS_SALT = int.from_bytes(os.urandom(2), "big")
_sequence = itertools.count(_PROCESS_SALT)
_id_lock = threading.Lock()
_last_id = 0


def new_incident_id() -> int:
    """A unique, time-ordered incident id that a person can read off the block page.

    Milliseconds since 2026 times 4096, plus a per-process sequence and a random offset, so
    several gateways writing to one trust database do not collide in practice; strictly
    increasing within a process.
    """
    global _last_id
    candidate = (int(time.time() * 1000) - _EPOCH_MS) * 4096 + next(_sequence) % 4096
    with _id_lock:
        _last_id = max(candidate, _last_id + 1)
        return _last_id


def incident_row(
    decision: Decision,
    *,
    site: str,
    client_ip: str,
    username: str | None,
    method: str,
    url: str | None,
    user_agent: str | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The `incidents` row for one decided attempt, with a fresh id."""
    return {
        "id": new_incident_id(),
        "occurred_at": (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None),
        "site": site,
        "client_ip": client_ip,
        "username": username,
        "client_group": decision.group,
        "host": decision.host[:255],
        "domain": registrable_domain(decision.host)[:255],
        "category": decision.category or "",
        "rule": decision.rule.name if decision.rule else "",
        "action": decision.action,
        "method": method[:16],
        "url": url[:2048] if url else None,
        "user_agent": user_agent[:512] if user_agent else None,
    }
