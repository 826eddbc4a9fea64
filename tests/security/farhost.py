"""A server beyond the gateway that records every byte it receives, in its own network namespace.

    test process, gateway (host namespace) ── veth 10.203.N.1 ─── 10.203.N.2 far host (namespace)

The gateway refuses its own addresses (loopback included), so a server that a bypass would
reach must live elsewhere: here, on a private address in a namespace of its own, as a school's
intranet server or an internet site would. The `Recorder` accepts any TCP connection and keeps
what arrives, byte for byte, so a security test can assert that the forbidden bytes (a
ClientHello naming www.facebook.com, a request for a blocked host) never arrived, beside a
control request that shows the same server is reachable when the policy allows it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.deploy.netns import family, inside

_numbers = itertools.count(1)


@dataclass(frozen=True)
class FarHost:
    """A network namespace reachable from the host namespace at `address`."""

    namespace: str
    address: str  # the far side, where servers listen
    gateway_side: str  # the host namespace's end of the link (one of the gateway's own addresses)


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(
            f"this machine refused to build the test network (`ip {' '.join(args)}`: "
            f"{result.stderr.strip()}); the security tests need root with CAP_NET_ADMIN and "
            "CAP_SYS_ADMIN, so they are NOT tested here"
        )


@contextlib.contextmanager
def far_host() -> Iterator[FarHost]:
    """Create a namespace linked to this one by a veth pair; delete it afterwards."""
    number = next(_numbers) % 250 + 1
    suffix = f"{os.getpid() % 100000}-{number}"
    namespace, near, far = f"sg-far-{suffix}", f"sgn{suffix}"[:15], f"sgf{suffix}"[:15]
    subnet = f"10.203.{(os.getpid() + number) % 250 + 1}"
    host = FarHost(namespace, f"{subnet}.2", f"{subnet}.1")
    _ip("netns", "add", namespace)
    try:
        _ip("link", "add", near, "type", "veth", "peer", "name", far, "netns", namespace)
        _ip("addr", "add", f"{host.gateway_side}/30", "dev", near)
        _ip("link", "set", near, "up")
        _ip("-n", namespace, "addr", "add", f"{host.address}/30", "dev", far)
        _ip("-n", namespace, "link", "set", far, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        yield host
    finally:
        subprocess.run(["ip", "link", "del", near], capture_output=True)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


@dataclass
class Connection:
    """What one client connection delivered to the recorder."""

    peer: tuple[str, int]
    received: bytearray = field(default_factory=bytearray)  # raw bytes, as they arrived
    plaintext: bytearray = field(default_factory=bytearray)  # inside TLS, when it answers TLS


@dataclass
class Recorder:
    """A TCP server on the far host: records each connection's bytes; optionally answers.

    `answer="http"` replies `200 hello from the far host` to each request head (the control);
    `answer="tls"` completes a TLS handshake with `tls` first (the raw bytes, ClientHello
    included, are recorded, and what arrives inside TLS too); `answer=None` only listens and
    records (an SSH or PostgreSQL port stand-in).
    """

    address: str
    port: int
    answer: str | None = "http"
    tls: ssl.SSLContext | None = None
    connections: list[Connection] = field(default_factory=list)
    _sock: socket.socket | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def received(self) -> bytes:
        """Every byte that reached this server, over all connections."""
        with self._lock:
            return b"".join(bytes(c.received) for c in self.connections)

    @property
    def plaintext(self) -> bytes:
        """Every byte that arrived inside TLS, over all connections."""
        with self._lock:
            return b"".join(bytes(c.plaintext) for c in self.connections)

    def _serve(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, peer = self._sock.accept()
            except OSError:
                return
            record = Connection(peer)
            with self._lock:
                self.connections.append(record)
            threading.Thread(target=self._handle, args=(conn, record), daemon=True).start()

    def _handle(self, conn: socket.socket, record: Connection) -> None:
        conn.settimeout(30)
        with contextlib.suppress(OSError, ssl.SSLError), conn:
            tls = _Tls(self.tls, conn) if self.answer == "tls" else None
            while data := conn.recv(65536):
                with self._lock:
                    record.received += data
                if tls is not None:
                    data = tls.feed(data)
                    with self._lock:
                        record.plaintext += data
                if self.answer is not None and b"\r\n\r\n" in data:
                    body = b"hello from the far host\n"
                    answer = (
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                    conn.sendall(tls.send(answer) if tls is not None else answer)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()


class _Tls:
    """The server side of TLS over memory buffers, so the raw bytes can be recorded first."""

    def __init__(self, context: ssl.SSLContext | None, conn: socket.socket) -> None:
        assert context is not None, "answer='tls' needs a server context"
        self.conn = conn
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.handshaken = False

    def feed(self, data: bytes) -> bytes:
        """Take raw bytes; answer the handshake; return the application data they carried."""
        self.incoming.write(data)
        if not self.handshaken:
            try:
                self.tls.do_handshake()
                self.handshaken = True
            except ssl.SSLWantReadError:
                pass
            self._flush()
            if not self.handshaken:
                return b""
        plain = bytearray()
        with contextlib.suppress(ssl.SSLWantReadError):
            while chunk := self.tls.read(65536):
                plain += chunk
        self._flush()
        return bytes(plain)

    def send(self, data: bytes) -> bytes:
        self.tls.write(data)
        return self.outgoing.read()

    def _flush(self) -> None:
        if pending := self.outgoing.read():
            self.conn.sendall(pending)


@contextlib.contextmanager
def recorder(
    host: FarHost, port: int, answer: str | None = "http", tls: ssl.SSLContext | None = None
) -> Iterator[Recorder]:
    """Listen on `host.address:port` inside the far namespace until the block ends."""
    with listener(host.address, port, answer, tls, host.namespace) as server:
        yield server


@contextlib.contextmanager
def listener(
    address: str,
    port: int,
    answer: str | None = "http",
    tls: ssl.SSLContext | None = None,
    namespace: str | None = None,
) -> Iterator[Recorder]:
    """A recorder on `address:port` in `namespace`, by default this thread's: in the host
    namespace, a service of the gateway itself (on loopback, or on one of its interfaces)."""
    server = Recorder(address, port, answer, tls)
    with inside(namespace) if namespace else contextlib.nullcontext():
        sock = socket.socket(family(address), socket.SOCK_STREAM)
    # The socket belongs to the namespace it was made in, whichever thread serves it.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(64)
    server._sock = sock
    threading.Thread(target=server._serve, daemon=True).start()
    try:
        yield server
    finally:
        server.close()
