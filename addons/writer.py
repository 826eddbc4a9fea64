"""Writing incidents without ever stalling the proxy.

The proxy's hooks only append a row to a queue (microseconds); one background thread writes
the queue in batches, in one transaction every `interval` seconds, and `close` writes what is
left. Failure policy: logging fails open (a database error never stops traffic) but keeps
every row: a failed batch stays queued and is retried with backoff.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any

from sqlalchemy import Engine, insert
from sqlalchemy.exc import SQLAlchemyError

from addons.incidents import Incident, create_schema

logger = logging.getLogger(__name__)

MAX_BACKOFF = 30.0


class IncidentWriter:
    """A queue of incident rows and the thread that writes them."""

    def __init__(self, engine: Engine, interval: float = 0.25) -> None:
        self.engine = engine
        self.interval = interval
        self.written = 0
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._stop = threading.Event()
        self._failing = False
        self._schema_ready = False
        self._thread = threading.Thread(target=self._run, name="schoolgate-writer", daemon=True)

    def start(self) -> None:
        """Start writing in the background (the schema is created by the first write)."""
        self._thread.start()

    def add(self, row: dict[str, Any]) -> None:
        """Queue one row; safe from any thread, never blocks."""
        self._queue.append(row)

    @property
    def pending(self) -> int:
        """Rows queued and not yet written."""
        return len(self._queue)

    def flush(self) -> bool:
        """Write everything queued now, in one transaction. False if the database refused."""
        batch: list[dict[str, Any]] = []
        try:
            while True:
                batch.append(self._queue.popleft())
        except IndexError:
            pass
        if not batch:
            return True
        try:
            if not self._schema_ready:
                create_schema(self.engine)
                self._schema_ready = True
            with self.engine.begin() as connection:
                connection.execute(insert(Incident), batch)
        except SQLAlchemyError as e:
            self._queue.extendleft(reversed(batch))
            if not self._failing:
                logger.error("incident log unavailable, %d incidents queued: %s", len(batch), e)
            self._failing = True
            return False
        if self._failing:
            logger.warning("incident log available again")
            self._failing = False
        self.written += len(batch)
        return True

    def _run(self) -> None:
        delay = self.interval
        while not self._stop.wait(delay):
            delay = self.interval if self.flush() else min(delay * 2, MAX_BACKOFF)

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if not self.flush():
            logger.error("%d incidents could not be written at shutdown", self.pending)
