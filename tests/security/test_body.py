"""Finding 7, first half: a blocked request's body was read in full before the block (a 50 MB
upload to a blocked host was held in the proxy's memory, then answered).

Now the request is decided on its head: the block page goes out while the client is still
uploading, the rest of the body is dropped as it arrives, and the proxy's peak memory (VmHWM
in /proc) does not grow by the body's size. The far host records that none of it arrived; the
control shows an allowed upload reaches it whole.
"""

from __future__ import annotations

import socket
from pathlib import Path

from addons.selftest import BLOCKED_HEADER
from tests.e2e.realparts import Gateway, curl, wait_until
from tests.security.farhost import FarHost, recorder
from tests.security.wire import receive_all, receive_head

MB = 1 << 20
UPLOAD = 50 * MB
FORBIDDEN, ALLOWED = "www.facebook.com", "www.example.org"


def _post(address: str, host: str, size: int) -> bytes:
    return (
        f"POST http://{address}/upload HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n"
    ).encode()


def _peak_memory_kib(pid: int) -> int:
    """The process's peak resident set size so far (VmHWM), in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))


def test_a_blocked_upload_is_answered_at_once_and_its_body_dropped(
    gateway: Gateway, far: FarHost, tmp_path: Path
) -> None:
    with recorder(far, 80) as server:
        # The control: an allowed upload reaches the far host, every byte of it.
        allowed = b"lesson notes " * (2 * MB // 13)
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
            sock.sendall(_post(far.address, ALLOWED, len(allowed)) + allowed)
            assert receive_head(sock).startswith(b"HTTP/1.1 200")
        wait_until(lambda: server.received.endswith(allowed), 10, "the allowed upload")

        before = _peak_memory_kib(gateway.process.pid)
        piece = b"x" * MB
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
            sock.sendall(_post(far.address, FORBIDDEN, UPLOAD) + piece)
            page = receive_head(sock)  # with 49 of the 50 MB not sent yet
            assert page.startswith(b"HTTP/1.1 403") and BLOCKED_HEADER.encode() in page
            for _ in range(UPLOAD // MB - 1):
                sock.sendall(piece)
            receive_all(sock)  # the gateway closes once the body is over
        grown = _peak_memory_kib(gateway.process.pid) - before
        assert grown < 20 * 1024, f"the proxy's peak memory grew by {grown} KiB"

        # curl, as a real client: it asks for "100 Continue" first, and gets the page instead.
        upload = tmp_path / "upload.bin"
        upload.write_bytes(piece * (UPLOAD // MB))
        url, host = f"http://{far.address}/upload", f"Host: {FORBIDDEN}"
        result = curl("-x", gateway.proxy, "-H", host, "--data-binary", f"@{upload}",
                      "-w", "\n%{http_code}", url)  # fmt: skip
        assert result.stdout.endswith("\n403") and FORBIDDEN in result.stdout, result.stderr

        assert len(server.connections) == 1 and FORBIDDEN.encode() not in server.received
    rows = gateway.wait_for_incidents(2)
    assert [(row["method"], row["host"]) for row in rows] == [("POST", FORBIDDEN)] * 2
