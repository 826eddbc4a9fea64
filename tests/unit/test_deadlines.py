"""`Deadlines`: one deadline per connection, none while a request is in flight, the idle one
once the last response is done; each passed deadline reported once. A hand-driven clock."""

from __future__ import annotations

import asyncio

from addons.deadlines import HEAD, IDLE, Deadlines


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_deadline_passes_only_when_nothing_happened_in_time() -> None:
    clock = Clock()
    expired: list[tuple[str, str]] = []
    deadlines = Deadlines(lambda key, what: expired.append((key, what)), clock)
    deadlines.expect("silent", 60, HEAD)  # says nothing
    deadlines.expect("asks", 60, HEAD)
    deadlines.request_started("asks")  # two requests in flight on one connection
    deadlines.request_started("asks")
    deadlines.request_finished("asks", 120)  # one still in flight: no deadline
    deadlines.expect("tunnel", 60, HEAD)
    deadlines.clear("tunnel")  # became a tunnel
    deadlines.expect("gone", 60, HEAD)
    deadlines.forget("gone")  # disconnected
    deadlines.request_started("idle")
    deadlines.request_finished("idle", 120)  # then never asks again

    clock.now += 59.9
    deadlines.sweep()
    assert expired == []
    clock.now += 0.1
    deadlines.sweep()
    assert expired == [("silent", HEAD)]
    clock.now += 60
    deadlines.sweep()
    deadlines.sweep()  # each one once
    assert expired == [("silent", HEAD), ("idle", IDLE)]
    deadlines.request_finished("asks", 120)  # the last response: now it may idle
    clock.now += 120
    deadlines.sweep()
    assert expired[-1] == ("asks", IDLE)


def test_the_sweeper_runs_on_the_event_loop_and_stops_when_cancelled() -> None:
    async def scenario() -> list[tuple[str, str]]:
        expired: list[tuple[str, str]] = []
        passed = asyncio.Event()

        def close(key: str, what: str) -> None:
            expired.append((key, what))
            passed.set()

        deadlines = Deadlines(close)
        deadlines.expect("silent", 0, HEAD)
        sweeper = asyncio.create_task(deadlines.run(every=0.01))
        await asyncio.wait_for(passed.wait(), 10)
        sweeper.cancel()
        return expired

    assert asyncio.run(scenario()) == [("silent", HEAD)]
