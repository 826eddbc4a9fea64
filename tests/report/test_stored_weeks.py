"""The trend's finished weeks are counted once, stored in `week_counts`, and reused only while
the rows they were counted from are unchanged: on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, select, text

from addons.incidents import WeekCount, create_schema, make_engine
from addons.privacy import erase
from reports.build import scope_for
from reports.period import iso_week
from reports.stored_weeks import StoredWeeks
from tests.report.conftest import LONDON, MONDAY_AFTER_W43, POSTGRES, W43, Log, weekly


def trend(report: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(w["week"], w["attempts"], w["requests"]) for w in report["trend"]]


def stored(engine: Engine) -> dict[str, tuple[int, int]]:
    """The stored weeks, by the local Monday they start on: (attempts, requests)."""
    query = select(WeekCount.since, WeekCount.attempts, WeekCount.requests)
    with engine.connect() as connection:
        return {
            since.replace(tzinfo=dt.UTC).astimezone(LONDON).date().isoformat(): (a, r)
            for since, a, r in connection.execute(query)
        }


@pytest.fixture
def windows(log: Log) -> Iterator[list[str]]:
    """The statements that sort rows into attempts (LAG), as the log runs them."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "lag(" in statement.lower():
            seen.append(statement)

    event.listen(log.engine, "before_cursor_execute", record)
    yield seen
    event.remove(log.engine, "before_cursor_execute", record)


def test_earlier_weeks_are_counted_once_then_reused(log: Log, w43: W43, windows: list[str]) -> None:
    first = weekly(log, "2026-W43")
    # W36 to W42 were counted for the trend and stored; W43 is the report's own week
    assert stored(log.engine) == {
        "2026-09-03": (0, 0),  # W36 from the term's first day, Thursday 3 September
        "2026-09-07": (1, 1),
        **{f"2026-{day}": (0, 0) for day in ("09-14", "09-21", "09-28", "10-05")},
        "2026-10-12": (1, 1),
    }
    first_run = len(windows)
    windows.clear()

    again = weekly(log, "2026-W43")
    assert again == first
    # only the week itself is sorted into attempts: its breakdown, people, repeat list, latest
    assert len(windows) == 4 < first_run


def test_a_late_row_or_an_erasure_makes_the_week_be_counted_again(log: Log, w43: W43) -> None:
    weekly(log, "2026-W43")
    # a row the writer's spill file replays after an outage, into a stored week (W40)
    log.add("2026-09-29 10:00:00", "carol", "facebook.com", ip="10.10.0.9", group="staff")
    log.add("2026-09-29 10:20:00", "carol", "facebook.com", ip="10.10.0.9", group="staff")
    assert trend(weekly(log, "2026-W43"))[4] == ("2026-W40", 2, 2)
    assert stored(log.engine)["2026-09-28"] == (2, 2)

    erase(log.engine, "carol", "test")  # a subject's erasure request, served
    assert trend(weekly(log, "2026-W43"))[4] == ("2026-W40", 0, 0)
    assert stored(log.engine)["2026-09-28"] == (0, 0)


def test_the_five_minutes_before_a_stored_week_are_part_of_its_rows(log: Log, w43: W43) -> None:
    log.add("2026-10-12 00:01:00", "10.20.0.13", "x.com")  # Monday of W42, just after midnight
    weekly(log, "2026-W43")
    assert stored(log.engine)["2026-10-12"] == (2, 2)  # with Sunday 18 October's 23:59:59
    # a late row at 23:58 on the Sunday before turns 00:01 into its attempt's continuation
    log.add("2026-10-11 23:58:00", "10.20.0.13", "x.com")
    assert trend(weekly(log, "2026-W43"))[6] == ("2026-W42", 1, 2)


def test_weeks_not_over_or_partly_past_retention_are_not_stored(log: Log, w43: W43) -> None:
    config = log.config("retention_days: 40")  # keeps from 07:00 UTC on Wednesday 16 September
    weeks = StoredWeeks(log.engine, "test", MONDAY_AFTER_W43)

    def count(week: str) -> None:
        weeks.counts(scope_for(config, iso_week(week, LONDON), now=MONDAY_AFTER_W43))

    count("2026-W44")  # not over on Monday morning
    count("2026-W38")  # its Monday and Tuesday are past retention
    count("2026-W39")
    assert list(stored(log.engine)) == ["2026-09-21"]


def test_a_log_at_an_older_schema_revision_is_reported_without_storing(log: Log, w43: W43) -> None:
    expected = weekly(log, "2026-W43")
    with log.engine.begin() as connection:
        connection.execute(text("DROP TABLE week_counts"))
        connection.execute(text("UPDATE alembic_version SET version_num = '0002'"))
    assert weekly(log, "2026-W43") == expected
    create_schema(log.engine)  # the proxy's next start upgrades it
    assert weekly(log, "2026-W43") == expected
    assert len(stored(log.engine)) == 7


@pytest.mark.parametrize("log", ["postgresql"], indirect=True)
def test_a_role_that_may_only_read_still_gets_the_report(log: Log, w43: W43) -> None:
    """A trust's reporting role with SELECT only: nothing stored, nothing refused."""
    role = f"reader_{uuid.uuid4().hex[:12]}"
    schema = log.url.rsplit("%3D", 1)[1]
    admin = create_engine(POSTGRES)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN"))
        connection.execute(text(f"GRANT USAGE ON SCHEMA {schema} TO {role}"))
        connection.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}"))
    reader = make_engine(log.url.replace("//postgres@", f"//{role}@"))
    try:
        read_only = weekly(log, "2026-W43", engine=reader)
        assert stored(log.engine) == {}
        assert read_only == weekly(log, "2026-W43")
        assert len(stored(log.engine)) == 7
    finally:
        reader.dispose()
        with admin.begin() as connection:
            connection.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}"))
            connection.execute(text(f"REVOKE ALL ON SCHEMA {schema} FROM {role}"))
            connection.execute(text(f"DROP ROLE {role}"))
        admin.dispose()
