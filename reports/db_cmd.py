"""`schoolgate db ...`: the incident log's schema, retention, and people's rights over it.

Argument parsing and printing only; `addons.incidents` (schema), `addons.retention` and
`addons.privacy` do the work. Every command acts on the config's own site unless told
`--site NAME` or `--all-sites` (a trust's gateways share one database).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from addons.changes import record_change
from addons.config import Config, load_config
from addons.incidents import create_schema, make_engine
from addons.privacy import COLUMNS, erase, incidents_of
from addons.retention import expired_by_site, purge, retention_cutoff
from reports.blocklist_cmd import _reason, _who
from reports.commands import Commands, command, command_group


def register(commands: Commands) -> None:
    """Add `schoolgate db` and its subcommands to the command line."""
    sub = command_group(
        commands,
        "db",
        "upgrade the incident log, purge it past retention, export or erase a person's data",
        "schoolgate db export --user jsmith --format csv --output jsmith.csv",
    )

    upgrade = command(
        sub,
        "upgrade",
        "create the incident log's tables, or upgrade them to this version (keeps every row)",
        "schoolgate db upgrade --config /etc/schoolgate/policy.yaml",
    )
    upgrade.set_defaults(handler=_upgrade)

    purged = command(
        sub,
        "purge",
        "delete the incidents older than retention_days (the proxy also does so daily)",
        "schoolgate db purge --dry-run",
    )
    _site_arguments(purged)
    purged.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    purged.set_defaults(handler=_purge)

    export = command(
        sub,
        "export",
        "every incident recorded under a user name: the answer to a subject-access request",
        "schoolgate db export --user jsmith --format csv --output jsmith.csv",
    )
    _site_arguments(export)
    export.add_argument("--user", required=True, metavar="NAME", help="the proxy user name")
    export.add_argument("--format", choices=("json", "csv"), default="json")
    export.add_argument(
        "--output", metavar="FILE", help="write here, readable by you only (default: stdout)"
    )
    export.set_defaults(handler=_export)

    erased = command(
        sub,
        "erase",
        "delete every incident recorded under a user name (an erasure request); records who "
        "and why, not whose",
        "schoolgate db erase --user jsmith --reason 'erasure request 2026-12, DPO ref 41' --yes",
    )
    _site_arguments(erased)
    erased.add_argument("--user", required=True, metavar="NAME", help="the proxy user name")
    erased.add_argument(
        "--reason", required=True, help="why (a request reference; not the person's name)"
    )
    erased.add_argument("--by", help="who is erasing (default: your login name)")
    erased.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    erased.set_defaults(handler=_erase)


def _site_arguments(parser: argparse.ArgumentParser) -> None:
    sites = parser.add_mutually_exclusive_group()
    sites.add_argument("--site", help="this site's incidents (default: the config's school.site)")
    sites.add_argument("--all-sites", action="store_true", help="every site in the database")


def _site(args: argparse.Namespace, config: Config) -> str | None:
    """The one site a command acts on, or None for every site."""
    return None if args.all_sites else (args.site or config.school.site)


def _where(site: str | None) -> str:
    return "every site" if site is None else f"site {site}"


@contextmanager
def _log(config: Config) -> Iterator[Engine]:
    """The incident log; a database error (SchemaTooNew too) ends the command with its message.

    Each command first brings the log to this code's schema revision, as the proxy does.
    """
    engine = make_engine(config.database)
    try:
        yield engine
    except SQLAlchemyError as e:
        raise SystemExit(f"schoolgate: incident log {_url(engine)}: {e}") from None
    finally:
        engine.dispose()


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


# --- upgrade, purge -------------------------------------------------------------------------


def _upgrade(args: argparse.Namespace) -> int:
    with _log(load_config(args.config)) as engine:
        print(f"{_url(engine)}: {create_schema(engine).describe()}")
    return 0


def _purge(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    site = _site(args, config)
    cutoff = retention_cutoff(config, dt.datetime.now(dt.UTC))
    with _log(config) as engine:
        create_schema(engine)
        counts = expired_by_site(engine, cutoff, site)
        deleted = 0 if args.dry_run else purge(engine, cutoff, site)
    print(
        f"retention_days {config.retention_days}: incidents before "
        f"{cutoff:%Y-%m-%d %H:%M} UTC are past retention ({_where(site)})"
    )
    for each, count in counts.items():
        print(f"  {each}: {count}")
    if args.dry_run:
        print(f"dry run: {sum(counts.values())} incident(s) would be deleted, none were")
    else:
        print(f"deleted {deleted} incident(s)")
    return 0


# --- subject access and erasure -----------------------------------------------------------


def _export(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    site = _site(args, config)
    with _log(config) as engine:
        create_schema(engine)
        rows = incidents_of(engine, args.user, site)
    if args.format == "json":
        document = {
            "user": args.user,
            "site": site,
            "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "incidents": rows,
        }
        text = json.dumps(document, indent=2) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    if args.output:
        _write_private(args.output, text)
    else:
        sys.stdout.write(text)
    print(f"{len(rows)} incident(s) of {args.user} ({_where(site)})", file=sys.stderr)
    return 0


def _write_private(path: str, text: str) -> None:
    """Write `text` to `path`, readable and writable by its owner only: it is personal data."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
        file.write(text)


def _erase(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    site = _site(args, config)
    reason, who = _reason(args), _who(args)
    if not args.yes and not _confirmed(f"erase every incident of {args.user} ({_where(site)})?"):
        raise SystemExit("schoolgate: nothing erased (confirm, or add --yes)")
    with _log(config) as engine:
        create_schema(engine)
        counts = erase(engine, args.user, site)
        if not counts:
            print(f"no incidents of {args.user} ({_where(site)}): nothing erased or recorded")
            return 0
        change = record_change(
            engine,
            site=site or config.school.site,
            who=who,
            action="erase",
            entries=[f"{each}: {count} incident(s) of one user" for each, count in counts.items()],
            reason=reason,
        )
    print(f"erased {sum(counts.values())} incident(s) of {args.user} ({_where(site)})")
    for each, count in counts.items():
        print(f"  {each}: {count}")
    print(f"recorded as policy change {change.id} by {change.who} (the user name is not kept)")
    return 0


def _confirmed(question: str) -> bool:
    """Ask on a terminal; without one (a script), the answer is no: scripts say --yes."""
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
