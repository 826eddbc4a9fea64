"""A school network in Linux network namespaces: a pupil's device, the router, servers.

    client 10.201.0.2, .3 ── lan0 10.201.0.1  gateway  wan0 10.202.0.1 ── 10.202.0.2 origin
           fd00:201::2       lan0 fd00:201::1    │     wan0 fd00:202::1 ── fd00:202::2
                                     srv0 10.204.0.1 ── 10.204.0.2 servers

The client's default route is `gateway`, the school's router: in transparent mode the schoolgate
gateway itself; in explicit mode the router of the egress rules, with the schoolgate gateway on
the school's server network behind it (`servers`). `origin` stands for the internet.
Nothing here fakes a packet: the kernel routes, redirects and drops them.

Needs CAP_SYS_ADMIN and CAP_NET_ADMIN (root on a normal Linux machine). Where the machine
refuses, `school_network` fails the test with the reason: a transparent proxy that was never
exercised must not count as tested.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.realparts import Origin, serve, wait_until

CLIENT_IP, OUTSIDER_IP, LAN_IP = "10.201.0.2", "10.201.0.3", "10.201.0.1"
WAN_IP, ORIGIN_IP = "10.202.0.1", "10.202.0.2"
CLIENT_IP6, ORIGIN_IP6 = "fd00:201::2", "fd00:202::2"
SERVER_NETWORK, SERVER_IP = "10.204.0.0/24", "10.204.0.2"
LAN_INTERFACE = "lan0"
CONFIG = Path(__file__).resolve().parents[2] / "config"


@dataclass(frozen=True)
class Network:
    """The names of the four namespaces of one test."""

    client: str
    gateway: str
    origin: str
    servers: str


def run_in(namespace: str, command: list[str], text: str = "") -> subprocess.CompletedProcess[str]:
    """Run a command inside one namespace, as an operator would with `ip netns exec`."""
    return subprocess.run(
        ["ip", "netns", "exec", namespace, *command],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()},
    )


def run_ok(namespace: str, command: list[str], text: str = "") -> None:
    """Run a command inside one namespace; fail the test with its error if it fails."""
    result = run_in(namespace, command, text)
    assert result.returncode == 0, f"{' '.join(command)} in {namespace}: {result.stderr}"


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(
            f"this machine refused to build the test network (`ip {' '.join(args)}`: "
            f"{result.stderr.strip()}); transparent mode and access control need root with "
            "CAP_NET_ADMIN and CAP_SYS_ADMIN, so they are NOT tested here"
        )


@contextlib.contextmanager
def school_network() -> Iterator[Network]:
    """Create the namespaces and their links; delete them afterwards."""
    suffix = f"{os.getpid()}"
    network = Network(*(f"sg-{name}-{suffix}" for name in ("client", "gw", "origin", "srv")))
    created: list[str] = []
    try:
        for namespace in (network.client, network.gateway, network.origin, network.servers):
            _ip("netns", "add", namespace)
            created.append(namespace)
            _ip("-n", namespace, "link", "set", "lo", "up")
        for near, near_if, far, far_if in (
            (network.gateway, LAN_INTERFACE, network.client, "eth0"),
            (network.gateway, "wan0", network.origin, "eth0"),
            (network.gateway, "srv0", network.servers, "eth0"),
        ):
            veth = ("type", "veth", "peer", "name", far_if, "netns", far)
            _ip("link", "add", near_if, "netns", near, *veth)
        for namespace, interface, address in (
            (network.client, "eth0", f"{CLIENT_IP}/24"),
            (network.client, "eth0", f"{OUTSIDER_IP}/24"),
            (network.client, "eth0", f"{CLIENT_IP6}/64"),
            (network.gateway, LAN_INTERFACE, f"{LAN_IP}/24"),
            (network.gateway, LAN_INTERFACE, "fd00:201::1/64"),
            (network.gateway, "wan0", f"{WAN_IP}/24"),
            (network.gateway, "wan0", "fd00:202::1/64"),
            (network.gateway, "srv0", "10.204.0.1/24"),
            (network.origin, "eth0", f"{ORIGIN_IP}/24"),
            (network.origin, "eth0", f"{ORIGIN_IP6}/64"),
            (network.servers, "eth0", f"{SERVER_IP}/24"),
        ):
            # nodad: an IPv6 address is usable at once, not after duplicate detection.
            extra = ("nodad",) if ":" in address else ()
            _ip("-n", namespace, "addr", "add", address, "dev", interface, *extra)
            _ip("-n", namespace, "link", "set", interface, "up")
        for namespace, router in (
            (network.client, LAN_IP),
            (network.client, "fd00:201::1"),
            (network.origin, WAN_IP),
            (network.origin, "fd00:202::1"),
            (network.servers, "10.204.0.1"),
        ):
            _ip("-n", namespace, "route", "add", "default", "via", router)
        yield network
    finally:
        for namespace in created:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


def _words(value: str) -> str:
    """An nftables value as iptables.sh takes it: `{ "eth1", "eth2" }` becomes `eth1 eth2`."""
    return " ".join(re.findall(r'[^\s{},"]+', value))


def apply_rules(namespace: str, folder: str, firewall: str, settings: Mapping[str, str]) -> None:
    """Apply the shipped `config/<folder>/` rules in `namespace`, as the README says.

    `settings` are nftables defines (`{"LAN": '"lan0"'}`), set at the top of nftables.conf as
    an operator would, or given to iptables.sh as environment variables without the braces,
    quotes and commas (`LAN=lan0`).
    """
    rules = CONFIG / folder
    if firewall == "iptables":
        env = [f"{name}={_words(value)}" for name, value in settings.items()]
        command, text = ["env", *env, "sh", str(rules / "iptables.sh")], ""
    else:
        command, text = ["nft", "-f", "-"], (rules / "nftables.conf").read_text()
        for name, value in settings.items():
            text, found = re.subn(rf"(?m)^define {name} = .*$", f"define {name} = {value}", text)
            assert found == 1, f"no `define {name}` in config/{folder}/nftables.conf"
    run_ok(namespace, command, text)


@contextlib.contextmanager
def inside(namespace: str) -> Iterator[None]:
    """Move this thread into `namespace`: sockets it opens and processes it starts live there."""
    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{namespace}") as target:
        try:
            os.setns(target.fileno(), os.CLONE_NEWNET)
        except OSError as e:
            pytest.fail(f"this machine refused to enter network namespace {namespace}: {e}")
        try:
            yield
        finally:
            os.setns(home.fileno(), os.CLONE_NEWNET)


def family(address: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 address, AF_INET for an IPv4 one."""
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def connections(
    namespace: str, targets: list[tuple[str, int]], timeout: float = 1.0
) -> set[tuple[str, int]]:
    """The TCP `targets` that accept a connection from `namespace`, all tried at once.

    A firewall that drops a SYN gives no answer, so a dropped target is one that has not
    connected when `timeout` ends: long enough on a veth link, where an accepting server
    answers in well under a millisecond.
    """
    with inside(namespace):
        sockets = [socket.socket(family(host), socket.SOCK_STREAM) for host, _ in targets]
    accepted: set[tuple[str, int]] = set()
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector, contextlib.ExitStack() as stack:
        for sock, target in zip(sockets, targets, strict=True):
            stack.enter_context(sock)
            sock.setblocking(False)
            sock.connect_ex(target)
            selector.register(sock, selectors.EVENT_WRITE, (sock, target))
        while selector.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                sock, target = key.data
                selector.unregister(sock)
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    accepted.add(target)
    return accepted


