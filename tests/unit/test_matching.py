"""List files and the suffix index: which entries cover a host, and where they are written."""

from __future__ import annotations

import datetime as dt

import pytest

from addons.errors import ConfigError
from addons.lists import Scope, parse_entry
from addons.matching import ALLOW, DomainIndex, Source
from addons.policy import Policy
from tests.unit.support import BASE_LISTS, EVENING, SCHOOL_TIME, PolicyFiles, line_of

PUPIL = "10.20.1.5"
STAFF = "10.10.1.5"


def entries(policy: Policy, host: str) -> list[tuple[str, str]]:
    """(category, entry) of every entry covering `host`, most specific first."""
    return [(m.category, m.entry) for m in policy.index.lookup(host)]


# --- the three entry forms -------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["facebook.com", "m.facebook.com", "a.b.c.facebook.com", "scontent-lhr8-1.xx.fbcdn.net"]
)
def test_a_domain_entry_covers_the_domain_and_every_subdomain(policy: Policy, host: str) -> None:
    assert entries(policy, host)[0][0] == "social_networks"


@pytest.mark.parametrize(
    "host",
    [
        "notfacebook.com",
        "facebook.com.example.org",
        "facebook.co",
        "facebookcom",
        "com",
        "acebook.com",
        "fbcdn.net.evil.example",
        "",
    ],
)
def test_a_domain_entry_never_covers_look_alike_names(policy: Policy, host: str) -> None:
    assert entries(policy, host) == []


def test_an_exact_entry_covers_that_host_only(policy: Policy) -> None:
    assert entries(policy, "exact.example.org") == [("social_networks", "=exact.example.org")]
    assert entries(policy, "www.exact.example.org") == []
    assert entries(policy, "example.org") == []


def test_a_subdomains_entry_covers_subdomains_only(policy: Policy) -> None:
    assert entries(policy, "a.sub.example.net") == [("social_networks", "*.sub.example.net")]
    assert entries(policy, "a.b.sub.example.net") == [("social_networks", "*.sub.example.net")]
    assert entries(policy, "sub.example.net") == []
    assert entries(policy, "example.net") == []


@pytest.mark.parametrize(
    "raw", ["bücher.example", "BÜCHER.EXAMPLE.", "www.Bücher.example:443", "xn--bcher-kva.example"]
)
def test_an_idn_entry_matches_every_spelling_of_its_host(policy: Policy, raw: str) -> None:
    assert policy.decide(raw, PUPIL, at=SCHOOL_TIME.timestamp()).action == "block"


def test_a_host_in_two_categories_has_both_entries_list_order_first(policy: Policy) -> None:
    assert entries(policy, "www.facebook.com") == [
        ("social_networks", "facebook.com"),
        ("video", "facebook.com"),
    ]


def test_the_most_specific_entry_comes_first(files: PolicyFiles) -> None:
    lists = {**BASE_LISTS, "video.txt": "=m.facebook.com\nm.facebook.com\n*.facebook.com\n"}
    policy = files.policy(lists=lists)
    assert [m.entry for m in policy.index.lookup("m.facebook.com")] == [
        "=m.facebook.com",
        "m.facebook.com",
        "facebook.com",
        "*.facebook.com",
    ]


def test_comments_blank_lines_and_indentation_are_not_entries(policy: Policy) -> None:
    assert policy.index.entries == 6 + 2 + 3  # social, video, allow


@pytest.mark.parametrize(
    ("text", "domain", "scope"),
    [
        ("facebook.com", "facebook.com", Scope.DOMAIN),
        ("=cdn.example.org", "cdn.example.org", Scope.EXACT),
        ("*.example.org", "example.org", Scope.SUBDOMAINS),
        ("FaceBook.COM.", "facebook.com", Scope.DOMAIN),
        ("=Bücher.example", "xn--bcher-kva.example", Scope.EXACT),
        ("10.20.1.5", "10.20.1.5", Scope.NETWORK),
        ("=10.20.1.5", "10.20.1.5", Scope.NETWORK),
        ("=[2001:DB8::1]", "2001:db8::1", Scope.NETWORK),
        ("=2001:db8::1", "2001:db8::1", Scope.NETWORK),
        ("::FFFF:10.20.1.5", "10.20.1.5", Scope.NETWORK),
        ("10.20.0.0/16", "10.20.0.0/16", Scope.NETWORK),
        ("2606:4700:4700::/48", "2606:4700:4700::/48", Scope.NETWORK),
        ("10.20.1.5/32", "10.20.1.5", Scope.NETWORK),
    ],
)
def test_parse_entry_gives_the_canonical_domain_and_scope(
    text: str, domain: str, scope: Scope
) -> None:
    assert parse_entry(text) == (domain, scope)


