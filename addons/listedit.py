"""Edit a list file in place: add or remove entries and leave every other byte as it was.

The lists are written by people (comments say why an entry is there), so an edit appends new
entries at the end and deletes only the lines of removed entries, in the file's own line
endings. An edit is planned first (`add`, `remove`), then written by `apply`: the new file is
written beside the list, the change is recorded, and only then swapped in with one rename, so
the running proxy never reads half a file and a refused record leaves the list as it was.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from addons.entryset import EntrySet
from addons.errors import ConfigError
from addons.lists import Scope, read_list

# A line and its ending, split as read_list splits (universal newlines), so numbers agree.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|[\r\n])|[^\r\n]+")


@dataclass(slots=True)  # not frozen: four times as quick to make; an import makes millions
class Unchanged:
    """An entry the edit leaves alone, and why."""

    entry: str
    reason: str

    def __str__(self) -> str:
        return f"{self.entry} ({self.reason})"


@dataclass
class ListEdit:
    """A planned edit of one list file: its text before and after, and what changes."""

    path: Path
    before: str
    after: str
    changed: list[str] = field(default_factory=list)  # entries added, or removed
    unchanged: list[Unchanged] = field(default_factory=list)


def listed(path: Path) -> EntrySet[int]:
    """The entries of a list file, each with the line it is first written on."""
    entries: EntrySet[int] = EntrySet()
    for number, domain, scope in read_list(path):
        entries.add(domain, scope, number)
    return entries


def add(
    path: Path,
    entries: Sequence[tuple[str, Scope]],
    *,
    comment: str | None = None,
    heading: str | None = None,
) -> ListEdit:
    """Plan to append the entries the list does not hold yet, in the order given.

    An entry counts as present when the list has it, or has one that covers it, or when another
    of `entries` does (`m.facebook.com` beside `facebook.com`): adding it would change nothing.
    """
    before = _read(path)
    held = listed(path)
    incoming: EntrySet[int] = EntrySet()
    for index, (domain, scope) in enumerate(entries):
        incoming.add(domain, scope, index)
    edit = ListEdit(path, before, before)
    name = path.name
    prefix = {scope: scope.spell("") for scope in Scope}  # Enum.value is slow; this is per entry
    for index, (domain, scope) in enumerate(entries):
        entry = prefix[scope] + domain
        if found := held.holding(domain, scope):
            same = found.domain == domain and found.scope is scope
            how = "listed" if same else f"covered by {found.entry}"
            edit.unchanged.append(Unchanged(entry, f"{how} at {name}:{found.where}"))
        elif (first := incoming.get(domain, scope)) is not None and first.where != index:
            edit.unchanged.append(Unchanged(entry, "repeated"))
        elif parent := incoming.covering(domain, scope):
            edit.unchanged.append(Unchanged(entry, f"covered by {parent.entry}, added too"))
        else:
            edit.changed.append(entry)
    if edit.changed:
        edit.after = _appended(before, edit.changed, comment, heading)
    return edit


def remove(path: Path, entries: Sequence[tuple[str, Scope]]) -> ListEdit:
    """Plan to delete every line that holds one of the entries (with its own comment)."""
    before = _read(path)
    wanted = {(domain, scope) for domain, scope in entries}
    lines_of: dict[tuple[str, Scope], list[int]] = {}
    held: EntrySet[int] = EntrySet()
    for number, domain, scope in read_list(path):
        held.add(domain, scope, number)
        if (domain, scope) in wanted:
            lines_of.setdefault((domain, scope), []).append(number)
    edit = ListEdit(path, before, before)
    for domain, scope in dict.fromkeys(entries):
        entry = scope.spell(domain)
        if (domain, scope) in lines_of:
            edit.changed.append(entry)
        elif parent := held.covering(domain, scope):
            reason = (
                f"not listed; {parent.entry} at {path.name}:{parent.where} covers it, and stays"
            )
            edit.unchanged.append(Unchanged(entry, reason))
        else:
            edit.unchanged.append(Unchanged(entry, "not listed"))
    drop = {number for numbers in lines_of.values() for number in numbers}
    if drop:
        lines = _LINE.findall(before)
        edit.after = "".join(line for n, line in enumerate(lines, start=1) if n not in drop)
    return edit


def apply(edits: Sequence[ListEdit], record: Callable[[], object]) -> None:
    """Write the edited lists beside the originals, call `record`, then swap them in.

    Everything that can fail (a full disk, a file edited meanwhile, a refused database write)
    happens before the first list changes; what is left, a rename, does not half-happen.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for edit in edits:
            if edit.after == edit.before:
                continue
            if _read(edit.path) != edit.before:
                raise ConfigError(edit.path, None, "changed meanwhile; run the command again")
            staged.append((_stage(edit.path, edit.after), edit.path))
        record()
        for temporary, path in staged:
            os.replace(temporary, path)
    finally:
        for temporary, _path in staged:
            temporary.unlink(missing_ok=True)


def _read(path: Path) -> str:
    # newline="" keeps "\r\n" as it is, so untouched lines are written back byte for byte.
    with path.open(encoding="utf-8", newline="") as file:
        return file.read()


def _appended(before: str, entries: list[str], comment: str | None, heading: str | None) -> str:
    newline = "\r\n" if "\r\n" in before else "\n"
    suffix = f"  # {' '.join(comment.split())}" if comment else ""
    lines = [f"# {' '.join(heading.split())}"] if heading else []
    lines += [entry + suffix for entry in entries]
    separator = newline if before and not before.endswith(("\n", "\r")) else ""
    return before + separator + newline.join(lines) + newline


def _stage(path: Path, text: str) -> Path:
    """Write `text` to a new file beside `path` (the same file system, so the swap is a rename)
    with the list's permission bits, and flush it to disk."""
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
        file.write(text)
        file.flush()
        os.fchmod(file.fileno(), stat.S_IMODE(path.stat().st_mode))
        os.fsync(file.fileno())
    return Path(name)
