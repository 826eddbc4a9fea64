"""The incident log unavailable: the proxy keeps blocking, and every row arrives afterwards.

Each test runs blocked traffic through a real gateway before, during and after a real fault
(a SQLite file locked by another process, made immutable, on a full disk; a PostgreSQL
server stopped and started again), then compares the rows with the 403s the clients got.
One kills the gateway mid-outage: the spill file it leaves is written at the next start.
"""

from __future__ import annotations

import contextlib
import stat
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from sqlalchemy import create_engine, select

from addons.incidents import Incident
from tests.durability.checks import (
    lost_at_most_the_last_second,
    only_blocked,
    spill_files,
    stored,
)
from tests.durability.conftest import Cluster
from tests.durability.load import Load, Tally
from tests.e2e.realparts import Gateway, wait_until

CLIENTS = 20
MAX_REQUESTS = 500_000  # a bound; each test stops its load itself


def through_an_outage(
    gateway: Gateway,
    fault: AbstractContextManager[object],
    rows: Callable[[], set[int]],
    spill_folder: Path,
    hold: float = 3.0,
) -> Tally:
    """Blocked traffic before, during and after `fault`; every 403 received has its row.

    `spill_folder` holds the spill file; where the fault leaves it writable, incidents must
    go there (mode 0600) while the database is out, and it must be gone afterwards.
    """
    load = Load(gateway.port, CLIENTS, MAX_REQUESTS).start()
    try:
        wait_until(lambda: len(load.tally.received) >= 500, 60, "traffic before the fault")
        with fault:
            wait_until(lambda: "incident log unavailable" in gateway.log(), 60, "the outage")
            noticed = len(load.tally.received)
            time.sleep(hold)
            for path in spill_files(spill_folder):
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert len(load.tally.received) > noticed + 100, "the proxy stopped blocking"
        time.sleep(1.0)
    finally:
        load.stop()
    tally = load.join()
    only_blocked(tally)
    assert tally.unanswered == 0
    wait_until(lambda: rows() >= set(tally.received), 60, "every row after the outage")
    assert rows() == set(tally.received)
    assert not spill_files(spill_folder)
    log = gateway.log()
    assert log.count("incident log unavailable") == 1, log
    assert log.count("incident log back") == 1, log
    return tally


# --- SQLite ---------------------------------------------------------------------------------

LOCK_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


class Locked:
    """Another process holding `BEGIN EXCLUSIVE` on the database: a long report transaction."""

    def __init__(self, database: Path, seconds: float) -> None:
        self.command = [sys.executable, "-c", LOCK_HOLDER, str(database), str(seconds)]
        self.seconds = seconds
        self.start = self.end = 0.0

    def __enter__(self) -> Locked:
        self.holder = subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True)
        assert self.holder.stdout is not None and self.holder.stdout.readline() == "locked\n"
        self.start = time.monotonic()
        return self

    def __exit__(self, *_: object) -> None:
        self.holder.communicate(timeout=self.seconds + 30)
        self.end = time.monotonic()
        assert self.holder.returncode == 0


def test_a_database_locked_for_10_s_delays_no_request_and_loses_no_row(
    gateway_factory: Callable[..., Gateway],
) -> None:
    gateway = gateway_factory()
    wait_until(gateway.database.exists, 30, "the database")
    lock = Locked(gateway.database, 10.0)
    tally = through_an_outage(gateway, lock, lambda: stored(gateway), gateway.database.parent, 0)
    before = [s for sent, s in tally.latencies if sent < lock.start]
    during = [s for sent, s in tally.latencies if lock.start <= sent < lock.end]
    print(
        f"latency before the lock: median {statistics.median(before) * 1000:.1f} ms, "
        f"max {max(before) * 1000:.0f} ms; during: median "
        f"{statistics.median(during) * 1000:.1f} ms, max {max(during) * 1000:.0f} ms"
    )
    # A request waiting on the database would wait out SQLite's 5 s busy timeout.
    assert max(during) < 2.0


def test_a_sigkill_while_the_database_is_locked_loses_at_most_the_last_second(
    gateway_factory: Callable[..., Gateway],
) -> None:
    """What the locked database could not take is in the spill file; the next start writes it."""
    gateway = gateway_factory("killed")
    wait_until(gateway.database.exists, 30, "the database")
    load = Load(gateway.port, CLIENTS, MAX_REQUESTS).start()
    try:
        with Locked(gateway.database, 10.0):
            wait_until(lambda: "incident log unavailable" in gateway.log(), 60, "the outage")
            time.sleep(1.0)
            killed_at = time.monotonic()
            gateway.process.kill()
            gateway.process.wait()
            assert spill_files(gateway.database.parent)
    finally:
        load.stop()
    tally = load.join()
    only_blocked(tally)
    restarted = gateway_factory("killed")
    lost_at_most_the_last_second(restarted, tally, killed_at)
    assert "left in" in restarted.log() and "by an earlier run" in restarted.log()


@contextlib.contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """`chattr +i`: read-only even for root, and for files the proxy already has open."""
    result = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True, text=True)
    assert result.returncode == 0, (
        f"cannot make {paths[0].parent} read-only here (chattr +i needs root and ext4, xfs "
        f"or btrfs; chmod does not stop root): {result.stderr}"
    )
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


def test_a_read_only_database_loses_no_row(gateway_factory: Callable[..., Gateway]) -> None:
    gateway = gateway_factory()
    database = gateway.database
    wait_until(lambda: Path(f"{database}-wal").exists(), 30, "the database in WAL mode")
    files = immutable(database, Path(f"{database}-wal"))  # where SQLite writes in WAL mode
    through_an_outage(gateway, files, lambda: stored(gateway), database.parent)


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Callable[[str], None]]:
    """A small RAM disk mounted on `folder`; yields a function that resizes it."""
    folder.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)]
    result = subprocess.run(mount, capture_output=True, text=True)
    assert result.returncode == 0, f"cannot mount a tmpfs (needs root): {result.stderr}"

    def resize(bigger: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={bigger}", str(folder)], check=True)

    try:
        yield resize
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def test_a_full_disk_loses_no_row(gateway_factory: Callable[..., Gateway], tmp_path: Path) -> None:
    """The database and its spill file share the full disk: rows wait in memory."""
    with tmpfs(tmp_path / "full" / "data", "2M") as resize:
        gateway = gateway_factory("full")
        space = contextlib.ExitStack()
        space.callback(resize, "64M")  # the fault starts as the disk fills; it ends here
        through_an_outage(gateway, space, lambda: stored(gateway), gateway.database.parent)
        assert "cannot spill incidents" in gateway.log()
        gateway.stop()


def test_postgresql_stopped_and_started_loses_no_row(
    gateway_factory: Callable[..., Gateway], postgres: Cluster
) -> None:
    gateway = gateway_factory(database=postgres.url)
    engine = create_engine(postgres.url)

    def rows() -> set[int]:
        with engine.connect() as connection:
            return set(connection.scalars(select(Incident.id)))

    @contextlib.contextmanager
    def stopped() -> Iterator[None]:
        postgres.stop()
        yield
        postgres.start()

    spill_folder = gateway.root / "data"  # <config folder>/../data
    try:
        through_an_outage(gateway, stopped(), rows, spill_folder)
    finally:
        engine.dispose()
