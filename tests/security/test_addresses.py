"""IP spellings, malformed hosts, the gateway chained into itself and TLS without SNI, against a
real `schoolgate run` (mitmdump), with raw sockets and real TLS.

Each test proves the forbidden bytes did NOT arrive at a server that records what it receives
(on the far host, in its own network namespace), beside a control that shows the same server
is reachable when the policy allows it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.realparts import BLOCKLIST, LOOPBACK_ORIGINS, Gateway, wait_until
from tests.security.farhost import FarHost, Recorder, recorder

HTTP_PORT, TLS_PORT = 8000, 443  # on the far host: a port plain HTTP may use, and HTTPS's


def _exchange(gateway: Gateway, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes to the proxy; return its answer, head and body (by Content-Length)."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
             if line.startswith(b"content-length:")),
            0,
        )  # fmt: skip
        while len(body) < length and (chunk := sock.recv(65536)):
            body += chunk
        return head + b"\r\n\r\n" + body


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def _get(target: str, host: str | None = None) -> bytes:
    headers = f"Host: {host}\r\n" if host is not None else ""
    return f"GET {target} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n".encode()


def _connect(target: str) -> bytes:
    return f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()


def spellings(address: str) -> list[str]:
    """Ways the OS reads as `address`: a number, hex, octal parts, short form, a trailing dot,
    IPv4-mapped IPv6 (in brackets, as a URL writes it)."""
    value = int(ipaddress.IPv4Address(address))
    a, b, c, d = (int(part) for part in address.split("."))
    return [
        str(value),
        f"0x{value:08x}",
        f"0{a:o}.0{b:o}.0{c:o}.0{d:o}",
        f"{a}.{b}.{c * 256 + d}",
        f"{address}.",
        f"[::ffff:{address}]",
    ]


def _nothing_arrived(server: Recorder) -> None:
    assert server.connections == [] and server.received == b""


def _incidents_by_rule(gateway: Gateway, rule: str) -> list[dict[str, object]]:
    return [row for row in gateway.incidents() if row["rule"] == rule]


# --- (a) list entries beaten by other spellings ------------------------------------------------


def test_every_spelling_of_a_listed_address_is_blocked_and_recorded_canonically(
    gateway_factory: Callable[..., Gateway], far: FarHost
) -> None:
    network = ipaddress.ip_network(f"{far.address}/30", strict=False)
    listed = f"{BLOCKLIST}1.1.1.1\n=8.8.8.8\n{network}\n"
    gateway = gateway_factory("listed", blocklist=listed)
    control = gateway_factory("control")  # the same policy without those entries
    with recorder(far, HTTP_PORT) as server, recorder(far, TLS_PORT, answer=None) as tls_server:
        requests = [_get(f"http://{s}:{HTTP_PORT}/feed") for s in spellings(far.address)]
        requests += [_get(f"http://{s}/") for s in ("16843009", "0x01010101", "1.1.1.1.")]
        requests += [_get("http://[::ffff:1.1.1.1]/"), _connect("0x08080808:443")]
        requests += [_connect(f"{s}:{TLS_PORT}") for s in spellings(far.address)]
        for request in requests:
            assert _status(_exchange(gateway, request)) == 403, request
        rows = gateway.wait_for_incidents(len(requests))
        assert {row["host"] for row in rows} == {far.address, "1.1.1.1", "8.8.8.8"}
        assert {row["category"] for row in rows} == {"social_networks"}
        assert sorted(row["method"] for row in rows if row["host"] == "8.8.8.8") == ["CONNECT"]
        _nothing_arrived(server)
        _nothing_arrived(tls_server)
        # Control: the same server, through a gateway that does not list it.
        answer = _exchange(control, _get(f"http://{spellings(far.address)[1]}:{HTTP_PORT}/"))
        assert _status(answer) == 200 and b"hello from the far host" in answer
        assert len(server.connections) == 1
        assert server.received.startswith(b"GET /")


# --- (b) the gateway chained into itself -------------------------------------------------------


def _open_descriptors(gateway: Gateway) -> int:
    return len(os.listdir(f"/proc/{gateway.process.pid}/fd"))


def test_the_gateway_chained_into_itself_is_refused_in_every_spelling(
    gateway: Gateway,
) -> None:
    port = gateway.port
    plain = ["127.0.0.1", "127.0.0.2", "[::1]"]
    other = [*spellings("127.0.0.1")[:-1], "127.1", "0", "0.0.0.0", "[::]", "[::ffff:7f00:2]"]
    looped = f"-> 127.0.0.1:{port}: 127.0.0.1:{port} is this proxy itself"
    assert _status(_exchange(gateway, _connect(f"2130706433:{port}"))) == 403
    wait_until(lambda: looped in gateway.log(), 10, "the refusal in the proxy's log")
    baseline = _open_descriptors(gateway)
    answers = []
    for _ in range(10):  # a burst: a loop of chains must not pile up descriptors
        for spelling in plain + other:
            answers.append(_exchange(gateway, _connect(f"{spelling}:{port}")))
            answers.append(_exchange(gateway, _get(f"http://{spelling}:{port}/")))
        for spelling in other:  # the proxy's own pages are at its plain address only
            answers.append(_exchange(gateway, _get(f"http://{spelling}:{port}/schoolgate/status")))
    assert {_status(a) for a in answers} == {403}
    assert not any(b'"policy"' in a or b"application/json" in a for a in answers)
    assert b"this proxy itself" in answers[0] and b"schoolgate refused" in answers[1]
    # The plain address still reaches the proxy's own pages (addressed to it, not through it).
    pac = _exchange(gateway, _get(f"http://127.0.0.1:{port}/proxy.pac"))
    assert _status(pac) == 200 and b"FindProxyForURL" in pac
    status = _exchange(gateway, _get(f"http://127.0.0.1:{port}/schoolgate/status"))
    assert _status(status) == 200
    assert _status(_exchange(gateway, _get(f"http://2130706433:{port}/proxy.pac"))) == 403
    wait_until(
        lambda: _open_descriptors(gateway) <= baseline + 2,
        10,
        f"the proxy's descriptors ({_open_descriptors(gateway)}) to return to {baseline}",
    )
    # Logged once per client, destination and reason a minute, however many retries; not an
    # incident: the incident log is the record of the social-media policy.
    assert gateway.log().count(looped) == 1
    assert gateway.incidents() == []


@pytest.fixture
def origin_server() -> Iterator[Callable[[], tuple[int, list[bytes]]]]:
    """Start loopback servers that record each request head and answer 200."""
    sockets: list[socket.socket] = []

    def start() -> tuple[int, list[bytes]]:
        server = socket.create_server(("127.0.0.1", 0))
        sockets.append(server)
        received: list[bytes] = []

        def serve() -> None:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                with conn:
                    received.append(conn.recv(65536))
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

        threading.Thread(target=serve, daemon=True).start()
        return server.getsockname()[1], received

    yield start
    for server in sockets:
        server.close()


def test_loopback_is_refused_unless_allow_destinations_lists_it(
    gateway_factory: Callable[..., Gateway], origin_server: Callable[[], tuple[int, list[bytes]]]
) -> None:
    port, received = origin_server()
    closed = gateway_factory("closed", proxy="")
    for spelling in spellings("127.0.0.1"):
        answer = _exchange(closed, _get(f"http://{spelling}:{port}/"))
        assert _status(answer) == 403 and b"is the gateway itself" in answer
    assert received == []
    opened = gateway_factory("opened", proxy=LOOPBACK_ORIGINS)  # the control
    assert _status(_exchange(opened, _get(f"http://0x7f000001:{port}/"))) == 200
    assert len(received) == 1


# --- (c) malformed hosts and ports -------------------------------------------------------------


def _malformed(far: str) -> list[bytes]:
    """Requests for the far host that a host cannot be read from, each a different way."""
    url = f"http://{far}:{HTTP_PORT}/"
    hosts = [
        f"{far}:abc",
        f"{far}:0",
        f"{far}:65536",
        f"{far}:99999999999",
        f"{far}:\N{ARABIC-INDIC DIGIT EIGHT}\N{ARABIC-INDIC DIGIT ZERO}",
        f"{far} :{HTTP_PORT}",
        f"www.facebook.com:{HTTP_PORT}\x00",
        f"www.face book.com:{HTTP_PORT}",
        "",
        "x" * 300 + ".example.org",
        "1.2.3.4.5",
    ]
    requests = [_get(url, host) for host in hosts]
    requests.append(_get(url, f"{far}:{HTTP_PORT}\r\nHost: www.facebook.com"))  # two Hosts
    requests += [
        _connect(f"{far}:abc"),
        _connect(f"{far}:0"),
        _connect(f"{far}:65536"),
        _connect(f"{far}:\N{ARABIC-INDIC DIGIT FOUR}\N{ARABIC-INDIC DIGIT FOUR}3"),
        _get(f"http://{far}:{HTTP_PORT}x/", f"{far}:{HTTP_PORT}"),
    ]
    return requests


def test_a_malformed_host_or_port_gets_400_and_nothing_reaches_the_server(
    gateway: Gateway, far: FarHost
) -> None:
    with recorder(far, HTTP_PORT) as server, recorder(far, TLS_PORT, answer=None) as tls_server:
        for request in _malformed(far.address):
            answer = _exchange(gateway, request)
            assert _status(answer) == 400, (request, answer)
            assert b"facebook" not in answer and b"\x00" not in answer
        _nothing_arrived(server)
        _nothing_arrived(tls_server)
        # Control: the same server, through the same proxy, with a host that can be read.
        answer = _exchange(gateway, _get(f"http://{far.address}:{HTTP_PORT}/lesson"))
        assert _status(answer) == 200 and b"hello from the far host" in answer
        assert len(server.connections) == 1 and server.received.startswith(b"GET /lesson ")
    assert gateway.incidents() == []  # nothing was asked for: no incident
    assert gateway.log().count("schoolgate: 400 to 127.0.0.1: malformed") == 1  # once a minute


def test_the_400_page_says_why_without_repeating_what_was_sent(gateway: Gateway) -> None:
    answer = _exchange(gateway, _get("http://203.0.113.5/", "<script>x</script>:99999999999"))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert _status(answer) == 400
    assert b"content-type: text/plain" in head.lower() and b"nosniff" in head.lower()
    assert b"<script>" not in answer
    assert body.startswith(b"400 Bad Request: schoolgate refused this request: malformed ")


# --- (d) TLS without SNI to an address -----------------------------------------------------------


def _hello_without_sni(gateway: Gateway, target: str) -> bytes:
    """CONNECT, then a real TLS handshake whose ClientHello names no site; GET if it completes.
    Returns what came back inside TLS (b'' when the gateway refused)."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(_connect(target))
        assert _status(sock.recv(4096)) == 200  # the address itself is allowed
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        try:
            with context.wrap_socket(sock, server_hostname=None) as tls:
                tls.sendall(b"GET /sni-less HTTP/1.1\r\nHost: x\r\n\r\n")
                return tls.recv(4096)
        except (ssl.SSLError, OSError):
            return b""


