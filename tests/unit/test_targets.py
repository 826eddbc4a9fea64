"""The gateway itself as a target, and the caches on the request path staying bounded."""

from __future__ import annotations

import ipaddress
import random
import string

import pytest

from addons.access import ClientAccess
from addons.dnsanswer import RepeatFilter
from addons.hosts import canonical_host, normalise, parse_authority, registrable_domain
from addons.policy import Policy
from addons.targets import GatewayItself

PROXY_PORT = 8080
LOOPBACK_ORIGINS = [ipaddress.ip_network("127.0.0.1/32")]


@pytest.fixture
def itself() -> GatewayItself:
    return GatewayItself([("127.0.0.1", PROXY_PORT), ("", 8081)], [])


@pytest.mark.parametrize(
    "spelling",
    ["127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "127.0.0.1.",
     "[::ffff:127.0.0.1]", "127.9.9.9", "0", "0.0.0.0", "0.1.2.3", "[::]", "[::1]", "[::ffff:0:0]"],
)  # fmt: skip
@pytest.mark.parametrize("port", [PROXY_PORT, 8081, 22, 5432])
def test_every_spelling_of_the_gateway_is_refused_on_every_port(
    itself: GatewayItself, spelling: str, port: int
) -> None:
    assert itself.refuses(canonical_host(spelling), port) is not None


def test_the_address_the_client_reached_is_the_gateway_too(itself: GatewayItself) -> None:
    reached = ("::ffff:10.0.0.1", PROXY_PORT)  # a dual-stack socket's spelling
    assert "this proxy itself" in (itself.refuses("10.0.0.1", PROXY_PORT, reached) or "")
    assert "the gateway itself" in (itself.refuses("10.0.0.1", 443, reached) or "")
    assert itself.refuses("10.0.0.2", PROXY_PORT, reached) is None


@pytest.mark.parametrize("host", ["10.0.0.9", "203.0.113.5", "2001:db8::1", "example.org", "-"])
def test_other_targets_are_not_the_gateway(itself: GatewayItself, host: str) -> None:
    assert itself.refuses(host, PROXY_PORT) is None


def test_allow_destinations_opens_an_address_but_never_the_proxys_own_port() -> None:
    itself = GatewayItself([("127.0.0.1", PROXY_PORT)], LOOPBACK_ORIGINS)
    assert itself.refuses("127.0.0.1", 5000) is None  # a test origin on loopback
    assert "this proxy itself" in (itself.refuses("127.0.0.1", PROXY_PORT) or "")
    assert itself.refuses("127.0.0.2", 5000) is not None  # not listed


def test_a_listener_named_or_on_every_address_adds_only_its_port() -> None:
    itself = GatewayItself([("", 3128), ("localhost", 3129)], [])
    assert itself.addresses == frozenset()
    assert itself.ports == frozenset({3128, 3129})


# --- caches on the request path ------------------------------------------------------------------


def _random_hosts(count: int) -> list[str]:
    rng = random.Random(12)
    return [
        "".join(rng.choices(string.ascii_lowercase, k=12)) + f".example{n % 7}.org"
        for n in range(count)
    ]


def test_a_repeat_filter_remembers_a_pair_for_its_window() -> None:
    seen = RepeatFilter(window=60.0)
    assert seen.first(("10.20.1.5", "gateway-itself"), 0.0)
    assert not seen.first(("10.20.1.5", "gateway-itself"), 59.9)
    assert seen.first(("10.20.1.6", "gateway-itself"), 59.9)
    assert seen.first(("10.20.1.5", "gateway-itself"), 60.0)


def test_a_repeat_filter_stays_bounded_under_a_flood_of_new_names() -> None:
    seen = RepeatFilter(window=60.0, limit=1000)
    for n, host in enumerate(_random_hosts(20_000)):
        assert seen.first(("10.20.1.5", host), n / 1e6)  # all within one window
    assert len(seen) == 1000
    assert not seen.first(("10.20.1.5", _random_hosts(20_000)[-1]), 0.5)  # the newest kept
    assert seen.first(("10.20.1.5", "later.example.org"), 100.0)
    assert len(seen) == 1  # every pair older than the window is forgotten


def test_every_cache_a_request_goes_through_is_bounded_and_keyed_by_the_canonical_host(
    policy: Policy,
) -> None:
    access = ClientAccess(policy.config)
    for host in _random_hosts(3000):
        canonical = canonical_host(host.upper() + ".:443")
        assert canonical == host
        policy.decide(canonical, "10.20.1.5")
        registrable_domain(canonical)
    for n in range(3000):
        access.allows(f"10.20.{n // 250}.{n % 250}")
    bounded = [
        parse_authority,
        normalise,
        registrable_domain,
        policy._decide,
        policy.group_of,
        access.allows,
    ]
    for cache in bounded:
        info = cache.cache_info()
        assert info.maxsize is not None and info.currsize <= info.maxsize
    assert policy._decide.cache_info().currsize <= 3000  # one entry per canonical host
