"""The shipped bypass lists, through a real mitmdump: a CONNECT to a public DoH resolver, to a
resolver's address or to a platform's front-end is refused, and nothing reaches the server the
name leads to, while an unlisted name on that same server is reachable.

The gateway runs with the shipped `config/policy.yaml` and `blocklists/`, in a mount namespace of
its own whose /etc/hosts sends every name of the test to a recorder on the far host; nothing on
this machine resolves them otherwise.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.realparts import Gateway, curl, start_gateway, wait_until
from tests.security.farhost import FarHost, Recorder, recorder

ROOT = Path(__file__).resolve().parents[2]
CONTROL = "intranet.example.org"  # in no list: the gateway lets it through
BLOCKED = [
    ("dns.google", "dns_over_https"),  # Google Public DNS's DoH name
    ("doh.dns4all.eu", "dns_over_https"),  # a small resolver, from the public lists
    ("1.1.1.1", "dns_over_https"),  # Cloudflare's resolver by address (https://1.1.1.1/dns-query)
    ("xcancel.com", "social_networks"),  # a Nitter instance
    ("imginn.com", "social_networks"),  # an Instagram viewer
]


def _shipped_config(root: Path) -> Path:
    """The shipped policy, with its lists where they are and its incident log under `root`."""
    text = (ROOT / "config" / "policy.yaml").read_text(encoding="utf-8")
    text = text.replace("../blocklists/", f"{ROOT}/blocklists/")
    text = re.sub(r"(?m)^database: .*$", f"database: sqlite:///{root}/data/schoolgate.db", text)
    path = root / "config" / "policy.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def far_server(far: FarHost, far_tls: ssl.SSLContext) -> Iterator[Recorder]:
    """An HTTPS server on the far host, port 443, that records every byte it receives."""
    with recorder(far, 443, answer="tls", tls=far_tls) as server:
        yield server


@pytest.fixture
def shipped_gateway(tmp_path: Path, far: FarHost) -> Iterator[Gateway]:
    """The gateway on the shipped policy, resolving the test's names to the far host."""
    hosts = tmp_path / "hosts"
    names = [CONTROL, *(name for name, _ in BLOCKED if not name[0].isdigit())]
    hosts.write_text(f"127.0.0.1 localhost\n{far.address} {' '.join(names)}\n")
    prefix = ["unshare", "--mount", "--", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"']
    gateway = start_gateway(
        tmp_path, _shipped_config(tmp_path), command_prefix=[*prefix, str(hosts)]
    )
    yield gateway
    gateway.stop()


def _connect(gateway: Gateway, host: str) -> tuple[str, str]:
    """The proxy's answer to CONNECT host:443 (as curl saw it), and the page's text if any."""
    done = curl("-k", "-x", gateway.proxy, "-w", "%{http_connect}", f"https://{host}/")
    return done.stdout[-3:], done.stdout[:-3]


def test_resolvers_and_front_ends_are_refused_and_nothing_reaches_their_server(
    shipped_gateway: Gateway, far_server: Recorder
) -> None:
    for host, _category in BLOCKED:
        assert _connect(shipped_gateway, host) == ("403", ""), host
    rows = shipped_gateway.wait_for_incidents(len(BLOCKED))
    assert [(r["host"], r["category"], r["action"], r["method"]) for r in rows] == [
        (host, category, "block", "CONNECT") for host, category in BLOCKED
    ]
    assert far_server.received == b""  # not a byte of a refused tunnel arrived

    # The control: the same server, by a name no list holds, answers through the gateway.
    assert _connect(shipped_gateway, CONTROL) == ("200", "hello from the far host\n")
    wait_until(lambda: f"Host: {CONTROL}".encode() in far_server.plaintext, 10, "the control")
    assert len(far_server.connections) == 1
