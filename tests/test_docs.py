"""The README never lies: its commands are the ones CI and the CLI really have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reports.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _quick_start_commands() -> list[str]:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", quick_start)


def test_quick_start_has_two_commands_run_and_test() -> None:
    commands = _quick_start_commands()
    assert len(commands) == 2
    assert commands[0].endswith("schoolgate run")
    assert commands[1].endswith("pytest")


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    last_command = [line for line in ci.splitlines() if line and not line.startswith("#")][-1]
    # CI adds -q to pip only, to keep its log short.
    assert last_command.replace("pip install -q ", "pip install ") == _quick_start_commands()[1]


def _subcommands() -> dict[str, object]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return dict(action.choices)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_command_has_an_example_and_is_in_the_readme(name: str) -> None:
    help_text = _subcommands()[name].format_help()  # type: ignore[attr-defined]
    assert "example:\n  schoolgate " + name in help_text
    assert f"`schoolgate {name}" in README
