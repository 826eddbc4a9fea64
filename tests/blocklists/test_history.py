"""Every add, remove and import is a `policy_changes` row that `blocklist history` lists, newest
first: on a real SQLite file and on the real PostgreSQL server, through the installed command."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from addons.changes import record_change
from addons.incidents import make_engine
from tests.blocklists.conftest import DATA, schoolgate
from tests.unit.support import PolicyFiles


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, files: PolicyFiles) -> Iterator[str]:
    """The config's database: its SQLite file, or a private schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{files.root / 'data' / 'test.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    files.write(edits={"sqlite:///../data/test.db": url})
    yield url


def _history(files: PolicyFiles, *args: str) -> list[dict[str, Any]]:
    done = schoolgate("blocklist", "history", "--json", "--config", files.config_path, *args)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_each_edit_is_one_row_with_who_what_and_why_newest_first(
    files: PolicyFiles, database: str
) -> None:
    config = ("--config", str(files.config_path))
    add = ("blocklist", "add", "social_networks", "tiktok.com", "BeReal.com", "facebook.com")
    assert schoolgate(*add, "--reason", "new apps", "--by", "alice", *config).returncode == 0
    remove = ("blocklist", "remove", "social_networks", "tiktok.com")
    assert schoolgate(*remove, "--reason", "  used in  lessons ", *config).returncode == 0
    source = DATA / "hosts" / "sinfonietta_social.hosts"
    imported = ("blocklist", "import", "video", source, "--reason", "Sinfonietta", "--by", "bob")
    assert schoolgate(*imported, *config).returncode == 0

    rows = _history(files)
    assert [(r["action"], r["category"], r["who"], r["reason"]) for r in rows] == [
        ("import", "video", "bob", "Sinfonietta"),
        ("remove", "social_networks", rows[1]["who"], "used in lessons"),
        ("add", "social_networks", "alice", "new apps"),
    ]
    assert rows[1]["who"]  # the OS user when --by is not given
    assert rows[2]["entries"] == ["tiktok.com", "bereal.com"]  # facebook.com was there already
    assert rows[1]["entries"] == ["tiktok.com"]
    # The unit tests' video list has facebook.com, which covers the rest of the sample.
    assert rows[0]["entries"] == ["=plus.google.com", "=a3.sphotos.ak.fbcdn.net"]
    assert {r["site"] for r in rows} == {"test"}
    assert rows[0]["id"] > rows[1]["id"] > rows[2]["id"]


def test_since_is_a_date_in_the_schools_timezone(files: PolicyFiles, database: str) -> None:
    engine = make_engine(database)
    try:
        for at, reason in [
            (dt.datetime(2026, 8, 31, 22, 59, tzinfo=dt.UTC), "the evening before"),  # BST 23:59
            (dt.datetime(2026, 8, 31, 23, 0, tzinfo=dt.UTC), "first thing"),  # BST 00:00
        ]:
            record_change(
                engine, site="test", who="it", action="add", category="video",
                entries=["a.example"], reason=reason, at=at,
            )  # fmt: skip
        record_change(engine, site="other-school", who="it", action="add", reason="not ours")
    finally:
        engine.dispose()
    assert [r["reason"] for r in _history(files, "--since", "2026-09-01")] == ["first thing"]
    assert [r["reason"] for r in _history(files)] == ["first thing", "the evening before"]
    assert _history(files)[0]["occurred_at"] == "2026-08-31T23:00:00+00:00"


def test_the_text_history_says_when_who_what_and_why(files: PolicyFiles) -> None:
    config = ("--config", str(files.config_path))
    add = ("blocklist", "add", "allowlist", "=classroom.example.org")
    assert schoolgate(*add, "--reason", "Year 6 project", "--by", "dsl", *config).returncode == 0
    done = schoolgate("blocklist", "history", *config)
    first, why = done.stdout.splitlines()
    assert first.startswith("#1 20") and first.endswith(
        " dsl: add allowlist =classroom.example.org"
    )
    assert why == "    why: Year 6 project"


def test_history_before_any_change_is_empty_and_a_bad_date_is_refused(
    files: PolicyFiles,
) -> None:
    assert _history(files) == []
    done = schoolgate("blocklist", "history", "--since", "1 Sept", "--config", files.config_path)
    assert done.returncode == 1
    assert "--since '1 Sept' is not a date (YYYY-MM-DD)" in done.stderr
