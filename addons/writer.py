"""Writing incidents without ever stalling the proxy, and without losing them.

The proxy's hooks only append a row to a queue (microseconds). Two threads take it from there:
- the writer writes the queue to the database in batches, one transaction every `interval`;
- the guard keeps rows from sitting only in memory: while the database is failing, when a
  write hangs or the queue is not emptied for a fraction of a second, or while the queue
  is longer than `queue_limit`, it moves the rows to the spill file (`addons/spill.py`),
  fsync'd.
The writer replays the spill file before the queue, with INSERT ... ON CONFLICT DO NOTHING
(ids are assigned by the proxy, so a row spilled and also written is stored once), and
retries a refused write with backoff. `close` writes what is left, or spills it.

Failure policy: logging fails open (a database error never stops traffic) but keeps every
row; a SIGKILL loses only the rows of about the last second (README, "The incident log").
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from addons.incidents import Incident, create_schema
from addons.spill import SpillFile

logger = logging.getLogger(__name__)

type Row = dict[str, Any]

MAX_BACKOFF = 5.0  # a retry costs one refused connection; recovery is seen within 5 s
# How long a row may sit only in memory: a write still running after HUNG_WRITE is copied to
# the spill file, and so is a queue the writer has not emptied for HUNG_WRITE past its interval
# (it is stuck, or busy replaying); the guard looks every GUARD_TICK. So a row is in the
# database or the spill file within interval + HUNG_WRITE + GUARD_TICK (0.65 s) of being
# queued, plus an fsync: the README's "at most the last second".
HUNG_WRITE = 0.3
GUARD_TICK = 0.1
BATCH_LIMIT = 10_000  # rows a transaction: keeps each write well under HUNG_WRITE
QUEUE_LIMIT = 100_000


def spill_path(engine: Engine, folder: str, config: Path) -> Path:
    """Where the writer spills: in `folder` if given, else beside the SQLite file, else in
    the data folder beside the config's (`<config folder>/../data`)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if folder:
        base = Path(folder)
    elif database and database != ":memory:":
        return Path(database + "-spill.jsonl")
    else:
        base = config.resolve().parent.parent / "data"
    return base / "incidents-spill.jsonl"


def insert_new_incidents(engine: Engine) -> Insert:
    """INSERT that skips ids already stored: the one dialect-specific statement we need."""
    dialects = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
    if engine.dialect.name not in dialects:
        raise ValueError(f"the incident log supports SQLite and PostgreSQL, not {engine.url}")
    return dialects[engine.dialect.name](Incident).on_conflict_do_nothing(index_elements=["id"])


@dataclass
class _Write:
    """The rows the writer thread is writing now."""

    rows: Sequence[Row]
    started: float  # time.monotonic()
    spilled: bool  # already in the spill file (replayed, or copied by the guard)


