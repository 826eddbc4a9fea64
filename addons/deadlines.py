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

Plain Python over the running event loop's timers: the addon says what happened, and is called
back when a deadline passes.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

HEAD = "head"  # waiting for a connection's first request head or ClientHello
IDLE = "idle"  # waiting for the next request on a kept-alive connection


class Deadlines:
    """At most one deadline per connection (by key), and the requests each has in flight."""

    def __init__(self, expired: Callable[[str, str], None]) -> None:
        self._expired = expired
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._in_flight: dict[str, int] = {}

    def expect(self, key: str, seconds: float, what: str) -> None:
        """`key` must do `what` within `seconds`, or `expired(key, what)` is called."""
        self.clear(key)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a hook called outside the proxy's loop (the addon's unit tests)
            return
        self._timers[key] = loop.call_later(seconds, functools.partial(self._fire, key, what))

    def clear(self, key: str) -> None:
        """No deadline for `key` for now (it became a tunnel, or a request is in flight)."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def request_started(self, key: str) -> None:
        """A complete request head arrived: no deadline until its response is done."""
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        self.clear(key)

    def request_finished(self, key: str, idle_seconds: float) -> None:
        """A response is done (or failed): once none is in flight, the connection is idle."""
        left = self._in_flight.pop(key, 1) - 1
        if left > 0:
            self._in_flight[key] = left
        else:
            self.expect(key, idle_seconds, IDLE)

    def forget(self, key: str) -> None:
        """The connection is gone."""
        self.clear(key)
        self._in_flight.pop(key, None)

    def _fire(self, key: str, what: str) -> None:
        self._timers.pop(key, None)
        self._expired(key, what)
