"""Fixtures for the deployment tests: the e2e suite's real parts, and a TLS context for origins."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

# Fixtures shared with tests/e2e: pytest finds them by name in this module.
from tests.e2e.conftest import gateway, gateway_factory, origin_cert  # noqa: F401


@pytest.fixture
def origin_tls(origin_cert: tuple[Path, Path]) -> ssl.SSLContext:  # noqa: F811
    """The server side of a TLS origin with its own self-signed certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*origin_cert)
    return context
