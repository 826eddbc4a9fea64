"""Privacy: the log's files are the proxy user's only; a person's incidents can be exported
(subject access) and erased, and the erasure is recorded without the person's name."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from addons.incidents import PolicyChange, create_schema, make_engine
from addons.privacy import COLUMNS
from tests.blocklists.conftest import schoolgate
from tests.db.conftest import days_ago, incident, seed, stored_ids
from tests.e2e.realparts import Gateway, curl


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_log_and_its_wal_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "incidents.db"
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    with engine.begin() as connection:  # holds -wal and -shm open
        seed(engine, incident())
        assert connection.execute(select(PolicyChange)).all() == []
        files = [path, path.with_name("incidents.db-wal"), path.with_name("incidents.db-shm")]
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    assert mode(path.parent) == 0o700
    engine.dispose()


def test_a_log_made_readable_by_others_is_narrowed_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "incidents.db"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    assert mode(path) == 0o600
    engine.dispose()


def test_the_proxys_log_files_are_private(start_gateway: Callable[..., Gateway]) -> None:
    gateway = start_gateway()
    curl("-x", gateway.proxy, "http://localhost:9/")
    gateway.wait_for_incidents(1)
    database = gateway.database
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        assert mode(path) == 0o600, path


@pytest.fixture
def people(log: Engine) -> dict[str, dict[str, object]]:
    """jsmith's incidents on two sites, and someone else's."""
    rows = {
        "first": incident(occurred_at=days_ago(3), url="http://www.facebook.com/jsmith"),
        "second": incident(occurred_at=days_ago(1), device="pupil-laptop-12"),
        "elsewhere": incident(site="other", occurred_at=days_ago(2)),
        "someone else": incident(username="adoe"),
    }
    seed(log, *rows.values())
    return rows


def test_export_gives_every_incident_of_the_user_at_the_site(
    people: dict[str, dict[str, object]], database_url: str, config_for: Callable[..., Path]
) -> None:
    result = schoolgate("db", "export", "--user", "jsmith", "--config", config_for(database_url))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["user"], document["site"]) == ("jsmith", "test")
    first, second = document["incidents"]
    assert first["id"] == people["first"]["id"] and second["id"] == people["second"]["id"]
    assert first["url"] == "http://www.facebook.com/jsmith"
    assert second["device"] == "pupil-laptop-12" and second["occurred_at"].endswith("+00:00")
    assert set(first) == set(COLUMNS)
    assert "2 incident(s) of jsmith (site test)" in result.stderr


def test_export_as_csv_to_a_private_file_across_sites(
    people: dict[str, dict[str, object]],
    database_url: str,
    config_for: Callable[..., Path],
    tmp_path: Path,
) -> None:
    output = tmp_path / "jsmith.csv"
    config = config_for(database_url)
    args = ("--user", "jsmith", "--format", "csv", "--all-sites", "--output", output)
    result = schoolgate("db", "export", *args, "--config", config)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and mode(output) == 0o600
    rows = list(csv.DictReader(io.StringIO(output.read_text())))
    assert [int(r["id"]) for r in rows] == [
        people[name]["id"] for name in ("first", "elsewhere", "second")
    ]
    assert list(rows[0]) == list(COLUMNS)


def test_erase_asks_first_and_a_script_must_say_yes(
    log: Engine, people: dict[str, dict[str, object]], database_url: str, config_for
) -> None:
    config = config_for(database_url)
    result = schoolgate("db", "erase", "--user", "jsmith", "--reason", "SAR 41", "--config", config)
    assert result.returncode == 1
    assert "nothing erased (confirm, or add --yes)" in result.stderr
    assert len(stored_ids(log)) == 4


def test_erase_deletes_the_users_incidents_and_records_who_and_why_not_whose(
    log: Engine, people: dict[str, dict[str, object]], database_url: str, config_for
) -> None:
    config = config_for(database_url)
    args = ("--user", "jsmith", "--reason", "erasure request, DPO ref 41", "--by", "dpo", "--yes")
    result = schoolgate("db", "erase", *args, "--config", config)
    assert result.returncode == 0, result.stderr
    assert "erased 2 incident(s) of jsmith (site test)" in result.stdout
    assert stored_ids(log) == {people["elsewhere"]["id"], people["someone else"]["id"]}
    with log.connect() as connection:
        [change] = connection.execute(select(PolicyChange.__table__)).mappings()
    assert (change["action"], change["who"], change["site"]) == ("erase", "dpo", "test")
    assert change["reason"] == "erasure request, DPO ref 41"
    assert change["entries"] == "test: 2 incident(s) of one user"
    assert "jsmith" not in json.dumps({k: str(v) for k, v in change.items()})

    history = schoolgate("blocklist", "history", "--config", config)
    assert "dpo: erase test: 2 incident(s) of one user" in history.stdout

    again = schoolgate("db", "erase", *args, "--config", config)
    assert "no incidents of jsmith (site test): nothing erased or recorded" in again.stdout


def test_erase_across_sites_counts_per_site(
    log: Engine, people: dict[str, dict[str, object]], database_url: str, config_for
) -> None:
    args = ("--user", "jsmith", "--reason", "DPO ref 42", "--all-sites", "--yes")
    result = schoolgate("db", "erase", *args, "--config", config_for(database_url))
    assert "erased 3 incident(s) of jsmith (every site)\n  other: 1\n  test: 2\n" in result.stdout
    assert stored_ids(log) == {people["someone else"]["id"]}
