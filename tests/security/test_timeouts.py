"""Finding 8: no header or idle timeout. A client that opened connections and sent half a
request (or nothing, or the first byte of a ClientHello) held them for ever.

With `proxy.head_timeout` and `proxy.idle_timeout` set short, each such connection is closed
once its deadline passes: the tests wait for the socket to close, never on a sleep. A TLS
tunnel passed through is no idle HTTP connection: it outlives both, and still carries requests.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

import pytest

from tests.clienthello import TlsClient
from tests.e2e.realparts import Gateway
from tests.security.farhost import FarHost, recorder
from tests.security.wire import closes, receive_response, tunnel

HEAD_TIMEOUT, IDLE_TIMEOUT = 2, 4
ALLOWED = "www.example.org"
LESSON = f"GET /lesson HTTP/1.1\r\nHost: {ALLOWED}\r\n\r\n".encode()


@pytest.fixture
def timed(gateway_factory: Callable[..., Gateway]) -> Gateway:
    """A gateway with short deadlines, and tunnels to port 80 so a plain request can be in one."""
    deadlines = f"head_timeout: {HEAD_TIMEOUT}, idle_timeout: {IDLE_TIMEOUT}"
    return gateway_factory(proxy=f"{deadlines}, connect_ports: [80, 443]")


def test_a_connection_without_a_complete_request_head_is_closed(
    timed: Gateway, far: FarHost
) -> None:
    def connection(first_bytes: bytes) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", timed.port), timeout=20)
        sock.sendall(first_bytes)
        return sock

    def tunnelled(first_bytes: bytes) -> socket.socket:
        sock = tunnel(timed.port, far.address, 80)
        sock.sendall(first_bytes)
        return sock

    with recorder(far, 80) as server:
        half = f"GET http://{far.address}/lesson HTTP/1.1\r\nHost: {ALLOWED}\r\n".encode()
        for opened, first_bytes in (
            (connection, half),  # half a request head
            (connection, b""),  # nothing at all
            (tunnelled, b"\x16"),  # a tunnel, and the first byte of a ClientHello
            (tunnelled, half),
        ):
            with opened(first_bytes) as sock:
                assert closes(sock) > HEAD_TIMEOUT - 1  # closed by the deadline, not at once
        assert server.connections == []


def test_an_idle_kept_alive_connection_is_closed_but_a_tunnel_is_not(
    timed: Gateway, far: FarHost, far_tls: ssl.SSLContext
) -> None:
    with recorder(far, 80), recorder(far, 443, "tls", far_tls) as tls_server:
        with tunnel(timed.port, far.address, 443) as passed_through:
            client = TlsClient(ALLOWED)
            assert b" 200 " in client.request(passed_through, socket.socket.sendall, LESSON)

            with socket.create_connection(("127.0.0.1", timed.port), timeout=20) as sock:
                for _ in range(2):  # kept alive between requests
                    sock.sendall(f"GET http://{far.address}/lesson HTTP/1.1\r\n".encode() +
                                 f"Host: {ALLOWED}\r\n\r\n".encode())  # fmt: skip
                    assert receive_response(sock).startswith(b"HTTP/1.1 200")
                assert closes(sock) > IDLE_TIMEOUT - 1

            # Idle longer than both timeouts, the tunnel still carries a request.
            assert b" 200 " in client.exchange(passed_through, LESSON)
        assert tls_server.plaintext.count(b"GET /lesson") == 2
