"""A school network in three Linux network namespaces: a pupil's device, the gateway, a server.

    client 10.201.0.2, .3 ── lan0 10.201.0.1 gateway wan0 10.202.0.1 ── 10.202.0.2 origin

The client's default route is the gateway, as on a school LAN whose router is the gateway.
Nothing here fakes a packet: the kernel routes, redirects and drops them.

Needs CAP_SYS_ADMIN and CAP_NET_ADMIN (root on a normal Linux machine). Where the machine
refuses, `school_network` fails the test with the reason: a transparent proxy that was never
exercised must not count as tested.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

CLIENT_IP, OUTSIDER_IP, LAN_IP = "10.201.0.2", "10.201.0.3", "10.201.0.1"
WAN_IP, ORIGIN_IP = "10.202.0.1", "10.202.0.2"
LAN_INTERFACE = "lan0"


@dataclass(frozen=True)
class Network:
    """The names of the three namespaces of one test."""

    client: str
    gateway: str
    origin: str


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
    """Create the three namespaces and their links; delete them afterwards."""
    suffix = f"{os.getpid()}"
    network = Network(f"sg-client-{suffix}", f"sg-gw-{suffix}", f"sg-origin-{suffix}")
    created: list[str] = []
    try:
        for namespace in (network.client, network.gateway, network.origin):
            _ip("netns", "add", namespace)
            created.append(namespace)
            _ip("-n", namespace, "link", "set", "lo", "up")
        for near, near_if, far, far_if in (
            (network.gateway, LAN_INTERFACE, network.client, "eth0"),
            (network.gateway, "wan0", network.origin, "eth0"),
        ):
            veth = ("type", "veth", "peer", "name", far_if, "netns", far)
            _ip("link", "add", near_if, "netns", near, *veth)
        for namespace, interface, address in (
            (network.client, "eth0", f"{CLIENT_IP}/24"),
            (network.client, "eth0", f"{OUTSIDER_IP}/24"),
            (network.gateway, LAN_INTERFACE, f"{LAN_IP}/24"),
            (network.gateway, "wan0", f"{WAN_IP}/24"),
            (network.origin, "eth0", f"{ORIGIN_IP}/24"),
        ):
            _ip("-n", namespace, "addr", "add", address, "dev", interface)
            _ip("-n", namespace, "link", "set", interface, "up")
        _ip("-n", network.client, "route", "add", "default", "via", LAN_IP)
        _ip("-n", network.origin, "route", "add", "default", "via", WAN_IP)
        yield network
    finally:
        for namespace in created:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


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
