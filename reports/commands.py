"""How every `schoolgate` subcommand is declared: a summary, `--config`, and an example.

Its own module so that `reports.cli` and the command modules it registers share it without
importing each other.
"""

from __future__ import annotations

import argparse

from addons.config import default_config_path

type Commands = argparse._SubParsersAction[argparse.ArgumentParser]


def command(commands: Commands, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    """A subcommand with `--config` and an "example:" in its --help."""
    parser = commands.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", default=default_config_path(), help="policy file (default: %(default)s)"
    )
    return parser


def command_group(commands: Commands, name: str, summary: str, example: str) -> Commands:
    """A command with subcommands of its own (`schoolgate blocklist add`, `schoolgate db purge`)."""
    group = commands.add_parser(
        name,
        help=summary,
        description=f"{summary[0].upper()}{summary[1:]}.",
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return group.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")
