"""Fixtures for the security tests: the e2e suite's real parts, and a host beyond the gateway."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

# Fixtures shared with tests/e2e: pytest finds them by name in this module.
from tests.e2e.conftest import gateway, gateway_factory, origin_cert  # noqa: F401
from tests.security.farhost import FarHost, far_host


@pytest.fixture
def far() -> Iterator[FarHost]:
    """A network namespace beyond the gateway, on a private address (not one of the gateway's)."""
    with far_host() as host:
        yield host


@pytest.fixture
def far_tls(origin_cert: tuple[Path, Path]) -> ssl.SSLContext:  # noqa: F811
    """The server side of TLS for a recorder, with the origin's own self-signed certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*origin_cert)
    return context
