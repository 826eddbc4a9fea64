"""Fixtures for the report tests: a policy file, an incident log on a real SQLite file or a
real PostgreSQL schema, and incidents written through the model at local school times.

Every figure the tests expect is counted by hand from the incidents in `w43_incidents`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, create_engine, insert, text

from addons.config import Config, load_config
from addons.incidents import Incident, create_schema, make_engine
from reports.build import build_report
from reports.period import iso_week

LONDON = ZoneInfo("Europe/London")
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

CONFIG = """\
school:
  name: Test Primary School
  site: test
  timezone: Europe/London
  contact: the school office
school_day:
  weekdays: [mon, tue, wed, thu, fri]
  start: "08:30"
  end: "15:30"
  terms:
    - {{name: Autumn 2026, start: 2026-09-03, end: 2026-12-17}}
  closures: [2026-10-23]
groups:
  staff: {{networks: [10.10.0.0/16], users: [alice, bob]}}
  pupils: {{networks: [10.20.0.0/16]}}
default_group: everyone
categories:
  social_networks: [social.txt]
rules:
  - name: staff-monitored
    groups: [staff]
    categories: [social_networks]
    when: always
    action: monitor
    clause: "Role of School Staff"
    policy: "Staff use is monitored."
  - name: school-it-ban
    groups: ["*"]
    categories: [social_networks]
    when: always
    action: block
    clause: "Section 3, Main Body of Policy"
    policy: "We do not allow school personnel to use the school IT system for social networking."
database: "{database}"
{extra}
"""


@dataclass
class Log:
    """An incident log and the config that names it."""

    engine: Engine
    url: str
    folder: Path
    _ids: Iterator[int]

    def config(self, extra: str = "") -> Config:
        """Write the policy file (with `extra` YAML appended) beside its list; load it."""
        (self.folder / "social.txt").write_text("facebook.com\ninstagram.com\n")
        path = self.folder / "policy.yaml"
        path.write_text(CONFIG.format(database=self.url, extra=extra))
        return load_config(path)

    @property
    def config_path(self) -> Path:
        return self.folder / "policy.yaml"

    def add(self, local: str, who: str, domain: str, **fields: Any) -> int:
        """One incident at a local London time ("2026-10-19 10:00:00"); `who` is a user name,
        or an IP when `ip` is not given. Returns its id (the reference number)."""
        row = self.row(local, who, domain, **fields)
        with self.engine.begin() as connection:
            connection.execute(insert(Incident), [row])
        return int(row["id"])

    def row(
        self,
        local: str,
        who: str,
        domain: str,
        *,
        ip: str | None = None,
        group: str = "pupils",
        rule: str = "school-it-ban",
        action: str = "block",
        site: str = "test",
        fold: int = 0,
        device: str | None = None,
    ) -> dict[str, Any]:
        """An `incidents` row; `fold=1` is the second 01:30 of the night the clocks go back."""
        moment = dt.datetime.fromisoformat(local).replace(tzinfo=LONDON, fold=fold)
        return {
            "id": next(self._ids),
            "occurred_at": moment.astimezone(dt.UTC).replace(tzinfo=None),
            "site": site,
            "client_ip": ip or who,
            "device": device,
            "username": who if ip else None,
            "client_group": group,
            "host": f"www.{domain}",
            "domain": domain,
            "category": "social_networks",
            "rule": rule,
            "action": action,
            "method": "CONNECT",
            "url": None,
            "user_agent": None,
        }


MONDAY_AFTER_W43 = dt.datetime(2026, 10, 26, 7, 0, tzinfo=dt.UTC)


def weekly(log: Log, week: str, extra: str = "", engine: Engine | None = None) -> dict[str, Any]:
    """The json of `week`'s report, as generated at 07:00 UTC on Monday 26 October 2026."""
    config = log.config(extra)
    period = iso_week(week, config.school.timezone)
    report = build_report(engine or log.engine, config, period, now=MONDAY_AFTER_W43)
    return json.loads(report.to_json())


