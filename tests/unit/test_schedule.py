"""`SchoolDay`: weekdays, start (in) and end (out), terms, closures, in the school's timezone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from addons.config import Config
from addons.policy import Policy
from addons.schedule import SchoolDay
from tests.unit.support import BASE_CONFIG, LONDON, PolicyFiles

UTC = dt.UTC
EVERY_DAY = {"weekdays: [mon, tue, wed, thu, fri]": "weekdays: [mon, tue, wed, thu, fri, sat, sun]"}


def school_day_of(config: Config) -> SchoolDay:
    """The school day a config describes."""
    return SchoolDay(config.school_day, config.school.timezone)


@pytest.fixture
def school_day(files: PolicyFiles) -> SchoolDay:
    """Mon-Fri 08:30-15:30 Europe/London, spring and autumn 2026 terms, closed 27 November."""
    return school_day_of(files.config())


def london(day: str, time: str) -> dt.datetime:
    """A moment on the school's wall clock."""
    return dt.datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=LONDON)


def utc(day: str, time: str) -> dt.datetime:
    """A moment in UTC, as the proxy's clock gives it."""
    return dt.datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=UTC)


# --- the exact start and end ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("time", "inside"),
    [
        ("08:29:59", False),
        ("08:29:59.999999", False),
        ("08:30:00", True),
        ("12:00:00", True),
        ("15:29:59", True),
        ("15:29:59.999999", True),
        ("15:30:00", False),
        ("23:59:59", False),
        ("00:00:00", False),
    ],
)
def test_start_is_in_and_end_is_out(school_day: SchoolDay, time: str, inside: bool) -> None:
    assert school_day.contains(london("2026-11-23", time)) is inside  # a Monday in term


@pytest.mark.parametrize(
    ("day", "inside"),
    [
        ("2026-11-21", False),  # Saturday
        ("2026-11-22", False),  # Sunday
        ("2026-11-23", True),  # Monday
        ("2026-11-27", False),  # Friday, a closure (INSET day)
        ("2026-11-26", True),  # the Thursday before it
        ("2026-09-02", False),  # Wednesday, the day before the autumn term
        ("2026-09-03", True),  # Thursday, its first day
        ("2026-12-17", True),  # Thursday, its last day
        ("2026-12-18", False),  # Friday, the day after
        ("2026-06-15", False),  # Monday between terms
        ("2026-01-05", True),  # Monday, first day of the spring term
        ("2026-04-02", True),  # Thursday, its last day
        ("2026-04-03", False),  # Friday, the day after
    ],
)
def test_weekdays_terms_and_closures(school_day: SchoolDay, day: str, inside: bool) -> None:
    assert school_day.contains(london(day, "10:00")) is inside
    assert school_day.is_school_date(dt.date.fromisoformat(day)) is inside


def test_without_terms_every_listed_weekday_is_a_school_day(files: PolicyFiles) -> None:
    terms = BASE_CONFIG.split("  terms:\n", 1)[1].split("  closures:", 1)[0]
    school_day = school_day_of(files.config(edits={"  terms:\n" + terms: ""}))
    assert school_day.contains(london("2026-06-15", "10:00"))  # was between terms
    assert not school_day.contains(london("2026-06-13", "10:00"))  # Saturday
    assert not school_day.contains(london("2026-11-27", "10:00"))  # still a closure


# --- the school's timezone, through both DST changes -------------------------------------------


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        # Saturday 28 March 2026, GMT (UTC+0): 08:30 local is 08:30 UTC.
        (utc("2026-03-28", "08:29:59"), False),
        (utc("2026-03-28", "08:30:00"), True),
        (utc("2026-03-28", "15:29:59"), True),
        (utc("2026-03-28", "15:30:00"), False),
        # Sunday 29 March 2026: clocks go forward at 01:00 UTC; 08:30 BST is 07:30 UTC.
        (utc("2026-03-29", "07:29:59"), False),
        (utc("2026-03-29", "07:30:00"), True),
        (utc("2026-03-29", "14:29:59"), True),
        (utc("2026-03-29", "14:30:00"), False),
        (utc("2026-03-29", "15:00:00"), False),  # would be inside on GMT
        # Saturday 24 October 2026, BST (UTC+1).
        (utc("2026-10-24", "07:29:59"), False),
        (utc("2026-10-24", "07:30:00"), True),
        (utc("2026-10-24", "14:30:00"), False),
        # Sunday 25 October 2026: clocks go back at 01:00 UTC; 08:30 GMT is 08:30 UTC.
        (utc("2026-10-25", "07:30:00"), False),  # would be inside on BST
        (utc("2026-10-25", "08:29:59"), False),
        (utc("2026-10-25", "08:30:00"), True),
        (utc("2026-10-25", "15:29:59"), True),
        (utc("2026-10-25", "15:30:00"), False),
    ],
    ids=lambda value: value.isoformat() if isinstance(value, dt.datetime) else None,
)
def test_dst_change_days_in_europe_london(
    files: PolicyFiles, moment: dt.datetime, inside: bool
) -> None:
    school_day = school_day_of(files.config(edits=EVERY_DAY))
    assert school_day.contains(moment) is inside
    assert school_day.contains_timestamp(moment.timestamp()) is inside


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (utc("2026-03-27", "08:30:00"), True),  # Friday before the change, GMT
        (utc("2026-03-30", "07:29:59"), False),  # Monday after, BST
        (utc("2026-03-30", "07:30:00"), True),
        (utc("2026-03-30", "14:30:00"), False),
    ],
)
def test_utc_moments_map_to_the_school_clock(
    school_day: SchoolDay, moment: dt.datetime, inside: bool
) -> None:
    assert school_day.contains(moment) is inside


def test_a_moment_in_any_timezone_is_read_on_the_school_clock(school_day: SchoolDay) -> None:
    new_york = ZoneInfo("America/New_York")
    # 03:30 in New York on Monday 23 November 2026 is 08:30 in London.
    assert school_day.contains(dt.datetime(2026, 11, 23, 3, 30, tzinfo=new_york))
    assert not school_day.contains(dt.datetime(2026, 11, 23, 3, 29, 59, tzinfo=new_york))


def test_a_school_in_another_timezone_uses_its_own_clock(files: PolicyFiles) -> None:
    config = files.config(edits={"timezone: Europe/London": "timezone: Australia/Sydney"})
    school_day = school_day_of(config)
    # 08:30 on Monday 23 November 2026 in Sydney (UTC+11) is 21:30 UTC on Sunday.
    assert school_day.contains(utc("2026-11-22", "21:30"))
    assert not school_day.contains(utc("2026-11-23", "08:30"))


# --- the policy's per-minute cache ----------------------------------------------------------


def test_the_policy_reads_the_school_day_afresh_each_minute(policy: Policy) -> None:
    moments = [
        ("15:29:00", True),
        ("15:29:59", True),
        ("15:30:00", False),
        ("15:29:30", True),  # back in time: the cache must not stick
        ("08:29:59", False),
        ("08:30:00", True),
    ]
    for time, inside in moments:
        assert policy.in_school_day(london("2026-11-23", time).timestamp()) is inside, time
