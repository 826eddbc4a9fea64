"""Property tests over hostile host strings: the matcher never raises, never blocks a host outside
the lists, and blocks a listed host in every spelling.

The oracle below is a brute-force scan of the test lists (what mitmproxy's `block_list` does),
so the suffix index and the policy are checked against an independent answer.
SCHOOLGATE_HYPOTHESIS=thorough runs many more examples.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from addons.hosts import normalise
from addons.lists import Scope
from addons.policy import Policy
from tests.unit.support import SCHOOL_TIME, PolicyFiles

PROFILE = settings.get_profile("schoolgate-" + os.environ.get("SCHOOLGATE_HYPOTHESIS", "unit"))

PUPIL = "10.20.1.5"
AT = SCHOOL_TIME.timestamp()  # every listed category is blocked for pupils then

# BASE_LISTS, canonical and written out by hand.
BLOCKED = (
    ("facebook.com", Scope.DOMAIN),
    ("fbcdn.net", Scope.DOMAIN),
    ("instagram.com", Scope.DOMAIN),
    ("exact.example.org", Scope.EXACT),
    ("sub.example.net", Scope.SUBDOMAINS),
    ("xn--bcher-kva.example", Scope.DOMAIN),
    ("youtube.com", Scope.DOMAIN),
)
ALLOWED = (
    ("about.instagram.com", Scope.EXACT),
    ("help.youtube.com", Scope.DOMAIN),
    ("safe.facebook.com", Scope.EXACT),
)
UNICODE_SPELLING = {"xn--bcher-kva.example": "bücher.example"}


def covers(domain: str, scope: Scope, host: str) -> bool:
    """Whether one entry covers `host`, by the README's table."""
    if scope is Scope.EXACT:
        return host == domain
    below = host.endswith("." + domain)
    return below or (scope is Scope.DOMAIN and host == domain)


def should_block(host: str) -> bool:
    """The oracle: covered by a category entry and by no allowlist entry."""
    listed = any(covers(d, s, host) for d, s in BLOCKED)
    return listed and not any(covers(d, s, host) for d, s in ALLOWED)


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    """The test policy, built once for every example."""
    return PolicyFiles(Path(tmp_path_factory.mktemp("properties"))).policy()


# --- strategies -------------------------------------------------------------------------------

LABEL = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=20)
PORT = st.one_of(st.just(""), st.just(":"), st.integers(0, 65535).map(lambda p: f":{p}"))
TRAILING_DOTS = st.sampled_from(["", ".", ".."])
FULLWIDTH = {c: chr(ord(c) - ord("!") + 0xFF01) for c in string.ascii_letters + string.digits}
DOTS = [".", "\N{IDEOGRAPHIC FULL STOP}", "\N{FULLWIDTH FULL STOP}"]
HOMOGLYPHS = {
    "a": ["\N{CYRILLIC SMALL LETTER A}", "\N{LATIN SMALL LETTER ALPHA}"],
    "c": ["\N{CYRILLIC SMALL LETTER ES}"],
    "e": ["\N{CYRILLIC SMALL LETTER IE}"],
    "o": ["\N{CYRILLIC SMALL LETTER O}", "\N{GREEK SMALL LETTER OMICRON}"],
    "i": ["\N{CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I}", "\N{LATIN SMALL LETTER DOTLESS I}"],
    "b": ["\N{CYRILLIC SMALL LETTER BE}"],
    "t": ["\N{GREEK SMALL LETTER TAU}"],
    "u": ["\N{GREEK SMALL LETTER UPSILON}"],
}


@st.composite
def mixed_case(draw: st.DrawFn, text: str) -> str:
    """`text` with each letter in either case."""
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.swapcase() if flip else c for c, flip in zip(text, flips, strict=True))


@st.composite
def listed_host(draw: st.DrawFn) -> str:
    """A canonical host some category entry covers and no allowlist entry does."""
    domain, scope = draw(st.sampled_from(BLOCKED))
    fewest = 1 if scope is Scope.SUBDOMAINS else 0
    prefix = draw(st.lists(LABEL, min_size=fewest, max_size=0 if scope is Scope.EXACT else 3))
    host = ".".join([*prefix, domain]).lower()
    assume(should_block(host))
    return host


@st.composite
def ascii_spelling(draw: st.DrawFn) -> str:
    """A listed host as a client may send it: any case, trailing dots, a port."""
    host = draw(listed_host())
    return draw(mixed_case(host)) + draw(TRAILING_DOTS) + draw(PORT)


@st.composite
def unicode_spelling(draw: st.DrawFn) -> str:
    """A listed host in Unicode: its IDN form, full-width letters, other full stops."""
    host = draw(listed_host())
    for ascii_form, unicode_form in UNICODE_SPELLING.items():
        host = host.replace(ascii_form, unicode_form)
    chars = [
        draw(st.sampled_from([c, FULLWIDTH[c]])) if c in FULLWIDTH else c
        for c in draw(mixed_case(host))
    ]
    spelled = "".join(draw(st.sampled_from(DOTS)) if c == "." else c for c in chars)
    return spelled + draw(TRAILING_DOTS) + draw(PORT)


