"""`Policy`: which group a client is in, and the first rule that decides for it."""

from __future__ import annotations

import pytest

from addons.policy import Policy
from tests.unit.support import BASE_LISTS, EVENING, SCHOOL_TIME, PolicyFiles

# Groups in BASE_CONFIG, in order: staff (10.10/16, fd00:10::/32, user alice),
# pupils (10.20/16, fd00:20::/32, user bob), guests (10/8); default everyone.


@pytest.mark.parametrize(
    ("client", "user", "group"),
    [
        ("10.10.1.5", None, "staff"),
        ("10.20.1.5", None, "pupils"),
        ("10.30.1.5", None, "guests"),
        ("192.0.2.1", None, "everyone"),
        # First match wins: staff's network comes before guests' 10.0.0.0/8.
        ("10.10.255.255", None, "staff"),
        # A user is matched per group, in group order, alongside the group's networks.
        ("192.0.2.1", "alice", "staff"),
        ("192.0.2.1", "bob", "pupils"),
        ("10.20.1.5", "alice", "staff"),  # staff (alice) comes before pupils (network)
        ("10.10.1.5", "bob", "staff"),  # staff (network) comes before pupils (bob)
        ("10.30.1.5", "bob", "pupils"),  # pupils (bob) comes before guests (network)
        ("10.20.1.5", "mallory", "pupils"),
        ("10.20.1.5", "", "pupils"),
        # IPv6 clients, and IPv4 clients seen on an IPv6 socket.
        ("fd00:10::5", None, "staff"),
        ("fd00:20:ab::1", None, "pupils"),
        ("::ffff:10.20.1.5", None, "pupils"),
        ("2001:db8::1", None, "everyone"),
        # No usable address.
        ("", None, "everyone"),
        ("not-an-address", None, "everyone"),
        ("not-an-address", "bob", "pupils"),
    ],
)
def test_the_first_group_that_matches_the_client(
    policy: Policy, client: str, user: str | None, group: str
) -> None:
    assert policy.group_of(client, user) == group
    assert policy.decide("example.org", client, user).group == group


def rule_and_action(policy: Policy, host: str, client: str, moment: float) -> tuple[str, str]:
    """(deciding rule or '-', action)."""
    decision = policy.decide(host, client, at=moment)
    return (decision.rule.name if decision.rule else "-", decision.action)


DAY, NIGHT = SCHOOL_TIME.timestamp(), EVENING.timestamp()


@pytest.mark.parametrize(
    ("host", "client", "moment", "expected"),
    [
        # Video: blocked in lessons for every group ("*"), the staff may watch after school.
        ("www.youtube.com", "10.20.1.5", DAY, ("video-in-lessons", "block")),
        ("www.youtube.com", "10.10.1.5", DAY, ("video-in-lessons", "block")),
        ("www.youtube.com", "192.0.2.1", DAY, ("video-in-lessons", "block")),
        ("www.youtube.com", "10.10.1.5", NIGHT, ("staff-video-after-school", "allow")),
        ("www.youtube.com", "10.20.1.5", NIGHT, ("-", "allow")),
        # Social networks: staff monitored (the earlier rule), every other group blocked.
        ("m.instagram.com", "10.10.1.5", DAY, ("staff-monitored", "monitor")),
        ("m.instagram.com", "10.10.1.5", NIGHT, ("staff-monitored", "monitor")),
        ("m.instagram.com", "10.20.1.5", DAY, ("school-it-ban", "block")),
        ("m.instagram.com", "10.30.1.5", NIGHT, ("school-it-ban", "block")),
        ("m.instagram.com", "192.0.2.1", NIGHT, ("school-it-ban", "block")),
        # facebook.com is in both categories: the first rule that applies decides.
        ("facebook.com", "10.20.1.5", DAY, ("video-in-lessons", "block")),
        ("facebook.com", "10.20.1.5", NIGHT, ("school-it-ban", "block")),
        ("facebook.com", "10.10.1.5", DAY, ("video-in-lessons", "block")),
        ("facebook.com", "10.10.1.5", NIGHT, ("staff-video-after-school", "allow")),
        # Unlisted hosts are allowed with no rule.
        ("example.org", "10.20.1.5", DAY, ("-", "allow")),
    ],
)
def test_rules_apply_in_order_by_group_time_and_category(
    policy: Policy, host: str, client: str, moment: float, expected: tuple[str, str]
) -> None:
    assert rule_and_action(policy, host, client, moment) == expected


