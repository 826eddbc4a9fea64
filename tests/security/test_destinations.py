"""Never an open relay (issue 12, finding 6, and the connection-time half of finding 4).

A real mitmdump with the shipped defaults (CONNECT to 443, plain HTTP to squid's Safe_ports,
never the gateway's own addresses or link-local space), raw sockets and curl as the clients.
Every refusal is shown at a server that records what it receives: the server a relay would
reach got nothing, and, as the control, the same server is reached once the config allows it.

The gateway's own services cannot live in a far namespace (they would not be the gateway's),
so they are listeners in the host namespace, where the gateway runs: on loopback and on the
veth's gateway side, an address of one of the gateway's interfaces. Names that lead there come
from /etc/hosts and /etc/resolv.conf as the gateway alone sees them, in a mount namespace of
its own (mitmproxy resolves with getaddrinfo, as every program on the gateway does).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mitmproxy import dns

from tests.deploy.netns import (
    CLIENT_IP,
    CONFIG,
    LAN_INTERFACE,
    LAN_IP,
    apply_rules,
    inside,
    run_in,
    run_ok,
    school_network,
)
from tests.e2e.realparts import Gateway, curl, free_port, start_gateway, wait_until, write_config
from tests.security.farhost import FarHost, Recorder, listener, recorder

SAFE_PORTS = "80, 21, 443, 70, 210, 1025-65535, 280, 488, 591, 777"
METADATA = "169.254.169.254"
# The policy's list names none of the hosts here: what refuses them is the destination rules.
BLOCKLIST = "facebook.com\n"

REFUSED = "403 Forbidden: schoolgate refused this request: "  # the proxy's refusal, then why


# --- the gateway, started with the shipped destination rules ----------------------------------


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Start gateways with `proxy:` keys (default: none, the shipped rules) and, optionally,
    the gateway's own /etc files (`files`); all are stopped at the end of the test."""
    started: list[Gateway] = []

    def start(proxy: str = "", files: dict[str, str] | None = None) -> Gateway:
        root = tmp_path / f"gw{len(started)}"
        config = write_config(root, proxy=proxy, blocklist=BLOCKLIST)
        if files:
            gateway = _in_own_mounts(files, lambda: start_gateway(root, config))
        else:
            gateway = start_gateway(root, config)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


def _in_own_mounts[T](files: dict[str, str], run: Callable[[], T]) -> T:
    """Run `run` in a thread whose mount namespace shows `files` (path: text) as given; the
    processes it starts keep that view, the rest of the machine never sees it."""
    result: list[T] = []
    failure: list[BaseException] = []

    def thread() -> None:
        try:
            os.unshare(os.CLONE_NEWNS)
            _mount("--make-rprivate", "/")
            for path, text in files.items():
                with tempfile.NamedTemporaryFile("w", delete=False, prefix="sg-etc-") as copy:
                    copy.write(text)
                os.chmod(copy.name, 0o644)
                _mount("--bind", copy.name, path)
            result.append(run())
        except BaseException as e:  # handed to the test's own thread
            failure.append(e)

    worker = threading.Thread(target=thread)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return result[0]


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"`mount {' '.join(args)}` failed: {done.stderr.strip()} (needs root)")


# --- clients -----------------------------------------------------------------------------------


def _connect(gateway: Gateway, target: str) -> tuple[int, str, socket.socket]:
    """Send CONNECT over a raw socket: the status, the body of the answer, the socket."""
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer and (chunk := sock.recv(4096)):
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lengths = [int(h[15:]) for h in head.lower().split(b"\r\n") if h.startswith(b"content-length:")]
    length = lengths[0] if lengths else 0
    while len(body) < length and (chunk := sock.recv(4096)):
        body += chunk
    return int(head.split()[1]), body.decode(), sock


