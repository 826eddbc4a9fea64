"""Coverage: how much of the public social-network lists the shipped blocklists block.

Every reference entry is decided by the real policy (`addons.policy.Policy` over the shipped
`config/policy.yaml`), as for a pupil during the school day, so the figures are what the gateway
does, allowlist included. Prints Markdown tables: each list's share blocked, a breakdown per major
platform, the most common unblocked registrable domains (for a person to judge), and how much of
the messaging and video lists the other categories cover.

    .venv/bin/python benchmarks/coverage.py [--references DIR] [--config FILE] [--top N]

The reference lists are the normalised copies described in `../shared/reference-lists/README.md`
(one host per line, `#` header lines naming source, commit and licence).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from addons.config import load_config
from addons.hosts import normalise, registrable_domain
from addons.policy import Decision, Policy

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REFERENCES = ROOT.parent / "shared" / "reference-lists"

PUPIL = "10.20.1.5"
# A Thursday in the Autumn 2026 term, mid-morning: inside the school day of the shipped config.
SCHOOL_DAY = dt.datetime(2026, 11, 26, 10, 0, tzinfo=ZoneInfo("Europe/London")).timestamp()

# file name -> short name: the lists that claim to name social networks.
SOCIAL_LISTS = {
    "ut1_social_networks.txt": "UT1 social_networks",
    "stevenblack_social.txt": "StevenBlack social extension",
    "adguard_social_network_group.txt": "AdGuard social_network group",
    "v2fly_social_media_notcn.txt": "v2fly category-social-media-!cn",
    "blocklistproject_facebook.txt": "Block List Project facebook",
    "blocklistproject_tiktok.txt": "Block List Project tiktok",
    "blocklistproject_twitter.txt": "Block List Project twitter",
}
# file name -> (short name, the shipped category it is compared with).
OTHER_LISTS = {
    "adguard_messenger_group.txt": ("AdGuard messenger group", "messaging"),
    "ut1_chat.txt": ("UT1 chat", "messaging"),
    "blocklistproject_whatsapp.txt": ("Block List Project whatsapp", "messaging"),
    "blocklistproject_youtube.txt": ("Block List Project youtube", "video_sharing"),
}

# A host belongs to the first platform whose pattern it matches; entries of a Block List
# Project per-platform list that match no pattern belong to that list's platform (they name
# the platform's hosts on third-party CDNs).
PLATFORMS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern)
    for name, pattern in {
        "Threads": r"(^|\.)threads\.(net|com)$|facebookthreads",
        "Instagram": r"instagram|(^|\.)instagr\.am$|(^|\.)ig\.me$",
        "WhatsApp": r"whatsapp|(^|\.)wa\.me$",
        "Facebook": r"facebook|fbcdn|fbsbx|tfbnw|fbpigeon|(^|\.)fb\.(com|me|gg|watch)$"
        r"|(^|\.)messenger\.com$|(^|\.)m\.me$",
        "X / Twitter": r"twitter|twimg|twttr|(^|\.)x\.com$|(^|\.)t\.co$|periscope|pscp\.tv$",
        "TikTok": r"tiktok|(^|\.)musical\.ly$|muscdn|bytedance|byteoversea|ibyte|byteimg",
        "Snapchat": r"snapchat|(^|\.)snap\.com$|sc-cdn\.net$|sc-static\.net$|snapkit|feelinsonice",
        "LinkedIn": r"linkedin|licdn|(^|\.)lnkd\.in$",
        "Pinterest": r"pinterest|pinimg|(^|\.)pin\.it$",
        "Reddit": r"reddit|(^|\.)redd\.it$",
        "Tumblr": r"tumblr|(^|\.)tmblr\.co$",
        "Bluesky": r"bsky|blueskyweb",
        "VK": r"(^|\.)vk\.(com|ru|me|cc)$|vkontakte|vkuser|userapi\.com$",
    }.items()
}
LIST_PLATFORM = {
    "blocklistproject_facebook.txt": "Facebook",
    "blocklistproject_tiktok.txt": "TikTok",
    "blocklistproject_twitter.txt": "X / Twitter",
}


@dataclass(frozen=True)
class Reference:
    """One public list: its entries, normalised, in file order, without repeats."""

    file: str
    name: str
    hosts: tuple[str, ...]


def read_reference(path: Path, name: str) -> Reference:
    """Read a normalised reference list (one host per line, `#` comments)."""
    hosts: dict[str, None] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            hosts[normalise(entry)] = None
    return Reference(path.name, name, tuple(hosts))


def platform_of(host: str, file: str) -> str | None:
    """The major platform a reference entry belongs to, if any."""
    for name, pattern in PLATFORMS.items():
        if pattern.search(host):
            return name
    return LIST_PLATFORM.get(file)


class Coverage:
    """The shipped policy's decision and categories for every reference host, computed once."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._decisions: dict[str, Decision] = {}

    def decision(self, host: str) -> Decision:
        """The decision for a pupil during the school day."""
        found = self._decisions.get(host)
        if found is None:
            found = self.policy.decide(host, PUPIL, at=SCHOOL_DAY)
            self._decisions[host] = found
        return found

    def blocked(self, host: str) -> bool:
        """Whether the gateway blocks `host` for a pupil during the school day."""
        return self.decision(host).action == "block"

    def listed_in(self, host: str, category: str) -> bool:
        """Whether an entry of `category` covers `host`, whatever the rules do with it."""
        return any(m.category == category for m in self.policy.index.lookup(host))


