"""The addon's `server_connect` on mitmproxy's own test connections: which servers it checks,
and how it hands mitmproxy the address it checked. tests/security/test_destinations.py shows
the same in a real mitmdump, with servers that record what reaches them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import connection
from mitmproxy.proxy import mode_specs, server_hooks
from mitmproxy.test import taddons, tflow

from addons.schoolgate import SchoolGate
from tests.e2e.realparts import write_config


@pytest.fixture
def shipped_rules(tmp_path: Path) -> Iterator[SchoolGate]:
    """The addon with the shipped destination rules (no `proxy:` keys)."""
    gate = SchoolGate()
    with taddons.context(gate) as context:
        context.configure(gate, schoolgate_config=str(write_config(tmp_path, proxy="")))
        yield gate
        gate.done()


def _hook(mode: str, address: tuple[str, int]) -> server_hooks.ServerConnectionHookData:
    client = tflow.tclient_conn()
    client.proxy_mode = mode_specs.ProxyMode.parse(mode)
    return server_hooks.ServerConnectionHookData(connection.Server(address=address), client)


def test_a_client_s_server_is_checked(shipped_rules: SchoolGate) -> None:
    data = _hook("regular", ("127.0.0.1", 53))
    asyncio.run(shipped_rules.server_connect(data))
    assert data.server.error == (
        "the gateway will not connect there: port 53 is not a web port "
        "(http_ports: 80, 21, 443, 70, 210, 1025-65535, 280, 488, 591, 777)"
    )


@pytest.mark.parametrize("mode", ["reverse:dns://127.0.0.1:53@53", "dns@53"])
def test_the_dns_listener_s_upstream_is_the_school_s_choice(
    shipped_rules: SchoolGate, mode: str
) -> None:
    """`--dns-upstream` (or the system's resolver) may be on the gateway itself, on port 53."""
    data = _hook(mode, ("127.0.0.1", 53))
    asyncio.run(shipped_rules.server_connect(data))
    assert data.server.error is None


def test_a_name_is_pinned_to_the_addresses_it_was_checked_at(addon) -> None:
    gate, _, _ = addon  # the e2e config: loopback allowed

    async def connect() -> tuple[server_hooks.ServerConnectionHookData, list]:
        gate._checked_names.install(asyncio.get_running_loop())  # as `running` does
        data = _hook("regular", ("localhost", 8088))  # an origin's port, not the proxy's 8080
        await gate.server_connect(data)
        # What mitmproxy's connection then gets when it resolves the name (asyncio does).
        return data, await asyncio.get_running_loop().getaddrinfo("localhost", 8088)

    data, resolved = asyncio.run(connect())
    assert data.server.error is None and data.server.address == ("localhost", 8088)
    assert {info[4][0] for info in resolved} <= {"127.0.0.1", "::1"}
    assert gate._checked_names._pinned == {}  # taken once