@pytest.mark.parametrize(
    "text", ["*.", "=", "a b.com", "face*book.com", "http://facebook.com", "facebook.com:abc"]
)
def test_parse_entry_rejects_what_is_not_a_domain(text: str) -> None:
    with pytest.raises(ValueError, match="is not a domain"):
        parse_entry(text)


def test_an_ipv6_entry_matches_bracketed_and_expanded_spellings(files: PolicyFiles) -> None:
    policy = files.policy(lists={**BASE_LISTS, "video.txt": "=2001:db8::1\n"})
    for raw in ("2001:db8::1", "[2001:DB8::1]:443", "[2001:db8:0:0:0:0:0:1]"):
        assert policy.decide(raw, PUPIL, at=SCHOOL_TIME.timestamp()).action == "block", raw


# --- addresses and networks --------------------------------------------------------------------

ADDRESSES = """# resolvers
1.1.1.1
=8.8.8.8
9.9.9.0/24
2606:4700:4700::/48
"""


@pytest.fixture
def resolvers(files: PolicyFiles) -> Policy:
    return files.policy(lists={**BASE_LISTS, "social.txt": ADDRESSES})


@pytest.mark.parametrize(
    ("raw", "host", "entry"),
    [
        ("1.1.1.1", "1.1.1.1", "1.1.1.1"),
        ("16843009", "1.1.1.1", "1.1.1.1"),
        ("0x01010101:443", "1.1.1.1", "1.1.1.1"),
        ("1.1.1.1.", "1.1.1.1", "1.1.1.1"),
        ("001.1.0x1.01", "1.1.1.1", "1.1.1.1"),
        ("[::ffff:1.1.1.1]:443", "1.1.1.1", "1.1.1.1"),
        ("0x08080808", "8.8.8.8", "8.8.8.8"),
        ("134744072", "8.8.8.8", "8.8.8.8"),
        ("9.9.9.9", "9.9.9.9", "9.9.9.0/24"),
        ("9.9.9.255", "9.9.9.255", "9.9.9.0/24"),
        ("0x090909fe", "9.9.9.254", "9.9.9.0/24"),
        ("[2606:4700:4700::1111]", "2606:4700:4700::1111", "2606:4700:4700::/48"),
        ("2606:4700:4700:ffff:ffff:ffff:ffff:ffff", "2606:4700:4700:ffff:ffff:ffff:ffff:ffff",
         "2606:4700:4700::/48"),
    ],
)  # fmt: skip
def test_an_address_entry_matches_every_spelling_of_its_addresses(
    resolvers: Policy, raw: str, host: str, entry: str
) -> None:
    decision = resolvers.decide(raw, PUPIL, at=SCHOOL_TIME.timestamp())
    assert (decision.action, decision.host) == ("block", host)
    assert decision.match is not None and decision.match.entry == entry


@pytest.mark.parametrize(
    "host",
    [
        "1.1.1.2",
        "8.8.4.4",
        "9.9.8.255",
        "9.9.10.0",
        "2606:4700:4701::1",
        "1.1.1.1.example.org",  # a name that starts with an address is a name
        "9.9.9.9.nip.io",
        "one.one.one.one",
    ],
)
def test_an_address_entry_covers_nothing_else(resolvers: Policy, host: str) -> None:
    assert resolvers.index.lookup(host) == ()


def test_the_longest_network_comes_first_and_knows_its_line(files: PolicyFiles) -> None:
    policy = files.policy(lists={**BASE_LISTS, "social.txt": "1.0.0.0/8\n1.1.1.0/24\n1.1.1.1\n"})
    matches = policy.index.lookup("1.1.1.1")
    assert [m.entry for m in matches] == ["1.1.1.1", "1.1.1.0/24", "1.0.0.0/8"]
    assert matches[1].location() == f"{files.list_path('social.txt')}:2"
    assert policy.index.entries == 3 + 2 + 3  # social, video, allow


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("001.001.001.001", "is 1.1.1.1 to the operating system: write it as 1.1.1.1"),
        ("0x08080808", "write it as 8.8.8.8"),
        ("127.1", "write it as 127.0.0.1"),
        ("1.1.1.1.", "write it as 1.1.1.1"),
        ("1.1.1.1/24", "has bits set beyond /24: write 1.1.1.0/24"),
        ("*.1.1.1.1", "an IP address has no subdomains"),
        ("1.1.1.1:443", "no port"),
        ("fe80::1%eth0", "not an interface"),
        ("1.2.3.4.5", "not an IPv4 address"),
    ],
)
def test_an_address_in_a_spelling_people_read_otherwise_is_refused_with_file_and_line(
    files: PolicyFiles, line: str, why: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        files.policy(lists={**BASE_LISTS, "social.txt": f"facebook.com\n{line}\n"})
    assert (refused.value.path, refused.value.line) == (files.list_path("social.txt"), 2)
    assert why in refused.value.message


# --- where an entry is written -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "name", "written"),
    [
        ("m.facebook.com", "social.txt", "^facebook.com"),
        ("exact.example.org", "social.txt", "=exact.example.org"),
        ("a.sub.example.net", "social.txt", r"^\*.sub.example.net"),
        ("xn--bcher-kva.example", "social.txt", "BÜCHER"),
        ("www.youtube.com", "video.txt", "^youtube.com"),
        ("about.instagram.com", "allow.txt", "=about.instagram.com"),
    ],
)
def test_a_match_knows_its_file_and_line(
    policy: Policy, files: PolicyFiles, host: str, name: str, written: str
) -> None:
    match = policy.index.lookup(host)[0]
    line = line_of(BASE_LISTS[name], written)
    assert match.location() == f"{files.list_path(name)}:{line}"