@pytest.fixture(params=["sqlite", "postgresql"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Log]:
    """An empty incident log on a SQLite file, or in a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'incidents.db'}"
        engine = make_engine(url)
        create_schema(engine)
        yield Log(engine, url, tmp_path, itertools.count(1001))
        engine.dispose()
        return
    schema = f"report_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    create_schema(engine)
    yield Log(engine, url, tmp_path, itertools.count(1001))
    engine.dispose()
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@dataclass(frozen=True)
class W43:
    """Reference numbers of the hand-counted week 2026-W43 (19 to 25 October 2026)."""

    refs: dict[str, int]


@pytest.fixture
def w43(log: Log) -> W43:
    """The week of the autumn clock change, with every edge the report must count right.

    Hand count for W43 (site `test`): 14 requests, 9 attempts, 6 people, 7 addresses.
    """
    add, refs = log.add, {}

    def alice(local: str, domain: str, ip: str = "10.10.0.5") -> int:
        return add(local, "alice", domain, ip=ip, group="staff")

    # alice (staff, a user name): facebook at 10:00, 10:02, 10:07 (exactly 5 min: same
    # attempt), 10:12:01 (5 min 1 s: a new one), 10:14 from another device (same person).
    refs["alice1"] = alice("2026-10-19 10:00:00", "facebook.com")
    alice("2026-10-19 10:02:00", "facebook.com")
    alice("2026-10-19 10:07:00", "facebook.com")
    refs["alice2"] = alice("2026-10-19 10:12:01", "facebook.com")
    alice("2026-10-19 10:14:00", "facebook.com", ip="10.10.0.6")
    # another domain inside alice's burst is another attempt
    refs["alice_ig"] = alice("2026-10-19 10:03:00", "instagram.com")
    # a pupil's device without a user name, after school (4 min 59 s apart: one attempt)
    refs["pupil9_tue"] = add("2026-10-20 16:00:00", "10.20.0.9", "tiktok.com")
    add("2026-10-20 16:04:59", "10.20.0.9", "tiktok.com")
    # Friday 23 October is a closure (INSET day): outside the school day at 11:00
    refs["pupil9_fri"] = add("2026-10-23 11:00:00", "10.20.0.9", "facebook.com")
    # 01:30 twice on Sunday 25 October: BST, then an hour later GMT; two attempts, hour 1
    refs["dst_bst"] = add("2026-10-25 01:30:00", "10.20.0.10", "instagram.com")
    refs["dst_gmt"] = add("2026-10-25 01:30:00", "10.20.0.10", "instagram.com", fold=1)
    # Sunday 23:58: the week's last attempt; its 00:01 follow-up on Monday is W44's request
    refs["sunday"] = add("2026-10-25 23:58:00", "10.20.0.11", "tiktok.com")
    refs["w44"] = add("2026-10-26 00:01:00", "10.20.0.11", "tiktok.com")
    # Monday 00:00:00 continues an attempt that began in W42 (23:59:59): a request, no attempt
    refs["w42"] = add("2026-10-18 23:59:59", "10.20.0.12", "x.com")
    refs["monday0"] = add("2026-10-19 00:00:00", "10.20.0.12", "x.com")
    # bob (staff) is monitored, not blocked
    refs["bob"] = add(
        "2026-10-21 12:00:00", "bob", "linkedin.com", ip="10.10.0.7", group="staff",
        rule="staff-monitored", action="monitor",
    )  # fmt: skip
    # another site's incidents are not this report's
    add("2026-10-19 10:00:00", "alice", "facebook.com", ip="10.10.0.5", site="other")
    # earlier in the term: one attempt in W37
    refs["w37"] = add("2026-09-09 09:00:00", "10.20.0.13", "x.com")
    return W43(refs)


DEVICES = "ip,hostname\n" + "".join(
    f"10.20.{n // 30}.{n},Y{n % 6 + 1}-iPad-{n:02d}\n" for n in range(40)
)


def demo_term(log: Log, seed: int = 47) -> None:
    """A plausible autumn term up to week 2026-W47: staff by user name, pupils' iPads by
    address, in bursts of a few requests; for the screenshot and the browser test."""
    rng = random.Random(seed)
    (log.folder / "devices.csv").write_text(DEVICES)
    services = ["instagram.com", "tiktok.com", "facebook.com", "snapchat.com", "x.com"]
    people = [(f"staff{n:02d}", f"10.10.0.{n}", "staff") for n in range(1, 9)]
    people += [(f"10.20.{n // 30}.{n}", "", "pupils") for n in range(40)]
    rows = []
    for day in range((dt.date(2026, 11, 22) - dt.date(2026, 9, 3)).days + 1):
        date = dt.date(2026, 9, 3) + dt.timedelta(days=day)
        busy = 14 if date >= dt.date(2026, 11, 16) else 6 + day // 12
        for _ in range(rng.randint(busy // 2, busy) if date.weekday() < 5 else rng.randint(0, 3)):
            who, ip, group = rng.choice(people)
            hour = rng.choice([8, 9, 10, 10, 11, 12, 12, 13, 14, 15, 16, 17, 19, 21])
            start = dt.datetime.combine(date, dt.time(hour, rng.randint(0, 59)))
            domain = rng.choices(services, weights=[5, 4, 3, 2, 1])[0]
            for burst in range(rng.randint(1, 6)):
                at = start + dt.timedelta(seconds=40 * burst + rng.randint(0, 30))
                rows.append(log.row(str(at), who, domain, ip=ip or None, group=group))
    with log.engine.begin() as connection:
        connection.execute(insert(Incident), rows)