def test_tls_without_sni_to_an_address_is_refused_and_recorded(
    gateway_factory: Callable[..., Gateway], far: FarHost, far_tls: ssl.SSLContext
) -> None:
    gateway = gateway_factory("refusing")
    allowing = gateway_factory(
        "allowing", proxy=f"{LOOPBACK_ORIGINS}, allow_tls_without_sni: [loopback]"
    )
    with recorder(far, TLS_PORT, answer="tls", tls=far_tls) as server:
        for spelling in (far.address, f"0x{int(ipaddress.IPv4Address(far.address)):08x}"):
            assert _hello_without_sni(gateway, f"{spelling}:{TLS_PORT}") == b""
        _nothing_arrived(server)
        rows = gateway.wait_for_incidents(2)
        assert {(r["method"], r["rule"], r["category"], r["host"], r["action"]) for r in rows} == {
            ("TLS", "tls-without-sni", "tls_without_sni", far.address, "block")
        }
        # Control: the group the school allows it for reaches the same server.
        answer = _hello_without_sni(allowing, f"{far.address}:{TLS_PORT}")
        assert b"hello from the far host" in answer
        wait_until(lambda: b"GET /sni-less" in server.plaintext, 10, "the request inside TLS")
        assert _incidents_by_rule(allowing, "tls-without-sni") == []


def test_a_client_hello_that_names_a_site_to_the_same_address_passes(
    gateway: Gateway, far: FarHost, far_tls: ssl.SSLContext
) -> None:
    with recorder(far, TLS_PORT, answer="tls", tls=far_tls) as server:
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
            sock.sendall(_connect(f"{far.address}:{TLS_PORT}"))
            assert _status(sock.recv(4096)) == 200
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            with context.wrap_socket(sock, server_hostname="intranet.example.org") as tls:
                tls.sendall(b"GET /named HTTP/1.1\r\nHost: intranet.example.org\r\n\r\n")
                assert b"hello from the far host" in tls.recv(4096)
        assert b"GET /named" in server.plaintext
    assert gateway.incidents() == []
