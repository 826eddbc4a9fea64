"""The database model: the incident log (`incidents`) and the record of policy changes.

The same model serves the proxy (writes), the CLI and the reports (reads), on SQLite and
PostgreSQL alike. Times are stored as naive UTC. The tables are made and changed only by the
Alembic revisions in `addons/migrations/`, through `create_schema`, so a school upgrading
schoolgate keeps its history.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from addons.hosts import registrable_domain
from addons.policy import Decision

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

# Alembic logs its plug-ins at INFO when imported, and "Context impl SQLiteImpl." when run: quiet
# before the import, so the proxy's log has only `create_schema`'s one line (an upgrade). It is
# imported where a schema is checked, not with the model: a report never needs it (0.14 s of
# every start).
logging.getLogger("alembic").setLevel(logging.WARNING)

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The schema `Base.metadata.create_all` made before schoolgate had migrations: a log without a
# version table but with an `incidents` table is at this revision.
UNVERSIONED_REVISION = "0001"
_MIGRATION_LOCK = 0x5C400C  # PostgreSQL advisory lock key: gateways starting together upgrade once


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
    device: Mapped[str | None] = mapped_column(String(255))  # from the inventory or DHCP leases
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
    """A documented decision: one list edit (`add`, `remove`, `import`), one policy `reload`,
    or one `erase` of a person's incidents (an erasure request served: who and why, never whose).

    The DfE filtering and monitoring standards ask the SLT to document what is blocked or
    allowed and why; the governors' statement lists these rows.
    """

    __tablename__ = "policy_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime)  # UTC
    site: Mapped[str] = mapped_column(String(64))
    who: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(16))  # add | remove | import | reload | erase
    category: Mapped[str | None] = mapped_column(String(64))
    entries: Mapped[str] = mapped_column(Text, default="")  # one entry per line
    reason: Mapped[str] = mapped_column(Text, default="")
    policy_version: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_policy_changes_site_occurred_at", "site", "occurred_at"),)


class WeekCount(Base):
    """A finished week's requests and attempts, as the report's trend last counted them.

    Counting a week's attempts sorts its rows (a tenth of a second per 65,000 on SQLite), and
    each Monday's report shows every earlier week of the term: stored, each is counted once.
    `rows` and `ms_total` fingerprint the rows the count read (those from five minutes before
    `since` to `until`); a stored count is used only while they are unchanged, so a purge, an
    erasure or a late row from the writer's spill file makes the week be counted again.
    """

    __tablename__ = "week_counts"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    since: Mapped[dt.datetime] = mapped_column(DateTime, primary_key=True)  # UTC
    until: Mapped[dt.datetime] = mapped_column(DateTime, primary_key=True)  # UTC
    rows: Mapped[int] = mapped_column(BigInteger)
    ms_total: Mapped[int] = mapped_column(BigInteger)  # sum of ms after the first row read
    requests: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(BigInteger)
    counted_at: Mapped[dt.datetime] = mapped_column(DateTime)  # UTC


def make_engine(url: str) -> Engine:
    """An engine for the configured URL; SQLite gets WAL so reports read while the proxy writes,
    and a private file (the log is personal data)."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connected)
        database = engine.url.database
        if database and database != ":memory:":
            os.makedirs(os.path.dirname(database) or ".", mode=0o700, exist_ok=True)
    return engine


def _sqlite_connected(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Opening created the file (empty, under the umask) if it was missing. Made 0600 before WAL
    # mode creates -wal and -shm, which SQLite then gives the same mode; a log made by an older
    # schoolgate with a wider mode is narrowed here too.
    for _seq, _name, file in cursor.execute("PRAGMA database_list").fetchall():
        for path in (file, f"{file}-wal", f"{file}-shm") if file else ():
            _make_private(path)
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _make_private(path: str) -> None:
    """Owner read and write only, if the file exists and anyone else may read it."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if mode & 0o077:
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


class SchemaTooNew(SQLAlchemyError):
    """The database was upgraded by a newer schoolgate: this code must not write to it.

    A database error like any other for the writer (it keeps the rows queued, fails open);
    the proxy refuses to start on it.
    """


@dataclass(frozen=True)
class SchemaState:
    """What `create_schema` found (None: no tables yet) and what it left (this code's head)."""

    before: str | None
    after: str

    def describe(self) -> str:
        """One line for a person: created, upgraded, or already current."""
        if self.before is None:
            return f"created at schema revision {self.after}"
        if self.before == self.after:
            return f"already at schema revision {self.after}"
        return f"upgraded from schema revision {self.before} to {self.after}"


def create_schema(engine: Engine) -> SchemaState:
    """Bring the database to this code's schema revision: the one way tables are made or changed.

    A new database gets every revision; an older one is upgraded in place, keeping its rows;
    one at a revision this code does not know raises SchemaTooNew and is left alone. Costs one
    query when the schema is current, so writers may call it before every first write.
    """
    head = _scripts().get_current_head()
    assert head is not None
    with engine.connect() as connection:
        before = _revision(connection)
    if before != head:
        with engine.begin() as connection:
            _lock_migrations(connection)
            before = _revision(connection)  # another gateway may have upgraded meanwhile
            _check_known(engine, before, head)
            if before != head:
                _upgrade(connection, before)
                if before is not None:
                    logger.warning(
                        "schoolgate: incident log %s upgraded from schema revision %s to %s",
                        engine.url.render_as_string(hide_password=True),
                        before,
                        head,
                    )
    return SchemaState(before, head)


def prepare_incident_log(url: str) -> None:
    """Create or upgrade the log's schema as the proxy starts, so a new school needs no step.

    A database that is down now is no reason to stop filtering (the writer makes the schema
    when it is back); one newer than this code is: SchemaTooNew.
    """
    engine = make_engine(url)
    try:
        create_schema(engine)
    except SchemaTooNew:
        raise
    except SQLAlchemyError as e:
        logger.warning("schoolgate: incident log unavailable at start, rows will queue: %s", e)
    finally:
        engine.dispose()


@functools.cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS))


def _revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    current = MigrationContext.configure(connection).get_current_revision()
    if current is None and inspect(connection).has_table(Incident.__tablename__):
        return UNVERSIONED_REVISION
    return current


def _check_known(engine: Engine, revision: str | None, head: str) -> None:
    known = {script.revision for script in _scripts().walk_revisions()}
    if revision is not None and revision not in known:
        raise SchemaTooNew(
            f"the incident log {engine.url.render_as_string(hide_password=True)} is at schema "
            f"revision {revision!r}, which this schoolgate (revision {head}) does not know: a "
            "newer schoolgate upgraded it. Install that version here (or point `database:` at "
            "another database); nothing was changed."
        )


def _lock_migrations(connection: Connection) -> None:
    """Serialise upgrades between gateways sharing one PostgreSQL database (the lock ends with
    the transaction). SQLite serialises writers itself."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})


def _upgrade(connection: Connection, before: str | None) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    if before == UNVERSIONED_REVISION:  # a no-op where the version table already says so
        command.stamp(config, UNVERSIONED_REVISION)
    command.upgrade(config, "head")


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
    device: str | None = None,
) -> dict[str, Any]:
    """The `incidents` row for one decided attempt, with a fresh id."""
    return {
        "id": new_incident_id(),
        "occurred_at": (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None),
        "site": site,
        "client_ip": client_ip,
        "device": device[:255] if device else None,
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