def _through_tunnel(sock: socket.socket, server_name: str = "www.example.org") -> str | None:
    """TLS and a request through an open tunnel: the answer, or None if the gateway closes it."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with context.wrap_socket(sock, server_hostname=server_name) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {server_name}\r\n\r\n".encode())
            return tls.recv(4096).decode()
    except (ssl.SSLError, OSError):
        return None


def _get(gateway: Gateway, url: str) -> tuple[int, str]:
    """curl through the gateway: the status and the body."""
    return _answer(curl("-x", gateway.proxy, "-w", "\n%{http_code}", url).stdout)


def _answer(output: str) -> tuple[int, str]:
    """The status and the body (without its last line break) of `curl -w "\\n%{http_code}"`."""
    body, _, status = output.rpartition("\n")
    return int(status), body.removesuffix("\n")


def _refusal_lines(gateway: Gateway, destination: str) -> list[str]:
    return [line for line in gateway.log().splitlines() if f"-> {destination}: " in line]


# --- ports ---------------------------------------------------------------------------------------


def test_connect_to_ssh_and_postgresql_is_refused_and_nothing_reaches_them(
    far: FarHost, far_tls: ssl.SSLContext, start: Callable[..., Gateway]
) -> None:
    gateway = start()
    with (
        recorder(far, 22, answer=None) as ssh,
        recorder(far, 5432, answer=None) as postgres,
        recorder(far, 443, answer="tls", tls=far_tls) as web,
    ):
        for server in (ssh, postgres):
            for _ in range(3):  # as a client that retries
                status, body, sock = _connect(gateway, f"{far.address}:{server.port}")
                sock.close()
                assert status == 403
                assert body == (
                    f"{REFUSED}port {server.port} is not a web port (connect_ports: 443)\n"
                )
        # The control: the same far host, on the web's port, gets its tunnel.
        status, _, sock = _connect(gateway, f"{far.address}:443")
        assert status == 200
        assert "hello from the far host" in (_through_tunnel(sock) or "")
        assert web.plaintext.startswith(b"GET / HTTP/1.1\r\n")
        assert ssh.connections == [] and postgres.connections == []

    # Logged once per client, destination and reason, not once per retry; not an incident.
    for destination in (f"{far.address}:22", f"{far.address}:5432"):
        lines = wait_until(lambda d=destination: _refusal_lines(gateway, d), 5, "the log line")
        assert len(lines) == 1, lines
    assert gateway.incidents() == []


def test_plain_http_reaches_safe_ports_only(far: FarHost, start: Callable[..., Gateway]) -> None:
    gateway = start()
    with (
        recorder(far, 22, answer=None) as ssh,
        recorder(far, 25, answer=None) as smtp,
        recorder(far, 80) as web,
        recorder(far, 8080) as high,
    ):
        for server in (ssh, smtp):
            status, body = _get(gateway, f"http://{far.address}:{server.port}/")
            assert status == 403
            assert body == (
                f"{REFUSED}port {server.port} is not a web port (http_ports: {SAFE_PORTS})"
            )
        assert _get(gateway, f"http://{far.address}/lesson") == (200, "hello from the far host")
        assert _get(gateway, f"http://{far.address}:8080/") == (200, "hello from the far host")
        assert web.received.startswith(b"GET /lesson HTTP/1.1\r\n") and high.connections
        assert ssh.connections == [] and smtp.connections == []


def test_a_school_opens_a_port_in_its_config(
    far: FarHost, far_tls: ssl.SSLContext, start: Callable[..., Gateway]
) -> None:
    gateway = start(proxy="connect_ports: [443, 8443-8444]")
    with recorder(far, 8443, answer="tls", tls=far_tls):
        status, _, sock = _connect(gateway, f"{far.address}:8443")
        assert status == 200
        assert "hello from the far host" in (_through_tunnel(sock) or "")
    status, body, sock = _connect(gateway, f"{far.address}:8445")
    sock.close()
    assert (status, body) == (
        403,
        f"{REFUSED}port 8445 is not a web port (connect_ports: 443, 8443-8444)\n",
    )


def test_a_blocked_site_on_another_port_is_still_a_blocked_site(
    start: Callable[..., Gateway],
) -> None:
    """The policy answers first: the block page and the incident, as on port 443."""
    gateway = start()
    status, body, sock = _connect(gateway, "www.facebook.com:8443")
    sock.close()
    assert status == 403 and "This site is blocked on the school network" in body
    [row] = gateway.wait_for_incidents(1)
    assert (row["method"], row["host"]) == ("CONNECT", "www.facebook.com")
    assert _refusal_lines(gateway, "www.facebook.com:8443") == []


# --- the gateway itself -----------------------------------------------------------------------


@pytest.fixture
def own_services(far: FarHost) -> Iterator[tuple[Recorder, Recorder]]:
    """The gateway's own services: one on loopback, one on an address of its interfaces."""
    port = free_port()
    with listener("127.0.0.1", port) as loop, listener(far.gateway_side, port) as interface:
        yield loop, interface


def _hosts(far: FarHost) -> dict[str, str]:
    return {
        "/etc/hosts": (
            "127.0.0.1 localhost\n"
            "127.0.0.1 loop.schoolgate.test\n"
            f"{far.gateway_side} own.schoolgate.test\n"
            f"{far.address} mixed.schoolgate.test\n"
            "127.0.0.1 mixed.schoolgate.test\n"
            f"{METADATA} metadata.google.internal\n"
        )
    }