class IncidentWriter:
    """A queue of incident rows, the thread that writes them and the one that spills them."""

    def __init__(
        self,
        engine: Engine,
        spill: Path,
        *,
        interval: float = 0.25,
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.queue_limit = queue_limit
        self.written = 0
        self.spilled = 0  # rows that went through the spill file (some may be there still)
        self._insert = insert_new_incidents(engine)
        self._queue: collections.deque[Row] = collections.deque()
        self._spill = SpillFile(spill)
        self._lock = threading.Lock()  # the spill file, the queue's readers, the state below
        self._writing: _Write | None = None
        self._emptied = time.monotonic()  # when the writer last took the whole queue
        self._failing = False  # the last write was refused: the guard spills the queue
        self._down_since: dt.datetime | None = None  # until the spill file is empty again
        self._written_before_outage = 0
        self._spill_failing = False
        self._schema_ready = False
        self._stop_writing = threading.Event()
        self._stop_guarding = threading.Event()
        self._wake_guard = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="schoolgate-writer")
        self._guard = threading.Thread(target=self._guard_loop, name="schoolgate-spill")
        self._writer.daemon = self._guard.daemon = True
        if self._spill.rows:
            logger.warning(
                "incident log: %d incidents left in %s by an earlier run; writing them now",
                self._spill.rows,
                spill,
            )

    def start(self) -> None:
        """Start writing in the background (the schema is created by the first write)."""
        self._writer.start()
        self._guard.start()

    def add(self, row: Row) -> None:
        """Queue one row; safe from any thread, never blocks."""
        self._queue.append(row)
        if len(self._queue) > self.queue_limit:
            self._wake_guard.set()

    @property
    def pending(self) -> int:
        """Rows not yet in the database: queued, being written, or in the spill file."""
        writing = self._writing
        in_flight = len(writing.rows) if writing is not None and not writing.spilled else 0
        return len(self._queue) + in_flight + self._spill.rows

    def flush(self) -> bool:
        """Write the spill file, then everything queued, now. False if the database refused."""
        try:
            self._replay()
            while rows := self._take():
                self._store(rows, spilled=False)
        except Exception as e:  # the database, the disk, or a bug: keep the rows all the same
            self._refused(e)
            return False
        with self._lock:
            if self._down_since is not None and self._spill.empty:
                self._back()
        return True

    def close(self) -> None:
        """Stop both threads and write what is left; what the database refuses is spilled."""
        self._stop_writing.set()
        if self._writer.is_alive():
            self._writer.join()
        self._stop_guarding.set()
        self._wake_guard.set()
        if self._guard.is_alive():
            self._guard.join()
        if not self.flush():
            with self._lock:
                self._spill_queue()
            if self._queue:
                logger.error(
                    "%d incidents lost at shutdown: neither the database nor %s took them",
                    len(self._queue),
                    self._spill.path,
                )
            else:
                logger.error(
                    "%d incidents could not be written at shutdown: kept in %s for the next start",
                    self._spill.rows,
                    self._spill.path,
                )
        self._spill.close()

    # --- the writer thread ---------------------------------------------------------------------

    def _write_loop(self) -> None:
        delay = backoff = self.interval
        while not self._stop_writing.wait(delay):
            started = time.monotonic()
            if self.flush():
                backoff = self.interval
                delay = max(0.0, started + self.interval - time.monotonic())  # one per interval
            else:
                delay = backoff = min(backoff * 2, MAX_BACKOFF)

    def _replay(self) -> None:
        while True:
            with self._lock:
                path = self._spill.take()
            if path is None:
                return
            for rows in self._spill.read(path, BATCH_LIMIT):
                self._store(rows, spilled=True)
            with self._lock:
                self._spill.remove(path)

    def _take(self) -> list[Row]:
        with self._lock:
            rows = [self._queue.popleft() for _ in range(min(len(self._queue), BATCH_LIMIT))]
            if not self._queue:
                self._emptied = time.monotonic()
            return rows

    def _store(self, rows: Sequence[Row], *, spilled: bool) -> None:
        """Write `rows` in one transaction; while it runs, the guard can see them."""
        with self._lock:
            self._writing = _Write(rows, time.monotonic(), spilled)
        if not self._schema_ready:
            create_schema(self.engine)
            self._schema_ready = True
        with self.engine.begin() as connection:
            result = connection.execute(self._insert, rows)
        with self._lock:
            self._writing = None
            self._failing = False
        # SQLite counts the rows inserted (duplicates skipped); psycopg's executemany says -1.
        self.written += result.rowcount if result.rowcount >= 0 else len(rows)

    def _refused(self, error: Exception) -> None:
        """Say so once per outage, then spill the rows the database refused."""
        with self._lock:
            write, self._writing = self._writing, None
            self._failing = True
            if self._down_since is None:
                waited = time.monotonic() - write.started if write is not None else 0.0
                self._down_since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=waited)
                self._written_before_outage = self.written
                logger.error(
                    "incident log unavailable since %s, %d queued, %d spilled to %s: %s",
                    self._down_since.strftime("%Y-%m-%d %H:%M:%S UTC"),
                    len(self._queue) + (len(write.rows) if write and not write.spilled else 0),
                    self._spill.rows,
                    self._spill.path,
                    _first_line(error),
                )
            if write is not None and not write.spilled and not self._spill_rows(write.rows):
                self._queue.extendleft(reversed(write.rows))

    def _back(self) -> None:
        """The outage is over: everything it kept is in the database (called under the lock)."""
        assert self._down_since is not None
        seconds = (dt.datetime.now(dt.UTC) - self._down_since).total_seconds()
        logger.warning(
            "incident log back after %.1f s, wrote %d",
            seconds,
            self.written - self._written_before_outage,
        )
        self._down_since = None

    # --- the guard thread ----------------------------------------------------------------------

    def _guard_loop(self) -> None:
        while not self._stop_guarding.is_set():
            self._wake_guard.wait(GUARD_TICK)
            self._wake_guard.clear()
            with self._lock:
                self._spill_at_risk()

    def _spill_at_risk(self) -> None:
        """Move rows from memory to the spill file while the database cannot take them."""
        now = time.monotonic()
        write = self._writing
        if write is not None and now - write.started > HUNG_WRITE and not write.spilled:
            write.spilled = self._spill_rows(write.rows)  # stored twice at worst, never lost
        stale = now - self._emptied > self.interval + HUNG_WRITE
        if self._queue and (self._failing or stale or len(self._queue) > self.queue_limit):
            self._spill_queue()

    def _spill_queue(self) -> None:
        rows = [self._queue.popleft() for _ in range(len(self._queue))]
        if rows and not self._spill_rows(rows):
            self._queue.extendleft(reversed(rows))

    def _spill_rows(self, rows: Sequence[Row]) -> bool:
        """Append to the spill file; False (said once) if it cannot be written either."""
        try:
            self._spill.append(rows)
        except OSError as e:
            if not self._spill_failing:
                logger.error(
                    "cannot spill incidents to %s (%s): holding them in memory until the "
                    "database or the disk is back",
                    self._spill.path,
                    e,
                )
            self._spill_failing = True
            return False
        self._spill_failing = False
        self.spilled += len(rows)
        return True


def _first_line(error: BaseException) -> str:
    return str(getattr(error, "orig", None) or error).splitlines()[0]
