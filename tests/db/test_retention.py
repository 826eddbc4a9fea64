"""Retention: incidents older than retention_days are deleted by `schoolgate db purge` and by
the running proxy, per site; the cutoff the reports use is the same."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from addons import retention
from addons.incidents import create_schema, make_engine
from addons.retention import RetentionTimer, expired_by_site, purge, retention_cutoff
from tests.blocklists.conftest import schoolgate
from tests.db.conftest import days_ago, incident, seed, stored_ids
from tests.e2e.realparts import Gateway, wait_until
from tests.unit.support import LONDON, PolicyFiles


def test_the_cutoff_is_retention_days_before_now_in_naive_utc(tmp_path: Path) -> None:
    config = PolicyFiles(tmp_path).config()  # retention_days: 30
    now = dt.datetime(2026, 11, 23, 10, 0, tzinfo=LONDON)
    assert retention_cutoff(config, now) == dt.datetime(2026, 10, 24, 10, 0)
    summer = dt.datetime(2026, 7, 1, 10, 0, tzinfo=LONDON)  # BST: 09:00 UTC
    assert retention_cutoff(config, summer) == dt.datetime(2026, 6, 1, 9, 0)


@pytest.fixture
def aged(log: Engine) -> dict[str, int]:
    """Two expired incidents of site test, one of site other, and one recent of each."""
    rows = {
        "test-old-1": incident(occurred_at=days_ago(400)),
        "test-old-2": incident(occurred_at=days_ago(366)),
        "test-new": incident(occurred_at=days_ago(364)),
        "other-old": incident(site="other", occurred_at=days_ago(500)),
        "other-new": incident(site="other", occurred_at=days_ago(1)),
    }
    seed(log, *rows.values())
    return {name: row["id"] for name, row in rows.items()}


def test_purge_deletes_one_sites_expired_incidents(log: Engine, aged: dict[str, int]) -> None:
    cutoff = days_ago(365)
    assert expired_by_site(log, cutoff, "test") == {"test": 2}
    assert expired_by_site(log, cutoff, None) == {"other": 1, "test": 2}
    assert purge(log, cutoff, "test") == 2
    assert stored_ids(log) == {aged["test-new"], aged["other-old"], aged["other-new"]}
    assert purge(log, cutoff, None) == 1
    assert stored_ids(log) == {aged["test-new"], aged["other-new"]}


def test_purge_deletes_in_batches(
    log: Engine, aged: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "PURGE_BATCH", 1)
    assert purge(log, days_ago(365), None) == 3
    assert stored_ids(log) == {aged["test-new"], aged["other-new"]}


def test_db_purge_dry_run_counts_and_deletes_nothing(
    log: Engine, aged: dict[str, int], database_url: str, config_for: Callable[..., Path]
) -> None:
    config = config_for(database_url)  # retention_days: 365, site test
    result = schoolgate("db", "purge", "--dry-run", "--all-sites", "--config", config)
    assert result.returncode == 0, result.stderr
    assert "retention_days 365: incidents before" in result.stdout
    assert "  other: 1\n  test: 2\n" in result.stdout
    assert "dry run: 3 incident(s) would be deleted, none were" in result.stdout
    assert len(stored_ids(log)) == 5


def test_db_purge_deletes_the_configs_site_or_the_one_named(
    log: Engine, aged: dict[str, int], database_url: str, config_for: Callable[..., Path]
) -> None:
    config = config_for(database_url)
    result = schoolgate("db", "purge", "--config", config)
    assert result.returncode == 0, result.stderr
    assert "(site test)" in result.stdout and "deleted 2 incident(s)" in result.stdout
    result = schoolgate("db", "purge", "--site", "other", "--config", config)
    assert "deleted 1 incident(s)" in result.stdout
    assert stored_ids(log) == {aged["test-new"], aged["other-new"]}


def test_the_timer_purges_the_site_in_force_and_survives_a_database_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = PolicyFiles(tmp_path).config()  # site test, retention_days: 30
    broken = make_engine(f"sqlite:///{tmp_path}")  # a folder: every connection fails
    timer = RetentionTimer(lambda: (broken, config))
    with caplog.at_level(logging.WARNING):
        assert not timer.purge_now()
    assert "retention purge failed, retrying in an hour" in caplog.text
    broken.dispose()


def test_the_running_proxy_purges_shortly_after_start(
    tmp_path: Path, start_gateway: Callable[..., Gateway]
) -> None:
    url = f"sqlite:///{tmp_path / 'log' / 'incidents.db'}"
    engine = make_engine(url)
    create_schema(engine)
    old, recent = incident(occurred_at=days_ago(366)), incident(occurred_at=days_ago(2))
    other_site = incident(site="other", occurred_at=days_ago(366))
    seed(engine, old, recent, other_site)
    gateway = start_gateway(database=url)
    timeout = retention.FIRST_PURGE_DELAY + 15
    wait_until(lambda: old["id"] not in stored_ids(engine), timeout, "the first purge")
    assert stored_ids(engine) == {recent["id"], other_site["id"]}
    wait_until(lambda: "retention: deleted 1 incident(s) of site test" in gateway.log())
    engine.dispose()
