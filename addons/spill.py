"""The spill file: incident rows the database could not take in time, kept on disk.

Append-only JSON lines, one row a line, created mode 0600 (rows name people) and fsync'd on
every append, so a row that reached it survives a crash of the proxy or of the machine. The
writer replays it in two steps that a crash can interrupt anywhere: `take` moves the file
aside (new rows start a new file), the rows are written to the database (duplicates are
ignored there), and only then is the moved file removed; a file still aside at start-up is
replayed again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime

from addons.incidents import Incident

logger = logging.getLogger(__name__)

type Row = dict[str, Any]

_DATETIME_COLUMNS = frozenset(
    column.name for column in Incident.__table__.columns if isinstance(column.type, DateTime)
)


class SpillFile:
    """One spill file and the copy of it being replayed (`<name>.replay`).

    Not thread-safe: the writer calls it under its own lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.replaying = path.with_name(path.name + ".replay")
        self._fd: int | None = None
        self._torn = False  # a failed append may have left part of a line
        self.rows = sum(_count_lines(p) for p in (self.replaying, self.path) if p.exists())

    def append(self, rows: Sequence[Row]) -> None:
        """Add `rows` durably, or raise OSError (the rows then count as not added)."""
        lines = "".join(json.dumps(row, default=_encode) + "\n" for row in rows)
        data = ("\n" + lines if self._torn else lines).encode()
        fd = self._open()
        size = os.fstat(fd).st_size
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, size)
            except OSError:
                self._torn = True  # the next append starts a fresh line; `read` skips this one
            self.close()  # reopened by path next time: the disk may have been remounted
            raise
        self._torn = False
        self.rows += len(rows)

    @property
    def empty(self) -> bool:
        """Nothing left to replay."""
        return not self.path.exists() and not self.replaying.exists()

    def take(self) -> Path | None:
        """The file to replay next: the one already aside, else this one moved aside."""
        if not self.replaying.exists():
            if not self.path.exists():
                return None
            self.close()
            self.path.replace(self.replaying)
            _sync_folder(self.path.parent)
        return self.replaying

    def read(self, path: Path, chunk: int) -> Iterator[list[Row]]:
        """The rows of a taken file, `chunk` at a time."""
        batch: list[Row] = []
        with path.open("rb") as file:
            for number, line in enumerate(file, 1):
                try:
                    batch.append(_decode(line))
                except ValueError:  # cut short by a crash or a full disk mid-append
                    logger.warning("%s:%d: skipping an incomplete line", path, number)
                    continue
                if len(batch) == chunk:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def remove(self, path: Path) -> None:
        """Forget a taken file once its rows are in the database."""
        self.rows = max(0, self.rows - _count_lines(path))
        path.unlink()
        _sync_folder(path.parent)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.fchmod(self._fd, 0o600)  # also a file left by an older version or another umask
            if created:
                _sync_folder(self.path.parent)
        return self._fd


def _encode(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"cannot spill {value!r}")


def _decode(line: bytes) -> Row:
    row: Row = json.loads(line)
    for name in _DATETIME_COLUMNS & row.keys():
        if row[name] is not None:
            row[name] = dt.datetime.fromisoformat(row[name])
    return row


def _count_lines(path: Path) -> int:
    with path.open("rb") as file:
        return sum(block.count(b"\n") for block in iter(lambda: file.read(1 << 20), b""))


def _sync_folder(folder: Path) -> None:
    """Make a created, renamed or removed name survive a power cut, not only the data."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
