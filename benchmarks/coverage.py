"""Coverage: how much of the public social-network lists the shipped blocklists block, and
how much of the public bypass lists (encrypted-DNS resolvers, platform front-ends).

Every reference entry is decided by the real policy (`addons.policy.Policy` over the shipped
`config/policy.yaml`), as for a pupil during the school day, so the figures are what the gateway
does, allowlist included. Prints Markdown tables: each list's share blocked, a breakdown per major
platform, the most common unblocked registrable domains (for a person to judge), how much of
the messaging and video lists the other categories cover; then the DNS-over-HTTPS category's
share of each public resolver list (names and addresses apart) and the share of the platforms'
front-ends blocked, with what is left unblocked.

    .venv/bin/python benchmarks/coverage.py [--references DIR] [--config FILE] [--top N]
    .venv/bin/python benchmarks/coverage.py --bypass-only [--bypass-references DIR]

The lists measured against are other projects' data, so the repository does not ship them:
`benchmarks/references.py` makes normalised copies (one host per line, under `#` header lines
naming source, commit and licence) from git checkouts of their sources, in
`benchmarks/reference/` (ignored by git), the default folder of both options.
`blocklists/README.md` names the repositories and commits its figures were measured at.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shlex
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from addons.config import load_config
from addons.hosts import is_ip_address, normalise, registrable_domain
from addons.policy import Decision, Policy

ROOT = Path(__file__).resolve().parent.parent
REFERENCES = ROOT / "benchmarks" / "reference"
# The checkouts `benchmarks/references.py` makes each set of lists from.
SOCIAL_CHECKOUTS = (
    "--ut1 DIR --blocklistproject DIR --adguard-registry DIR --sinfonietta DIR --tiuxo DIR "
    "--v2fly DIR"
)
BYPASS_CHECKOUTS = "--curl-wiki DIR --dnscrypt DIR --adguard DIR --libredirect DIR --farside DIR"

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

# file name -> short name: the public encrypted-DNS resolver lists.
RESOLVER_LISTS = {
    "doh_curl_wiki.txt": "curl wiki, DNS-over-HTTPS",
    "doh_dnscrypt.txt": "dnscrypt-proxy public-resolvers (DoH)",
    "doh_adguard.txt": "AdGuard known DNS providers",
}
# file name -> short name: the public lists of the platforms' front-end instances. Each host's
# comment names its platform, which decides the category it is compared with.
FRONTEND_LISTS = {
    "frontends_libredirect.txt": "LibRedirect instances",
    "frontends_farside.txt": "Farside instances",
}
VIDEO_PLATFORMS = frozenset({"YouTube", "Twitch"})

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


def read_tagged(path: Path) -> dict[str, str]:
    """A normalised reference list's hosts, in file order, each with the comment after it."""
    hosts: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        entry, _, comment = line.partition("#")
        if entry.strip():
            hosts.setdefault(normalise(entry.strip()), comment.strip())
    return hosts


def read_reference(path: Path, name: str) -> Reference:
    """Read a normalised reference list (one host per line, `#` comments)."""
    return Reference(path.name, name, tuple(read_tagged(path)))


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


def _counts(coverage: Coverage, hosts: Iterable[str]) -> tuple[int, int, str, int, str, str]:
    """Names and addresses apart: how many, how many blocked, the share."""
    hosts = list(hosts)
    names = [h for h in hosts if not is_ip_address(h)]
    addresses = [h for h in hosts if is_ip_address(h)]
    named = sum(coverage.blocked(h) for h in names)
    addressed = sum(coverage.blocked(h) for h in addresses)
    return (
        len(names),
        named,
        share(named, len(names)),
        len(addresses),
        addressed,
        share(addressed, len(addresses)),
    )


def resolver_table(coverage: Coverage, references: list[Reference]) -> str:
    """Per resolver list and over their union: names and addresses, each blocked and share."""
    rows = [(ref.name, *_counts(coverage, ref.hosts)) for ref in references]
    union = dict.fromkeys(host for ref in references for host in ref.hosts)
    rows.append(("all three, once each", *_counts(coverage, union)))
    header = ("list", "names", "blocked", "share", "addresses", "blocked", "share")
    return table(header, rows)


def unblocked_list(coverage: Coverage, references: list[Reference]) -> str:
    """Every unblocked entry of the lists, with the lists naming it, for a person to judge."""
    lists_of: dict[str, list[str]] = defaultdict(list)
    for number, ref in enumerate(references, start=1):
        for host in ref.hosts:
            if not coverage.blocked(host):
                lists_of[host].append(str(number))
    legend = ", ".join(f"{n} {ref.name}" for n, ref in enumerate(references, start=1))
    entries = sorted(lists_of, key=lambda h: (is_ip_address(h), h))
    lines = [f"- {h} ({','.join(lists_of[h])})" for h in entries] or ["Nothing."]
    return "\n".join(lines) + f"\n\nLists: {legend}."


def read_frontends(path: Path, name: str) -> tuple[Reference, dict[str, str]]:
    """A front-end list, and each host's platform (its comment: `Platform (front-end)`)."""
    tagged = read_tagged(path)
    platforms = {host: comment.split(" (", 1)[0] for host, comment in tagged.items()}
    return Reference(path.name, name, tuple(tagged)), platforms


def frontend_category(platform: str) -> str:
    """The shipped category a front-end of `platform` belongs in."""
    return "video_sharing" if platform in VIDEO_PLATFORMS else "social_networks"


