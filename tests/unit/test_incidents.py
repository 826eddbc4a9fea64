"""Incident rows, their ids, and the writer that stores them in batches on a real SQLite file."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from addons.incidents import Incident, incident_row, make_engine, new_incident_id
from addons.policy import Policy
from addons.spill import SpillFile
from addons.writer import IncidentWriter
from tests.unit.support import LONDON, SCHOOL_TIME

type Row = dict[str, Any]
EPOCH_2026_MS = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)


def stored(engine: Engine) -> list[Row]:
    """Every row of `incidents`, in id order."""
    with engine.connect() as connection:
        result = connection.execute(select(Incident.__table__).order_by(Incident.id))
        return [dict(row) for row in result.mappings()]


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until `condition()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def make_row(policy: Policy) -> Callable[..., Row]:
    """A row for a pupil's blocked request, with a fresh id; keywords override arguments."""

    def make(host: str = "m.facebook.com", **overrides: Any) -> Row:
        decision = policy.decide(host, "10.20.1.5", at=SCHOOL_TIME.timestamp())
        arguments: dict[str, Any] = {
            "site": "test",
            "client_ip": "10.20.1.5",
            "username": None,
            "method": "GET",
            "url": f"http://{host}/",
            "user_agent": "pytest",
            "at": SCHOOL_TIME,
        }
        return incident_row(decision, **(arguments | overrides))

    return make


@pytest.fixture
def writers(engine: Engine, tmp_path: Path) -> Iterator[Callable[..., IncidentWriter]]:
    """Make writers on the test engine; each is closed at the end of the test."""
    made: list[IncidentWriter] = []

    def make(interval: float = 0.25, on: Engine = engine, **options: Any) -> IncidentWriter:
        writer = IncidentWriter(on, tmp_path / "spill.jsonl", interval=interval, **options)
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.close()


# --- rows -------------------------------------------------------------------------------------


def test_a_row_holds_who_what_when_and_why(make_row: Callable[..., Row]) -> None:
    row = make_row(
        "scontent-lhr8-1.xx.fbcdn.net",
        username="bob",
        method="CONNECT",
        url=None,
        device="pupil-laptop-12",
    )
    assert row == {
        "id": row["id"],
        "occurred_at": dt.datetime(2026, 11, 23, 10, 0),  # GMT in November: UTC equals local
        "site": "test",
        "client_ip": "10.20.1.5",
        "device": "pupil-laptop-12",
        "username": "bob",
        "client_group": "pupils",
        "host": "scontent-lhr8-1.xx.fbcdn.net",
        "domain": "fbcdn.net",
        "category": "social_networks",
        "rule": "school-it-ban",
        "action": "block",
        "method": "CONNECT",
        "url": None,
        "user_agent": "pytest",
    }


def test_occurred_at_is_naive_utc(make_row: Callable[..., Row]) -> None:
    summer = dt.datetime(2026, 6, 15, 10, 0, tzinfo=LONDON)  # BST, UTC+1
    assert make_row(at=summer)["occurred_at"] == dt.datetime(2026, 6, 15, 9, 0)
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    now = make_row(at=None)["occurred_at"]
    assert now.tzinfo is None
    assert before <= now <= dt.datetime.now(dt.UTC).replace(tzinfo=None)


def test_long_values_are_cut_to_their_columns(make_row: Callable[..., Row]) -> None:
    host = "a" * 60 + "." + ".".join(["b" * 60] * 4) + ".facebook.com"
    row = make_row(host, url="http://x/" + "p" * 3000, user_agent="u" * 600, method="M" * 20)
    assert (len(row["host"]), len(row["url"]), len(row["user_agent"])) == (255, 2048, 512)
    assert len(row["method"]) == 16


# --- ids --------------------------------------------------------------------------------------


def test_ids_are_strictly_increasing_and_time_ordered() -> None:
    before_ms = time.time() * 1000 - EPOCH_2026_MS
    ids = [new_incident_id() for _ in range(20_000)]  # wraps the 4096-step sequence
    after_ms = time.time() * 1000 - EPOCH_2026_MS
    assert all(a < b for a, b in itertools.pairwise(ids))
    # Milliseconds since 2026 times 4096: the id says when it was made (a burst of more than
    # 4096 ids a millisecond may run ahead of the clock, never behind it).
    assert before_ms - 1 <= ids[0] / 4096 <= after_ms + 1000


