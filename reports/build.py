"""From the incident log to a `Report`: run the queries, then shape their few rows.

Every figure that adds up (breakdowns, requests and attempts by person and client, the
trend) is read a week at a time: one window over a whole term sorts a million rows, which on
SQLite costs more than the weeks' small sorts together (measured: 2.7 s against 2.0 s of CPU
for eleven weeks), and the weeks run side by side on a small thread pool (both SQLite and
psycopg release the GIL while the database works). The weeks broken down are the trend's
weeks too, so no row is read twice except by the week's lists of people and attempts; the
trend's earlier weeks are counted once and then reused while unchanged (`StoredWeeks`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, Row

from addons.config import Config, Rule
from addons.defences import DEFENCES
from addons.devices import Devices
from addons.incidents import PolicyChange
from addons.retention import retention_cutoff
from addons.schedule import SchoolDay
from reports import queries
from reports.model import (
    WEEKDAY_NAMES,
    Attempt,
    Change,
    Client,
    Comparison,
    DayTally,
    Definition,
    DomainTally,
    Earlier,
    GroupTally,
    HourTally,
    PeriodInfo,
    Person,
    Report,
    RuleTally,
    SchoolDaySplit,
    Tally,
    TermSoFar,
    Totals,
    WeekTally,
)
from reports.notes import effectiveness_notes
from reports.period import Period, term_holding
from reports.queries import Scope
from reports.stored_weeks import StoredWeeks

LATEST = 25  # attempts in the weekly report's short list; the csv has them all
TREND_WEEKS_OUTSIDE_TERM = 8


def build_report(
    engine: Engine,
    config: Config,
    period: Period,
    *,
    site: str | None = None,
    now: dt.datetime | None = None,
) -> Report:
    """The weekly report for a week or date range, or the governors' statement for a term."""
    now = now or dt.datetime.now(dt.UTC)
    scope = scope_for(config, period, site, now)
    statement = period.kind == "term"
    # each week's queries read five minutes before it, so its attempts are marked exactly as
    # one window over the whole period would mark them
    parts = period.weeks()
    trend_weeks = _trend_period(period, config).weeks()
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:

        def run[T](query: Callable[..., T], *args: Any) -> Callable[[], T]:
            return pool.submit(query, engine, *args).result

        def of(part: Period) -> Scope:
            return replace(scope, period=part)

        cells = {part: run(queries.breakdown, of(part)) for part in parts}
        people = [run(queries.clients, of(part)) for part in parts]
        changes = run(queries.policy_changes, scope)
        if not statement:  # the governors' statement names no one: counts only
            repeat = run(queries.repeaters, scope)
            latest = run(queries.latest_attempts, scope, LATEST)
        # the trend's other weeks last: this thread shapes the rows above while they run
        stored = StoredWeeks(engine, scope.site, now)

        def count(week: Period) -> Callable[[], Tally]:
            return pool.submit(stored.counts, of(week)).result

        counted = {w: count(w) for w in trend_weeks if w not in cells}
        if not statement:
            before = period.previous()
            if before not in counted:
                counted[before] = count(before)
        shaper = _Shaper(config, report_devices(config))
        every_cell = [cell for part in parts for cell in cells[part]()]
        breakdowns = shaper.breakdowns(every_cell)
        totals = shaper.totals([row for rows in people for row in rows()], every_cell)
        repeated = [] if statement else shaper.people(repeat())
        incidents = [] if statement else [shaper.attempt(row) for row in latest()]
        weeks = {part: _total(tally()) for part, tally in cells.items()}
        weeks |= {week: tally() for week, tally in counted.items()}
        trend = [
            WeekTally(
                week=w.label,
                start=w.start,
                end=w.end,
                **_counts(weeks[w]),
                current=not statement and w.start <= period.end <= w.end,
            )
            for w in trend_weeks
        ]
        report = Report(
            kind="term" if statement else "weekly",
            school=config.school.name,
            site=scope.site,
            timezone=config.school.timezone.key,
            generated_at=now.astimezone(config.school.timezone),
            period=PeriodInfo(period.kind, period.label, period.start, period.end),
            school_hours=(
                config.school_day.start.strftime("%H:%M"),
                config.school_day.end.strftime("%H:%M"),
            ),
            school_weekdays=tuple(sorted(config.school_day.weekdays)),
            **breakdowns,
            totals=totals,
            comparison=None if statement else shaper.comparison(period, weeks[before], trend),
            repeat=repeated,
            incidents=incidents,
            trend=trend,
            policy_changes=[shaper.change(c) for c in changes()],
            glossary=shaper.glossary(breakdowns["by_rule"]),
        )
    return replace(report, notes=effectiveness_notes(report)) if statement else report


