"""`Deadlines`: one deadline per connection, none while a request is in flight, the idle one
once the last response is done; run on a real event loop with short deadlines, waiting for the
callbacks rather than for time to pass."""

from __future__ import annotations

import asyncio

from addons.deadlines import HEAD, IDLE, Deadlines


def test_deadlines_fire_only_when_nothing_happened_in_time() -> None:
    async def scenario() -> list[tuple[str, str]]:
        expired: list[tuple[str, str]] = []
        done = asyncio.Event()

        def close(key: str, what: str) -> None:
            expired.append((key, what))
            if key == "idle-client":
                done.set()

        deadlines = Deadlines(close)
        deadlines.expect("silent", 0.05, HEAD)  # says nothing: closed
        deadlines.expect("busy", 0.05, HEAD)
        deadlines.request_started("busy")  # two requests in flight on one connection
        deadlines.request_started("busy")
        deadlines.request_finished("busy", 0.05)  # one still in flight: no deadline
        deadlines.expect("tunnel", 0.05, HEAD)
        deadlines.clear("tunnel")  # became a tunnel
        deadlines.expect("gone", 0.05, HEAD)
        deadlines.forget("gone")  # disconnected
        deadlines.request_started("idle-client")
        deadlines.request_finished("idle-client", 0.2)  # then never asks again: closed
        await asyncio.wait_for(done.wait(), 10)
        return expired

    assert asyncio.run(scenario()) == [("silent", HEAD), ("idle-client", IDLE)]
