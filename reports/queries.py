"""The report's figures, computed in SQL on SQLite and PostgreSQL alike.

An *attempt* is what a person did, not what their browser did: blocked requests from one
person (user name, else client IP) to one registrable domain belong to one attempt while each
follows the previous one by at most five minutes. `LAG` over (person, domain) marks the request
that starts each attempt; counting those marks counts attempts, so every breakdown is one
GROUP BY over the marked rows and no incident is loaded into Python. An attempt counts in the
period in which it starts: rows from five minutes before the period are read so that one
continued across midnight on Sunday is not counted twice.

Times are naive UTC in the database. Local day, hour and school-day flag come from integer
milliseconds since 1970 plus the UTC offset in force (a CASE over the period's DST changes),
so both databases compute the same local calendar without timezone support of their own.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Engine,
    Integer,
    Row,
    Select,
    Subquery,
    and_,
    case,
    func,
    inspect,
    literal,
    or_,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from addons.changes import list_changes
from addons.incidents import Incident, PolicyChange, make_engine
from addons.schedule import SchoolDay
from reports.model import Tally
from reports.period import Period

ATTEMPT_GAP = dt.timedelta(minutes=5)
REPEATED = 2  # attempts that put a person on the SLT's follow-up list
_GAP_MS = int(ATTEMPT_GAP.total_seconds() * 1000)
_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
# what one attempt row shows; "id" also makes the order of same-millisecond rows exact
_ATTEMPT_COLUMNS = (
    "id",
    "occurred_at",
    "username",
    "client_ip",
    "device",
    "client_group",
    "host",
    "rule",
    "action",
)
_THURSDAY = 3  # 1970-01-01 was a Thursday: (day number + 3) % 7 is 0 on Mondays


class NoIncidentLog(Exception):
    """The database named in the config cannot be read as an incident log."""


class epoch_ms(FunctionElement[int]):  # lower case: it reads as the SQL function it is
    """Milliseconds since 1970 of a naive UTC timestamp column, as an integer."""

    type = BigInteger()
    inherit_cache = True


@compiles(epoch_ms, "sqlite")
def _epoch_ms_sqlite(element: epoch_ms, compiler: SQLCompiler, **kw: Any) -> str:
    # julianday keeps milliseconds exactly (SQLite counts in ms internally); ROUND undoes the
    # floating-point division, so exactly five minutes apart stays exactly 300000.
    column = compiler.process(element.clauses, **kw)
    return f"CAST(ROUND((julianday({column}) - 2440587.5) * 86400000.0) AS INTEGER)"


@compiles(epoch_ms, "postgresql")
def _epoch_ms_postgresql(element: epoch_ms, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column}) * 1000) AS BIGINT)"


def open_log(url: str) -> Engine:
    """An engine on an existing incident log; NoIncidentLog says clearly what is missing.

    A SQLite file that does not exist is an error, not a new empty log: reading never creates it.
    """
    parsed = make_url(url)
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file and file != ":memory:" and not Path(file).is_file():
        raise NoIncidentLog(
            f"no incident log at {file}: the proxy creates it on the first blocked "
            "request (is `database:` in the config the one the proxy uses?)"
        )
    engine = make_engine(url)
    try:
        has_table = inspect(engine).has_table(Incident.__tablename__)
    except SQLAlchemyError as e:
        engine.dispose()
        raise NoIncidentLog(f"cannot read the incident log: {e.__class__.__name__}: {e}") from e
    if not has_table:
        engine.dispose()
        raise NoIncidentLog(
            f"{engine.url.render_as_string()} has no `incidents` table: it is not a schoolgate "
            "incident log, or the proxy has not recorded anything yet"
        )
    return engine


@dataclass(frozen=True)
class Scope:
    """What a query counts: one site's incidents in one period, on the school's calendar,
    none older than `kept_since` (naive UTC): past retention is never shown, even unpurged."""

    site: str
    period: Period
    school_day: SchoolDay
    kept_since: dt.datetime


# --- the marked rows ----------------------------------------------------------------------


def _marked(scope: Scope, *columns: str) -> Subquery:
    """The period's rows, plus five minutes before it, with `person`, `domain`, `ms`,
    `starts` (1 where a new attempt begins), `local_ms`, `in_period` and the `columns` asked
    for. Only those are carried through the window's sort, which is most of a report's time;
    with "id" among them, rows at the same millisecond are ordered by id, so the first
    request of an attempt (its reference number) is always the same one."""
    period = scope.period
    table = Incident.__table__
    requests = (
        select(
            table.c.domain,
            func.coalesce(func.nullif(table.c.username, ""), table.c.client_ip).label("person"),
            epoch_ms(table.c.occurred_at).label("ms"),
            *(table.c[name] for name in columns),
        )
        .where(*_read(scope))
        .subquery("requests")
    )
    r = requests.c
    order = (r.ms, r.id) if "id" in columns else (r.ms,)
    previous = func.lag(r.ms).over(partition_by=(r.person, r.domain), order_by=order)
    windowed = select(requests, previous.label("previous_ms")).subquery("windowed")
    w = windowed.c
    starts = case((or_(w.previous_ms.is_(None), w.ms - w.previous_ms > _GAP_MS), 1), else_=0)
    return select(
        *(w[c.name] for c in requests.c),
        starts.label("starts"),
        (w.ms + _offset(scope, w.ms)).label("local_ms"),
        (w.ms >= _ms(period.since)).label("in_period"),
    ).subquery("marked")


def first_read(scope: Scope) -> dt.datetime:
    """The earliest moment a count of `scope` reads: five minutes before the period, so an
    attempt continued into it is not counted twice, but never a request past retention, which
    does not even continue a later one's attempt."""
    return max(scope.period.since - ATTEMPT_GAP, scope.kept_since)


