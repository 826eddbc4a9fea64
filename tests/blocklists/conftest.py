"""Fixtures for the blocklist commands: the unit tests' policy folder, the installed command as
a subprocess, and a private schema on the real PostgreSQL server."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from addons.incidents import make_engine
from tests.unit.support import PolicyFiles

DATA = Path(__file__).resolve().parent.parent / "data"
SCHOOLGATE = Path(sys.executable).with_name("schoolgate")
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def files(tmp_path: Path) -> PolicyFiles:
    """The unit tests' config and lists (BASE_CONFIG, BASE_LISTS), written to tmp_path."""
    files = PolicyFiles(tmp_path)
    files.write()
    return files


def schoolgate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the installed `schoolgate` command as a person would, and wait for it."""
    return subprocess.run(
        [str(SCHOOLGATE), *map(str, args)], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A database URL whose tables land in a fresh schema of the real server, dropped after."""
    schema = f"schoolgate_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
