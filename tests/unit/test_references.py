"""benchmarks/references.py reads the public lists the way they are written: DNS stamps, curl's
wiki table, AdGuard's provider tables and the front-end instance lists (samples from each)."""

from __future__ import annotations

import json

import pytest

from benchmarks.references import (
    adguard_hosts,
    curl_wiki_hosts,
    doh_stamp,
    farside_frontends,
    libredirect_frontends,
)


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        # Andrews & Arnold: an IPv4 address, no certificate hash, then the host name.
        (
            "sdns://AgcAAAAAAAAADTIxNy4xNjkuMjAuMjIADWRucy5hYS5uZXQudWsKL2Rucy1xdWVyeQ",
            ("217.169.20.22", "dns.aa.net.uk"),
        ),
        # The same resolver's IPv6 address, in brackets.
        (
            "sdns://AgcAAAAAAAAAEFsyMDAxOjhiMDo6MjAyMl0ADWRucy5hYS5uZXQudWsKL2Rucy1xdWVyeQ",
            ("2001:8b0::2022", "dns.aa.net.uk"),
        ),
        # SWITCH: a certificate hash, and the address as the host name too.
        (
            "sdns://AgMAAAAAAAAADTEzMC41OS4zMS4yNDggsBkgdEu7dsmrBT4B4Ht-BQ5HPSD3n3vqQ1-v5DydJC8NMTMw"
            "LjU5LjMxLjI0OAovZG5zLXF1ZXJ5",
            ("130.59.31.248", "130.59.31.248"),
        ),
        # AdGuard's DNSCrypt server: not DoH.
        (
            "sdns://AQIAAAAAAAAAETk0LjE0MC4xNC4xNDo1NDQzINErR_JS3PLCu_iZEIbq95zkSV2LFsigxDIuUso_OQhz"
            "IjIuZG5zY3J5cHQuZGVmYXVsdC5uczEuYWRndWFyZC5jb20",
            None,
        ),
    ],
)
def test_a_doh_stamp_gives_its_address_and_host(
    stamp: str, expected: tuple[str, str] | None
) -> None:
    assert doh_stamp(stamp) == expected


def test_curl_wiki_hosts_come_from_the_url_column_of_the_servers_table() -> None:
    page = """# Publicly available servers

| Who runs it | Base URL | Working*| Comment |
|-------------|----------|---------|---------|
| **A**
|[AdGuard](https://adguard-dns.io/en/public-dns.html)| Default: https://dns.adguard-dns.com/dns-query <br> Family: https://family.adguard-dns.com/dns-query | :heavy_check_mark: | see https://example.org/notes |
|[Seby](https://dns.seby.io)|https://DoH-2.seby.io:8443/dns-query|:heavy_check_mark:|

# Private DNS Server with DoH setup examples

|[Not a server](https://example.net)|https://example.com/dns-query|:x:|
"""  # noqa: E501
    assert curl_wiki_hosts(page) == [
        "dns.adguard-dns.com",
        "family.adguard-dns.com",
        "doh-2.seby.io",
    ]


def test_adguard_hosts_keep_doh_and_dot_and_the_addresses_of_their_providers() -> None:
    page = """### Quad9 DNS

| Protocol       | Address                                            |                |
|----------------|----------------------------------------------------|----------------|
| DNS, IPv4      | `9.9.9.9` and `149.112.112.112`                    | [Add](x) |
| DNS, IPv6      | `2620:fe::fe` and `2620:fe::fe:9`                  | [Add](x) |
| DNS-over-HTTPS | `https://dns.quad9.net/dns-query`                  | [Add](x) |
| DNS-over-TLS   | `tls://dns.quad9.net`                              | [Add](x) |
| DNSCrypt, IPv4 | Provider: `2.dnscrypt-cert.quad9.net` IP: `9.9.9.9:8443` | [Add](x) |

### Plain only

| DNS, IPv4      | `192.0.2.53`                                       | [Add](x) |
"""
    assert adguard_hosts(page) == [
        "dns.quad9.net",
        "dns.quad9.net",
        "9.9.9.9",
        "149.112.112.112",
        "2620:fe::fe",
        "2620:fe::fe:9",
    ]


def test_front_end_lists_give_each_clearnet_host_its_platform() -> None:
    libredirect = {
        "nitter": {"clearnet": ["https://xcancel.com"], "tor": ["http://abc.onion"]},
        "invidious": {"clearnet": ["https://inv.nadeko.net", "https://inv.nadeko.ygg"]},
        "searxng": {"clearnet": ["https://search.example"]},
    }
    assert libredirect_frontends(json.dumps(libredirect)) == [
        ("xcancel.com", "X / Twitter (nitter)"),
        ("inv.nadeko.net", "YouTube (invidious)"),
    ]
    farside = [
        {
            "type": "piped",
            "instances": ["https://piped.video|https://pipedapi.kavin.rocks"],
            "fallback": "https://piped.video",
        },
        {"type": "teddit", "instances": [], "fallback": "https://teddit.net"},
    ]
    assert farside_frontends(json.dumps(farside)) == [
        ("piped.video", "YouTube (piped)"),
        ("pipedapi.kavin.rocks", "YouTube (piped)"),
        ("piped.video", "YouTube (piped)"),
        ("teddit.net", "Reddit (teddit)"),
    ]
