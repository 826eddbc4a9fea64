"""Fixtures for the deployment tests: the e2e suite's real parts, and a TLS context for origins."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

# Fixtures shared with tests/e2e: pytest finds them by name in this module.
from tests.e2e.conftest import gateway, gateway_factory, origin_cert  # noqa: F401
from tests.e2e.realparts import write_config


@pytest.fixture
def origin_tls(origin_cert: tuple[Path, Path]) -> ssl.SSLContext:  # noqa: F811
    """The server side of a TLS origin with its own self-signed certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*origin_cert)
    return context


@pytest.fixture
def unnetworked_config(tmp_path: Path) -> Path:
    """The test config with groups of users only: no network the proxy may answer."""
    config = write_config(tmp_path)
    text = config.read_text()
    for groups in (
        "{networks: [10.10.0.0/16], users: [alice]}",
        '{networks: [127.0.0.0/8, "::1/128"]}',
    ):
        assert groups in text
        text = text.replace(groups, "{users: [alice]}")
    config.write_text(text)
    return config
