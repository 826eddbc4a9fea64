"""What the durability tests check on a gateway's files and on what its clients received."""

from __future__ import annotations

from pathlib import Path

from tests.durability.load import Tally
from tests.e2e.realparts import Gateway, wait_until

GUARANTEE_SECONDS = 1.0  # README, "The incident log": a SIGKILL loses at most the last second


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


def lost_at_most_the_last_second(restarted: Gateway, tally: Tally, killed_at: float) -> None:
    """After a SIGKILL at `killed_at` and a restart (which replays any spill file left
    behind), every 403 received more than a second before the kill has its row."""
    wait_until(lambda: not spill_files(restarted.database.parent), 30, "the spill replayed")
    rows = stored(restarted)
    safe = tally.received_before(killed_at - GUARANTEE_SECONDS)
    last_second = set(tally.received) - safe
    print(
        f"{len(tally.received)} received, {len(rows)} rows after restart; "
        f"of the {len(last_second)} received in the last second, "
        f"{len(last_second - rows)} have no row"
    )
    assert safe <= rows, f"{len(safe - rows)} rows lost from before the last second"
    assert len(rows - set(tally.received)) <= tally.unanswered
