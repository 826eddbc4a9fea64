"""The caches on the request path staying bounded, whatever names a client sends."""

from __future__ import annotations

import random
import string

from addons.access import ClientAccess
from addons.dnsanswer import RepeatFilter
from addons.hosts import canonical_host, normalise, parse_authority, registrable_domain
from addons.policy import Policy


def _random_hosts(count: int) -> list[str]:
    rng = random.Random(12)
    return [
        "".join(rng.choices(string.ascii_lowercase, k=12)) + f".example{n % 7}.org"
        for n in range(count)
    ]


def test_a_repeat_filter_remembers_a_pair_for_its_window() -> None:
    seen = RepeatFilter(window=60.0)
    assert seen.first(("10.20.1.5", "malformed"), 0.0)
    assert not seen.first(("10.20.1.5", "malformed"), 59.9)
    assert seen.first(("10.20.1.6", "malformed"), 59.9)
    assert seen.first(("10.20.1.5", "malformed"), 60.0)


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
