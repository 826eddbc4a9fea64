"""Real TLS ClientHellos, and a TLS client that sends its first flight the way a dodging client
would: the first byte alone, or the ClientHello cut into several small records.

Python's `ssl` over memory buffers does the TLS; this module only decides how its bytes go
onto the socket. Re-framing a handshake message into several records is legal TLS, so a real
server completes the handshake either way: what differs is only what a proxy sees first.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import ssl
from collections.abc import Callable

# How the first flight goes out: send(sock, bytes).
type Delivery = Callable[[socket.socket, bytes], None]


@functools.cache
def client_hello(name: str) -> bytes:
    """The first flight of a real TLS client for `name`: one handshake record."""
    return TlsClient(name)._first_flight()


def in_records(hello: bytes, sizes: list[int]) -> bytes:
    """The ClientHello message of one record `hello`, cut into records of `sizes` bytes (cycled)."""
    message, records, offset, turn = hello[5:], [], 0, 0
    while offset < len(message):
        size = sizes[turn % len(sizes)]
        piece = message[offset : offset + size]
        records.append(b"\x16\x03\x01" + len(piece).to_bytes(2) + piece)
        offset, turn = offset + size, turn + 1
    return b"".join(records)


class TlsClient:
    """A TLS client for `name` (certificates not checked: the servers are the tests' own)."""

    def __init__(self, name: str) -> None:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=name)

    def _first_flight(self) -> bytes:
        with contextlib.suppress(ssl.SSLWantReadError):
            self.tls.do_handshake()
        return self.outgoing.read()

    def request(self, sock: socket.socket, deliver: Delivery, request: bytes) -> bytes:
        """Handshake over `sock` (the first flight through `deliver`), then `exchange`; b"" if
        the handshake never completed."""
        deliver(sock, self._first_flight())
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(self.outgoing.read())
                data = sock.recv(65536)
                if not data:
                    return b""
                self.incoming.write(data)
        sock.sendall(self.outgoing.read())
        return self.exchange(sock, request)

    def exchange(self, sock: socket.socket, request: bytes) -> bytes:
        """Send `request` inside TLS; the answer's head and what came with it."""
        self.tls.write(request)
        sock.sendall(self.outgoing.read())
        answer = bytearray()
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            self.incoming.write(data)
            try:
                answer += self.tls.read(65536)
            except ssl.SSLWantReadError:
                continue
            except ssl.SSLZeroReturnError:
                break
        return bytes(answer)