def frontend_table(coverage: Coverage, lists: list[tuple[Reference, dict[str, str]]]) -> str:
    """Per front-end list, then per platform over all of them: the share its category lists,
    and the share blocked for pupils (video front-ends are listed but, like video, allowed)."""
    platform_of = {host: p for _ref, platforms in lists for host, p in platforms.items()}

    def counts(hosts: list[str]) -> tuple[int, int, str, int, str]:
        listed = sum(coverage.listed_in(h, frontend_category(platform_of[h])) for h in hosts)
        blocked = sum(coverage.blocked(h) for h in hosts)
        return len(hosts), listed, share(listed, len(hosts)), blocked, share(blocked, len(hosts))

    rows = [(ref.name, *counts(list(ref.hosts))) for ref, _platforms in lists]
    by_platform: dict[str, list[str]] = defaultdict(list)
    for host, platform in platform_of.items():
        by_platform[platform].append(host)
    rows += [(f"{p}, both lists", *counts(by_platform[p])) for p in sorted(by_platform)]
    header = ("list", "entries", "listed in its category", "share", "blocked for pupils", "share")
    return table(header, rows)


def unlisted_frontends(coverage: Coverage, lists: list[tuple[Reference, dict[str, str]]]) -> str:
    """The front-end hosts their category does not list, with their platform."""
    missing = sorted(
        (host, platform)
        for _ref, platforms in lists
        for host, platform in platforms.items()
        if not coverage.listed_in(host, frontend_category(platform))
    )
    return "\n".join(f"- {h} ({p})" for h, p in dict(missing).items()) or "None."


def print_bypass(coverage: Coverage, folder: Path) -> None:
    """The encrypted-DNS and front-end tables, from the copies in `folder`."""
    resolvers = [read_reference(folder / f, n) for f, n in RESOLVER_LISTS.items()]
    frontends = [read_frontends(folder / f, n) for f, n in FRONTEND_LISTS.items()]
    print("## Encrypted-DNS resolver lists (dns_over_https)\n")
    print(resolver_table(coverage, resolvers), end="\n\n")
    print("### Not blocked\n")
    print(unblocked_list(coverage, resolvers), end="\n\n")
    print("## Platform front-ends (social_networks, video_sharing)\n")
    print(frontend_table(coverage, frontends), end="\n\n")
    print("### Not listed in their category\n")
    print(unlisted_frontends(coverage, frontends))


def missing_copies(folder: Path, files: Iterable[str], checkouts: str) -> str | None:
    """One line saying which reference copy `folder` lacks and the command that makes it; None
    if it has them all."""
    absent = [file for file in files if not (folder / file).is_file()]
    if not absent:
        return None
    return (
        f"coverage.py: no {absent[0]} in {folder}: make the copies with `.venv/bin/python "
        f"benchmarks/references.py {checkouts} --output {shlex.quote(str(folder))}`, each DIR a "
        "clone of the repository blocklists/README.md names"
    )


def main(argv: list[str] | None = None) -> None:
    """Print the coverage tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--references",
        type=Path,
        default=REFERENCES,
        metavar="DIR",
        help="the social, messaging and video lists (default: benchmarks/reference/)",
    )
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "policy.yaml")
    parser.add_argument("--top", type=int, default=40, help="unblocked domains to list")
    parser.add_argument(
        "--bypass-references",
        type=Path,
        default=REFERENCES,
        metavar="DIR",
        help="the resolver and front-end lists (default: benchmarks/reference/)",
    )
    parser.add_argument(
        "--bypass-only",
        action="store_true",
        help="only the encrypted-DNS and front-end tables",
    )
    args = parser.parse_args(argv)
    problems = [
        missing_copies(args.bypass_references, [*RESOLVER_LISTS, *FRONTEND_LISTS], BYPASS_CHECKOUTS)
    ]
    if not args.bypass_only:
        social = [*SOCIAL_LISTS, *OTHER_LISTS]
        problems.insert(0, missing_copies(args.references, social, SOCIAL_CHECKOUTS))
    if any(problems):
        sys.exit("\n".join(filter(None, problems)))

    coverage = Coverage(Policy(load_config(args.config)))
    day = dt.datetime.fromtimestamp(SCHOOL_DAY, ZoneInfo("Europe/London"))
    print(f"Decided as for a pupil ({PUPIL}) on {day:%a %Y-%m-%d %H:%M} (school day).\n")
    if not args.bypass_only:
        print_social(coverage, args.references, args.top)
        print()
    print_bypass(coverage, args.bypass_references)


def print_social(coverage: Coverage, folder: Path, top: int) -> None:
    """The social-network, messaging and video tables, from the copies in `folder`."""
    social = [read_reference(folder / f, n) for f, n in SOCIAL_LISTS.items()]
    other = [(read_reference(folder / f, n), category) for f, (n, category) in OTHER_LISTS.items()]
    print("## Social-network lists\n")
    print(list_table(coverage, social), end="\n\n")
    print("## Major platforms (union of the lists above)\n")
    print(platform_table(coverage, social), end="\n\n")
    print(f"## The {top} most common unblocked registrable domains\n")
    print(gaps_table(coverage, social, top), end="\n\n")
    print("## Messaging and video lists\n")
    print(other_table(coverage, other))


if __name__ == "__main__":
    main()