def test_the_gateway_s_own_services_are_never_reached(
    far: FarHost, own_services: tuple[Recorder, Recorder], start: Callable[..., Gateway]
) -> None:
    """By address, by the spellings the system reads, by names that resolve there."""
    loop, interface = own_services
    port = loop.port
    gateway = start(proxy="connect_ports: [443, 1025-65535]", files=_hosts(far))
    own = f"{far.gateway_side} is the gateway itself"
    loopback = "127.0.0.1 is the gateway itself"

    # Addresses: refused at once, and the answer says why.
    for target, reason in (
        (f"127.0.0.1:{port}", loopback),
        (f"[::ffff:127.0.0.1]:{port}", loopback),
        (f"{far.gateway_side}:{port}", own),
    ):
        status, body, sock = _connect(gateway, target)
        sock.close()
        assert status == 403 and reason in body, target
        status, body = _get(gateway, f"http://{target}/")
        assert status == 403 and reason in body, target

    # Names and other spellings: refused where they resolve to, when the gateway would connect.
    for host, reason in (
        ("loop.schoolgate.test", loopback),
        ("localhost", loopback),
        ("2130706433", loopback),
        ("own.schoolgate.test", own),
        ("mixed.schoolgate.test", loopback),  # one of its addresses is the gateway's
    ):
        status, body = _get(gateway, f"http://{host}:{port}/")
        assert status in (403, 502) and reason in body, (host, status, body)
        status, _, sock = _connect(gateway, f"{host}:{port}")
        assert status == 403 or _through_tunnel(sock) is None, host
        sock.close()

    assert loop.connections == [] and interface.connections == []
    assert gateway.incidents() == []


def test_a_listed_destination_is_reached(
    far: FarHost, own_services: tuple[Recorder, Recorder], start: Callable[..., Gateway]
) -> None:
    """The control: `allow_destinations` lists them, and the same listeners answer."""
    loop, interface = own_services
    listed = f"allow_destinations: [127.0.0.1/32, {far.gateway_side}/32]"
    gateway = start(proxy=f"connect_ports: [443, 1025-65535], {listed}", files=_hosts(far))
    for host in ("127.0.0.1", "loop.schoolgate.test", far.gateway_side, "own.schoolgate.test"):
        assert _get(gateway, f"http://{host}:{loop.port}/") == (200, "hello from the far host")
    assert len(loop.connections) == 2 and len(interface.connections) == 2


# --- link-local: the cloud's metadata service -------------------------------------------------


@contextlib.contextmanager
def _metadata_service(far: FarHost) -> Iterator[FarHost]:
    """169.254.169.254 on the far host, routed there from the gateway as a cloud routes it."""
    _ip("-n", far.namespace, "addr", "add", f"{METADATA}/32", "dev", "lo")
    _ip("route", "add", f"{METADATA}/32", "via", far.address)
    try:
        yield dataclasses.replace(far, address=METADATA)
    finally:
        subprocess.run(["ip", "route", "del", f"{METADATA}/32", "via", far.address])


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


def test_the_cloud_metadata_service_is_refused_unless_listed(
    far: FarHost, start: Callable[..., Gateway]
) -> None:
    refused = start(files=_hosts(far))
    allowed = start(proxy=f"allow_destinations: [{METADATA}/32]")
    reason = f"{METADATA} is link-local (cloud metadata)"
    with _metadata_service(far) as metadata, recorder(metadata, 80) as service:
        url = f"http://{METADATA}/computeMetadata/v1/"
        assert _get(refused, url) == (
            403,
            f"{REFUSED}{reason}",
        )
        status, body = _get(refused, "http://metadata.google.internal/computeMetadata/v1/")
        assert status == 502 and reason in body
        assert service.connections == []
        assert _get(allowed, url) == (200, "hello from the far host")  # the control
        assert service.received.startswith(b"GET /computeMetadata/v1/ HTTP/1.1\r\n")


# --- DNS rebinding: the address checked is the address connected to ----------------------------


@contextlib.contextmanager
def _rebinding_dns(far: FarHost, name: str, first: str, then: str) -> Iterator[list[str]]:
    """A DNS server on the far host that answers `name` with `first` once and with `then` ever
    after, with TTL 0: a rebinding attacker's. Yields the addresses it has given."""
    with inside(far.namespace):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((far.address, 53))
    given: list[str] = []

    def serve() -> None:
        while True:
            try:
                data, peer = sock.recvfrom(4096)
            except OSError:
                return
            query = dns.DNSMessage.unpack(data)
            question = query.question
            answers = []
            if question and question.name == name and question.type == dns.types.A:
                given.append(first if not given else then)
                answers = [dns.ResourceRecord.A(name, ipaddress.IPv4Address(given[-1]), ttl=0)]
            sock.sendto(query.succeed(answers).packed, peer)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield given
    finally:
        sock.close()