def _read(scope: Scope) -> tuple[ColumnElement[bool], ...]:
    """The rows `_marked` reads, as a WHERE clause."""
    table = Incident.__table__
    return (
        table.c.site == scope.site,
        table.c.occurred_at >= first_read(scope),
        table.c.occurred_at < scope.period.until,
    )


def _offset(scope: Scope, ms: ColumnElement[int]) -> ColumnElement[int]:
    """The UTC offset (ms) in force at `ms`: a constant, or a CASE over the DST changes."""
    offsets = scope.period.utc_offsets()
    if len(offsets) == 1:
        return literal(offsets[0][1], BigInteger)
    whens = [
        (ms < _ms(change), literal(offset, BigInteger))
        for (_, offset), (change, _) in itertools.pairwise(offsets)
    ]
    return case(*whens, else_=literal(offsets[-1][1], BigInteger))


def _ms(moment: dt.datetime) -> int:
    return round(moment.replace(tzinfo=dt.UTC).timestamp() * 1000)


def _day_number(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def _school_day_flag(scope: Scope, local_ms: ColumnElement[int]) -> ColumnElement[int]:
    """1 where the local moment is inside the school day (hours, weekdays, terms, closures)."""
    period, config = scope.period, scope.school_day.config
    days = [
        _day_number(period.start + dt.timedelta(days=n))
        for n in range((period.end - period.start).days + 1)
        if scope.school_day.is_school_date(period.start + dt.timedelta(days=n))
    ]
    if not days:
        return literal(0, Integer)
    start = (config.start.hour * 3600 + config.start.minute * 60 + config.start.second) * 1000
    end = (config.end.hour * 3600 + config.end.minute * 60 + config.end.second) * 1000
    of_day = local_ms % _DAY_MS
    inside = and_((local_ms // _DAY_MS).in_(days), of_day >= start, of_day < end)
    return case((inside, 1), else_=0)


def _in_period(marked: Subquery) -> Select[Any]:
    return select().select_from(marked).where(marked.c.in_period)


# --- the figures --------------------------------------------------------------------------


def breakdown(engine: Engine, scope: Scope) -> list[Row[Any]]:
    """Requests and attempts by weekday (Monday 0), local hour, school day, group, domain,
    rule and action: every breakdown of the report is a sum over these few rows."""
    m = _marked(scope, "client_group", "rule", "action")
    weekday = (m.c.local_ms // _DAY_MS + _THURSDAY) % 7
    hour = (m.c.local_ms // _HOUR_MS) % 24
    school_day = _school_day_flag(scope, m.c.local_ms)
    keys = (
        weekday.label("weekday"),
        hour.label("hour"),
        school_day.label("school_day"),
        m.c.client_group,
        m.c.domain,
        m.c.rule,
        m.c.action,
    )
    query = (
        _in_period(m)
        .add_columns(
            *keys,
            func.count().label("requests"),
            func.sum(m.c.starts).label("attempts"),
        )
        .group_by(*keys)
    )
    with engine.connect() as connection:
        return list(connection.execute(query))


def clients(engine: Engine, scope: Scope) -> list[Row[Any]]:
    """Requests and attempts by person and client address: the totals, and how many people,
    clients and repeat people, are sums over these few rows, so a term adds up its weeks."""
    m = _marked(scope, "client_ip")
    keys = (m.c.person, m.c.client_ip)
    query = (
        _in_period(m)
        .add_columns(*keys, func.count().label("requests"), func.sum(m.c.starts).label("attempts"))
        .group_by(*keys)
    )
    with engine.connect() as connection:
        return list(connection.execute(query))


def counts(engine: Engine, scope: Scope) -> Tally:
    """Requests and attempts only: a week of the trend the report does not break down, or
    the period before the report's."""
    m = _marked(scope)
    query = _in_period(m).add_columns(func.count(), func.coalesce(func.sum(m.c.starts), 0))
    with engine.connect() as connection:
        requests, attempts = connection.execute(query).one()
    return Tally(requests=int(requests), attempts=int(attempts))


def fingerprint(engine: Engine, scope: Scope) -> tuple[int, int]:
    """How many rows a count of `scope` reads, and the sum of their times (ms after
    `first_read`): any row deleted or added since changes it, in one pass over the
    (site, occurred_at) index rather than the sort a count needs."""
    after_first = epoch_ms(Incident.occurred_at) - _ms(first_read(scope))
    query = select(func.count(), func.coalesce(func.sum(after_first), 0)).where(*_read(scope))
    with engine.connect() as connection:
        rows, ms_total = connection.execute(query).one()
    return int(rows), int(ms_total)


def repeaters(engine: Engine, scope: Scope, least: int = REPEATED) -> list[Row[Any]]:
    """People with `least` attempts or more: one row per (person, client, group, domain),
    with attempts, requests, first and last time, for the SLT's follow-up list."""
    m = _marked(scope, "username", "client_ip", "device", "client_group", "occurred_at")
    known = case((func.coalesce(m.c.username, "") != "", 1), else_=0)
    keys = (
        m.c.person,
        known.label("is_user"),
        m.c.client_ip,
        m.c.device,
        m.c.client_group,
        m.c.domain,
    )
    grouped = (
        _in_period(m)
        .add_columns(
            *keys,
            func.sum(m.c.starts).label("attempts"),
            func.count().label("requests"),
            func.min(m.c.occurred_at).label("first"),
            func.max(m.c.occurred_at).label("last"),
            func.sum(func.sum(m.c.starts)).over(partition_by=m.c.person).label("person_attempts"),
        )
        .group_by(*keys)
        .subquery("grouped")
    )
    query = select(*(c for c in grouped.c if c.name != "person_attempts")).where(
        grouped.c.person_attempts >= least
    )
    with engine.connect() as connection:
        return list(connection.execute(query))


def latest_attempts(engine: Engine, scope: Scope, count: int) -> list[Row[Any]]:
    """The first request of each of the `count` latest attempts in the period, newest first:
    the short list, whose ids are the reference numbers people quote."""
    m = _marked(scope, "id")
    latest = (
        _in_period(m)
        .add_columns(m.c.id, m.c.person, m.c.local_ms)
        .where(m.c.starts == 1)
        .order_by(m.c.ms.desc(), m.c.id.desc())
        .limit(count)
        .subquery("latest")
    )
    query = (
        select(
            Incident.id.label("reference"),
            Incident.occurred_at.label("started"),
            latest.c.person,
            Incident.username,
            Incident.client_ip,
            Incident.device,
            Incident.client_group,
            Incident.host,
            Incident.domain,
            Incident.rule,
            Incident.action,
            _school_day_flag(scope, latest.c.local_ms).label("school_day"),
        )
        .join(latest, latest.c.id == Incident.id)
        .order_by(Incident.occurred_at.desc(), Incident.id.desc())
    )
    with engine.connect() as connection:
        return list(connection.execute(query))


def attempts(engine: Engine, scope: Scope) -> Iterator[Row[Any]]:
    """Every attempt that starts in the period, in time order, streamed: the csv's rows.
    `reference` is the first request's id, the number its block page showed."""
    m = _marked(scope, *_ATTEMPT_COLUMNS)
    number = func.sum(m.c.starts).over(
        partition_by=(m.c.person, m.c.domain), order_by=(m.c.ms, m.c.id)
    )
    numbered = select(m, number.label("attempt")).subquery("numbered")
    n = numbered.c

    def first(column: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.max(case((n.starts == 1, column)))

    school_day = _school_day_flag(scope, n.local_ms)
    query = (
        select(
            first(n.id).label("reference"),
            func.min(n.occurred_at).label("started"),
            func.max(n.occurred_at).label("ended"),
            func.count().label("requests"),
            n.person,
            first(n.username).label("username"),
            first(n.client_ip).label("client_ip"),
            first(n.device).label("device"),
            first(n.client_group).label("client_group"),
            first(n.host).label("host"),
            n.domain,
            first(n.rule).label("rule"),
            first(n.action).label("action"),
            first(school_day).label("school_day"),
        )
        .group_by(n.person, n.domain, n.attempt)
        # an attempt that began before the period belongs to the previous one
        .having(func.min(n.occurred_at) >= scope.period.since)
    )
    query = query.order_by(func.min(n.occurred_at), first(n.id))
    with engine.connect() as connection:
        yield from connection.execution_options(yield_per=2000).execute(query)


def policy_changes(engine: Engine, scope: Scope) -> list[PolicyChange]:
    """The documented policy and blocklist changes in the period, oldest first."""
    if not inspect(engine).has_table(PolicyChange.__tablename__):
        return []
    changes = list_changes(
        engine, site=scope.site, since=scope.period.since, until=scope.period.until
    )
    return changes[::-1]