def share(part: int, whole: int) -> str:
    """`part` as a percentage of `whole`, one decimal."""
    return f"{100 * part / whole:.1f}%" if whole else "-"


def table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    """A Markdown table; columns of numbers and percentages are right-aligned."""
    header = list(header)
    cells = [[str(cell) for cell in row] for row in rows]
    numeric = [
        bool(cells) and all(_NUMBER.match(row[i]) for row in cells) for i in range(len(header))
    ]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if right else "---" for right in numeric) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


_NUMBER = re.compile(r"[0-9.]+%?\Z|-\Z")


def list_table(coverage: Coverage, references: list[Reference]) -> str:
    """Per list: entries, blocked, share, and the share listed in social_networks."""
    rows = []
    for ref in references:
        blocked = sum(coverage.blocked(h) for h in ref.hosts)
        social = sum(coverage.listed_in(h, "social_networks") for h in ref.hosts)
        rows.append(
            (
                ref.name,
                len(ref.hosts),
                blocked,
                share(blocked, len(ref.hosts)),
                share(social, len(ref.hosts)),
            )
        )
    return table(("list", "entries", "blocked", "share", "in social_networks"), rows)


def platform_table(coverage: Coverage, references: list[Reference]) -> str:
    """Per major platform, over the union of the social lists: entries, blocked, share."""
    hosts_of: dict[str, set[str]] = defaultdict(set)
    for ref in references:
        for host in ref.hosts:
            platform = platform_of(host, ref.file)
            if platform is not None:
                hosts_of[platform].add(host)
    rows = []
    for platform in [*PLATFORMS]:
        hosts = hosts_of.get(platform, set())
        blocked = sum(coverage.blocked(h) for h in hosts)
        missed = Counter(registrable_domain(h) for h in hosts if not coverage.blocked(h))
        examples = ", ".join(sorted(missed, key=lambda d: (-missed[d], d))[:4])
        rows.append((platform, len(hosts), blocked, share(blocked, len(hosts)), examples))
    return table(("platform", "entries", "blocked", "share", "unblocked, by domain"), rows)


def gaps_table(coverage: Coverage, references: list[Reference], top: int) -> str:
    """The registrable domains with the most unblocked entries, and the lists naming them.

    Ranked by how often the lists name an unblocked host of the domain (a host in three lists
    counts three times), so what many lists agree on comes first.
    """
    hosts_of: dict[str, set[str]] = defaultdict(set)
    lists_of: dict[str, set[str]] = defaultdict(set)
    mentions: Counter[str] = Counter()
    for number, ref in enumerate(references, start=1):
        for host in ref.hosts:
            if not coverage.blocked(host):
                domain = registrable_domain(host)
                hosts_of[domain].add(host)
                lists_of[domain].add(str(number))
                mentions[domain] += 1
    ranked = sorted(mentions, key=lambda d: (-mentions[d], -len(lists_of[d]), d))[:top]
    rows = [
        (
            domain,
            mentions[domain],
            len(hosts_of[domain]),
            ",".join(sorted(lists_of[domain])),
            _category_note(coverage, domain),
            min(hosts_of[domain], key=lambda h: (len(h), h)),
        )
        for domain in ranked
    ]
    legend = ", ".join(f"{n} {ref.name}" for n, ref in enumerate(references, start=1))
    return (
        table(("registrable domain", "mentions", "hosts", "lists", "listed as", "example"), rows)
        + f"\n\nLists: {legend}."
    )


def _category_note(coverage: Coverage, domain: str) -> str:
    decision = coverage.decision(domain)
    if decision.allowed_by is not None:
        return "allowlist"
    return decision.category or ""


def other_table(coverage: Coverage, references: list[tuple[Reference, str]]) -> str:
    """Per messaging or video list: the share its category covers, and the share blocked."""
    rows = []
    for ref, category in references:
        listed = sum(coverage.listed_in(h, category) for h in ref.hosts)
        blocked = sum(coverage.blocked(h) for h in ref.hosts)
        rows.append(
            (
                ref.name,
                len(ref.hosts),
                category,
                share(listed, len(ref.hosts)),
                share(blocked, len(ref.hosts)),
            )
        )
    return table(("list", "entries", "compared with", "listed", "blocked for pupils"), rows)


def main(argv: list[str] | None = None) -> None:
    """Print the coverage tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--references", type=Path, default=DEFAULT_REFERENCES)
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "policy.yaml")
    parser.add_argument("--top", type=int, default=40, help="unblocked domains to list")
    args = parser.parse_args(argv)

    coverage = Coverage(Policy(load_config(args.config)))
    social = [read_reference(args.references / f, n) for f, n in SOCIAL_LISTS.items()]
    other = [
        (read_reference(args.references / f, n), category)
        for f, (n, category) in OTHER_LISTS.items()
    ]
    day = dt.datetime.fromtimestamp(SCHOOL_DAY, ZoneInfo("Europe/London"))
    print(f"Decided as for a pupil ({PUPIL}) on {day:%a %Y-%m-%d %H:%M} (school day).\n")
    print("## Social-network lists\n")
    print(list_table(coverage, social), end="\n\n")
    print("## Major platforms (union of the lists above)\n")
    print(platform_table(coverage, social), end="\n\n")
    print(f"## The {args.top} most common unblocked registrable domains\n")
    print(gaps_table(coverage, social, args.top), end="\n\n")
    print("## Messaging and video lists\n")
    print(other_table(coverage, other))


if __name__ == "__main__":
    main()
