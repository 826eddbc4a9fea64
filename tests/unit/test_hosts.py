"""`normalise` and `registrable_domain`: one spelling per host, the domain a person registered."""

from __future__ import annotations

import pytest

from addons.hosts import normalise, registrable_domain

FULLWIDTH_FACEBOOK = "".join(chr(ord(c) - ord("A") + 0xFF21) for c in "FACEBOOK")


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("facebook.com", "facebook.com"),
        ("FaceBook.COM", "facebook.com"),
        ("facebook.com.", "facebook.com"),
        ("facebook.com..", "facebook.com"),
        ("facebook.com:443", "facebook.com"),
        ("FaceBook.COM.:443", "facebook.com"),
        ("facebook.com:", "facebook.com"),
        ("  facebook.com\t", "facebook.com"),
        ("10.20.1.5:8080", "10.20.1.5"),
        ("[::1]", "::1"),
        ("[::1]:443", "::1"),
        ("[2001:DB8::1]:8080", "2001:db8::1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("[2001:db8:0:0:0:0:0:1]:443", "2001:db8::1"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example.:443", "xn--bcher-kva.example"),
        (FULLWIDTH_FACEBOOK + ".com", "facebook.com"),  # full-width folds (UTS #46)
        ("facebook\N{IDEOGRAPHIC FULL STOP}com", "facebook.com"),
        ("face\u00adbook.com", "facebook.com"),  # soft hyphen is ignored
    ],
)
def test_normalise_gives_one_spelling(raw: str, canonical: str) -> None:
    assert normalise(raw) == canonical


def test_bracketed_and_bare_ipv6_spellings_agree() -> None:
    spellings = ["2001:db8::1", "2001:DB8:0::1", "[2001:db8:0:0:0:0:0:1]", "[2001:0db8::0001]:443"]
    assert {normalise(s) for s in spellings} == {"2001:db8::1"}


def test_a_homoglyph_is_not_the_ascii_host() -> None:
    assert normalise("f\N{CYRILLIC SMALL LETTER A}cebook.com") == "xn--fcebook-2fg.com"


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        ".",
        ":",
        "[",
        "[]",
        "\x00",
        "a\x00b.com",
        "\udcff.com",  # a lone surrogate
        "facebook.com:abc",
        "x" * 300,
        "a." + "b" * 70 + ".com",
        "<script>alert(1)</script>",
        "1:2:3:4:5:6:7:8:9",
        "xn--.com",
        "xn--zzzz-.com",
    ],
)
def test_garbage_never_raises_and_stays_a_string(garbage: str) -> None:
    assert isinstance(normalise(garbage), str)


def test_an_unmappable_host_comes_back_lowercased_and_otherwise_unchanged() -> None:
    assert normalise("A\x00B.COM") == "a\x00b.com"
    assert normalise("\udcff.COM") == "\udcff.com"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("-." + FULLWIDTH_FACEBOOK + ".com", "-.facebook.com"),
        ("a_b.facebook\N{IDEOGRAPHIC FULL STOP}com", "a_b.facebook.com"),
        ("ab--c.Bücher.example", "ab--c.xn--bcher-kva.example"),
        ("x" * 70 + ".bücher.example", "x" * 70 + ".xn--bcher-kva.example"),
        ("a\x00b." + FULLWIDTH_FACEBOOK + ".com", "a\x00b.facebook.com"),
    ],
)
def test_a_host_idna_refuses_is_folded_label_by_label(raw: str, canonical: str) -> None:
    """Fails closed: the listed parent of a label IDNA rejects still matches."""
    assert normalise(raw) == canonical


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("scontent-lhr8-1.xx.fbcdn.net", "fbcdn.net"),
        ("m.facebook.com", "facebook.com"),
        ("facebook.com", "facebook.com"),
        ("www.bbc.co.uk", "bbc.co.uk"),
        ("news.bbc.co.uk", "bbc.co.uk"),
        ("school.sch.uk", "school.sch.uk"),
        ("a.b.c.example.org", "example.org"),
        ("10.20.1.5", "10.20.1.5"),
        ("2001:db8::1", "2001:db8::1"),
        ("localhost", "localhost"),
        ("co.uk", "co.uk"),
        ("a\x00b.com", "a\x00b.com"),
    ],
)
def test_registrable_domain(host: str, domain: str) -> None:
    assert registrable_domain(host) == domain
