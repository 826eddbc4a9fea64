"""Fixtures for the incident log's tests: the log on a SQLite file and on the real PostgreSQL
server (a fresh schema each test), rows to seed it with, configs, and real gateways."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from addons.incidents import Incident, create_schema, make_engine, new_incident_id
from tests.blocklists.conftest import postgres_url  # noqa: F401 (the fresh-schema fixture)
from tests.e2e.realparts import BIN, Gateway, free_port, gateways, write_config

type Row = dict[str, Any]
NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The incident log's URL: each test runs on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'incidents.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the empty log (no tables yet)."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def log(engine: Engine) -> Engine:
    """An engine on the log with its tables made."""
    create_schema(engine)
    return engine


def incident(**overrides: Any) -> Row:
    """A complete incident row of site `test`, now; keywords override columns."""
    return {
        "id": new_incident_id(),
        "occurred_at": NOW,
        "site": "test",
        "client_ip": "10.20.1.5",
        "device": None,
        "username": "jsmith",
        "client_group": "pupils",
        "host": "www.facebook.com",
        "domain": "facebook.com",
        "category": "social_networks",
        "rule": "school-it-ban",
        "action": "block",
        "method": "GET",
        "url": None,
        "user_agent": "pytest",
    } | overrides


def days_ago(days: float) -> dt.datetime:
    """A naive UTC moment `days` before the test run began."""
    return NOW - dt.timedelta(days=days)


def seed(engine: Engine, *rows: Row) -> None:
    with engine.begin() as connection:
        connection.execute(insert(Incident), list(rows))


def stored_ids(engine: Engine) -> set[int]:
    with engine.connect() as connection:
        return set(connection.execute(select(Incident.id)).scalars())


@pytest.fixture
def config_for(tmp_path: Path) -> Callable[..., Path]:
    """Write a school's config (realparts' test policy) on `database`; returns its path."""

    def write(database: str, name: str = "school", **overrides: str) -> Path:
        return write_config(tmp_path / name, database=database, **overrides)

    return write


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Start real gateways (`schoolgate run`) with config overrides; all killed at the end."""
    with gateways(tmp_path / "gateways") as start:
        yield start


def run_refused(config: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    """Run `schoolgate run` on a config it must refuse: it exits by itself, output captured."""
    run = [BIN / "schoolgate", "run", "--config", config, "--listen-port", free_port()]
    confdir = f"confdir={folder / 'mitmproxy'}"
    return subprocess.run(
        [*map(str, run), "--", "--set", confdir], capture_output=True, text=True, timeout=60
    )
