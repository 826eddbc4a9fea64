"""`schoolgate blocklist validate`: every problem in the config and its lists, each located.

Errors are what makes a list wrong or not what its author thinks (a line the proxy refuses, an
entry written twice, an entry a parent already covers); a warning is legal but worth a look
(a blocked entry that the allowlist lets through anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from addons.config import load_config
from addons.errors import ConfigError
from addons.liststats import ALLOWLIST, CategoryLists, Location, category_lists


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding, located."""

    where: Location
    level: str  # error | warning
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.level}: {self.message}"


def validate(config_path: Path | str) -> list[Problem]:
    """Every problem in file and line order (the config's own error alone if it does not load)."""
    try:
        config = load_config(config_path)
    except ConfigError as e:
        message = f"{e.key}: {e.message}" if e.key else e.message
        return [Problem(Location(e.path, e.line), "error", message)]
    categories = category_lists(config)
    problems = [problem for c in categories for problem in _category_problems(c)]
    allow = next(c for c in categories if c.name == ALLOWLIST)
    problems += [
        Problem(
            entry.where,
            "warning",
            f"{entry.entry} ({c.name}) is never blocked: allowlist entry {held.entry} "
            f"({held.where}) covers it",
        )
        for c in categories
        if c is not allow
        for entry in c.entries
        if (held := allow.held.holding(entry.domain, entry.scope))
    ]
    return sorted(problems, key=lambda p: (str(p.where.path), p.where.line or 0))


def _category_problems(category: CategoryLists) -> list[Problem]:
    problems = [Problem(where, "error", reason) for where, reason in category.rejected]
    problems += [
        Problem(where, "error", f"{first.entry} is already listed at {first.where}")
        for where, first in category.repeated
    ]
    problems += [
        Problem(
            entry.where,
            "error",
            f"{entry.entry} is redundant: {parent.entry} ({parent.where}) already covers it",
        )
        for entry, parent in category.redundant()
    ]
    return problems
