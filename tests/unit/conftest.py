"""Shared fixtures: the `files` factory (a config and its lists in tmp_path), the test policy,
an engine on a real SQLite file; and the hypothesis profiles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import Engine

from addons.incidents import make_engine
from addons.policy import Policy
from tests.unit.support import PolicyFiles

# Property tests stay fast by default; SCHOOLGATE_HYPOTHESIS=thorough digs deeper.
settings.register_profile("schoolgate-unit", max_examples=300, deadline=None)
settings.register_profile("schoolgate-thorough", max_examples=3000, deadline=None)


@pytest.fixture
def files(tmp_path: Path) -> PolicyFiles:
    """An empty folder to write a config and its lists into."""
    return PolicyFiles(tmp_path)


@pytest.fixture
def policy(files: PolicyFiles) -> Policy:
    """The test policy: BASE_CONFIG over BASE_LISTS."""
    return files.policy()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine on a real SQLite file in a folder that does not exist yet."""
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'incidents.db'}")
    yield engine
    engine.dispose()