@dataclass
class Datagrams:
    """What a UDP port in a namespace received; the stand-in for QUIC, DNS and NTP servers."""

    address: str
    port: int
    received: list[bytes] = field(default_factory=list)


@contextlib.contextmanager
def udp_listener(namespace: str, address: str, port: int) -> Iterator[Datagrams]:
    """Record every datagram to `address:port` inside `namespace` until the block ends."""
    record = Datagrams(address, port)
    with inside(namespace):
        sock = socket.socket(family(address), socket.SOCK_DGRAM)
    sock.bind((address, port))
    sock.settimeout(0.05)
    done = threading.Event()

    def receive() -> None:
        while not done.is_set():
            try:
                record.received.append(sock.recv(2048))
            except TimeoutError:
                continue

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        done.set()
        thread.join()
        sock.close()


def datagrams_past(
    namespace: str, dropped: Sequence[Datagrams], passed: Sequence[Datagrams]
) -> list[tuple[str, int]]:
    """Send one datagram from `namespace` to each listener: `dropped` first, then `passed`.

    Once every `passed` listener has its new datagram, the ones sent before it on the same path
    would have arrived too: the answer is the `dropped` listeners that received a new one
    (none, if the firewall dropped them).
    """
    before = {id(listener): len(listener.received) for listener in [*dropped, *passed]}
    for listener in [*dropped, *passed]:
        with inside(namespace):
            sock = socket.socket(family(listener.address), socket.SOCK_DGRAM)
        with sock:
            sock.sendto(b"probe", (listener.address, listener.port))

    def grew(listener: Datagrams) -> bool:
        return len(listener.received) > before[id(listener)]

    wait_until(lambda: all(grew(listener) for listener in passed), 5, "the open UDP ports")
    return [(listener.address, listener.port) for listener in dropped if grew(listener)]


@contextlib.contextmanager
def origin_udp(network: Network) -> Iterator[tuple[list[Datagrams], list[Datagrams]]]:
    """UDP listeners on the origin, as `datagrams_past` takes them: those the school's rules
    drop (QUIC, DNS over QUIC, DNS to a server not the school's; IPv4 and IPv6), and NTP's,
    which they let through."""
    with contextlib.ExitStack() as stack:
        quic, doq, dns, ntp, quic6, ntp6 = (
            stack.enter_context(udp_listener(network.origin, address, port))
            for address, port in (
                (ORIGIN_IP, 443), (ORIGIN_IP, 853), (ORIGIN_IP, 53), (ORIGIN_IP, 123),
                (ORIGIN_IP6, 443), (ORIGIN_IP6, 123),
            )
        )  # fmt: skip
        yield [quic, doq, dns, quic6], [ntp, ntp6]


@contextlib.contextmanager
def origin_web(network: Network, tls: ssl.SSLContext) -> Iterator[tuple[Origin, Origin]]:
    """The origin's web servers, HTTP on 80 and HTTPS on 443, recording every request."""
    serving = contextlib.contextmanager(serve)
    with contextlib.ExitStack() as stack:
        with inside(network.origin):
            web = stack.enter_context(serving(Origin(80, "http", address=ORIGIN_IP), None))
            secure = stack.enter_context(serving(Origin(443, "https", address=ORIGIN_IP), tls))
        yield web, secure
