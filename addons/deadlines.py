"""How long a client connection may hold the gateway without giving it a request.

A client that opens connections and sends half a request, or nothing at all, holds a slot of the
proxy for as long as it likes; enough of them and the gateway stops answering pupils. So each
client connection has at most one deadline, and is closed when it passes:
- `head_timeout` from the moment it opens, or a CONNECT tunnel opens, to its first complete
  request head or TLS ClientHello (squid: `request_start_timeout` and `request_timeout`);
- `idle_timeout` from the end of a response on a kept-alive connection to its next complete
  request head (squid's `client_idle_pconn_timeout`, 2 minutes).
While a request is in flight there is none (a slow upload or a slow server is no idleness;
mitmproxy's `tcp_timeout` ends connections silent for 10 minutes), nor once the connection is a
tunnel: TLS passed through, a WebSocket, listed raw TCP.

A deadline is a dict entry, set and cleared on the request path for well under a microsecond;
`run` sweeps them once a second (a timer per request would cost a heap push of Python-level
comparisons each time). Plain Python: the addon says what happened, and is called back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

HEAD = "head"  # waiting for a connection's first request head or ClientHello
IDLE = "idle"  # waiting for the next request on a kept-alive connection


class Deadlines:
    """At most one deadline per connection (by key), and the requests each has in flight."""

    def __init__(
        self, expired: Callable[[str, str], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._expired = expired
        self._clock = clock
        self._due: dict[str, tuple[float, str]] = {}
        self._in_flight: dict[str, int] = {}

    def expect(self, key: str, seconds: float, what: str) -> None:
        """`key` must do `what` within `seconds`, or `expired(key, what)` is called."""
        self._due[key] = (self._clock() + seconds, what)

    def clear(self, key: str) -> None:
        """No deadline for `key` for now (it became a tunnel, or a request is in flight)."""
        self._due.pop(key, None)

    def request_started(self, key: str) -> None:
        """A complete request head arrived: no deadline until its response is done."""
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        self._due.pop(key, None)

    def request_finished(self, key: str, idle_seconds: float) -> None:
        """A response is done (or failed): once none is in flight, the connection is idle."""
        left = self._in_flight.pop(key, 1) - 1
        if left > 0:
            self._in_flight[key] = left
        else:
            self._due[key] = (self._clock() + idle_seconds, IDLE)

    def forget(self, key: str) -> None:
        """The connection is gone."""
        self._due.pop(key, None)
        self._in_flight.pop(key, None)

    def sweep(self) -> None:
        """Call `expired` for every deadline that has passed, once."""
        now = self._clock()
        passed = [(key, what) for key, (due, what) in self._due.items() if due <= now]
        for key, what in passed:
            del self._due[key]
            self._expired(key, what)

    async def run(self, every: float = 1.0) -> None:
        """Sweep every `every` seconds until cancelled: deadlines close within that much."""
        while True:
            await asyncio.sleep(every)
            self.sweep()
