"""Finding 1: protocol detection dodged. A ClientHello whose first byte comes alone, or cut into
small records, and an HTTP request after an empty line, made mitmproxy relay raw TCP unchecked.

Each test sends the forbidden bytes to a recording server beyond the gateway (a far host in its
own network namespace) and asserts they never arrived, beside a control showing that the same
server receives the same bytes when the name in them is allowed. In explicit mode, and in
transparent mode on a school network of namespaces with the README's firewall rules.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from addons.selftest import BLOCKED_HEADER
from tests.clienthello import TlsClient, client_hello
from tests.deploy.netns import (
    CLIENT_IP,
    CONFIG,
    LAN_INTERFACE,
    ORIGIN_IP,
    WAN_IP,
    apply_rules,
    inside,
    run_ok,
    school_network,
)
from tests.e2e.realparts import (
    BLOCKLIST,
    Gateway,
    free_port,
    start_gateway,
    wait_until,
    write_config,
)
from tests.security.farhost import FarHost, recorder
from tests.security.wire import DODGES, closes, receive_head, tunnel

FORBIDDEN, ALLOWED = "www.facebook.com", "www.example.org"


def _get(host: str, path: str, target: str = "") -> bytes:
    return f"GET {target}{path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


@pytest.mark.parametrize("dodge", DODGES)
def test_a_client_hello_in_pieces_is_decided_on_the_name_in_it(
    dodge: str, gateway: Gateway, far: FarHost, far_tls: ssl.SSLContext
) -> None:
    deliver = DODGES[dodge]
    with recorder(far, 443, answer="tls", tls=far_tls) as server:
        with tunnel(gateway.port, far.address, 443) as sock:
            answer = TlsClient(ALLOWED).request(sock, deliver, _get(ALLOWED, "/lesson"))
        assert b"hello from the far host" in answer  # the control: the server answers
        assert b"GET /lesson" in server.plaintext
        with tunnel(gateway.port, far.address, 443) as sock:
            deliver(sock, client_hello(FORBIDDEN))
            closes(sock)
        assert len(server.connections) == 1
        assert FORBIDDEN.encode() not in server.received
    rows = gateway.wait_for_incidents(1)
    assert [(row["method"], row["host"]) for row in rows] == [("TLS", FORBIDDEN)]


def test_an_http_request_after_empty_lines_is_decided_on_its_host(
    gateway_factory: Callable[..., Gateway], far: FarHost
) -> None:
    gateway = gateway_factory(proxy="connect_ports: [80, 443]")  # a tunnel to port 80 too

    def ask(sock: socket.socket, request: bytes) -> bytes:
        with sock:
            sock.sendall(request)
            return receive_head(sock)

    def proxy() -> socket.socket:
        return socket.create_connection(("127.0.0.1", gateway.port), timeout=20)

    def through_tunnel() -> socket.socket:
        return tunnel(gateway.port, far.address, 80)

    url = f"http://{far.address}"
    with recorder(far, 80) as server:
        # Inside a tunnel, where mitmproxy relayed the bytes raw; and to the proxy itself,
        # where its reader swallowed the empty line and waited for ever.
        way: Callable[[], socket.socket]
        for way, target in ((through_tunnel, ""), (proxy, url)):
            allowed = ask(way(), b"\r\n\r\n" + _get(ALLOWED, "/lesson", target))
            assert allowed.startswith(b"HTTP/1.1 200"), allowed
            blocked = ask(way(), b"\r\n" + _get(FORBIDDEN, "/feed", target))
            assert blocked.startswith(b"HTTP/1.1 403") and BLOCKED_HEADER.encode() in blocked
        assert server.received.count(b"GET /lesson HTTP/1.1\r\n") == 2
        assert b"/feed" not in server.received and FORBIDDEN.encode() not in server.received
    rows = gateway.wait_for_incidents(2)
    assert [(row["method"], row["host"]) for row in rows] == [("GET", FORBIDDEN)] * 2


def test_raw_tcp_is_refused_and_logged_once_unless_the_school_lists_it(
    gateway_factory: Callable[..., Gateway], far: FarHost
) -> None:
    ssh, postgres = b"SSH-2.0-OpenSSH_9.6p1 pupil\r\n", b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
    with recorder(far, 22, answer=None) as server:
        # Port 22 open to tunnels, so that what refuses the bytes is that they are raw TCP.
        refusing = gateway_factory("refusing", proxy="connect_ports: [22, 443]")
        for junk in (ssh, postgres):  # a client trying again: refused, logged once
            with tunnel(refusing.port, far.address, 22) as sock:
                sock.sendall(junk)
                closes(sock)
        assert server.connections == []
        line = f"refused a connection from 127.0.0.1 to {far.address}:22"
        wait_until(lambda: line in refusing.log(), 10, "the refusal in the log")
        assert refusing.log().count(line) == 1 and refusing.incidents() == []

        # Listed: that host and port only, its port open to a tunnel by the listing itself.
        listed = gateway_factory("listed", proxy=f'raw_tcp: ["{far.address}:22"]')
        with tunnel(listed.port, far.address, 22) as sock:
            sock.sendall(ssh)
            wait_until(lambda: server.received == ssh, 10, "the listed bytes at the far host")


LISTED_IP = "10.202.0.9"  # a second address of the far server, listed in the blocklist


def test_the_same_dodges_in_transparent_mode(tmp_path: Path, far_tls: ssl.SSLContext) -> None:
    with school_network() as network, contextlib.ExitStack() as stack:
        run_ok(network.origin, ["ip", "addr", "add", f"{LISTED_IP}/24", "dev", "eth0"])
        web = stack.enter_context(recorder(FarHost(network.origin, ORIGIN_IP, WAN_IP), 80))
        tls = stack.enter_context(
            recorder(FarHost(network.origin, ORIGIN_IP, WAN_IP), 443, "tls", far_tls)
        )
        listed = stack.enter_context(
            recorder(FarHost(network.origin, LISTED_IP, WAN_IP), 443, None)
        )
        port = free_port()
        run_ok(network.gateway, ["sysctl", "-p", str(CONFIG / "transparent" / "sysctl.conf")])
        settings = {"LAN": f'"{LAN_INTERFACE}"', "PROXY_PORT": str(port)}
        apply_rules(network.gateway, "transparent", "nftables", settings)
        config = write_config(
            tmp_path,
            extra=f"allowed_clients: [{CLIENT_IP}/32]",
            blocklist=BLOCKLIST + f"{LISTED_IP}\n",
        )
        with inside(network.gateway):
            mode = ["--mode", "transparent"]
            gateway = start_gateway(tmp_path, config, 30.0, "0.0.0.0", mode, port)
        stack.callback(gateway.stop)

        def device(address: str, port: int) -> socket.socket:
            """A socket of the pupil's device to a server beyond the gateway."""
            with inside(network.client):
                sock = socket.create_connection((address, port), timeout=20)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock

        # The dodges wait on the gateway's socket table, so they run in its namespace.
        for deliver in DODGES.values():
            with inside(network.gateway), device(ORIGIN_IP, 443) as sock:
                answer = TlsClient(ALLOWED).request(sock, deliver, _get(ALLOWED, "/lesson"))
            assert b"hello from the far host" in answer
            with inside(network.gateway), device(ORIGIN_IP, 443) as sock:
                deliver(sock, client_hello(FORBIDDEN))
                closes(sock)
        assert len(tls.connections) == len(DODGES) and FORBIDDEN.encode() not in tls.received

        for host, status in ((ALLOWED, b"200"), (FORBIDDEN, b"403")):
            with device(ORIGIN_IP, 80) as sock:
                sock.sendall(b"\r\n" + _get(host, "/page"))
                assert receive_head(sock).startswith(b"HTTP/1.1 " + status)
        assert web.received.count(b"GET /page HTTP/1.1\r\n") == 1
        assert FORBIDDEN.encode() not in web.received

        # Raw TCP: refused; logged, or recorded (method TCP) where the address is listed.
        for address in (ORIGIN_IP, LISTED_IP):
            with device(address, 443) as sock:
                sock.sendall(b"SSH-2.0-OpenSSH_9.6p1 pupil\r\n")
                closes(sock)
        assert listed.connections == [] and len(tls.connections) == len(DODGES)
        line = f"refused a connection from {CLIENT_IP} to {ORIGIN_IP}:443"
        wait_until(lambda: line in gateway.log(), 10, "the refusal in the log")

        rows = gateway.wait_for_incidents(len(DODGES) + 2)
        assert [(row["method"], row["host"]) for row in rows] == [
            *[("TLS", FORBIDDEN)] * len(DODGES),
            ("GET", FORBIDDEN),
            ("TCP", LISTED_IP),
        ]
