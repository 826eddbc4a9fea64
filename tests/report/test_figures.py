"""Every figure of the weekly report's json against a hand count (see `w43` in conftest),
on SQLite and on PostgreSQL: the 5-minute attempts, the clock change, the school day."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from addons.changes import record_change
from reports.build import build_report
from reports.period import iso_week, term_named
from reports.render import render_html, render_md
from tests.report.conftest import LONDON, W43, Log, weekly


def counts(rows: list[dict[str, Any]], key: str) -> dict[str, tuple[int, int]]:
    return {row[key]: (row["attempts"], row["requests"]) for row in rows}


@pytest.fixture
def report(log: Log, w43: W43) -> dict[str, Any]:
    return weekly(log, "2026-W43")


def test_period_is_the_local_week(report: dict[str, Any]) -> None:
    assert report["period"] == {
        "kind": "week",
        "label": "2026-W43",
        "start": "2026-10-19",
        "end": "2026-10-25",
    }
    assert report["kind"] == "weekly"
    assert report["confidential"] is True
    assert report["people_named"] is True
    assert report["site"] == "test"
    assert report["generated_at"] == "2026-10-26T07:00:00+00:00"


def test_totals(report: dict[str, Any]) -> None:
    assert report["totals"] == {
        "requests": 14,
        "attempts": 9,
        "people": 6,  # alice, bob, 10.20.0.9, .10, .11, .12
        "clients": 7,  # alice has two addresses
        "blocked": 8,
        "monitored": 1,
        "repeat_people": 3,  # alice 3, 10.20.0.9 2, 10.20.0.10 2
    }


def test_comparison_with_last_week_and_the_term(report: dict[str, Any]) -> None:
    assert report["comparison"] == {
        "previous": {
            "label": "2026-W42",
            "start": "2026-10-12",
            "end": "2026-10-18",
            "requests": 1,
            "attempts": 1,
        },
        "term": {
            "name": "Autumn 2026",
            "start": "2026-09-03",
            "end": "2026-10-25",
            "weeks": 8,  # W36 (from Thursday 3 September) to W43
            "attempts": 11,  # W37 1, W42 1, W43 9
            "weekly_average": 11 / 8,
        },
    }


def test_school_day_split(report: dict[str, Any]) -> None:
    # inside: alice's 3 attempts (Monday 10:00-10:14) and bob (Wednesday 12:00);
    # Friday 11:00 is a closure, Tuesday 16:00 is after school, Sunday is no school day
    assert report["school_day"] == {
        "inside": {"attempts": 4, "requests": 7},
        "outside": {"attempts": 5, "requests": 7},
    }


def test_by_day(report: dict[str, Any]) -> None:
    assert counts(report["by_day"], "day") == {
        "Monday": (3, 7),  # alice 3 attempts of 6 requests, and 00:00's continuation
        "Tuesday": (1, 2),
        "Wednesday": (1, 1),
        "Thursday": (0, 0),
        "Friday": (1, 1),
        "Saturday": (0, 0),
        "Sunday": (3, 3),  # 01:30 BST, 01:30 GMT, 23:58
    }


def test_by_hour_and_heatmap(report: dict[str, Any]) -> None:
    hours = {row["hour"]: (row["attempts"], row["requests"]) for row in report["by_hour"]}
    assert {h: c for h, c in hours.items() if c != (0, 0)} == {
        0: (0, 1),
        1: (2, 2),  # both 01:30s of the night the clocks went back
        10: (3, 6),
        11: (1, 1),
        12: (1, 1),
        16: (1, 2),
        23: (1, 1),
    }
    assert [row["hour"] for row in report["by_hour"] if row["school_hours"]] == list(range(8, 16))
    cells = {
        (day, hour): value
        for day, row in enumerate(report["heatmap"])
        for hour, value in enumerate(row)
        if value
    }
    assert cells == {(0, 10): 3, (1, 16): 1, (2, 12): 1, (4, 11): 1, (6, 1): 2, (6, 23): 1}


def test_by_group_domain_and_rule(report: dict[str, Any]) -> None:
    assert [(r["group"], r["attempts"], r["requests"]) for r in report["by_group"]] == [
        ("pupils", 5, 7),
        ("staff", 4, 7),
        ("everyone", 0, 0),
    ]
    assert [(r["domain"], r["attempts"], r["requests"]) for r in report["by_domain"]] == [
        ("facebook.com", 3, 6),
        ("instagram.com", 3, 3),
        ("tiktok.com", 2, 3),
        ("linkedin.com", 1, 1),
        ("x.com", 0, 1),
    ]
    assert [(r["rule"], r["clause"], r["attempts"], r["requests"]) for r in report["by_rule"]] == [
        ("school-it-ban", "Section 3, Main Body of Policy", 8, 13),
        ("staff-monitored", "Role of School Staff", 1, 1),
    ]


def test_repeat_list_names_people_and_devices(log: Log, w43: W43) -> None:
    (log.folder / "leases.csv").write_text("ip,hostname\n10.20.0.9,Y4-iPad-07\n")
    repeat = weekly(log, "2026-W43", "report: {devices: leases.csv}")["repeat"]
    assert repeat == [
        {
            "who": "alice",
            "username": "alice",
            "clients": [{"ip": "10.10.0.5", "device": None}, {"ip": "10.10.0.6", "device": None}],
            "groups": ["staff"],
            "attempts": 3,
            "requests": 6,
            "first": "2026-10-19T10:00:00+01:00",
            "last": "2026-10-19T10:14:00+01:00",
            "domains": ["facebook.com", "instagram.com"],
        },
        {
            "who": "10.20.0.9",
            "username": None,
            "clients": [{"ip": "10.20.0.9", "device": "Y4-iPad-07"}],
            "groups": ["pupils"],
            "attempts": 2,
            "requests": 3,
            "first": "2026-10-20T16:00:00+01:00",
            "last": "2026-10-23T11:00:00+01:00",
            "domains": ["facebook.com", "tiktok.com"],
        },
        {
            "who": "10.20.0.10",
            "username": None,
            "clients": [{"ip": "10.20.0.10", "device": None}],
            "groups": ["pupils"],
            "attempts": 2,
            "requests": 2,
            "first": "2026-10-25T01:30:00+01:00",
            "last": "2026-10-25T01:30:00+00:00",
            "domains": ["instagram.com"],
        },
    ]


def test_the_device_recorded_with_an_incident_wins(log: Log) -> None:
    (log.folder / "leases.csv").write_text("10.20.0.50,stale-lease-name\n10.20.0.51,Y3-iPad-51\n")
    log.add("2026-11-16 09:00:00", "10.20.0.50", "x.com", device="Y5-Chromebook-12")
    log.add("2026-11-17 09:00:00", "10.20.0.50", "x.com", device="Y5-Chromebook-12")
    log.add("2026-11-17 10:00:00", "10.20.0.51", "x.com")
    report = weekly(log, "2026-W47", "report: {devices: leases.csv}")
    assert report["repeat"][0]["clients"] == [{"ip": "10.20.0.50", "device": "Y5-Chromebook-12"}]
    assert [i["device"] for i in report["incidents"]] == [
        "Y3-iPad-51",
        "Y5-Chromebook-12",
        "Y5-Chromebook-12",
    ]


def test_the_devices_files_name_what_the_proxy_did_not(log: Log, w43: W43) -> None:
    (log.folder / "dnsmasq.leases").write_text("0 aa:bb:cc:dd:ee:09 10.20.0.9 Y4-iPad-07 *\n")
    (log.folder / "inventory.csv").write_text("10.20.0.10,Y5-iPad-10\n")
    extra = "devices: [dnsmasq.leases]\nreport: {devices: inventory.csv}"
    repeat = weekly(log, "2026-W43", extra)["repeat"]
    assert [(p["who"], p["clients"]) for p in repeat] == [
        ("alice", [{"ip": "10.10.0.5", "device": None}, {"ip": "10.10.0.6", "device": None}]),
        ("10.20.0.9", [{"ip": "10.20.0.9", "device": "Y4-iPad-07"}]),
        ("10.20.0.10", [{"ip": "10.20.0.10", "device": "Y5-iPad-10"}]),
    ]


def test_incident_list_is_newest_first_with_references(report: dict[str, Any], w43: W43) -> None:
    refs = w43.refs
    assert [(i["reference"], i["started"]) for i in report["incidents"]] == [
        (refs["sunday"], "2026-10-25T23:58:00+00:00"),
        (refs["dst_gmt"], "2026-10-25T01:30:00+00:00"),
        (refs["dst_bst"], "2026-10-25T01:30:00+01:00"),
        (refs["pupil9_fri"], "2026-10-23T11:00:00+01:00"),
        (refs["bob"], "2026-10-21T12:00:00+01:00"),
        (refs["pupil9_tue"], "2026-10-20T16:00:00+01:00"),
        (refs["alice2"], "2026-10-19T10:12:01+01:00"),
        (refs["alice_ig"], "2026-10-19T10:03:00+01:00"),
        (refs["alice1"], "2026-10-19T10:00:00+01:00"),
    ]
    bob = report["incidents"][4]
    assert bob == {
        "reference": refs["bob"],
        "started": "2026-10-21T12:00:00+01:00",
        "who": "bob",
        "username": "bob",
        "client_ip": "10.10.0.7",
        "device": None,
        "group": "staff",
        "host": "www.linkedin.com",
        "domain": "linkedin.com",
        "rule": "staff-monitored",
        "action": "monitor",
        "school_day": True,
    }
    assert [i["school_day"] for i in report["incidents"]] == [False] * 4 + [True] + [False] + [
        True
    ] * 3


def test_trend_is_the_term_so_far(report: dict[str, Any]) -> None:
    trend = [
        (w["week"], w["start"], w["attempts"], w["requests"], w["current"]) for w in report["trend"]
    ]
    assert trend[0] == ("2026-W36", "2026-09-03", 0, 0, False)  # the term starts on a Thursday
    assert [t[2] for t in trend] == [0, 1, 0, 0, 0, 0, 1, 9]
    assert [t[3] for t in trend] == [0, 1, 0, 0, 0, 0, 1, 14]
    assert trend[-1] == ("2026-W43", "2026-10-19", 9, 14, True)


def test_last_week_is_the_whole_week_when_the_term_began_in_it(log: Log) -> None:
    log.add("2026-09-01 10:00:00", "10.20.0.20", "x.com")  # Tuesday, before the term
    log.add("2026-09-04 10:00:00", "10.20.0.20", "x.com")  # Friday of the term's first week
    log.add("2026-09-08 10:00:00", "10.20.0.20", "x.com")  # W37
    report = weekly(log, "2026-W37")
    assert report["comparison"]["previous"] == {
        "label": "2026-W36",
        "start": "2026-08-31",
        "end": "2026-09-06",
        "requests": 2,
        "attempts": 2,
    }
    trend = [(w["week"], w["start"], w["attempts"]) for w in report["trend"]]
    assert trend == [("2026-W36", "2026-09-03", 1), ("2026-W37", "2026-09-07", 1)]


def test_nothing_past_retention_is_counted(log: Log, w43: W43) -> None:
    # generated at 07:00 UTC on 26 October, 5 days' retention keeps Wednesday 21 October from
    # 08:00 BST on: the 07:58 request is past retention, so 08:01 starts an attempt of its own
    log.add("2026-10-21 07:58:00", "10.20.0.30", "tiktok.com")
    kept = log.add("2026-10-21 08:01:00", "10.20.0.30", "tiktok.com")
    report = weekly(log, "2026-W43", "retention_days: 5")
    assert report["totals"] == {
        "requests": 6,  # bob, Friday's, both 01:30s, Sunday 23:58, and 08:01
        "attempts": 6,
        "people": 5,  # bob, 10.20.0.9, .10, .11, .30
        "clients": 5,
        "blocked": 5,
        "monitored": 1,
        "repeat_people": 1,  # 10.20.0.10
    }
    assert [i["reference"] for i in report["incidents"]][-2:] == [w43.refs["bob"], kept]
    assert report["comparison"]["previous"]["attempts"] == 0  # W42: all past retention
    assert report["comparison"]["term"]["attempts"] == 6  # W37 and W42 are not counted
    assert [w["attempts"] for w in report["trend"]] == [0] * 7 + [6]


def test_an_attempt_counts_in_the_week_it_starts(log: Log, w43: W43) -> None:
    w44 = weekly(log, "2026-W44")  # Monday 00:01 continues Sunday 23:58's attempt
    assert w44["totals"] == {
        "requests": 1,
        "attempts": 0,
        "people": 1,
        "clients": 1,
        "blocked": 0,
        "monitored": 0,
        "repeat_people": 0,
    }
    assert w44["comparison"]["previous"]["attempts"] == 9
    assert w44["incidents"] == []


def test_an_empty_week_is_a_valid_report(log: Log, w43: W43) -> None:
    config = log.config()
    report = build_report(log.engine, config, iso_week("2026-W50", LONDON))
    for page in (render_html(report), render_md(report)):
        assert "No attempts were recorded in this period." in page
    empty = json.loads(report.to_json())
    assert empty["totals"]["requests"] == empty["totals"]["attempts"] == 0
    assert empty["repeat"] == empty["incidents"] == empty["by_domain"] == []
    assert empty["heatmap"] == [[0] * 24] * 7
    assert len(empty["by_day"]) == 7 and len(empty["by_hour"]) == 24


def test_term_statement_names_no_one(log: Log, w43: W43) -> None:
    config = log.config()
    record_change(
        log.engine, site="test", who="it-admin", action="add", category="social_networks",
        entries=["tiktok.com"], reason="pupils found it",
        at=dt.datetime(2026, 10, 20, 9, tzinfo=LONDON),
    )  # fmt: skip
    record_change(
        log.engine, site="test", who="it-admin", action="remove", entries=["old.example"],
        at=dt.datetime(2026, 8, 1, tzinfo=LONDON),
    )  # fmt: skip
    period = term_named("autumn 2026", config.school_day.terms, LONDON)
    statement = build_report(log.engine, config, period)
    data = json.loads(statement.to_json())
    assert data["kind"] == "term" and data["people_named"] is False
    assert data["repeat"] == data["incidents"] == [] and data["comparison"] is None
    assert data["totals"]["attempts"] == 11 and data["totals"]["requests"] == 17
    assert [w["week"] for w in data["trend"]][::5] == [
        "2026-W36",
        "2026-W41",
        "2026-W46",
        "2026-W51",
    ]
    assert sum(w["attempts"] for w in data["trend"]) == 11  # W44's request continues W43's
    assert [(c["action"], c["entries"]) for c in data["policy_changes"]] == [
        ("add", ["tiktok.com"])
    ]
    notes = " ".join(data["notes"])
    assert "11 attempts (17 requests)" in notes and "changed 1 time" in notes
    pages = statement.to_json() + render_html(statement) + render_md(statement)
    for name in ("alice", "bob", "10.20.0.9", "10.10.0.5"):
        assert name not in pages
    assert "No individual is named" in render_html(statement)


def test_the_term_adds_up_its_weeks(log: Log, w43: W43) -> None:
    # 10.20.0.13's second attempt of the term, nine weeks after its first (W37)
    log.add("2026-11-10 09:00:00", "10.20.0.13", "x.com")
    config = log.config()
    period = term_named("Autumn 2026", config.school_day.terms, LONDON)
    totals = json.loads(build_report(log.engine, config, period).to_json())["totals"]
    assert totals == {
        "requests": 18,  # W43 14, and W37, W42, W44 and W46 one each
        "attempts": 12,
        "people": 7,  # alice, bob, 10.20.0.9 to .13
        "clients": 8,  # alice has two addresses
        "blocked": 11,
        "monitored": 1,
        "repeat_people": 4,  # alice, 10.20.0.9, .10, and .13 over two weeks
    }