def test_ids_are_unique_across_threads() -> None:
    made: list[list[int]] = [[] for _ in range(8)]

    def make(into: list[int]) -> None:
        into.extend(new_incident_id() for _ in range(5_000))

    threads = [threading.Thread(target=make, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for ids in made for i in ids]
    assert len(set(every)) == len(every)
    for ids in made:
        assert ids == sorted(ids)


# --- the writer ---------------------------------------------------------------------------


def test_flush_writes_the_queue_to_a_new_sqlite_file_in_one_transaction(
    engine: Engine,
    tmp_path: Path,
    writers: Callable[..., IncidentWriter],
    make_row: Callable[..., Row],
) -> None:
    writer = writers()
    writer.add(make_row())
    assert writer.flush()  # creates the folder's file and the schema
    assert (tmp_path / "data" / "incidents.db").is_file()
    commits: list[object] = []
    event.listen(engine, "commit", commits.append)
    rows = [make_row(f"u{i}.facebook.com") for i in range(500)]
    for row in rows:
        writer.add(row)
    assert writer.pending == 500
    assert writer.flush()
    assert len(commits) == 1
    assert (writer.pending, writer.written) == (0, 501)
    assert stored(engine)[1:] == rows
    assert writer.flush()  # nothing queued: nothing to do


def test_the_thread_writes_in_batches_without_being_asked(
    engine: Engine, writers: Callable[..., IncidentWriter], make_row: Callable[..., Row]
) -> None:
    writer = writers(interval=0.02)
    writer.start()
    rows = [make_row() for _ in range(50)]
    for row in rows:
        writer.add(row)
    wait_for(lambda: writer.written == 50)
    assert stored(engine) == rows


def test_close_writes_everything_pending_without_waiting_for_the_interval(
    engine: Engine, tmp_path: Path, make_row: Callable[..., Row]
) -> None:
    writer = IncidentWriter(engine, tmp_path / "spill.jsonl", interval=60)
    writer.start()
    rows = [make_row() for _ in range(100)]
    for row in rows:
        writer.add(row)
    started = time.monotonic()
    writer.close()
    assert time.monotonic() - started < 5
    assert writer.pending == 0
    assert stored(engine) == rows


def test_close_without_start_still_writes(
    engine: Engine, tmp_path: Path, make_row: Callable[..., Row]
) -> None:
    writer = IncidentWriter(engine, tmp_path / "spill.jsonl")
    row = make_row()
    writer.add(row)
    writer.close()
    assert stored(engine) == [row]


@pytest.fixture
def broken_path(tmp_path: Path) -> Path:
    """A SQLite path that is a folder: every connection fails until the folder is removed."""
    path = tmp_path / "broken.db"
    path.mkdir()
    return path


@pytest.fixture
def broken_engine(broken_path: Path) -> Iterator[Engine]:
    """An engine whose database cannot be opened."""
    engine = make_engine(f"sqlite:///{broken_path}")
    yield engine
    engine.dispose()


def test_a_refused_write_is_spilled_and_replayed_once_the_database_is_back(
    broken_engine: Engine,
    broken_path: Path,
    tmp_path: Path,
    writers: Callable[..., IncidentWriter],
    make_row: Callable[..., Row],
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = writers(on=broken_engine)
    first = [make_row() for _ in range(3)]
    for row in first:
        writer.add(row)
    assert not writer.flush()
    assert not writer.flush()
    [spill] = tmp_path.glob("spill.jsonl*")  # moved aside by the failed replay
    assert len(spill.read_text().splitlines()) == 3
    assert stat.S_IMODE(spill.stat().st_mode) == 0o600  # rows name people
    assert writer.pending == 3
    later = make_row()
    writer.add(later)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, "one error per outage, not one per retry"
    assert "incident log unavailable since" in errors[0].getMessage()
    assert "3 queued, 0 spilled" in errors[0].getMessage()

    broken_path.rmdir()
    assert writer.flush()
    assert stored(broken_engine) == [*first, later]
    assert (writer.pending, writer.written) == (0, 4)
    assert not list(tmp_path.glob("spill.jsonl*"))
    assert "incident log back after" in caplog.text and ", wrote 4" in caplog.text


def test_the_thread_retries_until_the_database_comes_back(
    broken_engine: Engine,
    broken_path: Path,
    writers: Callable[..., IncidentWriter],
    make_row: Callable[..., Row],
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = writers(interval=0.01, on=broken_engine)
    writer.start()
    rows = [make_row() for _ in range(5)]
    for row in rows:
        writer.add(row)
    wait_for(lambda: "incident log unavailable" in caplog.text)
    time.sleep(0.05)  # a few more attempts, backing off
    assert writer.pending == 5
    broken_path.rmdir()
    wait_for(lambda: writer.written == 5)
    assert stored(broken_engine) == rows


def test_close_on_a_broken_database_keeps_the_rows_and_says_so(
    broken_engine: Engine,
    tmp_path: Path,
    make_row: Callable[..., Row],
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = IncidentWriter(broken_engine, tmp_path / "spill.jsonl")
    writer.start()
    writer.add(make_row())
    writer.add(make_row())
    writer.close()
    assert writer.pending == 2
    assert "2 incidents could not be written at shutdown" in caplog.text


def test_a_spill_file_left_by_an_earlier_run_is_replayed_at_start(
    broken_engine: Engine,
    engine: Engine,
    tmp_path: Path,
    make_row: Callable[..., Row],
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = [make_row() for _ in range(2)]
    crashed = IncidentWriter(broken_engine, tmp_path / "spill.jsonl")
    for row in rows:
        crashed.add(row)
    crashed.close()
    writer = IncidentWriter(engine, tmp_path / "spill.jsonl", interval=0.02)
    assert "2 incidents left in" in caplog.text
    writer.start()
    wait_for(lambda: writer.pending == 0)
    writer.close()
    assert stored(engine) == rows
    assert not list(tmp_path.glob("spill.jsonl*"))


def test_replaying_rows_the_database_already_has_stores_them_once(
    engine: Engine,
    writers: Callable[..., IncidentWriter],
    tmp_path: Path,
    make_row: Callable[..., Row],
) -> None:
    """A batch spilled while its write hung may have been committed all the same."""
    writer = writers()
    rows = [make_row() for _ in range(3)]
    for row in rows:
        writer.add(row)
    assert writer.flush()
    spill = SpillFile(tmp_path / "spill.jsonl")
    spill.append(rows)
    spill.close()
    assert writer.flush()
    assert stored(engine) == rows
    assert writer.pending == 0


def test_a_queue_over_its_limit_is_spilled(
    engine: Engine,
    writers: Callable[..., IncidentWriter],
    tmp_path: Path,
    make_row: Callable[..., Row],
) -> None:
    writer = writers(interval=60, queue_limit=2)  # only the guard acts before `close`
    writer.start()
    rows = [make_row() for _ in range(5)]
    for row in rows:
        writer.add(row)
    spill = tmp_path / "spill.jsonl"
    wait_for(lambda: spill.exists() and len(spill.read_text().splitlines()) == 5)
    writer.close()
    assert stored(engine) == rows


def test_a_write_that_hangs_has_its_rows_spilled_within_a_second(
    engine: Engine,
    writers: Callable[..., IncidentWriter],
    tmp_path: Path,
    make_row: Callable[..., Row],
) -> None:
    """A SIGKILL during a long wait on the database must not lose what the wait holds."""
    writer = writers(interval=0.02)
    writer.add(make_row())
    assert writer.flush()  # the schema exists
    database = str(engine.url.database)
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        writer.start()
        rows = [make_row() for _ in range(5)]
        for row in rows:
            writer.add(row)
        started = time.monotonic()
        spill = tmp_path / "spill.jsonl"
        wait_for(lambda: spill.exists() and len(spill.read_text().splitlines()) == 5, 3.0)
        assert time.monotonic() - started < 1.5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    wait_for(lambda: writer.pending == 0, 15.0)
    assert stored(engine)[1:] == rows


def test_rows_wait_in_memory_when_the_spill_file_cannot_be_written_either(
    broken_engine: Engine,
    broken_path: Path,
    tmp_path: Path,
    make_row: Callable[..., Row],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A full disk holding both the database and the spill file."""
    spill = tmp_path / "no-folder" / "spill.jsonl"
    (tmp_path / "no-folder").write_text("a file where the spill folder should be")
    writer = IncidentWriter(broken_engine, spill)
    rows = [make_row() for _ in range(3)]
    for row in rows:
        writer.add(row)
    assert not writer.flush()
    assert not writer.flush()
    assert writer.pending == 3
    assert caplog.text.count("cannot spill incidents") == 1
    broken_path.rmdir()
    assert writer.flush()
    writer.close()
    assert stored(broken_engine) == rows
