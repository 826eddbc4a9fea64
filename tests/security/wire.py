"""Raw-socket moves for the enforcement tests: a CONNECT tunnel, bytes sent in the pieces a
dodging client chooses, and the conditions to wait on (the gateway read them; it closed).

"The first byte alone" must really arrive alone: the client sends it with Nagle off and waits
until the kernel says the gateway's end of the connection has read it (its receive queue in
/proc/net/tcp is empty) before sending the rest. No sleeps.
"""

from __future__ import annotations

import socket
import time

from tests.clienthello import Delivery, in_records
from tests.e2e.realparts import wait_until


def tunnel(proxy_port: int, host: str, port: int) -> socket.socket:
    """A CONNECT tunnel to host:port through the explicit proxy on loopback."""
    sock = socket.create_connection(("127.0.0.1", proxy_port), timeout=20)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head = receive_head(sock)
    if not head.startswith(b"HTTP/1.1 200"):
        sock.close()
        raise AssertionError(head)
    return sock


def receive_head(sock: socket.socket) -> bytes:
    """Bytes up to the end of an HTTP head (and whatever came with it)."""
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def receive_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length body, leaving the connection idle."""
    data = bytearray(receive_head(sock))
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def receive_all(sock: socket.socket) -> bytes:
    """Everything until the other end closes (a reset counts as closing)."""
    data = bytearray()
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return bytes(data)


def closes(sock: socket.socket, within: float = 30.0) -> float:
    """Wait for the gateway to close the connection; the seconds it took. Fails if it sends
    anything or stays open."""
    sock.settimeout(within)
    start = time.monotonic()
    assert receive_all(sock) == b"", "the gateway answered instead of closing"
    return time.monotonic() - start


def unread_by_peer(sock: socket.socket) -> int | None:
    """Bytes the other end of this TCP connection has received but not read yet, from the
    kernel's table of this thread's network namespace (IPv4)."""
    host, port = sock.getsockname()[:2]
    ours = f"{int.from_bytes(socket.inet_aton(host), 'little'):08X}:{port:04X}"
    with open("/proc/thread-self/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[2] == ours and fields[3] == "01":  # its remote end is us; ESTABLISHED
                return int(fields[4].split(":")[1], 16)
    return None


def first_byte_alone(sock: socket.socket, data: bytes) -> None:
    """Send the first byte, wait until the gateway has read it by itself, then the rest."""
    sock.sendall(data[:1])
    wait_until(lambda: unread_by_peer(sock) == 0, 10, "the gateway to read the first byte")
    sock.sendall(data[1:])


def in_small_records(sock: socket.socket, hello: bytes) -> None:
    """The ClientHello cut into records of 40 bytes or less."""
    sock.sendall(in_records(hello, [40, 7, 13]))


def small_records_first_byte_alone(sock: socket.socket, hello: bytes) -> None:
    first_byte_alone(sock, in_records(hello, [40, 7, 13]))


DODGES: dict[str, Delivery] = {
    "first byte alone": first_byte_alone,
    "small records": in_small_records,
    "small records, first byte alone": small_records_first_byte_alone,
}
