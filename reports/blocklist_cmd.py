"""`schoolgate blocklist ...`: edit, import, check and count the lists, and show the record of
documented changes (who, when, what and why: the DfE standards ask the SLT to keep one).

Argument parsing and printing only; the core modules do the work, so the same edits, checks and
figures are testable without a command line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import getpass
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect
from tqdm import tqdm

from addons import importers, listedit
from addons.changes import list_changes, record_change
from addons.config import Config, load_config
from addons.incidents import PolicyChange, make_engine
from addons.listcheck import validate
from addons.lists import Scope
from addons.liststats import ALLOWLIST, category_lists, list_stats
from reports.commands import Commands, command, command_group

PROGRESS_FROM = 100_000  # lines: a smaller file imports in well under a second
SHOWN = 5  # entries of one change shown in the text history


def register(commands: Commands) -> None:
    """Add `schoolgate blocklist` and its subcommands to the command line."""
    sub = command_group(
        commands,
        "blocklist",
        "edit, import, check and count the blocklists; show documented changes",
        "schoolgate blocklist add social_networks bere.al --reason 'new app'",
    )

    add = command(
        sub,
        "add",
        "add entries to a category's list (or the allowlist) and record why",
        "schoolgate blocklist add social_networks bere.al bereal.com "
        "--comment 'BeReal' --reason 'new app seen in incidents, DSL, 2026-11-26'",
    )
    _edit_arguments(add)
    add.add_argument("--comment", help="a comment written after each new entry")
    add.set_defaults(handler=_add)

    remove = command(
        sub,
        "remove",
        "remove entries from every list of a category (or the allowlist) and record why",
        "schoolgate blocklist remove social_networks linkedin.com "
        "--reason 'careers lessons, agreed by the SLT 2026-11-20'",
    )
    _edit_arguments(remove)
    remove.set_defaults(handler=_remove)

    imported = command(
        sub,
        "import",
        "merge a community list into a category's list, without duplicates, and record why",
        "schoolgate blocklist import social_networks ut1/blacklists/social_networks "
        "--format ut1 --reason 'UT1 social_networks, reviewed by IT'",
    )
    imported.add_argument("category", metavar="CATEGORY", help="a category, or 'allowlist'")
    imported.add_argument("source", metavar="FILE_OR_DIR", type=Path, help="the list to import")
    imported.add_argument("--format", choices=importers.FORMATS, default="auto")
    _record_arguments(imported)
    imported.add_argument(
        "--show-rejected",
        type=int,
        default=20,
        metavar="N",
        help="rejected lines to print (default: %(default)s)",
    )
    imported.set_defaults(handler=_import)

    check = command(
        sub,
        "validate",
        "check the config and every list; every problem with file:line (exit 1 on an error)",
        "schoolgate blocklist validate --config /etc/schoolgate/policy.yaml",
    )
    check.set_defaults(handler=_validate)

    stats = command(
        sub,
        "stats",
        "entries per category, overlaps between categories, entries a parent makes redundant",
        "schoolgate blocklist stats --json",
    )
    stats.add_argument("--json", action="store_true", help="one JSON document")
    stats.set_defaults(handler=_stats)

    history = command(
        sub,
        "history",
        "the documented changes to the lists and reloads of the policy, newest first",
        "schoolgate blocklist history --since 2026-09-01 --json",
    )
    history.add_argument("--since", help="from this date (YYYY-MM-DD, school timezone)")
    history.add_argument("--json", action="store_true", help="one JSON object per line")
    history.set_defaults(handler=_history)


def _edit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("category", metavar="CATEGORY", help="a category, or 'allowlist'")
    parser.add_argument(
        "entries",
        nargs="+",
        metavar="DOMAIN",
        help="example.org (and subdomains), =host.example.org, *.example.org",
    )
    _record_arguments(parser)


def _record_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", required=True, help="why: recorded in policy_changes")
    parser.add_argument("--by", help="who decided (default: the OS user)")


# --- add, remove, import ----------------------------------------------------------------


def _add(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    path = _lists_of(config, args.category)[0]
    edit = listedit.add(path, _entries(args.entries), comment=args.comment)
    print(f"{args.category} ({path}):")
    _print_unchanged(edit.unchanged, "already present")
    _commit(config, args, "add", [edit])
    return 0


def _remove(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    entries = _entries(args.entries)
    edits = [listedit.remove(path, entries) for path in _lists_of(config, args.category)]
    removed = {entry for edit in edits for entry in edit.changed}
    print(f"{args.category}:")
    # An entry is left alone only if no list of the category had it: say why from the first.
    _print_unchanged([u for u in edits[0].unchanged if u.entry not in removed], "left alone")
    _commit(config, args, "remove", edits)
    return 0


def _import(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    path = _lists_of(config, args.category)[0]
    try:
        sources = importers.sources(args.source, args.format)
    except ValueError as e:
        raise SystemExit(f"schoolgate: {e}") from None
    found: list[tuple[str, Scope]] = []
    rejected: list[str] = []
    # Millions of small objects and no cycles: the cyclic collector would only walk them again
    # and again (a tenth of a million-line import).
    gc.disable()
    try:
        for source in sources:
            _parse(source, found, rejected)
        formats = ", ".join(sorted({s.format for s in sources}))
        heading = f"imported from {args.source.name} ({formats}) by {_who(args)}: {_reason(args)}"
        edit = listedit.add(path, found, heading=heading)
    finally:
        gc.enable()
    print(f"{args.source} ({formats}) into {args.category} ({path}):")
    print(f"  added: {len(edit.changed)}")
    print(f"  already present: {len(edit.unchanged)} (listed, covered by a parent, or repeated)")
    print(f"  rejected: {len(rejected)}")
    for line in rejected[: args.show_rejected]:
        print(f"    {line}")
    if len(rejected) > args.show_rejected:
        print(f"    ... and {len(rejected) - args.show_rejected} more")
    _commit(config, args, "import", [edit])
    return 0


def _parse(source: importers.Source, found: list[tuple[str, Scope]], rejected: list[str]) -> None:
    """Read one file of an import into `found` and `rejected`, with a progress bar if large."""
    lines = importers.read_lines(source.path)
    progress = tqdm(
        lines,
        desc=source.path.name,
        unit=" lines",
        file=sys.stderr,
        disable=len(lines) < PROGRESS_FROM,
    )
    for item in importers.parse(progress, source.format):
        if isinstance(item, importers.Found):
            found.append((item.domain, item.scope))
        else:
            rejected.append(f"{source.path}:{item.line}: {item.text}: {item.reason}")


def _entries(texts: Sequence[str]) -> list[tuple[str, Scope]]:
    """The entries given on the command line, canonical; all refused if one is malformed."""
    entries, refused = [], []
    for text in texts:
        try:
            entries.append(importers.read_entry(text))
        except ValueError as e:
            refused.append(str(e))
    if refused:
        raise SystemExit("schoolgate: nothing changed:\n  " + "\n  ".join(refused))
    return entries


def _lists_of(config: Config, category: str) -> tuple[Path, ...]:
    if category == ALLOWLIST:
        if not config.allowlist:
            raise SystemExit(f"schoolgate: {config.path} names no allowlist file")
        return config.allowlist
    if category not in config.categories:
        known = ", ".join([*config.categories, ALLOWLIST])
        raise SystemExit(f"schoolgate: unknown category {category!r} (known: {known})")
    return config.categories[category]


def _print_unchanged(unchanged: Sequence[listedit.Unchanged], label: str) -> None:
    for note in unchanged:
        print(f"  {label}: {note}")


def _commit(
    config: Config, args: argparse.Namespace, action: str, edits: list[listedit.ListEdit]
) -> None:
    """Write the edits and their policy_changes row together, then say what was done."""
    changed = [entry for edit in edits for entry in edit.changed]
    if not changed:
        print("  nothing to change; nothing recorded")
        return
    engine = make_engine(config.database)
    recorded: list[PolicyChange] = []
    try:
        listedit.apply(
            edits,
            lambda: recorded.append(
                record_change(
                    engine,
                    site=config.school.site,
                    who=_who(args),
                    action=action,
                    category=args.category,
                    entries=changed,
                    reason=_reason(args),
                )
            ),
        )
    finally:
        engine.dispose()
    verb = "removed" if action == "remove" else "added"
    for edit in edits:
        if edit.changed:
            print(f"  {verb} {len(edit.changed)} in {edit.path}: {_some(edit.changed)}")
    print(f"  recorded as policy change {recorded[0].id} by {recorded[0].who}")


def _who(args: argparse.Namespace) -> str:
    if args.by:
        return str(args.by)
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        return f"uid {os.getuid()}"


def _reason(args: argparse.Namespace) -> str:
    reason = " ".join(str(args.reason).split())
    if not reason:
        raise SystemExit("schoolgate: --reason must say why (it is the documented decision)")
    return reason


def _some(entries: Sequence[str]) -> str:
    more = f", ... (+{len(entries) - SHOWN})" if len(entries) > SHOWN else ""
    return ", ".join(entries[:SHOWN]) + more


# --- validate, stats, history -----------------------------------------------------------


def _validate(args: argparse.Namespace) -> int:
    problems = validate(args.config)
    for problem in problems:
        print(problem)
    errors = sum(p.level == "error" for p in problems)
    print(f"{errors} error(s), {len(problems) - errors} warning(s)")
    return 1 if errors else 0


def _stats(args: argparse.Namespace) -> int:
    figures = list_stats(category_lists(load_config(args.config)))
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    columns = ("entries", "domain", "exact", "subdom.", "ip/cidr", "redund.")
    print(f"{'category':<20}" + "".join(f"{name:>9}" for name in columns))
    for c in figures["categories"]:
        figures_of = (
            *(c[name] for name in ("entries", "domain", "exact", "subdomains", "network")),
            c["redundant"],
        )
        print(f"{c['category']:<20}" + "".join(f"{n:>9}" for n in figures_of))
    overlaps = [
        f"  {o['category']} in {o['covered_by']}: {o['entries']} ({_some(o['first'])})"
        for o in figures["overlaps"]
    ]
    redundant = [
        f"  {r['category']}: {r['entry']} ({r['at']}) by {r['covered_by']} ({r['covered_at']})"
        for r in figures["redundant"]
    ]
    print("\noverlaps (entries of a category that another category also covers):")
    print("\n".join(overlaps or ["  none"]))
    print("\nredundant entries (a parent in the same category covers them):")
    print("\n".join(redundant or ["  none"]))
    return 0


def _history(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    zone = config.school.timezone
    since = None
    if args.since:
        try:
            day = dt.date.fromisoformat(args.since)
        except ValueError:
            raise SystemExit(
                f"schoolgate: --since {args.since!r} is not a date (YYYY-MM-DD)"
            ) from None
        start = dt.datetime.combine(day, dt.time(), zone)
        since = start.astimezone(dt.UTC).replace(tzinfo=None)
    engine = make_engine(config.database)
    try:
        changes = _changes(engine, config.school.site, since)
    finally:
        engine.dispose()
    for change in changes:
        row = _change_json(change)
        if args.json:
            print(json.dumps(row))
            continue
        when = change.occurred_at.replace(tzinfo=dt.UTC).astimezone(zone)
        what = " ".join(filter(None, [change.action, change.category]))
        print(f"#{change.id} {when:%Y-%m-%d %H:%M %Z} {change.who}: {what} {_some(row['entries'])}")
        if change.reason:
            print(f"    why: {change.reason}")
        if change.policy_version:
            print(f"    policy version: {change.policy_version}")
    return 0


def _changes(engine: Engine, site: str, since: dt.datetime | None) -> list[PolicyChange]:
    """The site's changes; none before the first change has created the table."""
    if not inspect(engine).has_table(PolicyChange.__tablename__):
        return []
    return list_changes(engine, site=site, since=since)


def _change_json(change: PolicyChange) -> dict[str, Any]:
    return {
        "id": change.id,
        "occurred_at": change.occurred_at.replace(tzinfo=dt.UTC).isoformat(),
        "site": change.site,
        "who": change.who,
        "action": change.action,
        "category": change.category,
        "entries": change.entries.splitlines(),
        "reason": change.reason,
        "policy_version": change.policy_version,
    }