def test_a_location_falls_back_to_the_file_when_the_entry_has_gone(
    policy: Policy, files: PolicyFiles
) -> None:
    match = policy.index.lookup("m.facebook.com")[0]
    files.list_path("social.txt").write_text("# emptied\n", encoding="utf-8")
    assert match.location() == str(files.list_path("social.txt"))


def test_the_reason_cites_the_entry_file_line_rule_and_group(
    policy: Policy, files: PolicyFiles
) -> None:
    decision = policy.decide("m.facebook.com", PUPIL, at=EVENING.timestamp())
    line = line_of(BASE_LISTS["social.txt"], "^facebook.com")
    assert decision.reason() == (
        "m.facebook.com is listed in social_networks (entry facebook.com at "
        f"{files.list_path('social.txt')}:{line}); rule school-it-ban blocks it "
        "for group pupils at all times"
    )
    assert policy.decide("example.org", PUPIL).reason() == "example.org is in no list"


# --- the allowlist -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["about.instagram.com", "help.youtube.com", "x.help.youtube.com", "safe.facebook.com"]
)
@pytest.mark.parametrize("client", [PUPIL, STAFF, "192.0.2.1"])
@pytest.mark.parametrize("moment", [SCHOOL_TIME, EVENING], ids=["school day", "evening"])
def test_the_allowlist_beats_every_category_rule_and_group(
    policy: Policy, host: str, client: str, moment: dt.datetime
) -> None:
    decision = policy.decide(host, client, at=moment.timestamp())
    assert decision.action == "allow"
    assert decision.allowed_by is not None
    assert decision.allowed_by.category == ALLOW


def test_an_exact_allowlist_entry_leaves_the_subdomains_blocked(policy: Policy) -> None:
    assert policy.decide("www.safe.facebook.com", PUPIL, at=EVENING.timestamp()).action == "block"
    assert policy.decide("www.about.instagram.com", PUPIL).action == "block"


def test_the_reason_says_which_allowlist_entry_overrode_which_rule(
    policy: Policy, files: PolicyFiles
) -> None:
    reason = policy.decide("about.instagram.com", PUPIL, at=EVENING.timestamp()).reason()
    allow_line = line_of(BASE_LISTS["allow.txt"], "=about.instagram.com")
    assert reason.startswith(
        f"allowlist entry =about.instagram.com ({files.list_path('allow.txt')}:{allow_line}) "
        "overrides rule school-it-ban, which would block about.instagram.com"
    )
    # No rule covers pupils' video in the evening: the allowlist alone is the reason.
    decision = policy.decide("help.youtube.com", PUPIL, at=EVENING.timestamp())
    assert decision.rule is None
    assert decision.reason().startswith("allowlist entry help.youtube.com (")
    assert decision.reason().endswith(" covers help.youtube.com")


def test_several_files_feed_one_category(files: PolicyFiles) -> None:
    extra = files.list_path("extra.txt")
    policy = files.policy(
        lists={**BASE_LISTS, "extra.txt": "tiktok.com\n"},
        edits={"[../blocklists/social.txt]": "[../blocklists/social.txt, ../blocklists/extra.txt]"},
    )
    assert Source("social_networks", extra) in policy.index.sources
    assert policy.decide("www.tiktok.com", PUPIL).action == "block"
    assert policy.decide("www.facebook.com", PUPIL).action == "block"


def test_the_index_reads_list_files_directly(files: PolicyFiles) -> None:
    files.write()
    index = DomainIndex([Source("video", files.list_path("video.txt"))])
    assert [m.entry for m in index.lookup("music.youtube.com")] == ["youtube.com"]
    assert index.entries == 2
