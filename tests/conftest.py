"""Fixtures for every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy.test import taddons

from addons.schoolgate import SchoolGate
from tests.e2e.realparts import write_config


@pytest.fixture
def addon(tmp_path: Path) -> Iterator[tuple[SchoolGate, taddons.context, Path]]:
    """The addon in mitmproxy's test context, on the e2e test config in `tmp_path`."""
    gate = SchoolGate()
    with taddons.context(gate) as context:
        context.configure(gate, schoolgate_config=str(write_config(tmp_path)))
        yield gate, context, tmp_path
        gate.done()
