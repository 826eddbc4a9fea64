"""The report as plain data: every output (json, md, csv, html) is made from one `Report`,
so the formats can never disagree about a figure.

Times are aware datetimes in the school's timezone; `to_json` writes them as ISO 8601.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Literal

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True, kw_only=True)
class Tally:
    """Raw requests, and the attempts (a person's bursts of requests) they make up."""

    requests: int = 0
    attempts: int = 0


@dataclass(frozen=True, kw_only=True)
class DayTally(Tally):
    day: str  # Monday ... Sunday


@dataclass(frozen=True, kw_only=True)
class HourTally(Tally):
    hour: int  # 0 ... 23, local time
    school_hours: bool  # inside the school day's hours (on a school date)


@dataclass(frozen=True, kw_only=True)
class GroupTally(Tally):
    group: str


@dataclass(frozen=True, kw_only=True)
class DomainTally(Tally):
    domain: str


@dataclass(frozen=True, kw_only=True)
class RuleTally(Tally):
    rule: str
    clause: str
    policy: str


@dataclass(frozen=True, kw_only=True)
class WeekTally(Tally):
    week: str  # 2026-W47
    start: dt.date  # clipped to the period (a term's first and last weeks)
    end: dt.date
    current: bool = False  # the week the report is about


@dataclass(frozen=True)
class PeriodInfo:
    kind: Literal["week", "range", "term"]
    label: str
    start: dt.date
    end: dt.date  # inclusive


@dataclass(frozen=True)
class Totals:
    requests: int
    attempts: int
    people: int  # user names, else client addresses
    clients: int  # client addresses (devices)
    blocked: int  # attempts the policy blocked
    monitored: int  # attempts the policy allowed but recorded
    repeat_people: int  # people with two or more attempts


@dataclass(frozen=True)
class Earlier:
    """A period the headline compares with."""

    label: str
    start: dt.date
    end: dt.date
    requests: int
    attempts: int


@dataclass(frozen=True)
class TermSoFar:
    """The term up to the end of the report's period, for 'against the term's average'."""

    name: str
    start: dt.date
    end: dt.date
    weeks: int
    attempts: int
    weekly_average: float  # attempts per week, partial weeks counted as weeks


@dataclass(frozen=True)
class Comparison:
    previous: Earlier
    term: TermSoFar | None


@dataclass(frozen=True)
class SchoolDaySplit:
    inside: Tally
    outside: Tally


@dataclass(frozen=True)
class Client:
    ip: str
    device: str | None  # as recorded with the incident, else from the devices files


@dataclass(frozen=True)
class Person:
    """Someone with repeated attempts: the list an SLT member acts on."""

    who: str  # the user name, else the client address
    username: str | None
    clients: list[Client]
    groups: list[str]
    attempts: int
    requests: int
    first: dt.datetime
    last: dt.datetime
    domains: list[str]  # most attempted first


@dataclass(frozen=True)
class Attempt:
    """One attempt; `reference` is its first request's id, as its block page showed it."""

    reference: int
    started: dt.datetime
    who: str
    username: str | None
    client_ip: str
    device: str | None
    group: str
    host: str
    domain: str
    rule: str
    action: str
    school_day: bool


@dataclass(frozen=True)
class Definition:
    """One of the gateway's own rules, named in the report: for its "Terms" note."""

    rule: str  # as incidents record it: `tls-without-sni`
    label: str  # as the report names it
    meaning: str  # one line


@dataclass(frozen=True)
class Change:
    """A documented policy or blocklist change (`policy_changes`)."""

    at: dt.datetime
    who: str
    action: str
    category: str | None
    entries: list[str]
    reason: str
    policy_version: str | None


@dataclass(frozen=True)
class Report:
    """The SLT's weekly report, or (kind "term") the governors' statement, which names no one."""

    kind: Literal["weekly", "term"]
    school: str
    site: str
    timezone: str
    generated_at: dt.datetime
    period: PeriodInfo
    totals: Totals
    comparison: Comparison | None  # None for the term statement
    school_day: SchoolDaySplit
    by_day: list[DayTally]
    by_hour: list[HourTally]
    heatmap: list[list[int]]  # attempts, [weekday Monday first][hour]
    by_group: list[GroupTally]
    by_domain: list[DomainTally]
    by_rule: list[RuleTally]
    repeat: list[Person]  # empty in the term statement
    incidents: list[Attempt]  # the latest few; empty in the term statement
    trend: list[WeekTally]
    policy_changes: list[Change]
    notes: list[str] = field(default_factory=list)
    glossary: list[Definition] = field(default_factory=list)  # the gateway's own rules named
    school_hours: tuple[str, str] = ("", "")  # "08:30", "15:30"
    school_weekdays: tuple[int, ...] = ()  # Monday is 0
    confidential: bool = True
    attempt_gap_seconds: int = 300

    @property
    def people_named(self) -> bool:
        """False for the governors' statement: it must not name individuals."""
        return self.kind == "weekly"

    @property
    def empty(self) -> bool:
        return self.totals.requests == 0

    def label(self, rule: str) -> str:
        """How the report names a rule: the school's by their names, the gateway's own by a
        label a reader can follow (explained in the "Terms" note)."""
        return next((d.label for d in self.glossary if d.rule == rule), rule)

    def to_dict(self) -> dict[str, Any]:
        """The report as json-ready data (dates and times still objects)."""
        return {**dataclasses.asdict(self), "people_named": self.people_named}

    def to_json(self) -> str:
        """The machine-readable report."""
        return json.dumps(self.to_dict(), indent=2, default=_iso) + "\n"


def _iso(value: object) -> str:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
