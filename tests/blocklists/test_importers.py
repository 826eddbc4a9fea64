"""Every import format, on the real excerpts in tests/data and on the forms they leave out."""

from __future__ import annotations

from pathlib import Path

import pytest

from addons.importers import Found, Parsed, Rejected, parse, read_lines, sniff, sources
from addons.lists import Scope
from tests.blocklists.conftest import DATA


def _read(path: Path, fmt: str) -> tuple[list[Found], list[Rejected]]:
    items = list(parse(read_lines(path), fmt))
    return [i for i in items if isinstance(i, Found)], [i for i in items if isinstance(i, Rejected)]


def _lines(text: str, fmt: str) -> list[Parsed]:
    return list(parse(text.splitlines(), fmt))


# --- UT1 ----------------------------------------------------------------------------------


def test_a_ut1_category_folder_reads_its_domains_file_as_domains_and_subdomains() -> None:
    (source,) = sources(DATA / "ut1" / "social_networks")
    assert source.path.name == "domains"
    found, rejected = _read(source.path, source.format)
    assert rejected == []
    assert len(found) == 40
    assert found[0] == Found(1, "10tune.com", Scope.DOMAIN)
    assert Found(3, "360.yahoo.com", Scope.DOMAIN) in found
    assert Found(26, "badoo.com", Scope.DOMAIN) in found


def test_a_ut1_urls_file_is_read_too_and_each_page_address_is_rejected_with_why() -> None:
    domains, urls = sources(DATA / "ut1" / "dating", "ut1")
    assert (domains.path.name, urls.path.name, urls.format) == ("domains", "urls", "ut1-urls")
    found, rejected = _read(urls.path, urls.format)
    assert found == []
    assert len(rejected) == 15
    assert rejected[13] == Rejected(
        14,
        "vk.com/vkdating",
        "a page address: schoolgate blocks whole hosts (block vk.com for the site)",
    )


def test_the_ut1_format_also_takes_the_domains_file_itself() -> None:
    assert sources(DATA / "ut1" / "dating" / "domains", "ut1")[0].path.name == "domains"


