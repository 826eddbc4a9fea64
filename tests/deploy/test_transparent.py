"""Transparent mode for real: a pupil's device that knows nothing of the proxy, a gateway with the
README's own sysctl and firewall files applied, and web servers on the far side.

The same gateway answers the school's DNS on port 53 (`--dns`). Access control on the same
network: a second address on the device, outside the configured networks, is refused by the
proxy and by its DNS (no open resolver either).
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.netns import (
    CLIENT_IP,
    LAN_INTERFACE,
    LAN_IP,
    ORIGIN_IP,
    OUTSIDER_IP,
    inside,
    run_in,
    school_network,
)
from tests.e2e.realparts import (
    Origin,
    free_port,
    serve,
    start_gateway,
    wait_until,
    write_config,
)

RULES = Path(__file__).resolve().parents[2] / "config" / "transparent"
SEND_UDP = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "for port in sys.argv[2:]: s.sendto(b'x', (sys.argv[1], int(port)))\n"
)


def _firewall(firewall: str, port: int) -> tuple[list[str], str]:
    """The command (and its input) applying the shipped rules for this LAN and proxy port."""
    if firewall == "iptables":
        script = str(RULES / "iptables.sh")
        return ["env", f"LAN={LAN_INTERFACE}", f"PROXY_PORT={port}", "sh", script], ""
    text = (RULES / "nftables.conf").read_text()
    text = re.sub(r'(?m)^define LAN = ".*"$', f'define LAN = "{LAN_INTERFACE}"', text)
    text = re.sub(r"(?m)^define PROXY_PORT = \d+$", f"define PROXY_PORT = {port}", text)
    return ["nft", "-f", "-"], text


def _ok(namespace: str, command: list[str], text: str = "") -> None:
    result = run_in(namespace, command, text)
    assert result.returncode == 0, f"{' '.join(command)} in {namespace}: {result.stderr}"


@contextlib.contextmanager
def _udp(port: int) -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((ORIGIN_IP, port))
        sock.settimeout(0.5)
        yield sock


def _received(sock: socket.socket) -> bytes | None:
    try:
        return sock.recv(100)
    except TimeoutError:
        return None


def _resolve(name: str, port: int) -> list[str]:
    """curl's stand-in for the device's own DNS answer: `name` is the origin's address."""
    return ["--resolve", f"{name}:{port}:{ORIGIN_IP}"]


@pytest.mark.parametrize("firewall", ["nftables", "iptables"])
def test_transparent_gateway_with_the_readme_rules(
    firewall: str, tmp_path: Path, origin_tls: ssl.SSLContext
) -> None:
    serving = contextlib.contextmanager(serve)
    with school_network() as network, contextlib.ExitStack() as stack:
        with inside(network.origin):
            web = stack.enter_context(serving(Origin(80, "http", address=ORIGIN_IP), None))
            tls = stack.enter_context(serving(Origin(443, "https", address=ORIGIN_IP), origin_tls))
            quic, other_udp = stack.enter_context(_udp(443)), stack.enter_context(_udp(4433))
        # In the README's order: forwarding and the firewall first, then the proxy.
        port = free_port()
        _ok(network.gateway, ["sysctl", "-p", str(RULES / "sysctl.conf")])
        _ok(network.gateway, *_firewall(firewall, port))
        config = write_config(tmp_path, extra=f"allowed_clients: [{CLIENT_IP}/32]")
        with inside(network.gateway):
            run_args = ["--mode", "transparent", "--dns", "--dns-upstream", "127.0.0.1:9"]
            gateway = start_gateway(tmp_path, config, 30.0, "0.0.0.0", run_args, port)
        stack.callback(gateway.stop)

        def curl(*args: str) -> subprocess.CompletedProcess[str]:
            return run_in(network.client, ["curl", "-sS", "--max-time", "10", *args])

        # HTTP: decided on the Host header; the blocked site's server is never contacted.
        blocked = curl("-w", "%{http_code}", *_resolve("www.facebook.com", 80),
                       "http://www.facebook.com/feed")  # fmt: skip
        assert blocked.stdout.endswith("403") and "www.facebook.com" in blocked.stdout
        allowed = curl("-w", " %{http_code}", *_resolve("www.example.org", 80),
                       "http://www.example.org/lesson")  # fmt: skip
        assert allowed.stdout == "hello from the origin\n 200", allowed
        assert web.requests == [("www.example.org", "/lesson")]

        # HTTPS: decided on the SNI; allowed connections pass through untouched.
        refused = curl("-k", *_resolve("www.facebook.com", 443), "https://www.facebook.com/")
        assert refused.returncode != 0
        passed = curl("-k", "-w", " %{http_code}", *_resolve("www.example.org", 443),
                      "https://www.example.org/")  # fmt: skip
        assert passed.stdout == "hello from the origin\n 200", passed
        assert tls.requests == [("www.example.org", "/")] and tls.connections == 1

        # QUIC is dropped on the way through; other UDP is routed as usual.
        _ok(network.client, ["python3", "-c", SEND_UDP, ORIGIN_IP, "443", "4433"])
        assert _received(other_udp) == b"x"
        assert _received(quic) is None

        # A device outside the school's networks is refused by the proxy itself.
        outsider = curl("--interface", OUTSIDER_IP, *_resolve("www.example.org", 80),
                        "http://www.example.org/outsider")  # fmt: skip
        assert outsider.returncode != 0
        assert ("www.example.org", "/outsider") not in web.requests
        wait_until(lambda: f"schoolgate: refused {OUTSIDER_IP}" in gateway.log(), 5, "a log line")

        # DNS: blocked names get NXDOMAIN; the outsider gets no answer at all.
        wait_until(lambda: gateway.log().count("listening at") >= 2, 10, "the DNS listener")
        dig = ["dig", f"@{LAN_IP}", "+tries=1", "+time=1", "www.facebook.com"]
        assert "status: NXDOMAIN" in run_in(network.client, [*dig, "-b", CLIENT_IP]).stdout
        assert "timed out" in run_in(network.client, [*dig, "-b", OUTSIDER_IP]).stdout

        rows = gateway.wait_for_incidents(3)
        assert [(r["method"], r["host"], r["client_ip"]) for r in rows] == [
            ("GET", "www.facebook.com", CLIENT_IP),
            ("TLS", "www.facebook.com", CLIENT_IP),
            ("DNS", "www.facebook.com", CLIENT_IP),
        ]


def test_the_readme_shows_the_shipped_rules():
    """The README's rules are the files this test applies, line for line."""
    readme = (RULES.parents[1] / "README.md").read_text(encoding="utf-8")
    rules = [
        line.strip()
        for name in ("sysctl.conf", "nftables.conf", "iptables.sh")
        for line in (RULES / name).read_text().splitlines()
        if line.strip()
        and not line.lstrip().startswith("#")
        and (name != "iptables.sh" or "$table" in line)
    ]
    assert [line for line in rules if line not in readme] == []
