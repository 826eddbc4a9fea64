"""Finding 12: privacy and hygiene. With `log_urls: host`, mitmproxy's own error lines still
carried full URLs (and raw request heads); the PAC endpoint wrote the request's Host header
into the JavaScript it serves.

Requests with a secret in the path and query go through a real mitmdump, in every way that
makes mitmproxy log something, and its whole output is searched for the secret. The PAC file
is fetched with hostile Host headers and evaluated with Node.js as a browser would.
"""

from __future__ import annotations

import socket
from pathlib import Path

from tests.deploy.test_pac import _answers
from tests.e2e.realparts import Gateway, curl, free_port, wait_until
from tests.security.farhost import FarHost, recorder
from tests.security.wire import receive_all, receive_response

SECRET = "pupil-name-and-search-terms"
ALLOWED = "www.example.org"


def test_with_log_urls_host_nothing_the_proxy_prints_has_a_path_or_query(
    gateway: Gateway, far: FarHost
) -> None:
    url = f"http://{far.address}"
    with recorder(far, 80) as server:
        target = f"{url}/a/{SECRET}?q={SECRET}"
        allowed = curl("-x", gateway.proxy, "-H", f"Host: {ALLOWED}", target)
        assert allowed.stdout == "hello from the far host\n"
        blocked = curl("-x", gateway.proxy, f"http://www.facebook.com/{SECRET}?q={SECRET}")
        assert "www.facebook.com" in blocked.stdout
        closed_port = f"http://{far.address}:{free_port()}/{SECRET}?q={SECRET}"
        assert curl("-x", gateway.proxy, "-o", "/dev/null", "-w", "%{http_code}",
                    closed_port).stdout == "502"  # fmt: skip

        # mitmproxy logs what the client sent when a kept-alive connection's next request is
        # malformed, or ends half-way: after a good first request on each connection.
        first = f"GET {url}/lesson HTTP/1.1\r\nHost: {ALLOWED}\r\n\r\n".encode()
        for then in (
            f"GET {url}/{SECRET} x?q={SECRET} HTTP/1.1 x\r\nHost: {ALLOWED}\r\n\r\n",
            f"GET {url}/{SECRET}?q={SECRET} HTTP/1.1\r\nHost: {ALLOWED}\r\n",
        ):
            with socket.create_connection(("127.0.0.1", gateway.port), timeout=20) as sock:
                sock.sendall(first)
                assert receive_response(sock).startswith(b"HTTP/1.1 200")
                sock.sendall(then.encode())
                sock.shutdown(socket.SHUT_WR)
                receive_all(sock)
        assert SECRET.encode() in server.received  # it did go through, where allowed

    for line in ("Bad HTTP request line", "Client closed connection before completing request"):
        wait_until(lambda line=line: line in gateway.log(), 10, f"mitmproxy's line {line!r}")
    wait_until(lambda: "error establishing server connection" in gateway.log(), 10, "a 502")
    assert SECRET not in gateway.log()


def _pac(port: int, host: bytes) -> tuple[bytes, bytes]:
    """The status line and body of /proxy.pac asked for with this Host header."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"GET /proxy.pac HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        answer = receive_all(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], body


def test_the_pac_file_names_the_gateway_by_a_valid_name_never_by_what_the_device_sent(
    gateway: Gateway, tmp_path: Path
) -> None:
    port = gateway.port
    pac = tmp_path / "proxy.pac"

    def served_proxy(host: bytes) -> str | None:
        """What the served PAC file answers for a web URL, evaluated by Node.js; None if the
        proxy refused the request."""
        status, body = _pac(port, host)
        if not status.startswith(b"HTTP/1.1 200"):
            return None
        pac.write_bytes(body)
        answers = _answers(pac, "https://www.facebook.com/", "http://printer/")
        assert answers["http://printer/"] == "DIRECT"
        return answers["https://www.facebook.com/"]

    gateway_itself = f"PROXY 127.0.0.1:{port}"
    assert served_proxy(f"127.0.0.1:{port}".encode()) == gateway_itself
    assert served_proxy(f"wpad.school.example:{port}".encode()) == (
        f"PROXY wpad.school.example:{port}"
    )
    hostile = [
        b'"); alert(1); //',
        b'wpad"); alert(1); //',
        b"wpad\r\n \"); alert('folded')",  # a header folded onto a second line
        b"wpad\n\"); alert('line feed')",
        b"a_b",  # not a host name, though mitmproxy lets it through
        b"-wpad-",
        b"1.2.3",  # not an address, not a name
        b"wpad." + b"a" * 5000,
    ]
    for host in hostile:
        status, body = _pac(port, host + f":{port}".encode())
        if status.startswith(b"HTTP/1.1 200"):  # else mitmproxy refused it (400, escaped HTML)
            assert b"alert" not in body and host not in body, host
        assert served_proxy(host + f":{port}".encode()) in (None, gateway_itself), host