def test_a_name_that_rebinds_to_the_gateway_reaches_only_the_address_checked(
    far: FarHost, start: Callable[..., Gateway]
) -> None:
    """Checked at one address, connected at another is the rebinding attack; here the second
    look-up never happens, and the next connection is checked again."""
    name, port = "rebind.attacker.test", free_port()
    resolver = f"nameserver {far.address}\noptions attempts:1 timeout:2\n"
    files = {"/etc/hosts": "127.0.0.1 localhost\n", "/etc/resolv.conf": resolver}
    gateway = start(files=files)
    with (
        _rebinding_dns(far, name, far.address, "127.0.0.1") as given,
        recorder(far, port) as outside,
        listener("127.0.0.1", port) as inside_gateway,
    ):
        assert _get(gateway, f"http://{name}:{port}/first") == (200, "hello from the far host")
        status, body = _get(gateway, f"http://{name}:{port}/second")
        assert status == 502 and "127.0.0.1 is the gateway itself (loopback)" in body
        assert given == [far.address, "127.0.0.1"]  # one look-up per connection
        assert outside.received.startswith(b"GET /first HTTP/1.1\r\n")
        assert inside_gateway.connections == []


def test_a_server_reached_by_name_is_reused_for_the_next_request(
    far: FarHost, start: Callable[..., Gateway]
) -> None:
    """The gateway connects to the checked address but keeps the name, so keep-alive works."""
    gateway = start(files={"/etc/hosts": f"{far.address} intranet.school.test\n"})
    with recorder(far, 80) as intranet:
        urls = [f"http://intranet.school.test/{n}" for n in range(3)]
        result = curl("-x", gateway.proxy, *urls)
        assert result.stdout == "hello from the far host\n" * 3, result.stderr
        assert len(intranet.connections) == 1
        assert intranet.received.count(b"Host: intranet.school.test\r\n") == 3


# --- transparent mode: the original destination ------------------------------------------------


def test_transparent_mode_never_relays_to_the_gateway_itself(
    tmp_path: Path, far_tls: ssl.SSLContext
) -> None:
    """A pupil's device sends to the gateway's own LAN address; the firewall hands it to the
    proxy, whose original destination is then the gateway: refused, on 80 and on 443."""
    with school_network() as network, contextlib.ExitStack() as stack:
        with inside(network.gateway):
            web = stack.enter_context(listener(LAN_IP, 80))
            tls = stack.enter_context(listener(LAN_IP, 443, answer="tls", tls=far_tls))
        port = free_port()
        run_ok(network.gateway, ["sysctl", "-p", str(CONFIG / "transparent" / "sysctl.conf")])
        settings = {"LAN": f'"{LAN_INTERFACE}"', "PROXY_PORT": str(port)}
        apply_rules(network.gateway, "transparent", "nftables", settings)

        def gateway(allow: str) -> Gateway:
            clients = f"allowed_clients: [{CLIENT_IP}/32]"
            config = write_config(tmp_path, extra=clients, proxy=allow, blocklist=BLOCKLIST)
            with inside(network.gateway):
                run_args = ["--mode", "transparent"]
                started = start_gateway(tmp_path, config, 30, "0.0.0.0", run_args, port)
            stack.callback(started.stop)
            return started

        def from_device(url: str) -> subprocess.CompletedProcess[str]:
            # HTTPS by a name the device resolves to the gateway: a ClientHello with an SNI,
            # so that what refuses it is its destination, not the rule for TLS without one.
            resolve = ["--resolve", f"admin.school.test:443:{LAN_IP}"]
            command = ["curl", "-sS", "-k", "--max-time", "10", "-w", "\n%{http_code}", *resolve]
            return run_in(network.client, [*command, url])

        refusing = gateway("")
        reason = f"{LAN_IP} is the gateway itself"
        answer = _answer(from_device(f"http://{LAN_IP}/admin").stdout)
        assert answer == (403, f"{REFUSED}{reason}")
        assert from_device("https://admin.school.test/admin").returncode != 0
        assert web.connections == [] and tls.connections == []
        line = f"-> {LAN_IP}:443: {reason}"
        wait_until(lambda: line in refusing.log(), 5, "the refusal in the log")
        refusing.stop()

        gateway(f"allow_destinations: [{LAN_IP}/32]")  # the control: listed, reached
        for url in (f"http://{LAN_IP}/admin", "https://admin.school.test/admin"):
            assert _answer(from_device(url).stdout) == (200, "hello from the far host")
        assert len(web.connections) == 1 and len(tls.connections) == 1
