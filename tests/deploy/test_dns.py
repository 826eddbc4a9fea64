"""DNS as a second layer, for real: `schoolgate run --dns` answering dig, forwarding allowed names
to a resolver started by the test (no internet here), refusing blocked ones by the policy.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import dns

from reports.cli import build_parser, dns_mode
from tests.e2e.realparts import Gateway, start_gateway, wait_until

ANSWER = "192.0.2.10"


class Upstream:
    """A resolver that answers every A question with ANSWER and remembers the names it was asked."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.asked: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return  # closed
            query = dns.DNSMessage.unpack(data)
            question = query.question
            assert question is not None
            self.asked.append(question.name)
            records = [dns.ResourceRecord.A(question.name, ipaddress.IPv4Address(ANSWER))]
            answer = query.succeed(records if question.type == dns.types.A else [])
            self.sock.sendto(answer.packed, peer)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    resolver = Upstream()
    yield resolver
    resolver.sock.close()


@pytest.fixture
def dns_gateway(tmp_path: Path, upstream: Upstream) -> Iterator[tuple[Gateway, int]]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run_args = ["--dns", "--dns-port", str(port), "--dns-upstream", f"127.0.0.1:{upstream.port}"]
    gateway = start_gateway(tmp_path, run_args=run_args)
    try:
        # Its second listener can take a while on a loaded machine.
        wait_until(lambda: gateway.log().count("listening at") >= 2, 30, "the DNS listener")
        yield gateway, port
    finally:
        gateway.stop()


def _dig(port: int, name: str, *options: str) -> tuple[str, list[str]]:
    """The response status and the answer records, as dig prints them."""
    command = ["dig", "@127.0.0.1", "-p", str(port), *options, "+tries=1", "+time=5"]
    command += ["+noall", "+comments", "+answer", name]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    status = result.stdout.split("status: ", 1)[1].split(",", 1)[0]
    answers = [line.split()[-1] for line in result.stdout.splitlines() if line and line[0] != ";"]
    return status, answers


def test_dns_refuses_blocked_names_and_forwards_the_rest(
    dns_gateway: tuple[Gateway, int], upstream: Upstream
):
    gateway, port = dns_gateway
    assert _dig(port, "www.example.org") == ("NOERROR", [ANSWER])
    assert upstream.asked == ["www.example.org"]

    assert _dig(port, "www.facebook.com") == ("NXDOMAIN", [])
    assert _dig(port, "WWW.FaceBook.com.", "AAAA") == ("NXDOMAIN", [])
    assert _dig(port, "m.facebook.com", "+tcp") == ("NXDOMAIN", [])
    # Firefox's canary: keep DNS-over-HTTPS off on this network.
    assert _dig(port, "use-application-dns.net") == ("NXDOMAIN", [])
    assert upstream.asked == ["www.example.org"]  # blocked names never leave the school

    gateway.wait_for_incidents(2)
    time.sleep(0.6)  # two writer intervals: nothing more comes
    rows = gateway.incidents()
    assert [(r["method"], r["host"], r["url"], r["client_group"]) for r in rows] == [
        ("DNS", "www.facebook.com", None, "loopback"),  # A and AAAA: one attempt
        ("DNS", "m.facebook.com", None, "loopback"),
    ]


def test_ddr_gets_no_data_so_no_device_upgrades_past_the_school_resolver(
    dns_gateway: tuple[Gateway, int], upstream: Upstream
):
    """RFC 9462: a device asks `_dns.resolver.arpa` (SVCB) which encrypted resolver to use."""
    _gateway, port = dns_gateway
    assert _dig(port, "www.example.org") == ("NOERROR", [ANSWER])  # the upstream answers A
    for kind in ("SVCB", "A", "TYPE64"):
        assert _dig(port, "_dns.resolver.arpa", kind) == ("NOERROR", []), kind
    assert _dig(port, "_DNS.Resolver.ARPA.", "SVCB", "+tcp") == ("NOERROR", [])
    assert _dig(port, "use-application-dns.net") == ("NXDOMAIN", [])  # the canary as before
    assert upstream.asked == ["www.example.org"]  # answered by the gateway, never forwarded


def test_run_dns_adds_mitmproxy_dns_modes():
    args = build_parser().parse_args(["run", "--dns"])
    assert dns_mode(args.dns_port, args.dns_upstream) == "dns@53"
    assert dns_mode(5353, "10.0.0.2") == "reverse:dns://10.0.0.2@5353"