def test_a_decision_records_group_school_day_and_the_deciding_entry(policy: Policy) -> None:
    decision = policy.decide("FaceBook.COM.:443", "10.20.1.5", at=DAY)
    assert (decision.host, decision.group, decision.school_day) == ("facebook.com", "pupils", True)
    assert decision.category == "video"  # the category of the rule that decided
    assert decision.match is not None and decision.match.entry == "facebook.com"
    assert decision.allowed_by is None
    night = policy.decide("facebook.com", "10.20.1.5", at=NIGHT)
    assert (night.school_day, night.category) == (False, "social_networks")


def test_a_listed_host_no_rule_covers_is_allowed_and_says_why(policy: Policy) -> None:
    decision = policy.decide("www.youtube.com", "10.20.1.5", at=NIGHT)
    assert (decision.action, decision.rule, decision.category) == ("allow", None, "video")
    assert decision.reason().startswith("www.youtube.com is listed in video (entry youtube.com at ")
    assert decision.reason().endswith("but no rule covers group pupils outside the school day")


def test_a_rule_may_name_the_default_group(files: PolicyFiles) -> None:
    staff_video = "    groups: [staff]\n    categories: [video]"
    policy = files.policy(edits={staff_video: staff_video.replace("staff", "everyone")})
    assert rule_and_action(policy, "youtube.com", "192.0.2.1", NIGHT) == (
        "staff-video-after-school",
        "allow",
    )
    assert rule_and_action(policy, "youtube.com", "10.10.1.5", NIGHT) == ("-", "allow")


def test_a_monitor_rule_on_an_allowlisted_host_allows_without_monitoring(policy: Policy) -> None:
    decision = policy.decide("about.instagram.com", "10.10.1.5", at=DAY)
    assert decision.action == "allow"
    assert decision.rule is not None and decision.rule.name == "staff-monitored"


def test_deciding_without_a_time_uses_now(policy: Policy) -> None:
    assert policy.decide("www.facebook.com", "10.20.1.5").action == "block"  # at all times


# --- HTTPS to a bare address without SNI ---------------------------------------------------------

SNI_FREE = "retention_days: 30\n"


def test_tls_without_sni_to_an_address_is_refused_while_a_blocking_rule_applies(
    policy: Policy,
) -> None:
    decision = policy.decide_without_sni("0xcb007105", "10.20.1.5", at=DAY)  # 203.0.113.5
    assert (decision.action, decision.host, decision.group) == ("block", "203.0.113.5", "pupils")
    assert decision.rule is not None and decision.rule.name == "tls-without-sni"
    assert decision.category == "tls_without_sni"
    assert decision.reason().startswith("rule tls-without-sni blocks it for group pupils: HTTPS")
    # The same address with a site name in the ClientHello is decided by its lists: allowed.
    assert policy.decide("203.0.113.5", "10.20.1.5", at=DAY).action == "allow"


def test_tls_without_sni_is_allowed_where_no_blocking_rule_decides_a_category(
    files: PolicyFiles,
) -> None:
    # Staff: video is allowed after school, social networks monitored: nothing blocks them.
    policy = files.policy()
    assert policy.decide_without_sni("203.0.113.5", "10.10.1.5", at=NIGHT).action == "allow"
    assert policy.decide_without_sni("203.0.113.5", "10.10.1.5", at=DAY).action == "block"
    assert policy.decide_without_sni("203.0.113.5", "10.20.1.5", at=NIGHT).action == "block"


def test_a_group_the_school_names_may_use_tls_without_sni(files: PolicyFiles) -> None:
    policy = files.policy(
        edits={SNI_FREE: SNI_FREE + "proxy:\n  allow_tls_without_sni: [pupils]\n"}
    )
    assert policy.decide_without_sni("203.0.113.5", "10.20.1.5", at=DAY).action == "allow"
    assert policy.decide_without_sni("203.0.113.5", "10.30.1.5", at=DAY).action == "block"


def test_a_listed_or_allowlisted_address_is_decided_by_its_entry(files: PolicyFiles) -> None:
    lists = {**BASE_LISTS, "social.txt": "1.1.1.0/24\n", "allow.txt": "=192.0.2.10\n"}
    policy = files.policy(lists=lists)
    listed = policy.decide_without_sni("16843009", "10.20.1.5", at=DAY)
    assert (listed.action, listed.category, listed.host) == ("block", "social_networks", "1.1.1.1")
    allowed = policy.decide_without_sni("192.0.2.10", "10.20.1.5", at=DAY)
    assert (allowed.action, allowed.allowed_by is not None) == ("allow", True)


def test_a_name_is_never_refused_for_want_of_sni(policy: Policy) -> None:
    assert policy.decide_without_sni("example.org", "10.20.1.5", at=DAY).action == "allow"
