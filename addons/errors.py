"""The one error type for bad input: it always says file, line and key."""

from __future__ import annotations

from pathlib import Path


class ConfigError(Exception):
    """A problem in the config or a list it names, located for the person who must fix it."""

    def __init__(self, path: Path | str, line: int | None, message: str, key: str = "") -> None:
        self.path = Path(path)
        self.line = line
        self.key = key
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