def scope_for(
    config: Config, period: Period, site: str | None = None, now: dt.datetime | None = None
) -> Scope:
    """What the queries count: `site` (default: the config's) over `period`, as kept at
    `now` (default: now) under `retention_days`."""
    school_day = SchoolDay(config.school_day, config.school.timezone)
    kept_since = retention_cutoff(config, now or dt.datetime.now(dt.UTC))
    return Scope(site or config.school.site, period, school_day, kept_since)


def report_devices(config: Config) -> Devices:
    """Names for the devices the proxy did not name when it recorded an incident: the files
    under `devices:`, then `report.devices` (a later file's name for an address wins)."""
    extra = (config.report.devices,) if config.report.devices else ()
    return Devices(config.devices + extra)


def _trend_period(period: Period, config: Config) -> Period:
    """The weeks the trend shows: the term so far (or the whole term), else the last 8 weeks."""
    if period.kind == "term":
        return period
    term = term_holding(period, config.school_day.terms)
    if term is not None:
        return term
    start = period.end - dt.timedelta(weeks=TREND_WEEKS_OUTSIDE_TERM) + dt.timedelta(days=1)
    return Period("range", "last 8 weeks", start, period.end, period.timezone)


class _Shaper:
    """Turns query rows into the model: sums, sorting, local times, device names."""

    def __init__(self, config: Config, devices: Devices) -> None:
        self.config = config
        self.timezone = config.school.timezone
        self.devices = devices

    def local(self, utc: dt.datetime) -> dt.datetime:
        return utc.replace(tzinfo=dt.UTC).astimezone(self.timezone)

    def breakdowns(self, cells: list[Row[Any]]) -> dict[str, Any]:
        """by_day, by_hour, heatmap, school_day, by_group, by_domain, by_rule."""
        days, hours = _tallies(cells, "weekday"), _tallies(cells, "hour")
        split = _tallies(cells, "school_day")
        groups = _tallies(cells, "client_group", start=self.config.group_names)
        rules = {rule.name: rule for rule in self.config.rules}
        heatmap = [[0] * 24 for _ in range(7)]
        for cell in cells:
            heatmap[cell.weekday][cell.hour] += int(cell.attempts)
        return {
            "by_day": [
                DayTally(day=name, **_counts(days[n])) for n, name in enumerate(WEEKDAY_NAMES)
            ],
            "by_hour": [
                HourTally(hour=h, school_hours=self._school_hour(h), **_counts(hours[h]))
                for h in range(24)
            ],
            "heatmap": heatmap,
            "school_day": SchoolDaySplit(inside=split[1], outside=split[0]),
            "by_group": [GroupTally(group=g, **_counts(t)) for g, t in _ranked(groups)],
            "by_domain": [
                DomainTally(domain=d, **_counts(t)) for d, t in _ranked(_tallies(cells, "domain"))
            ],
            "by_rule": [
                RuleTally(rule=name, **_rule_text(rules, name), **_counts(t))
                for name, t in _ranked(_tallies(cells, "rule"))
            ],
        }

    def glossary(self, by_rule: list[RuleTally]) -> list[Definition]:
        """The gateway's own rules this report names, for its "Terms" note."""
        named = {tally.rule for tally in by_rule}
        return [
            Definition(rule=name, label=defence.label, meaning=defence.explanation)
            for name, defence in DEFENCES.items()
            if name in named
        ]

    def _school_hour(self, hour: int) -> bool:
        start, end = self.config.school_day.start, self.config.school_day.end
        return dt.time(hour) < end and (hour == 23 or dt.time(hour + 1) > start)

    def totals(self, clients: list[Row[Any]], cells: list[Row[Any]]) -> Totals:
        """The period's totals from its rows by (person, client), summed over its weeks."""
        actions = _tallies(cells, "action")
        attempts: dict[str, int] = defaultdict(int)
        for row in clients:
            attempts[row.person] += int(row.attempts)
        return Totals(
            requests=sum(int(row.requests) for row in clients),
            attempts=sum(attempts.values()),
            people=len(attempts),
            clients=len({row.client_ip for row in clients}),
            blocked=actions["block"].attempts,
            monitored=actions["monitor"].attempts,
            repeat_people=sum(1 for count in attempts.values() if count >= queries.REPEATED),
        )

    def comparison(self, period: Period, previous: Tally, trend: list[WeekTally]) -> Comparison:
        before = period.previous()
        term = term_holding(period, self.config.school_day.terms)
        so_far = None
        if term is not None:
            attempts = sum(week.attempts for week in trend)
            weeks = len(trend)
            so_far = TermSoFar(term.label, term.start, term.end, weeks, attempts, attempts / weeks)
        return Comparison(
            previous=Earlier(
                before.label, before.start, before.end, previous.requests, previous.attempts
            ),
            term=so_far,
        )

    def people(self, rows: Iterable[Row[Any]]) -> list[Person]:
        by_person: dict[str, list[Row[Any]]] = defaultdict(list)
        for row in rows:
            by_person[row.person].append(row)
        people = []
        for who, parts in by_person.items():
            domains: dict[str, int] = defaultdict(int)
            for part in parts:
                domains[part.domain] += int(part.attempts)
            clients = {(part.client_ip, self.device(part)) for part in parts}
            people.append(
                Person(
                    who=who,
                    username=who if parts[0].is_user else None,
                    clients=[Client(ip, device) for ip, device in sorted(clients, key=str)],
                    groups=sorted({part.client_group for part in parts}),
                    attempts=sum(int(part.attempts) for part in parts),
                    requests=sum(int(part.requests) for part in parts),
                    first=self.local(min(part.first for part in parts)),
                    last=self.local(max(part.last for part in parts)),
                    domains=sorted(domains, key=lambda d: (-domains[d], d)),
                )
            )
        return sorted(people, key=lambda p: (-p.attempts, -p.requests, p.who))

    def device(self, row: Row[Any]) -> str | None:
        """The name the proxy recorded with the incident, else the one the files give now."""
        return row.device or self.devices.name_of(row.client_ip)

    def attempt(self, row: Row[Any]) -> Attempt:
        return Attempt(
            reference=int(row.reference),
            started=self.local(row.started),
            who=row.person,
            username=row.username or None,
            client_ip=row.client_ip,
            device=self.device(row),
            group=row.client_group,
            host=row.host,
            domain=row.domain,
            rule=row.rule,
            action=row.action,
            school_day=bool(row.school_day),
        )

    def change(self, change: PolicyChange) -> Change:
        return Change(
            at=self.local(change.occurred_at),
            who=change.who,
            action=change.action,
            category=change.category,
            entries=[e for e in change.entries.splitlines() if e.strip()],
            reason=change.reason,
            policy_version=change.policy_version,
        )


