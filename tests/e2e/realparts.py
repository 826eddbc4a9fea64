"""Real parts for end-to-end tests: a `schoolgate run` process, local origins, the SQLite file.

Nothing here is mocked: the gateway is the `schoolgate` console script (which becomes
mitmdump), the origins are real HTTP and HTTPS servers on loopback, and incidents are read
back from the database file the proxy wrote.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import socket
import socketserver
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
SCHOOL = "Weston All Saints <Test> School"

# `localhost` is listed, `127.0.0.1` is not: the same local origin is blocked by one name
# and allowed by the other, so no test needs the internet.
BLOCKLIST = """\
# category: social_networks (test)
localhost
facebook.com
fbcdn.net
"""


# The origins of these tests listen on loopback, on free ports: the gateway may reach them there.
LOOPBACK_ORIGINS = 'allow_destinations: [127.0.0.1/32, "::1/128"], connect_ports: [443, 1025-65535]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until[T](probe: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy; the proxy writes in batches."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            assert result, f"timed out after {timeout} s waiting for {what}"
            return result
        time.sleep(0.05)


# --- origins --------------------------------------------------------------------------------


@dataclass
class Origin:
    """A local web server that records every connection and request it receives."""

    port: int
    scheme: str
    requests: list[tuple[str, str]] = field(default_factory=list)  # (Host header, path)
    connections: int = 0
    address: str = "127.0.0.1"  # where it listens (another network namespace's, for instance)

    def url(self, host: str = "127.0.0.1", path: str = "/") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        origin: Origin = self.server.origin  # type: ignore[attr-defined]
        origin.requests.append((self.headers.get("Host", ""), self.path))
        body = b"hello from the origin\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, origin: Origin, tls: ssl.SSLContext | None) -> None:
        self.origin = origin
        self.tls = tls
        super().__init__((origin.address, origin.port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer's own looks its address up in DNS (getfqdn): seconds where DNS is unreachable.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.origin.address, self.origin.port

    def get_request(self) -> tuple[socket.socket, object]:
        sock, address = super().get_request()
        self.origin.connections += 1
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address


def serve(origin: Origin, tls: ssl.SSLContext | None) -> Iterator[Origin]:
    server = _Server(origin, tls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield origin
    server.shutdown()
    server.server_close()


# --- the gateway ----------------------------------------------------------------------------


@dataclass
class Gateway:
    """A running `schoolgate run` (mitmdump with the addon) and the files it uses."""

    root: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> Path:
        return self.root / "data" / "schoolgate.db"

    @property
    def ca_cert(self) -> Path:
        return self.root / "mitmproxy" / "mitmproxy-ca-cert.pem"

    def log(self) -> str:
        return (self.root / "gateway.log").read_text(errors="replace")

    def incidents(self) -> list[dict[str, object]]:
        if not self.database.exists():
            return []
        with sqlite3.connect(self.database) as db:
            db.row_factory = sqlite3.Row
            try:
                rows = db.execute("SELECT * FROM incidents ORDER BY id").fetchall()
            except sqlite3.OperationalError:  # the table is created with the first batch
                return []
        return [dict(row) for row in rows]

    def wait_for_incidents(self, count: int, timeout: float = 10.0) -> list[dict[str, object]]:
        def enough() -> list[dict[str, object]] | None:
            rows = self.incidents()
            return rows if len(rows) >= count else None

        return wait_until(enough, timeout, f"{count} incident(s) in {self.database}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def write_config(root: Path, **overrides: str) -> Path:
    """A complete policy file for tests, in `root/config`, lists in `root/blocklists`."""
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "blocklists").mkdir(exist_ok=True)
    (root / "blocklists" / "social_networks.txt").write_text(overrides.pop("blocklist", BLOCKLIST))
    (root / "blocklists" / "allow.txt").write_text("=allowed.facebook.com\n")
    settings = {
        "https_block": "refuse",
        "when": "always",
        "action": "block",
        "site": "test",
        "extra": "",  # more top-level YAML, such as allowed_clients
        "proxy": LOOPBACK_ORIGINS,  # the keys under `proxy:`, as a flow mapping's inside
        "database": "sqlite:///../data/schoolgate.db",
        **overrides,
    }
    path = root / "config" / "policy.yaml"
    path.write_text(
        f"""\
school:
  name: "{SCHOOL}"
  site: {settings["site"]}
  timezone: Europe/London
  contact: "the IT office <it@example.sch.uk>"
  policy_url: https://example.sch.uk/policies/social-media
school_day:
  weekdays: [mon, tue, wed, thu, fri]
  start: "08:30"
  end: "15:30"
groups:
  staff: {{networks: [10.10.0.0/16], users: [alice]}}
  loopback: {{networks: [127.0.0.0/8, "::1/128"]}}
default_group: everyone
categories:
  social_networks: [../blocklists/social_networks.txt]
allowlist: [../blocklists/allow.txt]
rules:
  - name: school-it-ban
    groups: ["*"]
    categories: [social_networks]
    when: {settings["when"]}
    action: {settings["action"]}
    clause: "Section 3"
    policy: "We do not allow school personnel to use the school IT system to access social
      networking websites."
https_block: {settings["https_block"]}
database: {settings["database"]}
retention_days: 365
proxy: {{{settings["proxy"]}}}
{settings["extra"]}
"""
    )
    return path


def start_gateway(
    root: Path,
    config: Path | None = None,
    timeout: float = 30.0,
    listen_host: str = "127.0.0.1",
    run_args: Sequence[str] = (),
    port: int | None = None,
    mitmdump_args: Sequence[str] = (),
    command_prefix: Sequence[str] = (),
) -> Gateway:
    """Start `schoolgate run [run_args]` on `port` (default: a free one); wait until it listens.

    `command_prefix` runs it through another command that execs it (`unshare ...`), so the
    process stays the gateway's.
    """
    config = config or write_config(root)
    port = port or free_port()
    with (root / "gateway.log").open("wb") as log:  # the child keeps its own copy
        process = subprocess.Popen(
            [
                *command_prefix,
                str(BIN / "schoolgate"),
                "run",
                "--config",
                str(config),
                "--listen-host",
                listen_host,
                "--listen-port",
                str(port),
                *run_args,
                "--",
                "--set",
                f"confdir={root / 'mitmproxy'}",
                *mitmdump_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    gateway = Gateway(root, port, process)

    def listening() -> bool:
        if process.poll() is not None:
            pytest.fail(f"the gateway exited with {process.returncode}:\n{gateway.log()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return False
        return True

    wait_until(listening, timeout, f"the gateway to listen on {port}")
    return gateway


@contextlib.contextmanager
def gateways(folder: Path) -> Iterator[Callable[..., Gateway]]:
    """Start gateways in `folder/<name>` with config overrides; all are killed at the end.

    Starting a name again restarts that gateway on its own files (config, database, log).
    """
    started: list[Gateway] = []

    def start(name: str | None = None, **overrides: str) -> Gateway:
        root = folder / (name or f"gw{len(started)}")
        config = root / "config" / "policy.yaml"
        if overrides or not config.exists():
            write_config(root, **overrides)
        gateway = start_gateway(root, config)
        started.append(gateway)
        return gateway

    try:
        yield start
    finally:
        for gateway in started:
            if gateway.process.poll() is None:
                gateway.process.kill()
                gateway.process.wait()


def curl(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run the real curl; the proxy environment of the machine is never used."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "10", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
