"""Explicit mode enforced by the school's router: the README's egress rules, applied for real.

The gateway runs the proxy and the school's DNS on the server network behind the router; the
pupil's device reaches the web through the proxy (the control), while its direct connections
to the same web servers, to a public proxy on 8080, to DNS over TLS and to QUIC are dropped by
the router: the servers, which record every connection and datagram, received nothing.
"""

from __future__ import annotations

import contextlib
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.deploy.netns import (
    CLIENT_IP,
    LAN_INTERFACE,
    ORIGIN_IP,
    ORIGIN_IP6,
    SERVER_IP,
    SERVER_NETWORK,
    WAN_IP,
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


@pytest.mark.parametrize("firewall", ["nftables", "iptables"])
def test_the_web_only_through_the_gateway(
    firewall: str, tmp_path: Path, origin_tls: ssl.SSLContext
) -> None:
    with school_network() as network, contextlib.ExitStack() as stack:
        web, tls = stack.enter_context(origin_web(network, origin_tls))
        origin = FarHost(network.origin, ORIGIN_IP, WAN_IP)
        origin6 = FarHost(network.origin, ORIGIN_IP6, WAN_IP)
        dot, public_proxy, web6, tls6 = (
            stack.enter_context(recorder(host, port, answer=None))
            for host, port in ((origin, 853), (origin, 8080), (origin6, 80), (origin6, 443))
        )
        udp = stack.enter_context(origin_udp(network))
        intranet = stack.enter_context(recorder(FarHost(network.servers, SERVER_IP, ""), 80))

        # The router forwards, with the egress rules; the gateway is on the server network.
        forwarding = ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]
        run_ok(network.gateway, ["sysctl", "-w", *forwarding])
        port = free_port()
        settings = {
            "CLIENTS": f'{{ "{LAN_INTERFACE}" }}',
            "GATEWAY": SERVER_IP,
            "PROXY_PORT": str(port),
            # Here the origin's 10.202.0.0/24 stands for the internet: not the school's own.
            "SCHOOL_NETWORKS": f"{{ {SERVER_NETWORK} }}",
        }
        apply_rules(network.gateway, "egress", firewall, settings)
        config = write_config(tmp_path, extra=f"allowed_clients: [{CLIENT_IP}/32]")
        with inside(network.servers):
            run_args = ["--dns", "--dns-upstream", "127.0.0.1:9"]
            gateway = start_gateway(tmp_path, config, 30.0, "0.0.0.0", run_args, port)
        stack.callback(gateway.stop)

        def curl(*args: str) -> subprocess.CompletedProcess[str]:
            command = ["curl", "-sS", "--max-time", "10", "-w", " %{http_code}", *args]
            return run_in(network.client, command)

        # Through the proxy, as the PAC file says: the web works and the policy applies.
        proxy = ["-x", f"http://{SERVER_IP}:{port}"]
        allowed = curl(*proxy, f"http://{ORIGIN_IP}/lesson")
        assert allowed.stdout == "hello from the origin\n 200", allowed
        # CONNECT to the origin's address, with the name in the SNI (the proxy resolves nothing).
        to_origin = ["--connect-to", f"www.example.org:443:{ORIGIN_IP}:443"]
        secure = curl(*proxy, *to_origin, "-k", "https://www.example.org/")
        assert secure.stdout == "hello from the origin\n 200", secure
        assert tls.requests == [("www.example.org", "/")]
        blocked = curl(*proxy, "http://www.facebook.com/feed")
        assert blocked.stdout.endswith(" 403"), blocked
        # The school's DNS on the gateway answers; the school's own servers are reached directly.
        dig = ["dig", f"@{SERVER_IP}", "+tries=1", "+time=2", "www.facebook.com"]
        wait_until(lambda: gateway.log().count("listening at") >= 2, 10, "the DNS listener")
        assert "status: NXDOMAIN" in run_in(network.client, dig).stdout
        assert curl(f"http://{SERVER_IP}/").stdout == "hello from the far host\n 200"
        assert len(intranet.connections) == 1

        # Around the proxy: the same servers, directly, over IPv4 and IPv6. Nothing arrives.
        seen = (web.connections, tls.connections)
        direct = [
            (ORIGIN_IP, 80), (ORIGIN_IP, 443), (ORIGIN_IP, 853), (ORIGIN_IP, 8080),
            (ORIGIN_IP6, 80), (ORIGIN_IP6, 443),
        ]  # fmt: skip
        assert connections(network.client, direct) == set()
        assert (web.connections, tls.connections) == seen == (1, 1)
        assert [r.connections for r in (dot, public_proxy, web6, tls6)] == [[]] * 4
        # QUIC, DNS over QUIC and DNS to anyone but the school's resolver: dropped; NTP passes.
        assert datagrams_past(network.client, *udp) == []
        # The same servers answer the gateway and the router themselves, which the rules leave be.
        assert connections(network.servers, direct[:4]) == set(direct[:4])
        assert connections(network.gateway, direct[4:]) == set(direct[4:])
        listeners = (dot, public_proxy, web6, tls6)
        wait_until(lambda: all(r.connections for r in listeners), 5, "the controls' connections")
