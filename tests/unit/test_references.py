"""benchmarks/references.py reads the public lists the way they are written: DNS stamps, curl's
wiki table, AdGuard's provider tables, the front-end instance lists, UT1 folders, hosts files,
AdGuard's service registry and v2fly's lists; and writes them from real git checkouts. Every
input here is made up in the shape of the real ones (reserved names and documentation
addresses), never copied."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from benchmarks.references import (
    adguard_hosts,
    curl_wiki_hosts,
    dnscrypt_hosts,
    doh_stamp,
    farside_frontends,
    libredirect_frontends,
    listed_names,
    main,
    registry_group_names,
    v2fly_names,
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


def test_listed_names_are_the_names_the_importer_reads_without_addresses() -> None:
    hosts_file = """# a made-up hosts file
127.0.0.1 localhost
0.0.0.0 Social.Example.
0.0.0.0 cdn.social.example www.social.example  # two names on a line
0.0.0.0 social-example
0.0.0.0 192.0.2.7
"""
    assert listed_names(hosts_file, "hosts") == [
        "social.example",
        "cdn.social.example",
        "www.social.example",
    ]
    ut1_domains = "chat.example\n198.51.100.20\nbücher.example\n"
    assert listed_names(ut1_domains, "plain") == ["chat.example", "xn--bcher-kva.example"]


def test_registry_group_names_read_every_service_of_the_group() -> None:
    registry = {
        "blocked_services": [
            {
                "id": "alpha",
                "group": "social_network",
                "rules": ["||alpha.example^", "|media.cdn.example^", "||alpha-*.example^"],
            },
            {"id": "beta", "group": "social_network", "rules": ["||beta.example"]},
            {"id": "gamma", "group": "messenger", "rules": ["||gamma.example^"]},
        ]
    }
    assert registry_group_names("social_network", json.dumps(registry)) == [
        "alpha.example",
        "media.cdn.example",
        "beta.example",
    ]


def test_v2fly_names_follow_includes_and_keep_only_hosts() -> None:
    data = {
        "data/social": "# made up\ninclude:alpha\n\nbeta.example\n",
        "data/alpha": "\n".join(
            [
                "alpha.example",
                "domain:alpha-cdn.example @ads",
                "full:login.alpha.example",
                "keyword:alpha",
                "regexp:^alpha[0-9]+\\.example$",
                "include:alpha-extra # its mirrors",
            ]
        ),
        "data/alpha-extra": "alpha.example\nalpha-mirror.example\n",
    }
    assert v2fly_names(data.__getitem__, "social") == [
        "alpha.example",
        "alpha-cdn.example",
        "login.alpha.example",
        "alpha.example",
        "alpha-mirror.example",
        "beta.example",
    ]


def test_v2fly_include_filtered_by_attribute_is_refused() -> None:
    data = {"data/social": "include:alpha @cn\n", "data/alpha": "alpha.example\n"}
    with pytest.raises(ValueError, match="data/social: 'include:alpha @cn'"):
        v2fly_names(data.__getitem__, "social")


def _repository(path: Path, files: dict[str, str]) -> str:
    """A git repository at `path` with `files` in one commit; that commit as a header names it."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t.example", *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text, encoding="utf-8")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "made up")
    return git("log", "-1", "--format=%H (%cs)")


def test_main_writes_the_lists_of_the_checkouts_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sinfonietta, tiuxo = tmp_path / "sinfonietta", tmp_path / "tiuxo"
    first = _repository(sinfonietta, {"social-hosts": "127.0.0.1 b.social.example\n"})
    second = _repository(tiuxo, {"social": "0.0.0.0 a.social.example\n"})
    output = tmp_path / "reference"

    main(["--sinfonietta", str(sinfonietta), "--tiuxo", str(tiuxo), "--output", str(output)])

    assert [p.name for p in output.iterdir()] == ["stevenblack_social.txt"]
    lines = (output / "stevenblack_social.txt").read_text(encoding="utf-8").splitlines()
    assert lines[1:7] == [
        "# repo: Sinfonietta/hostfiles",
        "# path: social-hosts",
        f"# commit: {first}",
        "# repo: tiuxo/hosts",
        "# path: social",
        f"# commit: {second}",
    ]
    assert "# names: 2" in lines
    assert [line for line in lines if not line.startswith("#")] == [
        "a.social.example",
        "b.social.example",
    ]
    assert capsys.readouterr().out == f"{output / 'stevenblack_social.txt'}: names: 2\n"


def test_main_names_the_copy_a_source_was_read_from(tmp_path: Path) -> None:
    wiki = tmp_path / "wiki"
    _repository(wiki, {"DNS-over-HTTPS.md": "# Publicly available servers\n"})
    output = tmp_path / "reference"

    main(
        ["--curl-wiki", str(wiki), "--copy", "curl-wiki=someone/wiki-copy", "--output", str(output)]
    )

    text = (output / "doh_curl_wiki.txt").read_text(encoding="utf-8")
    assert text.splitlines()[1] == (
        "# repo: curl/curl.wiki (the curl project's GitHub wiki), read from someone/wiki-copy, "
        "a copy with its history"
    )


def test_main_says_which_checkout_lacks_a_file(tmp_path: Path) -> None:
    ut1 = tmp_path / "ut1"
    _repository(ut1, {"blacklists/chat/domains": "chat.example\n"})

    with pytest.raises(SystemExit) as exited:
        main(["--ut1", str(ut1), "--output", str(tmp_path / "reference")])

    error = str(exited.value.code)
    assert error.startswith(f"references.py: ut1_social_networks.txt: {ut1} (a checkout of olbat/")
    assert "path 'blacklists/social_networks/domains' does not exist in 'HEAD'" in error


def test_main_wants_a_checkout(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([])
    assert "give at least one checkout" in capsys.readouterr().err