@st.composite
def homoglyph_spelling(draw: st.DrawFn) -> str:
    """A listed domain with at least one letter swapped for a look-alike from another script."""
    domain, _scope = draw(st.sampled_from([e for e in BLOCKED if not e[0].startswith("xn--")]))
    swappable = [i for i, c in enumerate(domain) if c in HOMOGLYPHS]
    chosen = draw(st.sets(st.sampled_from(swappable), min_size=1))
    chars = [
        draw(st.sampled_from(HOMOGLYPHS[c])) if i in chosen else c for i, c in enumerate(domain)
    ]
    prefix = draw(st.lists(LABEL, max_size=2))
    return ".".join([*prefix, "".join(chars)]) + draw(TRAILING_DOTS) + draw(PORT)


@st.composite
def near_miss(draw: st.DrawFn) -> tuple[str, str]:
    """A host made from a listed one by gluing on a label (`notfacebook.com`, `facebook.comx`,
    `facebook.com.example`): (as sent, canonical by construction)."""
    domain, _scope = draw(st.sampled_from(BLOCKED))
    label = draw(LABEL).lower()
    host = draw(st.sampled_from([label + domain, f"{domain}.{label}", domain + label]))
    return draw(mixed_case(host)) + draw(TRAILING_DOTS) + draw(PORT), host


CONTROL = st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp"])
ANY_CHARACTER = st.characters(exclude_categories=[])  # lone surrogates included


@st.composite
def with_control_characters(draw: st.DrawFn) -> str:
    """A listed spelling with NUL, control or format characters put in."""
    text = draw(ascii_spelling())
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(CONTROL) + text[at:]
    return text


def ipv6_literal() -> st.SearchStrategy[str]:
    """IPv6 addresses, bare, bracketed, with ports, compressed or not."""
    address = st.ip_addresses(v=6).flatmap(
        lambda a: st.sampled_from([str(a), a.exploded, a.exploded.upper()])
    )
    return st.one_of(
        address,
        st.tuples(address, PORT).map(lambda ap: f"[{ap[0]}]{ap[1]}"),
        st.tuples(address, st.integers(0, 65535)).map(lambda ap: f"{ap[0]}:{ap[1]}"),
    )


OVER_LONG = st.tuples(
    st.text(string.ascii_letters, min_size=64, max_size=300), st.sampled_from(BLOCKED)
).map(lambda lb: f"{lb[0]}.{lb[1][0]}")

HOSTILE = st.one_of(
    st.text(ANY_CHARACTER, max_size=80),
    st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
    ascii_spelling(),
    unicode_spelling(),
    homoglyph_spelling(),
    with_control_characters(),
    ipv6_literal(),
    OVER_LONG,
    st.lists(st.sampled_from(["facebook", "com", ".", ":", "[", "]", "xn--", "443", "-"])).map(
        "".join
    ),
)


# --- properties -------------------------------------------------------------------------------


@PROFILE
@given(raw=HOSTILE)
@example(raw="\x00")
@example(raw="[")
@example(raw="facebook.com\x00")
@example(raw="notfacebook.com")
@example(raw="facebook.com.example.org")
@example(raw="sub.example.net")
@example(raw="f\N{CYRILLIC SMALL LETTER A}cebook.com")
@example(raw="\udcff.facebook.com")
def test_a_hostile_host_never_raises_and_blocks_exactly_what_is_listed(
    policy: Policy, raw: str
) -> None:
    decision = policy.decide(raw, PUPIL, at=AT)
    assert decision.host == normalise(raw)
    assert decision.action in ("block", "allow")
    assert (decision.action == "block") == should_block(decision.host)


@PROFILE
@given(raw=st.one_of(ascii_spelling(), unicode_spelling()))
@example(raw="-.facebook\N{IDEOGRAPHIC FULL STOP}com")  # found by the thorough profile
@example(raw="A_B.B\N{LATIN CAPITAL LETTER U WITH DIAERESIS}CHER.EXAMPLE.:443")
def test_a_listed_host_is_blocked_in_every_spelling(policy: Policy, raw: str) -> None:
    assert policy.decide(raw, PUPIL, at=AT).action == "block"


@PROFILE
@given(sent=near_miss())
@example(sent=("NotFacebook.com.:443", "notfacebook.com"))
@example(sent=("facebook.com.example.org", "facebook.com.example.org"))
def test_a_host_glued_onto_a_listed_one_is_decided_by_its_own_name(
    policy: Policy, sent: tuple[str, str]
) -> None:
    raw, host = sent
    decision = policy.decide(raw, PUPIL, at=AT)
    assert decision.host == host
    assert (decision.action == "block") == should_block(host)


@PROFILE
@given(raw=homoglyph_spelling())
@example(raw="f\N{CYRILLIC SMALL LETTER A}cebook.com")
@example(raw="www.inst\N{GREEK SMALL LETTER ALPHA}gram.com.:443")
def test_a_homoglyph_of_a_listed_domain_is_not_that_domain(policy: Policy, raw: str) -> None:
    decision = policy.decide(raw, PUPIL, at=AT)
    assert decision.action == "allow"
    assert not should_block(decision.host)


@PROFILE
@given(host=st.one_of(st.text(ANY_CHARACTER, max_size=60), listed_host(), HOSTILE))
def test_the_index_agrees_with_a_scan_of_every_entry(policy: Policy, host: str) -> None:
    found = {(m.domain, m.scope) for m in policy.index.lookup(host)}
    expected = {(d, s) for d, s in (*BLOCKED, *ALLOWED) if covers(d, s, host)}
    assert found == expected
