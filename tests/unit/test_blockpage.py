"""The block page: self-contained, every value escaped, the reference number shown."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser

import pytest

from addons.blockpage import render_block_page
from addons.config import School
from addons.policy import Decision, Policy
from tests.unit.support import SCHOOL_TIME

HOSTILE = '<script>alert("x")</script>'
REFERENCE = 116686241471126


class _Page(HTMLParser):
    """The tags, attributes and text of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def render(policy: Policy, host: str = "m.instagram.com", **school: str) -> tuple[str, Decision]:
    """The page for a pupil's request to `host`, with `school` fields overridden."""
    decision = policy.decide(host, "10.20.1.5", at=SCHOOL_TIME.timestamp())
    assert decision.action == "block"
    page_school: School = dataclasses.replace(policy.config.school, **school)
    url = f"http://{host}/path?q=1&r=2"
    return render_block_page(page_school, decision, REFERENCE, SCHOOL_TIME, url), decision


def test_the_page_says_what_why_when_and_whom_to_ask(policy: Policy) -> None:
    html, _ = render(policy)
    text = " ".join(" ".join(_Page(html).text).split())
    for expected in (
        "Test Primary School",
        "m.instagram.com",
        "social networks",
        "We do not allow school personnel to use the school IT system.",
        "Section 3, Main Body of Policy",
        "Monday 23 November 2026, 10:00",
        "contact the school office",
        "http://m.instagram.com/path?q=1&r=2",
    ):
        assert expected in text


def test_the_reference_number_is_the_incident_id(policy: Policy) -> None:
    html, _ = render(policy)
    assert f'<dd class="reference">{REFERENCE}</dd>' in html


def test_every_value_is_escaped(policy: Policy) -> None:
    host = f"{HOSTILE}.instagram.com"  # not a host name: normalise leaves it as sent
    html, decision = render(
        policy,
        host,
        name=HOSTILE,
        contact=f"{HOSTILE} & co",
        policy_url='https://school.example/" onmouseover="alert(1)',
    )
    assert decision.host == '<script>alert("x")</script>.instagram.com'
    assert "<script" not in html
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    assert f"<title>Blocked: {escaped}.instagram.com | {escaped}</title>" in html
    assert f"{escaped} &amp; co" in html
    assert f"http://{escaped}.instagram.com/path?q=1&amp;r=2" in html
    assert 'href="https://school.example/&#34; onmouseover=&#34;alert(1)"' in html
    anchors = [attrs for tag, attrs in _Page(html).tags if tag == "a"]
    assert anchors == [{"href": 'https://school.example/" onmouseover="alert(1)'}]


@pytest.mark.parametrize("host", ["m.instagram.com", f"{HOSTILE}.instagram.com"])
def test_the_page_loads_nothing_from_anywhere(policy: Policy, host: str) -> None:
    html, _ = render(policy, host)
    tags = _Page(html).tags
    assert {tag for tag, _ in tags}.isdisjoint({"script", "img", "link", "iframe", "object"})
    links = [(tag, attrs) for tag, attrs in tags if {"src", "href"} & attrs.keys()]
    assert links == [("a", {"href": "https://school.example/policies/social-media"})]
    assert not re.search(r"url\(|@import|//[a-z]", html.split("</style>")[0])


def test_without_a_policy_url_there_is_no_link(policy: Policy) -> None:
    html, _ = render(policy, policy_url="")
    assert "href" not in html
