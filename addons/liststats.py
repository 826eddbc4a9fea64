"""What the lists hold: entries per category, overlaps between categories, and entries made
redundant by a parent domain.

The lists are read forgivingly here (a bad line is noted, not fatal), so that stats and
`schoolgate blocklist validate` can say everything about a broken list at once; the proxy
itself still refuses a list with a bad line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from addons.config import Config
from addons.entryset import EntrySet, Held
from addons.importers import Found, parse, read_lines
from addons.lists import Scope

ALLOWLIST = "allowlist"
"""The name the blocklist commands give the allowlist, beside the config's categories."""


@dataclass(frozen=True, slots=True)
class Location:
    """A line of a list file (line None: the file as a whole)."""

    path: Path
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else str(self.path)


@dataclass
class CategoryLists:
    """Every entry of one category's files in file order, and every line that gives none."""

    name: str
    paths: tuple[Path, ...]
    entries: list[Held[Location]] = field(default_factory=list)  # first occurrences
    held: EntrySet[Location] = field(default_factory=EntrySet)
    repeated: list[tuple[Location, Held[Location]]] = field(default_factory=list)
    rejected: list[tuple[Location, str]] = field(default_factory=list)

    def redundant(self) -> Iterator[tuple[Held[Location], Held[Location]]]:
        """(entry, the other entry of this category that covers it)."""
        for held in self.entries:
            parent = self.held.covering(held.domain, held.scope)
            if parent is not None:
                yield held, parent


def category_lists(config: Config) -> list[CategoryLists]:
    """Every category of the config, then the allowlist, read forgivingly."""
    named = [*config.categories.items(), (ALLOWLIST, config.allowlist)]
    return [read_category(name, paths) for name, paths in named]


def read_category(name: str, paths: tuple[Path, ...]) -> CategoryLists:
    """One category's files, in order: an entry repeated in a later file is a repeat."""
    category = CategoryLists(name, paths)
    for path in paths:
        try:
            lines = read_lines(path)
        except OSError as e:
            category.rejected.append((Location(path), f"cannot read list: {e}"))
            continue
        for item in parse(lines, "plain"):
            where = Location(path, item.line)
            if not isinstance(item, Found):
                category.rejected.append((where, item.reason))
            elif first := category.held.add(item.domain, item.scope, where):
                category.repeated.append((where, first))
            else:
                category.entries.append(Held(item.domain, item.scope, where))
    return category


def list_stats(categories: list[CategoryLists]) -> dict[str, Any]:
    """The figures, JSON-ready: per category, per overlapping pair, per redundant entry."""
    return {
        "categories": [
            {
                "category": c.name,
                "files": [str(p) for p in c.paths],
                "entries": len(c.entries),
                **{scope.name.lower(): sum(e.scope is scope for e in c.entries) for scope in Scope},
                "repeated": len(c.repeated),
                "redundant": sum(1 for _ in c.redundant()),
                "unreadable_lines": len(c.rejected),
            }
            for c in categories
        ],
        "overlaps": [
            {
                "category": c.name,
                "covered_by": other.name,
                "entries": len(shared),
                "first": shared[:5],
            }
            for c in categories
            for other in categories
            if other is not c and (shared := _covered(c, other))
        ],
        "redundant": [
            {
                "category": c.name,
                "entry": entry.entry,
                "at": str(entry.where),
                "covered_by": parent.entry,
                "covered_at": str(parent.where),
            }
            for c in categories
            for entry, parent in c.redundant()
        ],
    }


def _covered(category: CategoryLists, other: CategoryLists) -> list[str]:
    """The entries of `category` whose every host `other` also lists."""
    return [e.entry for e in category.entries if other.held.holding(e.domain, e.scope)]
