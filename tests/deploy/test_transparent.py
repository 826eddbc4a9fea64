"""Transparent mode for real: a pupil's device that knows nothing of the proxy, a gateway with the
README's own sysctl and firewall files applied, and web servers on the far side.

The same gateway answers the school's DNS on port 53 (`--dns`). Access control on the same
network: a second address on the device, outside the configured networks, is refused by the
proxy and by its DNS (no open resolver either). Everything else the device tries, beyond the
gateway or on it, is dropped unless the school opened it: servers that record every connection
and datagram show that nothing arrived, beside controls that show the same servers answer when
they are allowed.
"""

from __future__ import annotations

import contextlib
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.deploy.netns import (
    CLIENT_IP,
    CONFIG,
    LAN_INTERFACE,
    LAN_IP,
    ORIGIN_IP,
    ORIGIN_IP6,
    OUTSIDER_IP,
    WAN_IP,
    Network,
    apply_rules,
    connections,
    datagrams_past,
    inside,
    origin_udp,
    origin_web,
    run_in,
    run_ok,
    school_network,
)
from tests.e2e.realparts import free_port, start_gateway, wait_until, write_config
from tests.security.farhost import FarHost, recorder

# A container's ports published by Docker, as compose does: DNAT from the gateway's address.
# The proxy's 8080 is one of the gateway's services; a PostgreSQL published as 15432 is not.
PUBLISHED = f"""
table ip published {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr {LAN_IP} tcp dport 8080 dnat to {ORIGIN_IP}:8080
    ip daddr {LAN_IP} tcp dport 15432 dnat to {ORIGIN_IP}:5432
  }}
}}
"""


def _resolve(name: str, port: int) -> list[str]:
    """curl's stand-in for the device's own DNS answer: `name` is the origin's address."""
    return ["--resolve", f"{name}:{port}:{ORIGIN_IP}"]


@pytest.mark.parametrize("firewall", ["nftables", "iptables"])
def test_transparent_gateway_with_the_readme_rules(
    firewall: str, tmp_path: Path, origin_tls: ssl.SSLContext
) -> None:
    with school_network() as network, contextlib.ExitStack() as stack:
        web, tls = stack.enter_context(origin_web(network, origin_tls))
        # In the README's order: forwarding and the firewall first, then the proxy.
        port = free_port()
        run_ok(network.gateway, ["sysctl", "-p", str(CONFIG / "transparent" / "sysctl.conf")])
        settings = {"LAN": f'"{LAN_INTERFACE}"', "PROXY_PORT": str(port)}
        apply_rules(network.gateway, "transparent", firewall, settings)
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

        _nothing_else_leaves_the_lan(network, firewall, settings)


def _nothing_else_leaves_the_lan(network: Network, firewall: str, settings: dict[str, str]) -> None:
    """Beyond the web, the LAN reaches only what the school opened: NTP by default, then SSH."""
    origin = FarHost(network.origin, ORIGIN_IP, WAN_IP)
    origin6 = FarHost(network.origin, ORIGIN_IP6, WAN_IP)
    on_gateway = FarHost(network.gateway, LAN_IP, LAN_IP)
    with contextlib.ExitStack() as stack:
        ssh, postgres, dot, published_proxy, ssh6, gateway_ssh, gateway_postgres = (
            stack.enter_context(recorder(host, port, answer=None))
            for host, port in (
                (origin, 22), (origin, 5432), (origin, 853), (origin, 8080), (origin6, 22),
                (on_gateway, 22), (on_gateway, 5432),
            )
        )  # fmt: skip
        udp = stack.enter_context(origin_udp(network))
        run_ok(network.gateway, ["nft", "-f", "-"], PUBLISHED)

        forbidden = [
            (ORIGIN_IP, 22), (ORIGIN_IP, 5432), (ORIGIN_IP, 853), (ORIGIN_IP6, 22),
            (LAN_IP, 22), (LAN_IP, 5432), (LAN_IP, 15432),
        ]  # fmt: skip
        assert connections(network.client, [*forbidden, (LAN_IP, 8080)]) == {(LAN_IP, 8080)}
        wait_until(lambda: published_proxy.connections, 5, "the published proxy port")
        assert [
            r.connections for r in (ssh, ssh6, postgres, dot, gateway_ssh, gateway_postgres)
        ] == [[]] * 6
        # QUIC, DNS over QUIC and DNS to anyone but the gateway are dropped; NTP passes.
        assert datagrams_past(network.client, *udp) == []

        # The school opens SSH (22) to any server, as the README says: the same servers answer.
        if firewall == "nftables":
            add = ["nft", "add", "element", "inet", "schoolgate", "open_tcp", "{ 22 }"]
            run_ok(network.gateway, add)
        else:  # the script again, with the port: it replaces its own rules
            apply_rules(network.gateway, "transparent", firewall, {**settings, "OPEN_TCP": "22"})
        assert connections(network.client, forbidden) == {(ORIGIN_IP, 22), (ORIGIN_IP6, 22)}
        wait_until(lambda: ssh.connections and ssh6.connections, 5, "SSH, once opened")
        assert [r.connections for r in (postgres, dot, gateway_ssh, gateway_postgres)] == [[]] * 4
        assert datagrams_past(network.client, *udp) == []
        # The gateway's own SSH and PostgreSQL answer another interface: an admin network's.
        wan_side = connections(network.origin, [(LAN_IP, 22), (LAN_IP, 5432)])
        assert wan_side == {(LAN_IP, 22), (LAN_IP, 5432)}


def test_the_readme_shows_the_shipped_rules() -> None:
    """The README's rules are the files the tests apply, line for line."""
    readme = (CONFIG.parent / "README.md").read_text(encoding="utf-8")
    rules = [
        line.strip()
        for folder in ("transparent", "egress")
        for path in sorted((CONFIG / folder).iterdir())
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert [line for line in rules if line not in readme] == []
