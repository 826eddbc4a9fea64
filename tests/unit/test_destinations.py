"""Where the gateway may connect: the port lists, its own addresses, link-local space, and
`proxy.connect_ports`, `proxy.http_ports` and `proxy.allow_destinations` in the config.

The rules without a proxy: tests/security/test_destinations.py shows them in a real mitmdump,
with a server that records that nothing reached it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from addons.config import HTTP_PORTS, ProxyConfig
from addons.destinations import (
    CONNECT,
    HTTP,
    Address,
    AddrInfo,
    CheckedNames,
    Destinations,
    describe,
    ip_of,
    is_own_address,
)
from addons.hosts import canonical_host
from tests.unit.support import BASE_CONFIG, PolicyFiles, line_of

SAFE_PORTS = "80, 21, 443, 70, 210, 1025-65535, 280, 488, 591, 777"
GATEWAY = ipaddress.ip_address("10.203.0.1")  # stands in for an interface of the gateway
METADATA = "169.254.169.254"


def _rules(
    *,
    allow: tuple[str, ...] = (),
    connect: tuple[tuple[int, int], ...] = ((443, 443),),
    is_own: object = None,
    ttl: float = 2.0,
) -> Destinations:
    proxy = ProxyConfig(
        "127.0.0.1",
        8080,
        "regular",
        connect_ports=connect,
        allow_destinations=tuple(ipaddress.ip_network(a) for a in allow),
    )
    own = is_own if callable(is_own) else (lambda address: address == GATEWAY)
    return Destinations(proxy, own, ttl=ttl)


# --- ports ------------------------------------------------------------------------------------


def test_by_default_a_connect_reaches_port_443_only_as_squid_ssl_ports() -> None:
    rules = _rules()
    assert rules.port_refusal(CONNECT, 443) is None
    for port in (22, 25, 80, 5432, 8443):
        assert rules.port_refusal(CONNECT, port) == (
            f"port {port} is not a web port (connect_ports: 443)"
        )


def test_by_default_plain_http_reaches_squid_safe_ports() -> None:
    rules = _rules()
    for port in (80, 21, 443, 70, 210, 280, 488, 591, 777, 1025, 8080, 65535):
        assert rules.port_refusal(HTTP, port) is None, port
    for port in (0, 22, 25, 110, 143, 1024, 65536):
        assert rules.port_refusal(HTTP, port) == (
            f"port {port} is not a web port (http_ports: {SAFE_PORTS})"
        )


def test_a_range_of_connect_ports_is_inclusive() -> None:
    rules = _rules(connect=((443, 443), (8443, 8445)))
    assert [rules.port_refusal(CONNECT, p) is None for p in (8442, 8443, 8445, 8446)] == [
        False,
        True,
        True,
        False,
    ]


def test_a_raw_tcp_entry_opens_its_own_port_to_a_tunnel_and_no_other() -> None:
    proxy = ProxyConfig("127.0.0.1", 8080, "regular", raw_tcp=frozenset({("10.0.0.5", 22)}))
    rules = Destinations(proxy, lambda address: False)
    assert rules.refusal(CONNECT, "10.0.0.5", 22) is None
    refused = "port 22 is not a web port (connect_ports: 443)"
    assert rules.refusal(CONNECT, "10.0.0.6", 22) == refused
    assert (
        rules.refusal(HTTP, "10.0.0.5", 22)
        == f"port 22 is not a web port (http_ports: {SAFE_PORTS})"
    )


# --- addresses --------------------------------------------------------------------------------

REFUSED = {
    "127.0.0.1": "127.0.0.1 is the gateway itself (loopback)",
    "127.8.9.10": "127.8.9.10 is the gateway itself (loopback)",
    "::1": "::1 is the gateway itself (loopback)",
    "::ffff:127.0.0.1": "127.0.0.1 is the gateway itself (loopback)",
    "0.0.0.0": "0.0.0.0 is the gateway itself (this host)",
    "0.1.2.3": "0.1.2.3 is the gateway itself (this host)",
    "::": ":: is the gateway itself (this host)",
    "10.203.0.1": "10.203.0.1 is the gateway itself",
    "::ffff:10.203.0.1": "10.203.0.1 is the gateway itself",
    "169.254.169.254": "169.254.169.254 is link-local (cloud metadata)",
    "::ffff:169.254.169.254": "169.254.169.254 is link-local (cloud metadata)",
    "169.254.1.1": "169.254.1.1 is link-local (cloud metadata)",
    "fe80::1": "fe80::1 is link-local",
    "fe80::1%eth0": "fe80::1%eth0 is link-local",
    "fd00:ec2::254": "fd00:ec2::254 is the cloud's metadata service",
}


@pytest.mark.parametrize(("host", "reason"), REFUSED.items(), ids=REFUSED.keys())
def test_the_gateway_itself_and_link_local_space_are_refused(host: str, reason: str) -> None:
    assert _rules().address_refusal(host, 443) == reason


@pytest.mark.parametrize(
    "host",
    ["10.0.0.5", "172.16.4.4", "192.168.1.20", "fd00:20::5", "93.184.215.14", "2001:db8::1"],
)
def test_the_school_s_own_servers_and_the_web_stay_reachable(host: str) -> None:
    assert _rules().address_refusal(host, 443) is None


def test_a_name_is_left_to_the_connection_time_check() -> None:
    assert _rules().address_refusal("localhost", 443) is None
    assert _rules().refusal(CONNECT, "localhost", 443) is None


def test_allow_destinations_opens_the_listed_addresses_only_and_never_a_port() -> None:
    rules = _rules(allow=("127.0.0.1/32", "169.254.169.254/32", "::1/128"))
    assert rules.address_refusal("127.0.0.1", 443) is None
    assert rules.address_refusal("::ffff:127.0.0.1", 443) is None
    assert rules.address_refusal("::1", 443) is None
    assert rules.address_refusal("169.254.169.254", 443) is None
    assert rules.address_refusal("127.0.0.2", 443) == "127.0.0.2 is the gateway itself (loopback)"
    assert (
        rules.refusal(CONNECT, "127.0.0.1", 22) == "port 22 is not a web port (connect_ports: 443)"
    )


def test_the_gateway_s_own_addresses_are_asked_again_when_the_verdict_is_old() -> None:
    own: set[Address] = set()
    cached, fresh = _rules(is_own=own.__contains__), _rules(is_own=own.__contains__, ttl=0)
    assert cached.address_refusal("10.9.9.9", 443) is None
    assert fresh.address_refusal("10.9.9.9", 443) is None
    own.add(ipaddress.ip_address("10.9.9.9"))  # an address added to an interface at run time
    assert cached.address_refusal("10.9.9.9", 443) is None  # within the 2 s it was cached for
    assert fresh.address_refusal("10.9.9.9", 443) == "10.9.9.9 is the gateway itself"


def test_the_verdicts_kept_are_bounded() -> None:
    rules = Destinations(ProxyConfig("127.0.0.1", 8080, "regular"), lambda _: False, limit=100)
    for n in range(1000):
        assert rules.address_refusal(f"random-{n}.example", 443) is None
    assert len(rules._verdicts) <= 100


def test_ip_of_reads_standard_notation_only() -> None:
    assert ip_of("::ffff:10.1.2.3") == ipaddress.ip_address("10.1.2.3")
    assert ip_of("[::1]") is None
    assert ip_of("2130706433") is None  # resolved at connection time, as the system would


def test_the_kernel_says_which_addresses_are_the_gateway_s_own() -> None:
    assert is_own_address(ipaddress.ip_address("127.0.0.1"))
    assert not is_own_address(ipaddress.ip_address("203.0.113.9"))  # TEST-NET-3: nobody's
    # The address this machine would send from is one of its own.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("203.0.113.9", 9))
        source = ipaddress.ip_address(probe.getsockname()[0])
    assert is_own_address(source)


# --- at connection time: where the name leads -------------------------------------------------


def _connection(rules: Destinations, kind: str, host: str, port: int) -> tuple[object, ...]:
    return asyncio.run(rules.connection(kind, host, port, CheckedNames().resolve))


def test_a_name_is_checked_where_it_resolves_and_every_spelling_the_system_reads() -> None:
    rules = _rules()
    for host in ("2130706433", "0x7f000001", "127.1", "0177.0.0.1"):
        reason, address, _ = _connection(rules, CONNECT, host, 443)
        assert (reason, address) == ("127.0.0.1 is the gateway itself (loopback)", "127.0.0.1")
    reason, address, _ = _connection(rules, CONNECT, "localhost", 443)
    assert reason == f"{address} is the gateway itself (loopback)"  # 127.0.0.1 or ::1 first


def test_every_address_of_a_name_must_be_allowed() -> None:
    rules = _rules()
    pairs = [(socket.AF_INET, "10.1.2.3"), (socket.AF_INET, "169.254.169.254")]

    async def resolve(host: str, port: int) -> list[AddrInfo]:
        return [(family, socket.SOCK_STREAM, 6, "", (ip, port)) for family, ip in pairs]

    reason, address, _ = asyncio.run(rules.connection(HTTP, "two.example", 80, resolve))
    assert (reason, address) == ("169.254.169.254 is link-local (cloud metadata)", METADATA)


def test_a_name_s_addresses_are_what_the_connection_gets() -> None:
    rules = _rules(allow=("127.0.0.0/8",))
    reason, address, resolved = _connection(rules, HTTP, "2130706433", 80)
    assert (reason, address) == (None, "127.0.0.1")
    assert [info[4][:2] for info in resolved] == [("127.0.0.1", 80)]  # type: ignore[union-attr]
    assert _connection(rules, HTTP, "10.1.2.3", 80) == (None, "10.1.2.3", None)  # no look-up


def test_the_port_is_refused_before_any_name_is_looked_up() -> None:
    reason, _, _ = _connection(_rules(), CONNECT, "nothing.invalid", 22)
    assert reason == "port 22 is not a web port (connect_ports: 443)"


def test_a_pinned_name_is_answered_once_each_other_look_up_goes_to_the_resolver() -> None:
    names = CheckedNames()
    checked: list[AddrInfo] = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 80))]

    async def look_ups() -> list[list[AddrInfo]]:
        loop = asyncio.get_running_loop()
        names.install(loop)
        names.pin("rebind.example", 80, checked)
        names.pin("rebind.example", 80, checked)
        return [
            await loop.getaddrinfo("rebind.example", 80, type=socket.SOCK_STREAM),
            await loop.getaddrinfo("rebind.example", 80, type=socket.SOCK_STREAM),
            await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM),
            await names.resolve("127.0.0.1", 443),
        ]

    first, second, other, resolved = asyncio.run(look_ups())
    assert first == second == checked
    assert [info[4][:2] for info in (*other, *resolved)] == [("127.0.0.1", 80), ("127.0.0.1", 443)]
    assert names._pinned == {}


def test_status_shows_the_rules_as_the_config_writes_them() -> None:
    proxy = ProxyConfig(
        "127.0.0.1", 8080, "regular", allow_destinations=(ipaddress.ip_network("127.0.0.1/32"),)
    )
    assert describe(proxy) == {
        "connect_ports": "443",
        "http_ports": SAFE_PORTS,
        "allow_destinations": ["127.0.0.1/32"],
    }


# --- the config -------------------------------------------------------------------------------


def test_the_defaults_are_squid_s(files: PolicyFiles) -> None:
    proxy = files.config().proxy
    assert proxy.connect_ports == ((443, 443),)
    assert proxy.http_ports == HTTP_PORTS
    assert proxy.allow_destinations == ()


def test_ports_and_destinations_are_read_from_the_proxy_section(files: PolicyFiles) -> None:
    text = BASE_CONFIG + (
        'proxy: {connect_ports: [443, "8443", 9000-9010], http_ports: [80, 1025-65535],\n'
        '        allow_destinations: [127.0.0.1/32, "::1", 169.254.169.254]}\n'
    )
    proxy = files.config(text).proxy
    assert proxy.connect_ports == ((443, 443), (8443, 8443), (9000, 9010))
    assert proxy.http_ports == ((80, 80), (1025, 65535))
    assert [str(n) for n in proxy.allow_destinations] == [
        "127.0.0.1/32",
        "::1/128",
        "169.254.169.254/32",
    ]


BAD = {
    "port 0": ("connect_ports: [443, 0]", "proxy.connect_ports[1]", "0 is out of range 1..65535"),
    "port 70000": ("http_ports: [70000]", "proxy.http_ports[0]", "out of range 1..65535"),
    "range backwards": ("http_ports: [80, 2000-1025]", "proxy.http_ports[1]", "lowest port"),
    "range beyond 65535": ("http_ports: [1025-70000]", "proxy.http_ports[0]", "within 1..65535"),
    "not a port": ("connect_ports: [https]", "proxy.connect_ports[0]", "not a port or a range"),
    "half a range": ("connect_ports: [443-]", "proxy.connect_ports[0]", "not a port or a range"),
    "no ports": ("connect_ports: []", "proxy.connect_ports", "at least one port"),
    "bad CIDR": ("allow_destinations: [127.0.0.300/32]", "proxy.allow_destinations[0]", "not a"),
    "mapped IPv6": (
        'allow_destinations: ["::ffff:127.0.0.1/128"]',
        "proxy.allow_destinations[0]",
        "as IPv4 (127.0.0.1/32)",
    ),
}


@pytest.mark.parametrize(("entry", "key", "message"), BAD.values(), ids=BAD.keys())
def test_a_bad_port_or_destination_names_the_file_the_line_and_the_key(
    files: PolicyFiles, entry: str, key: str, message: str
) -> None:
    text = BASE_CONFIG + f"proxy:\n  listen_port: 8080\n  {entry}\n"
    error = files.error(text)
    assert (error.path, error.line, error.key) == (
        files.config_path,
        line_of(text, entry.split(":")[0]),
        key,
    )
    assert message in str(error)


# --- the proxy's own port ---------------------------------------------------------------------

PROXY_PORT = 8080


@pytest.mark.parametrize(
    "spelling",
    ["127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "127.0.0.1.",
     "[::ffff:127.0.0.1]", "127.9.9.9", "0", "0.0.0.0", "0.1.2.3", "[::]", "[::1]", "[::ffff:0:0]"],
)  # fmt: skip
@pytest.mark.parametrize("port", [PROXY_PORT, 22, 5432])
def test_every_spelling_of_the_gateway_is_refused_on_every_port(spelling: str, port: int) -> None:
    rules = _rules(connect=((1, 65535),))
    assert rules.refusal(CONNECT, canonical_host(spelling), port) is not None


def test_allow_destinations_opens_an_address_but_never_the_proxy_s_own_port() -> None:
    rules = _rules(connect=((1, 65535),), allow=("127.0.0.1/32", "10.203.0.0/24"))
    assert rules.refusal(CONNECT, "127.0.0.1", 5000) is None  # a test origin on loopback
    looped = "127.0.0.1:8080 is this proxy itself: a request to itself would loop"
    assert rules.refusal(CONNECT, "127.0.0.1", PROXY_PORT) == looped
    assert rules.refusal(HTTP, "127.0.0.1", PROXY_PORT) == looped
    assert "this proxy itself" in (rules.refusal(CONNECT, str(GATEWAY), PROXY_PORT) or "")
    assert rules.refusal(CONNECT, "10.203.0.9", PROXY_PORT) is None  # another machine's 8080
    assert rules.refusal(CONNECT, "127.0.0.2", 5000) is not None  # not listed


def test_every_port_the_proxy_listens_on_is_its_own() -> None:
    proxy = ProxyConfig("127.0.0.1", 8080, "regular", connect_ports=((1, 65535),))
    rules = Destinations(proxy, lambda address: False, proxy_ports=(3128, 8053))
    for port in (3128, 8053):
        assert "this proxy itself" in (rules.refusal(CONNECT, "::1", port) or "")
    assert "this proxy itself" not in (rules.refusal(CONNECT, "::1", 8080) or "")
