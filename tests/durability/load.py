"""Blocked requests through a real gateway from many keep-alive clients, counted as received.

A minimal HTTP/1.1 client on asyncio streams: each client keeps one connection and sends its
requests one after another. It records, for every 403, the reference number on the block
page and the moment it arrived, so a test can compare the database row by row with what
the clients saw, and tell what arrived in the last second before a kill.
"""

from __future__ import annotations

import asyncio
import collections
import re
import threading
import time
from dataclasses import dataclass, field

REQUEST = (
    b"GET http://www.facebook.com/feed HTTP/1.1\r\n"
    b"Host: www.facebook.com\r\n"
    b"User-Agent: schoolgate-durability\r\n\r\n"
)
_LENGTH = re.compile(rb"\r\ncontent-length: *([0-9]+)", re.IGNORECASE)
_REFERENCE = re.compile(rb'class="reference">([0-9]+)<')


@dataclass
class Tally:
    """What the clients sent and received."""

    sent: int = 0
    unanswered: int = 0  # sent, but the connection closed before the answer
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    received: dict[int, float] = field(default_factory=dict)  # reference -> arrival (monotonic)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (sent at, seconds)

    def received_before(self, moment: float) -> set[int]:
        """References of the 403s that arrived before `moment` (time.monotonic())."""
        return {ref for ref, arrived in self.received.items() if arrived < moment}


class Load:
    """`clients` connections sending `requests` blocked requests in all, in a thread."""

    def __init__(self, port: int, clients: int, requests: int) -> None:
        self.port = port
        self.clients = clients
        self.requests = requests
        self.tally = Tally()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Send no more requests (those in flight are still read)."""
        self._stop.set()

    def join(self, timeout: float = 600.0) -> Tally:
        """Wait until every client has finished (or its connection closed)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the load did not finish in {timeout} s"
        return self.tally

    def run(self) -> Tally:
        """Send everything, wait for every answer, return the count."""
        return self.start().join()

    async def _run(self) -> None:
        share, extra = divmod(self.requests, self.clients)
        await asyncio.gather(
            *(self._client(share + (k < extra)) for k in range(self.clients) if share or k < extra)
        )

    async def _client(self, count: int) -> None:
        tally = self.tally
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return  # the gateway is gone: nothing was sent
        try:
            for _ in range(count):
                if self._stop.is_set():
                    return
                started = time.monotonic()
                writer.write(REQUEST)
                tally.sent += 1
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = _LENGTH.search(head)
                    body = await reader.readexactly(int(length[1]) if length else 0)
                except (asyncio.IncompleteReadError, ConnectionError):
                    tally.unanswered += 1
                    return
                arrived = time.monotonic()
                status = int(head[9:12])
                tally.statuses[status] += 1
                tally.latencies.append((started, arrived - started))
                if status == 403 and (reference := _REFERENCE.search(body)):
                    tally.received[int(reference[1])] = arrived
        finally:
            writer.close()