def _rule_text(rules: dict[str, Rule], name: str) -> dict[str, str]:
    """A rule's clause and policy text: the school's from the config, the gateway's own from
    `addons.defences`."""
    rule = rules[name] if name in rules else DEFENCES[name].rule if name in DEFENCES else None
    if rule is None:
        return {"clause": "", "policy": "(no longer in the config)"}
    return {"clause": rule.clause, "policy": rule.policy}


def _counts(tally: Tally) -> dict[str, int]:
    return {"requests": tally.requests, "attempts": tally.attempts}


def _total(cells: Iterable[Row[Any]]) -> Tally:
    """All requests and attempts of a breakdown."""
    requests = attempts = 0
    for cell in cells:
        requests += int(cell.requests)
        attempts += int(cell.attempts)
    return Tally(requests=requests, attempts=attempts)


def _tallies(
    cells: Iterable[Row[Any]], key: str, start: Iterable[Any] = ()
) -> defaultdict[Any, Tally]:
    """Requests and attempts summed by one column of the breakdown (`start` keys shown at 0)."""
    sums: dict[Any, list[int]] = {name: [0, 0] for name in start}
    for cell in cells:
        both = sums.setdefault(getattr(cell, key), [0, 0])
        both[0] += int(cell.requests)
        both[1] += int(cell.attempts)
    return defaultdict(
        Tally, {name: Tally(requests=r, attempts=a) for name, (r, a) in sums.items()}
    )


def _ranked(sums: dict[str, Tally]) -> list[tuple[str, Tally]]:
    return sorted(sums.items(), key=lambda item: (-item[1].attempts, -item[1].requests, item[0]))