@pytest.mark.parametrize(
    ("target", "fmt", "message"),
    [
        ("hosts", "auto", "not a UT1 category folder"),
        ("ut1/social_networks", "hosts", "only the ut1 format comes as a folder"),
        ("hosts/sinfonietta_social.hosts", "ut1", "a category folder with a 'domains' file"),
        ("no-such-list.txt", "auto", "no such file or folder"),
    ],
)
def test_a_source_that_is_not_there_or_not_that_format_is_refused(
    target: str, fmt: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        sources(DATA / target, fmt)


# --- hosts ----------------------------------------------------------------------------------


def test_stevenblack_hosts_lines_become_exact_hosts_and_its_comments_are_skipped() -> None:
    (source,) = sources(DATA / "hosts" / "stevenblack_social_only.hosts")
    assert source.format == "hosts"
    found, rejected = _read(source.path, source.format)
    assert rejected == []  # the commented "# 0.0.0.0 example.com" is a comment, not an entry
    assert len(found) == 36
    assert found[0] == Found(30, "0-act.channel.facebook.com", Scope.EXACT)
    assert found[-1] == Found(75, "allotalk.com", Scope.EXACT)
    assert Found(51, "tinder.com", Scope.EXACT) in found


def test_a_127_0_0_1_hosts_file_reads_the_same_and_commented_lines_stay_out() -> None:
    (source,) = sources(DATA / "hosts" / "sinfonietta_social.hosts")
    found, rejected = _read(source.path, source.format)
    assert (source.format, rejected, len(found)) == ("hosts", [], 25)
    assert found[0] == Found(8, "plus.google.com", Scope.EXACT)
    assert "plus.l.google.com" not in {f.domain for f in found}


def test_a_hosts_line_may_name_several_hosts_and_local_names_are_rejected() -> None:
    items = _lines(
        "127.0.0.1 localhost localhost.localdomain\n"
        "::1 localhost ip6-localhost ip6-loopback\n"
        "fe80::1%lo0 localhost\n"
        "0.0.0.0 0.0.0.0\n"
        "0.0.0.0 Tracker.Example.COM  ads.example.org # two names, then a comment\n"
        "0.0.0.0\n"
        "example.org\n"
        "0.0.0.0 bad_name!.example.org\n",
        "hosts",
    )
    assert [i for i in items if isinstance(i, Found)] == [
        Found(5, "tracker.example.com", Scope.EXACT),
        Found(5, "ads.example.org", Scope.EXACT),
    ]
    rejected = [(i.line, i.text, i.reason) for i in items if isinstance(i, Rejected)]
    assert rejected[:6] == [
        (1, "localhost", "a name for the machine itself, not a site"),
        (1, "localhost.localdomain", "a name for the machine itself, not a site"),
        (2, "localhost", "a name for the machine itself, not a site"),
        (2, "ip6-localhost", "a name for the machine itself, not a site"),
        (2, "ip6-loopback", "a name for the machine itself, not a site"),
        (3, "localhost", "a name for the machine itself, not a site"),
    ]
    assert rejected[6] == (4, "0.0.0.0", "a name for the machine itself, not a site")
    assert rejected[7] == (6, "0.0.0.0", "an address with no host name")
    assert rejected[8] == (7, "example.org", "not a hosts line: expected an address, then names")
    assert rejected[9][:2] == (8, "bad_name!.example.org")
    assert "is not a domain" in rejected[9][2]


# --- adblock --------------------------------------------------------------------------------


def test_adguard_host_rules_with_options_become_domains_and_the_rest_say_why_not() -> None:
    (source,) = sources(DATA / "adblock" / "adguard_social_filter.txt")
    assert source.format == "adblock"
    found, rejected = _read(source.path, source.format)
    assert found[0] == Found(9, "omt.shinobi.jp", Scope.DOMAIN)  # ||omt.shinobi.jp^$third-party
    # ||d.line-scdn.net^$third-party,domain=~line.me|~linecorp.com|~chat.line.biz
    assert Found(20, "d.line-scdn.net", Scope.DOMAIN) in found
    assert Found(30, "addthis.com", Scope.DOMAIN) in found
    assert len(found) == 21
    reasons = {r.line: r.reason for r in rejected}
    assert reasons[22] == "a rule for part of an address (a path), not a whole host"  # po.st/share/
    assert reasons[34] == reasons[22]  # ||api.linkedin.com/*/shares^$domain=~linkedin.com
    assert reasons[50].startswith("a cosmetic rule")  # ##.social_media_buttons
    assert reasons[62].startswith("a cosmetic rule")  # ###wpbfsb
    assert len(rejected) == 30


def test_the_adguard_dns_filter_keeps_hosts_and_addresses_and_rejects_the_rest() -> None:
    (source,) = sources(DATA / "adblock" / "adguard_dns_filter.txt")
    assert source.format == "adblock"
    found, rejected = _read(source.path, source.format)
    assert found[0] == Found(25, "dclsrv.com", Scope.DOMAIN)
    assert Found(37, "direct-specific.com", Scope.DOMAIN) in found  # written without ^
    assert Found(44, "107.148.45.21", Scope.NETWORK) in found  # an address entry
    assert {r.line: r.reason for r in rejected} == {
        40: "a wildcard in the host name",
        49: "a regular-expression rule: schoolgate takes host names only",
        50: "a regular-expression rule: schoolgate takes host names only",
        54: "a partial host name (it ends with a dot)",
        55: "a partial host name (it ends with a dot)",
        58: "an exception rule (@@): to let a host through, add it to the allowlist",
        60: "an exception rule (@@): to let a host through, add it to the allowlist",
        61: "an exception rule (@@): to let a host through, add it to the allowlist",
    }


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("||Example.ORG^", Found(1, "example.org", Scope.DOMAIN)),
        ("||example.org^|", Found(1, "example.org", Scope.DOMAIN)),
        ("||example.org^$important", Found(1, "example.org", Scope.DOMAIN)),
        ("||example.org^$badfilter", "the option $badfilter makes this no plain block"),
        ("||example.org^$dnsrewrite=1.2.3.4", "the option $dnsrewrite=1.2.3.4 makes"),
        ("|https://example.org/^", "a rule for part of an address (a path)"),
        ("example.org", "not a host rule: adblock host rules look like ||example.org^"),
        ("||com^", "is a public suffix"),
        ("#@#.banner", "a cosmetic rule"),
        ("example.org#$#abort-on-property-read x", "a cosmetic rule"),
    ],
)
def test_each_adblock_rule_form(line: str, expected: Found | str) -> None:
    (item,) = _lines(line, "adblock")
    if isinstance(expected, Found):
        assert item == expected
    else:
        assert isinstance(item, Rejected) and expected in item.reason


def test_adblock_comments_headers_and_hosts_style_comments_give_nothing() -> None:
    assert _lines("[Adblock Plus 2.0]\n! Title: x\n# a comment\n\n", "adblock") == []


# --- plain, and telling the formats apart ---------------------------------------------------


def test_the_plain_format_is_the_list_format_with_every_entry_form() -> None:
    items = _lines(
        "# a comment\nfacebook.com  # why\n=cdn.example.org\n*.example.net\nnot a domain\n",
        "plain",
    )
    assert items[:3] == [
        Found(2, "facebook.com", Scope.DOMAIN),
        Found(3, "cdn.example.org", Scope.EXACT),
        Found(4, "example.net", Scope.SUBDOMAINS),
    ]
    assert isinstance(items[3], Rejected) and items[3].line == 5


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("ut1/social_networks/domains", "plain"),
        ("hosts/stevenblack_social_only.hosts", "hosts"),
        ("hosts/sinfonietta_social.hosts", "hosts"),
        ("adblock/adguard_social_filter.txt", "adblock"),
        ("adblock/adguard_dns_filter.txt", "adblock"),
    ],
)
def test_auto_tells_the_real_formats_apart(name: str, fmt: str) -> None:
    assert sniff(read_lines(DATA / name)) == fmt


def test_a_byte_that_is_not_utf8_spoils_only_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(b"facebook.com\nbad\xff.example.org\nfbcdn.net\n")
    found, rejected = _read(path, "plain")
    assert [f.domain for f in found] == ["facebook.com", "fbcdn.net"]
    assert [r.line for r in rejected] == [2]
