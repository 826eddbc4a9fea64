"""benchmarks/references.py reads the public lists the way they are written: DNS stamps, curl's
wiki table, AdGuard's provider tables and the front-end instance lists. Every input here is made
up in the shape of the real ones (reserved names and documentation addresses), never copied."""

from __future__ import annotations

import base64
import json

import pytest

from benchmarks.references import (
    adguard_hosts,
    curl_wiki_hosts,
    dnscrypt_hosts,
    doh_stamp,
    farside_frontends,
    libredirect_frontends,
)

DOH, DNSCRYPT = 0x02, 0x01


def _lp(value: bytes) -> bytes:
    return bytes([len(value)]) + value


def stamp(protocol: int, address: str, hashes: list[bytes], host: str, path: str) -> str:
    """A DNS stamp as https://dnscrypt.info/stamps-specifications writes one: the protocol, 8
    bytes of properties, the address, the hashes (a length byte with 0x80 set while more
    follow), the host name and the path, length-prefixed, in unpadded base64url."""
    vlp = b"".join(
        bytes([len(h) | (0x80 if i < len(hashes) - 1 else 0)]) + h for i, h in enumerate(hashes)
    )
    data = (
        bytes([protocol])
        + bytes(8)
        + _lp(address.encode())
        + (vlp or b"\x00")
        + _lp(host.encode())
        + _lp(path.encode())
    )
    return "sdns://" + base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize(
    ("made", "expected"),
    [
        # An IPv4 address, no certificate hash, then the host name.
        (
            stamp(DOH, "192.0.2.53", [], "doh.resolver.example", "/dns-query"),
            ("192.0.2.53", "doh.resolver.example"),
        ),
        # An IPv6 address in brackets, with a port, and one hash.
        (
            stamp(DOH, "[2001:db8::53]:443", [bytes(32)], "doh.resolver.example", "/dns-query"),
            ("2001:db8::53", "doh.resolver.example"),
        ),
        # No address, two hashes (the first length byte says another follows), a mixed-case name.
        (
            stamp(DOH, "", [bytes(32), b"\x01" * 32], "DoH.Other.Example", "/q"),
            (None, "doh.other.example"),
        ),
    ],
)
def test_a_doh_stamp_gives_its_address_and_host(
    made: str, expected: tuple[str | None, str]
) -> None:
    assert doh_stamp(made) == expected


def test_a_stamp_of_another_protocol_gives_nothing() -> None:
    assert (
        doh_stamp(stamp(DNSCRYPT, "192.0.2.9:8443", [bytes(32)], "2.dnscrypt.example", "")) is None
    )


def test_dnscrypt_hosts_are_the_names_and_addresses_of_the_doh_stamps() -> None:
    page = "\n".join(
        [
            "# public-resolvers",
            "",
            "## resolver-a",
            "A made-up resolver, for a test.",
            "",
            stamp(DOH, "192.0.2.53", [], "doh.resolver.example", "/dns-query"),
            "",
            "## resolver-b",
            stamp(DOH, "", [bytes(32)], "doh.other.example", "/dns-query"),
            "",
            "## resolver-c",
            stamp(DNSCRYPT, "198.51.100.9", [bytes(32)], "2.dnscrypt.example", ""),
        ]
    )
    assert dnscrypt_hosts(page) == ["doh.resolver.example", "192.0.2.53", "doh.other.example"]


def test_curl_wiki_hosts_come_from_the_url_column_of_the_servers_table() -> None:
    page = """# Publicly available servers

| Who runs it | Base URL | Working*| Comment |
|-------------|----------|---------|---------|
| **A**
|[Alpha DNS](https://alpha-dns.example/about)| Default: https://doh.alpha-dns.example/dns-query <br> Kids: https://kids.alpha-dns.example/dns-query | :heavy_check_mark: | see https://notes.example/ |
|[Beta](https://beta.example)|https://DoH-2.Beta.example:8443/dns-query|:heavy_check_mark:|

# Private DNS Server with DoH setup examples

|[Not a server](https://gamma.example)|https://doh.gamma.example/dns-query|:x:|
"""  # noqa: E501
    assert curl_wiki_hosts(page) == [
        "doh.alpha-dns.example",
        "kids.alpha-dns.example",
        "doh-2.beta.example",
    ]


def test_adguard_hosts_keep_doh_and_dot_and_the_addresses_of_their_providers() -> None:
    page = """### Alpha DNS

| Protocol       | Address                                         |          |
|----------------|-------------------------------------------------|----------|
| DNS, IPv4      | `192.0.2.1` and `192.0.2.2`                     | [Add](x) |
| DNS, IPv6      | `2001:db8::1` and `2001:db8:0:0::2`             | [Add](x) |
| DNS-over-HTTPS | `https://dns.alpha.example/dns-query`           | [Add](x) |
| DNS-over-TLS   | `tls://dot.alpha.example`                       | [Add](x) |
| DNSCrypt, IPv4 | Provider: `2.dnscrypt.alpha.example` IP: `192.0.2.1:8443` | [Add](x) |

### Plain only

| DNS, IPv4      | `198.51.100.53`                                 | [Add](x) |
"""
    assert adguard_hosts(page) == [
        "dns.alpha.example",
        "dot.alpha.example",
        "192.0.2.1",
        "192.0.2.2",
        "2001:db8::1",
        "2001:db8::2",
    ]


def test_front_end_lists_give_each_clearnet_host_its_platform() -> None:
    libredirect = {
        "nitter": {"clearnet": ["https://nitter.alpha.example"], "tor": ["http://abc.onion"]},
        "invidious": {"clearnet": ["https://yt.beta.example", "https://yt.beta.ygg"]},
        "searxng": {"clearnet": ["https://search.gamma.example"]},
    }
    assert libredirect_frontends(json.dumps(libredirect)) == [
        ("nitter.alpha.example", "X / Twitter (nitter)"),
        ("yt.beta.example", "YouTube (invidious)"),
    ]
    farside = [
        {
            "type": "piped",
            "instances": ["https://piped.delta.example|https://pipedapi.delta.example"],
            "fallback": "https://piped.delta.example",
        },
        {"type": "teddit", "instances": [], "fallback": "https://teddit.epsilon.example"},
    ]
    assert farside_frontends(json.dumps(farside)) == [
        ("piped.delta.example", "YouTube (piped)"),
        ("pipedapi.delta.example", "YouTube (piped)"),
        ("piped.delta.example", "YouTube (piped)"),
        ("teddit.epsilon.example", "Reddit (teddit)"),
    ]
