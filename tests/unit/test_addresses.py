"""`parse_authority`: every spelling of an IP address read as the operating system reads it, and
every malformed Host or authority refused with a reason that does not repeat it.

The oracle is the C library itself: `socket.inet_aton` and `getaddrinfo(AI_NUMERICHOST)` are
what mitmproxy's `connect()` goes through, so the parser is checked against what the gateway
would really connect to, not against a second reading of the same rules.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import string
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from addons.hosts import canonical_host, ip_address_of, normalise, parse_authority
from addons.policy import Policy
from tests.unit.support import BASE_LISTS, SCHOOL_TIME, PolicyFiles

PROFILE = settings.get_profile("schoolgate-" + os.environ.get("SCHOOLGATE_HYPOTHESIS", "unit"))

LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "2130706433",
    "0x7f000001",
    "0X7F000001",
    "0177.0.0.1",
    "0177.0000.0000.0001",
    "127.1",
    "127.0.1",
    "0x7f.1",
    "017700000001",
    "127.0.0.1.",
    "[::ffff:127.0.0.1]",
    "[::FFFF:7f00:1]",
    "[0:0:0:0:0:ffff:127.0.0.1]",
    "::ffff:127.0.0.1",
    "\N{FULLWIDTH DIGIT ONE}\N{FULLWIDTH DIGIT TWO}\N{FULLWIDTH DIGIT SEVEN}.0.0.1",
]


@pytest.mark.parametrize("spelling", LOOPBACK_SPELLINGS)
@pytest.mark.parametrize("port", ["", ":8080"])
def test_every_spelling_of_an_address_is_one_canonical_address(spelling: str, port: str) -> None:
    bracketed = spelling.startswith("::")
    text = (f"[{spelling}]" if bracketed and port else spelling) + port
    assert parse_authority(text) == ("127.0.0.1", 8080 if port else None)
    assert normalise(text) == "127.0.0.1"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("16843009", "1.1.1.1"),
        ("0x01010101", "1.1.1.1"),
        ("1.1.1.1.", "1.1.1.1"),
        ("[::ffff:1.1.1.1]:443", "1.1.1.1"),
        ("0x08080808:443", "8.8.8.8"),
        ("0", "0.0.0.0"),
        ("4294967295", "255.255.255.255"),
        ("1.256", "1.0.1.0"),
        ("00000000000000000000000000000127.0.0.1", "87.0.0.1"),  # octal, as inet_aton reads it
        ("[2001:DB8:0:0:0:0:0:1]:443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),  # bare, as mitmproxy gives a server's address
        ("[fe80::1%25eth0]:80", "fe80::1"),  # RFC 6874 zone id in a URL, dropped
        ("fe80::1%eth0", "fe80::1"),
        ("[::127.0.0.1]", "::7f00:1"),  # IPv4-compatible: Linux does not connect it to IPv4
        ("FaceBook.COM.:443", "facebook.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("facebook.com:", "facebook.com"),  # RFC 3986: an empty port is the default
        ("facebook.com:0443", "facebook.com"),
        ("a_b.example.org", "a_b.example.org"),
        ("8888.google", "8888.google"),  # a name that starts with digits is a name
    ],
)
def test_canonical_hosts(text: str, canonical: str) -> None:
    assert canonical_host(text) == canonical


HOSTILE = [
    ("www.facebook.com:abc", "the port is not a number"),
    ("www.facebook.com:0", "the port 0 is out of range"),
    ("www.facebook.com:65536", "the port 65536 is out of range"),
    ("www.facebook.com:99999999999", "is out of range"),
    ("www.facebook.com:" + "9" * 200, "is out of range"),
    ("www.facebook.com:\N{ARABIC-INDIC DIGIT EIGHT}\N{ARABIC-INDIC DIGIT ZERO}", "not a number"),
    ("www.facebook.com:\N{FULLWIDTH DIGIT EIGHT}0", "not a number"),
    ("www.facebook.com:+80", "not a number"),
    ("www.facebook.com: 80", "not a number"),
    ("www.facebook.com:8_0", "not a number"),
    ("www.facebook.com:80:80", "not a valid IPv6 address"),
    ("www.face book.com", "a character no host name has"),
    ("www.facebook.com\x00.example.org", "a character no host name has"),
    ("www.facebook.com\r\nX-Injected: 1", "a character no host name has"),
    ("<script>alert(1)</script>", "a character no host name has"),
    ("user@www.facebook.com", "a character no host name has"),
    ("", "the host is empty"),
    (".", "the host is empty"),
    (":443", "the host is empty"),
    ("www..facebook.com", "an empty label"),
    ("x" * 64 + ".com", "a label longer than 63 characters"),
    ("a." * 130 + "com", "longer than 253 characters"),
    ("x" * 5000, "longer than 253 characters"),
    ("1.2.3.4.5", "not an IPv4 address"),
    ("4294967296", "not an IPv4 address"),
    ("08.1.1.1", "not an IPv4 address"),
    ("1.2.3.256", "not an IPv4 address"),
    ("0x", "not an IPv4 address"),
    ("example.123", "not an IPv4 address"),
    ("[::1", "no closing bracket"),
    ("[::1]x", "text follows"),
    ("[v1.fe]", "not a valid IPv6 address"),
    ("[fe80::1%]", "malformed zone id"),
    ("[fe80::1%e\x00]", "malformed zone id"),
    ("\N{ARABIC-INDIC DIGIT ONE}.1.1.1", "not an IPv4 address"),
    ("b\N{ARABIC-INDIC DIGIT ONE}\u200d.example", "not a valid internationalised name"),
]


@pytest.mark.parametrize(("text", "why"), HOSTILE)
def test_a_malformed_authority_is_refused_with_a_reason_that_does_not_repeat_it(
    text: str, why: str
) -> None:
    with pytest.raises(ValueError, match=why) as refused:
        parse_authority(text)
    message = str(refused.value)
    assert message.isascii() and message.isprintable() and len(message) < 120
    assert "facebook" not in message and "<" not in message and "Injected" not in message


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("1.1.1.1", ipaddress.ip_address("1.1.1.1")),
        ("2001:db8::1", ipaddress.ip_address("2001:db8::1")),
        ("facebook.com", None),
        ("8888.google", None),
        ("example.123", None),  # normalise's best effort for a host parse_authority refuses
        ("", None),
    ],
)
def test_ip_address_of_tells_an_address_from_a_name(
    host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
) -> None:
    assert ip_address_of(host) == address


# --- properties ---------------------------------------------------------------------------------


def _part(value: int, base: str, zeros: int, upper: bool) -> str:
    """One inet_aton part in a base: decimal, octal (leading 0) or hex (0x)."""
    if base == "oct":
        return "0" * (zeros + 1) + format(value, "o")
    if base == "hex":
        digits = "0" * zeros + format(value, "x")
        return ("0X" + digits.upper()) if upper else ("0x" + digits)
    return str(value)


@st.composite
def spelling_of(draw: st.DrawFn, value: int) -> str:
    """A spelling of the address `value` that inet_aton takes: 1 to 4 parts, each in a base."""
    count = draw(st.integers(1, 4))
    # The last part fills the bytes the others leave: 127.1 is 127.0.0.1.
    widths = [8] * (count - 1) + [32 - 8 * (count - 1)]
    numbers, shift = [], 32
    for width in widths:
        shift -= width
        numbers.append((value >> shift) & ((1 << width) - 1))
    parts = [
        _part(
            number,
            draw(st.sampled_from(["dec", "oct", "hex"])),
            draw(st.integers(0, 3)),
            draw(st.booleans()),
        )
        for number in numbers
    ]
    return ".".join(parts)


def ipv4_spelling() -> st.SearchStrategy[tuple[int, str]]:
    """(address, one of its spellings)."""
    return st.integers(0, 2**32 - 1).flatmap(lambda v: spelling_of(v).map(lambda s: (v, s)))


@PROFILE
@given(spelled=ipv4_spelling(), dot=st.booleans(), port=st.one_of(st.none(), st.integers(1, 65535)))
@example(spelled=(2130706433, "0x7f.1"), dot=False, port=None)
@example(spelled=(16843009, "16843009"), dot=True, port=443)
def test_every_spelling_inet_aton_takes_is_the_one_canonical_address(
    spelled: tuple[int, str], dot: bool, port: int | None
) -> None:
    value, spelling = spelled
    assert socket.inet_aton(spelling) == value.to_bytes(4, "big")  # the OS reads it so
    canonical = str(ipaddress.IPv4Address(value))
    text = spelling + ("." if dot else "") + (f":{port}" if port else "")
    assert parse_authority(text) == (canonical, port)
    assert normalise(text) == canonical
    mapped = f"[::ffff:{canonical}]" + (f":{port}" if port else "")
    assert parse_authority(mapped) == (canonical, port)


def _os_reading(text: str) -> str | None:
    """The address getaddrinfo makes of a numeric host, as connect() would use it; else None."""
    try:
        found = socket.getaddrinfo(
            text, 80, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
        )
    except (socket.gaierror, UnicodeError):
        return None
    return str(found[0][4][0])


@PROFILE
@given(text=st.text("0123456789abcdefxX.", min_size=1, max_size=24))
@example(text="0x")
@example(text="0x.1.1.1")
@example(text="08.1.1.1")
@example(text="1.2.3.4.5")
def test_a_numeric_host_is_read_as_getaddrinfo_reads_it_or_refused(text: str) -> None:
    """Never an address the OS would not connect to: either the OS's address, a name, or a
    ValueError (a host ending in a number that is no address is refused, as browsers do)."""
    try:
        ours: str | None = canonical_host(text)
    except ValueError:
        ours = None
    theirs = _os_reading(text)
    if theirs is not None:
        assert ours == theirs
    elif ours is not None and ip_address_of(ours) is not None:
        assert text.endswith(".") and _os_reading(text[:-1]) == ours  # `1.1.1.1.` folded


ANY_CHARACTER = st.characters(exclude_categories=[])  # lone surrogates included
GARBAGE = st.one_of(
    st.text(ANY_CHARACTER, max_size=80),
    st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
    st.text(string.printable, max_size=80),
    st.lists(
        st.sampled_from(["1", "0x", "0", ".", ":", "[", "]", "%", "ffff", "::", "255", "8", " "])
    ).map("".join),
)
LISTED_ADDRESSES = {"1.1.1.1", "8.8.8.8", "127.0.0.1"}


@PROFILE
@given(text=GARBAGE)
@example(text="1.1.1.1 abc")  # inet_aton takes it; getaddrinfo and the gateway do not
@example(text="1.1.1.1\x00")
@example(text="[::ffff:1.1.1.1")
def test_garbage_raises_only_value_error_and_names_no_address_by_accident(text: str) -> None:
    assert isinstance(normalise(text), str)  # never raises
    try:
        host, port = parse_authority(text)
    except ValueError:
        return
    assert port is None or 1 <= port <= 65535
    assert host == normalise(text)
    if host in LISTED_ADDRESSES:
        core = text.rpartition(":")[0] if port is not None or text.endswith(":") else text
        core = core.strip("[]").removeprefix("::ffff:").removeprefix("::FFFF:").rstrip(".")
        assert _os_reading(core) == host or ipaddress.ip_address(core.lower()) is not None


# --- matching on the canonical address ----------------------------------------------------------

LISTED = "1.1.1.1\n=8.8.8.8\n9.9.9.0/24\n2606:4700:4700::/48\n"
LISTED_NETWORKS = [ipaddress.ip_network(n) for n in ("1.1.1.1/32", "8.8.8.8/32", "9.9.9.0/24")]


@pytest.fixture(scope="module")
def resolvers(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    files = PolicyFiles(Path(tmp_path_factory.mktemp("resolvers")))
    return files.policy(lists={**BASE_LISTS, "social.txt": LISTED})


NEAR_LISTED = st.one_of(
    st.sampled_from([0x01010101, 0x08080808]),
    st.integers(0x09090900 - 2, 0x09090A00 + 1),  # the /24 and its neighbours
    st.integers(0, 2**32 - 1),
)


@PROFILE
@given(spelled=NEAR_LISTED.flatmap(lambda v: spelling_of(v).map(lambda s: (v, s))))
def test_every_spelling_of_an_address_is_blocked_exactly_when_its_address_is_listed(
    resolvers: Policy, spelled: tuple[int, str]
) -> None:
    value, spelling = spelled
    address = ipaddress.IPv4Address(value)
    decision = resolvers.decide(spelling, "10.20.1.5", at=SCHOOL_TIME.timestamp())
    assert decision.host == str(address)
    listed = any(address in network for network in LISTED_NETWORKS)
    assert (decision.action == "block") == listed
