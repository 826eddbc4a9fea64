"""The policy: given a host, a client and a moment, block, monitor or allow, and say why.

The proxy asks once per request, so `decide` is three cached lookups: the client's group
(depends only on the client), whether it is the school day (depends only on the minute),
and the rule for this host, group and school-day flag. A reload builds a new Policy and swaps
the reference, so each Policy's caches never outlive the lists they were built from.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from dataclasses import dataclass

from addons.config import Config, Rule
from addons.defences import TLS_WITHOUT_SNI, Defence
from addons.devices import Devices
from addons.hosts import ip_address_of, normalise
from addons.matching import ALLOW, DomainIndex, Match, Source
from addons.schedule import SchoolDay

_WHEN_PHRASE = {
    "always": "at all times",
    "school_day": "during the school day",
    "outside_school_day": "outside the school day",
}


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy decided for one host, one group and one side of the school day."""

    action: str  # "block" | "monitor" | "allow"
    host: str
    group: str
    school_day: bool
    rule: Rule | None = None  # the rule that decided (or that the allowlist overrode)
    match: Match | None = None  # the category entry covering the host
    allowed_by: Match | None = None  # the allowlist entry, when one covers the host
    defence: Defence | None = None  # one of the gateway's own rules decided, not a list

    @property
    def category(self) -> str | None:
        """The category of the deciding entry, if the host is listed (or of the defence)."""
        if self.match is not None:
            return self.match.category
        return self.defence.category if self.defence is not None else None

    def reason(self) -> str:
        """One sentence for IT: which entry, which rule, which group. Reads list files for lines."""
        if self.defence is not None:
            rule = self.defence.rule
            return f"rule {rule.name} blocks it for group {self.group}: {rule.policy}"
        if self.match is None and self.allowed_by is None:
            return f"{self.host} is in no list"
        if self.allowed_by is not None:
            allow = f"allowlist entry {self.allowed_by.entry} ({self.allowed_by.location()})"
            if self.rule is None:
                return f"{allow} covers {self.host}"
            return (
                f"{allow} overrides rule {self.rule.name}, which would {self.rule.action} "
                f"{self.host} as {self._listed()}"
            )
        if self.rule is None:
            return (
                f"{self.host} is {self._listed()}, but no rule covers group {self.group} "
                f"{'during' if self.school_day else 'outside'} the school day"
            )
        return (
            f"{self.host} is {self._listed()}; rule {self.rule.name} {self.rule.action}s it "
            f"for group {self.group} {_WHEN_PHRASE[self.rule.when]}"
        )

    def _listed(self) -> str:
        match = self.match
        assert match is not None
        return f"listed in {match.category} (entry {match.entry} at {match.location()})"


class Policy:
    """The rules of one config, with its lists indexed, ready to decide."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.school_day = SchoolDay(config.school_day, config.school.timezone)
        sources = [Source(ALLOW, path) for path in config.allowlist]
        sources += [
            Source(category, path)
            for category, paths in config.categories.items()
            for path in paths
        ]
        self.index = DomainIndex(sources)
        self.devices = Devices(config.devices)  # device names, for the incidents' `device`
        self._minute: tuple[int, bool] = (-1, False)
        self.group_of = functools.lru_cache(maxsize=16384)(self._group_of)
        self._decide = functools.lru_cache(maxsize=65536)(self._decide_uncached)
        self.blocks_now = functools.cache(self._blocks_now)  # (group, in_day): a few pairs

    def decide(
        self, host: str, client_ip: str, user: str | None = None, at: float | None = None
    ) -> Decision:
        """Decide for `host` as sent by the client, at POSIX time `at` (default: now)."""
        epoch = time.time() if at is None else at
        minute, in_day = self._minute
        if epoch // 60 != minute:  # checked inline: a method call here costs 20% of a decision
            in_day = self.in_school_day(epoch)
        return self._decide(host, self.group_of(client_ip, user), in_day)

    def decide_without_sni(
        self, address: str, client_ip: str, user: str | None = None, at: float | None = None
    ) -> Decision:
        """Decide for HTTPS to an IP address (any spelling) whose ClientHello names no site.

        The gateway cannot tell which site that is, so it is refused while a blocking rule
        applies to the client's group at that moment, unless the group is in
        `proxy.allow_tls_without_sni` or the allowlist covers the address. A listed address is
        decided by its entry first.
        """
        decision = self.decide(address, client_ip, user, at)
        if (
            decision.action == "block"
            or decision.allowed_by is not None
            or ip_address_of(decision.host) is None
            or decision.group in self.config.proxy.allow_tls_without_sni
            or not self.blocks_now(decision.group, decision.school_day)
        ):
            return decision
        return self.refusal(TLS_WITHOUT_SNI, decision)

    def refusal(self, defence: Defence, decided: Decision) -> Decision:
        """A block by one of the gateway's own rules, for the host, group and time of `decided`."""
        return Decision(
            "block", decided.host, decided.group, decided.school_day, defence.rule, defence=defence
        )

    def _blocks_now(self, group: str, in_day: bool) -> bool:
        """Whether a blocking rule decides some category for `group` at this side of the day
        (the first rule that applies to a category decides it, as for a listed host)."""
        decided: set[str] = set()
        for rule in self.config.rules:
            if not _applies(rule, group, in_day):
                continue
            if rule.action == "block" and not decided.issuperset(rule.categories):
                return True
            decided.update(rule.categories)
        return False

    def in_school_day(self, epoch: float) -> bool:
        """Whether `epoch` is in the school day; computed once per minute."""
        minute = int(epoch // 60)
        cached_minute, inside = self._minute
        if cached_minute != minute:
            inside = self.school_day.contains_timestamp(minute * 60)
            self._minute = (minute, inside)
        return inside

    def _group_of(self, client_ip: str, user: str | None) -> str:
        """First group whose users include `user` or whose networks include the client."""
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            address = None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        for group in self.config.groups:
            if user and user in group.users:
                return group.name
            if address is not None and any(address in net for net in group.networks):
                return group.name
        return self.config.default_group

    def _decide_uncached(self, raw_host: str, group: str, in_day: bool) -> Decision:
        host = normalise(raw_host)
        matches = self.index.lookup(host)
        if not matches:
            return Decision("allow", host, group, in_day)
        allowed_by = next((m for m in matches if m.category == ALLOW), None)
        listed = [m for m in matches if m.category != ALLOW]
        for rule in self.config.rules:
            if not _applies(rule, group, in_day):
                continue
            match = next((m for m in listed if m.category in rule.categories), None)
            if match is None:
                continue
            action = "allow" if allowed_by else rule.action
            return Decision(action, host, group, in_day, rule, match, allowed_by)
        return Decision("allow", host, group, in_day, None, next(iter(listed), None), allowed_by)


def _applies(rule: Rule, group: str, in_day: bool) -> bool:
    if rule.groups is not None and group not in rule.groups:
        return False
    if rule.when == "school_day":
        return in_day
    if rule.when == "outside_school_day":
        return not in_day
    return True
