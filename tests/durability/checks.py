"""What the durability tests check on a gateway's files and on what its clients received."""

from __future__ import annotations

from pathlib import Path

from tests.durability.load import Tally
from tests.e2e.realparts import Gateway, wait_until


def stored(gateway: Gateway, timeout: float = 30.0, at_least: int = 0) -> set[int]:
    """The incident ids in the gateway's SQLite file, once it holds at least `at_least`."""
    wait_until(lambda: len(gateway.incidents()) >= at_least, timeout, f"{at_least} rows")
    return {int(str(row["id"])) for row in gateway.incidents()}


def spill_files(folder: Path) -> list[Path]:
    """The spill file and the copy being replayed, where they exist."""
    return sorted(folder.glob("*spill.jsonl*"))


def only_blocked(tally: Tally) -> None:
    """Every answer was a block page with its reference number, each number different."""
    assert set(tally.statuses) <= {403}, tally.statuses
    assert len(tally.received) == tally.statuses[403]
