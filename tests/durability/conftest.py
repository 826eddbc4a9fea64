"""Fixtures for the durability tests: restartable gateways, a PostgreSQL server of their own."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.realparts import Gateway, free_port, gateways

PG_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Start gateways by name with config overrides; every one is killed at the end of the test."""
    with gateways(tmp_path) as start:
        yield start


@dataclass
class Cluster:
    """A throwaway PostgreSQL server of our own: stopping it harms no one else's."""

    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-w", "-l", str(self.folder / "server.log"), "-o", options, "start")

    def stop(self, mode: str = "fast", check: bool = True) -> None:
        self._pg_ctl("-w", "-m", mode, "stop", check=check)

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        as_postgres("pg_ctl", "-D", str(self.folder / "data"), *args, check=check)


def as_postgres(tool: str, *args: str, check: bool = True) -> None:
    """Run a server tool, as the postgres user when we are root (initdb refuses root)."""
    assert PG_BINS, "the PostgreSQL server is not installed (.ci/run installs it)"
    runuser = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    command = [*runuser, str(PG_BINS[-1] / tool), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 or not check, f"{' '.join(command)}:\n{result.stderr}"


@pytest.fixture
def postgres() -> Iterator[Cluster]:
    """A PostgreSQL cluster made for this test, on a free port; removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="schoolgate-pg-"))  # pytest's tmp_path is root's only
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    cluster = Cluster(folder, free_port())
    try:
        as_postgres("initdb", "-D", str(folder / "data"), "-A", "trust", "-U", "postgres", "-N")
        cluster.start()
        yield cluster
    finally:
        cluster.stop("immediate", check=False)  # already stopped if a test failed mid-outage
        shutil.rmtree(folder, ignore_errors=True)
