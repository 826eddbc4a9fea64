"""Every entry form a person can type, and which entry covers which."""

from __future__ import annotations

import pytest

from addons.entryset import EntrySet
from addons.importers import read_entry
from addons.lists import Scope


@pytest.mark.parametrize(
    ("text", "domain", "scope"),
    [
        ("facebook.com", "facebook.com", Scope.DOMAIN),
        ("=cdn.example.org", "cdn.example.org", Scope.EXACT),
        ("*.example.org", "example.org", Scope.SUBDOMAINS),
        ("FaceBook.COM", "facebook.com", Scope.DOMAIN),
        ("facebook.com.", "facebook.com", Scope.DOMAIN),
        ("bücher.example", "xn--bcher-kva.example", Scope.DOMAIN),
        ("=BÜCHER.example", "xn--bcher-kva.example", Scope.EXACT),
        (
            "*.\uff46\uff41\uff43\uff45\uff42\uff4f\uff4f\uff4b.com",
            "facebook.com",
            Scope.SUBDOMAINS,
        ),
        ("_dmarc.example.org", "_dmarc.example.org", Scope.DOMAIN),
        ("=107.148.45.21", "107.148.45.21", Scope.NETWORK),
        ("107.148.45.21", "107.148.45.21", Scope.NETWORK),
        ("1.1.1.0/24", "1.1.1.0/24", Scope.NETWORK),
        ("2606:4700:4700::/48", "2606:4700:4700::/48", Scope.NETWORK),
        ("2001:4860:4860:0:0:0:0:8888", "2001:4860:4860::8888", Scope.NETWORK),
    ],
)
def test_an_entry_is_read_in_its_canonical_form(text: str, domain: str, scope: Scope) -> None:
    assert read_entry(text) == (domain, scope)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("https://www.facebook.com/", "is an address, not a host"),
        ("facebook.com/groups", "is an address, not a host"),
        ("com", "is a public suffix"),
        ("co.uk", "is a public suffix"),
        ("*.com", "is a public suffix"),
        ("myschool.sch.uk", "is a public suffix"),
        ("face book.com", "is not a domain"),
        ("facebook..com", "is not a domain"),
        ("-facebook.com", "is not a domain"),
        ("=", "is not a domain"),
        ("*.", "is not a domain"),
        ("**.facebook.com", "is not a domain"),
        ("a" * 64 + ".com", "is not a domain"),
    ],
)
def test_a_malformed_entry_is_refused_with_its_text_and_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as refused:
        read_entry(text)
    assert repr(text) in str(refused.value)


def _entries(*entries: str) -> EntrySet[int]:
    held: EntrySet[int] = EntrySet()
    for line, entry in enumerate(entries, start=1):
        held.add(*read_entry(entry), line)
    return held


@pytest.mark.parametrize(
    ("listed", "entry", "covered_by"),
    [
        ("facebook.com", "m.facebook.com", "facebook.com"),
        ("facebook.com", "=m.facebook.com", "facebook.com"),
        ("facebook.com", "*.facebook.com", "facebook.com"),
        ("facebook.com", "=facebook.com", "facebook.com"),
        ("facebook.com", "a.b.c.facebook.com", "facebook.com"),
        ("*.facebook.com", "m.facebook.com", "*.facebook.com"),
        ("*.facebook.com", "=m.facebook.com", "*.facebook.com"),
        ("*.facebook.com", "facebook.com", None),
        ("*.facebook.com", "=facebook.com", None),
        ("=facebook.com", "m.facebook.com", None),
        ("=facebook.com", "facebook.com", None),
        ("facebook.com", "notfacebook.com", None),
        ("facebook.com", "facebook.com.evil.example", None),
    ],
)
def test_which_entry_covers_which(listed: str, entry: str, covered_by: str | None) -> None:
    found = _entries(listed).covering(*read_entry(entry))
    assert (found.entry if found else None) == covered_by


def test_the_same_entry_is_held_not_covered_and_its_first_line_is_kept() -> None:
    held = _entries("facebook.com", "fbcdn.net")
    assert held.covering("facebook.com", Scope.DOMAIN) is None
    assert held.add("facebook.com", Scope.DOMAIN, 9) is not None
    found = held.holding("facebook.com", Scope.DOMAIN)
    assert found is not None and found.where == 1
    assert len(held) == 2
