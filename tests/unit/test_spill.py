"""The spill file on a real folder: what goes in comes back, privately, across crashes."""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from addons.spill import SpillFile
from addons.writer import spill_path

ROWS = [
    {"id": 1, "occurred_at": dt.datetime(2026, 11, 23, 10, 0, 0, 123456), "url": None},
    {"id": 2, "occurred_at": dt.datetime(2026, 11, 23, 10, 0, 1), "url": "http://x/é"},
]


def read_all(spill: SpillFile) -> list[dict[str, object]]:
    path = spill.take()
    assert path is not None
    return [row for chunk in spill.read(path, 1) for row in chunk]


def test_rows_come_back_as_they_went_in_with_their_times(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "data" / "incidents-spill.jsonl")  # the folder is made
    spill.append(ROWS)
    assert spill.rows == 2
    assert read_all(spill) == ROWS


def test_the_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        spill = SpillFile(tmp_path / "spill.jsonl")
        spill.append(ROWS)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "spill.jsonl").stat().st_mode) == 0o600


def test_take_moves_the_file_aside_and_new_rows_start_a_new_one(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "spill.jsonl")
    assert spill.empty and spill.take() is None
    spill.append(ROWS[:1])
    taken = spill.take()
    assert taken == tmp_path / "spill.jsonl.replay"
    spill.append(ROWS[1:])
    assert spill.take() == taken  # not replayed yet: taken again, first
    spill.remove(taken)
    assert read_all(spill) == ROWS[1:]
    spill.remove(tmp_path / "spill.jsonl.replay")
    assert spill.empty and spill.rows == 0


def test_a_restart_counts_and_replays_both_files(tmp_path: Path) -> None:
    first = SpillFile(tmp_path / "spill.jsonl")
    first.append(ROWS[:1])
    first.take()  # a crash during the replay
    first.append(ROWS[1:])
    first.close()
    again = SpillFile(tmp_path / "spill.jsonl")
    assert again.rows == 2
    taken = again.take()
    assert taken is not None and [r for c in again.read(taken, 10) for r in c] == ROWS[:1]
    again.remove(taken)
    assert read_all(again) == ROWS[1:]


def test_a_line_cut_short_is_skipped_and_the_rest_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spill = SpillFile(tmp_path / "spill.jsonl")
    spill.append(ROWS[:1])
    spill.close()
    with (tmp_path / "spill.jsonl").open("a") as file:
        file.write('{"id": 3, "occurred_at": "2026-11\n')  # a full disk mid-append
    spill.append(ROWS[1:])
    with caplog.at_level(logging.WARNING):
        assert read_all(spill) == ROWS
    assert "spill.jsonl.replay:2: skipping an incomplete line" in caplog.text


def test_the_spill_file_sits_beside_sqlite_else_in_the_data_folder(tmp_path: Path) -> None:
    config = tmp_path / "config" / "policy.yaml"
    sqlite = create_engine(f"sqlite:///{tmp_path / 'data' / 'schoolgate.db'}")
    postgres = create_engine("postgresql+psycopg://postgres@127.0.0.1/test")  # never connected
    assert spill_path(sqlite, "", config) == tmp_path / "data" / "schoolgate.db-spill.jsonl"
    assert spill_path(postgres, "", config) == tmp_path / "data" / "incidents-spill.jsonl"
    elsewhere = tmp_path / "spill"
    assert spill_path(sqlite, str(elsewhere), config) == elsewhere / "incidents-spill.jsonl"
