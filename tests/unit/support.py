"""The test policy and its lists, and `PolicyFiles`, which writes them to a folder and loads them.

The config lives in `<folder>/config/policy.yaml` and names its lists as `../blocklists/*.txt`,
so every test also exercises "relative paths resolve against the config's folder".
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from addons.config import Config, load_config
from addons.errors import ConfigError
from addons.policy import Policy

LONDON = ZoneInfo("Europe/London")

# Terms hold both 2026 DST changes (Sun 29 March, Sun 25 October). The autumn term ends on a
# Thursday so that the day after it is a weekday.
BASE_CONFIG = """\
school:
  name: Test Primary School
  site: test
  timezone: Europe/London
  contact: the school office
  policy_url: https://school.example/policies/social-media
school_day:
  weekdays: [mon, tue, wed, thu, fri]
  start: "08:30"
  end: "15:30"
  terms:
    - {name: Spring 2026, start: 2026-01-05, end: 2026-04-02}
    - {name: Autumn 2026, start: 2026-09-03, end: 2026-12-17}
  closures: [2026-11-27]
groups:
  staff: {networks: [10.10.0.0/16, "fd00:10::/32"], users: [alice]}
  pupils: {networks: [10.20.0.0/16, "fd00:20::/32"], users: [bob]}
  guests: {networks: [10.0.0.0/8]}
default_group: everyone
categories:
  social_networks: [../blocklists/social.txt]
  video: [../blocklists/video.txt]
allowlist: [../blocklists/allow.txt]
rules:
  - name: staff-video-after-school
    groups: [staff]
    categories: [video]
    when: outside_school_day
    action: allow
    policy: "Staff may watch video outside the school day."
  - name: video-in-lessons
    groups: ["*"]
    categories: [video]
    when: school_day
    action: block
    policy: "No video streaming in lessons."
  - name: staff-monitored
    groups: [staff]
    categories: [social_networks]
    when: always
    action: monitor
    policy: "Staff use of social networks is monitored."
  - name: school-it-ban
    groups: ["*"]
    categories: [social_networks]
    when: always
    action: block
    clause: "Section 3, Main Body of Policy"
    policy: "We do not allow school personnel to use the school IT system."
database: sqlite:///../data/test.db
retention_days: 30
"""

BASE_LISTS: dict[str, str] = {
    "social.txt": """\
# Social networks for the unit tests.

facebook.com
fbcdn.net            # photos: scontent-*.xx.fbcdn.net
instagram.com
  =exact.example.org   # that host only
*.sub.example.net
BÜCHER.example
""",
    "video.txt": """\
youtube.com
facebook.com   # listed in two categories
""",
    "allow.txt": """\
# Never blocked.
=about.instagram.com
help.youtube.com
=safe.facebook.com
""",
}

# Moments (Europe/London) on either side of the school day, for rule tests.
SCHOOL_TIME = dt.datetime(2026, 11, 23, 10, 0, tzinfo=LONDON)  # Monday, autumn term
EVENING = dt.datetime(2026, 11, 23, 18, 0, tzinfo=LONDON)


def line_of(text: str, pattern: str) -> int:
    """The 1-based number of the only line of `text` that `pattern` (a regex) is found in."""
    lines = text.splitlines()
    numbers = [n for n, line in enumerate(lines, start=1) if re.search(pattern, line)]
    assert len(numbers) == 1, f"{pattern!r} is on lines {numbers}"
    return numbers[0]


def edit(text: str, old: str, new: str) -> str:
    """Replace the one occurrence of `old` (a test whose edit misses must fail, not pass)."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


@dataclass
class PolicyFiles:
    """A folder holding `config/policy.yaml` and `blocklists/*.txt`."""

    root: Path

    @property
    def config_path(self) -> Path:
        """Where the config file is written."""
        return self.root / "config" / "policy.yaml"

    def list_path(self, name: str) -> Path:
        """Where list `name` (like `social.txt`) is written."""
        return self.root / "blocklists" / name

    def write(
        self,
        text: str = BASE_CONFIG,
        lists: Mapping[str, str] | None = None,
        edits: Mapping[str, str] | None = None,
    ) -> Path:
        """Write the config (after `edits`, each old -> new) and the lists; return its path."""
        for old, new in (edits or {}).items():
            text = edit(text, old, new)
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(text, encoding="utf-8")
        self.list_path("x").parent.mkdir(parents=True, exist_ok=True)
        for name, content in (BASE_LISTS if lists is None else lists).items():
            self.list_path(name).write_text(content, encoding="utf-8")
        return self.config_path

    def config(self, text: str = BASE_CONFIG, **kwargs: Mapping[str, str] | None) -> Config:
        """Write and load."""
        return load_config(self.write(text, **kwargs))

    def policy(self, text: str = BASE_CONFIG, **kwargs: Mapping[str, str] | None) -> Policy:
        """Write, load and index."""
        return Policy(self.config(text, **kwargs))

    def error(self, text: str = BASE_CONFIG, **kwargs: Mapping[str, str] | None) -> ConfigError:
        """Write, load, and return the ConfigError that loading must raise."""
        with pytest.raises(ConfigError) as caught:
            self.config(text, **kwargs)
        return caught.value
