"""Make the reference lists `coverage.py` measures the shipped lists against, from git
checkouts of their public sources.

The lists are other projects' data, so this repository does not ship them: this script writes
normalised copies to a folder outside git, `benchmarks/reference/` unless `--output` says
otherwise (`.gitignore` keeps that folder out of commits). Each file keeps only what the gateway
can match, host names (and, for the resolvers, IP addresses), normalised as the gateway
normalises a host, under a header naming the source repository, path, commit and licence.

    .venv/bin/python benchmarks/references.py [--output DIR] [--copy CHECKOUT=OWNER/NAME] \\
        [--curl-wiki DIR] [--dnscrypt DIR] [--adguard DIR] [--libredirect DIR] [--farside DIR] \\
        [--ut1 DIR] [--blocklistproject DIR] [--adguard-registry DIR] [--sinfonietta DIR] \\
        [--tiuxo DIR] [--v2fly DIR]

Each DIR is a git repository, a clone or a bare mirror, whose HEAD is read, and every list whose
checkouts are given is written. The first five make the encrypted-DNS and front-end lists of
`coverage.py --bypass-only`: curl's wiki (github.com/curl/curl.wiki.git),
DNSCrypt/dnscrypt-resolvers, AdguardTeam/KnowledgeBaseDNS, libredirect/instances and
benbusby/farside. The other six make the social-network, messaging and video lists:
olbat/ut1-blacklists, blocklistproject/Lists, AdguardTeam/HostlistsRegistry,
Sinfonietta/hostfiles, tiuxo/hosts and v2fly/domain-list-community. `blocklists/README.md` names
the commits its figures were measured at.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import functools
import ipaddress
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from addons.hosts import is_ip_address, normalise
from addons.importers import Found, parse

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "benchmarks" / "reference"

# The front-end services whose instances show one platform's content, and that platform.
# LibRedirect's Piped entries are left out: they are bare parent domains of many services
# (adminforge.de); Farside names each Piped instance's own front-end and API hosts.
FRONTENDS = {
    "nitter": "X / Twitter",
    "redlib": "Reddit",
    "libreddit": "Reddit",
    "teddit": "Reddit",
    "proxitok": "TikTok",
    "proxigram": "Instagram",
    "kittygram": "Instagram",
    "bibliogram": "Instagram",
    "priviblur": "Tumblr",
    "binternet": "Pinterest",
    "quetre": "Quora",
    "invidious": "YouTube",
    "cloudtube": "YouTube",
    "poke": "YouTube",
    "safetwitch": "Twitch",
    "twineo": "Twitch",
}
FARSIDE_ONLY = {"piped": "YouTube"}
# Names on networks a school's devices do not reach through the web: Tor, I2P, Yggdrasil, Lokinet.
OVERLAY_NETWORKS = (".onion", ".i2p", ".ygg", ".loki")


@dataclass(frozen=True)
class Source:
    """Where a reference list comes from, for its header."""

    repo: str
    paths: tuple[str, ...]
    commit: str  # the last commit that changed those files
    committed: str  # its date, YYYY-MM-DD


class Checkout:
    """HEAD of a git repository, read file by file.

    It remembers the files read, so the header names the commit that last changed them: a
    mirror's own later commits do not hide the source's, and checking that commit out remakes
    the same list.
    """

    def __init__(self, root: Path, repo: str) -> None:
        self.root = root
        self.repo = repo
        self.paths: list[str] = []

    def _git(self, *args: str) -> str:
        done = subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, text=True)
        if done.returncode:
            error = done.stderr.strip() or f"exit status {done.returncode}"
            raise ValueError(f"{self.root} (a checkout of {self.repo}): git {args[0]}: {error}")
        return done.stdout

    def text(self, path: str) -> str:
        """The file `path` at HEAD."""
        if path not in self.paths:
            self.paths.append(path)
        return self._git("show", f"HEAD:{path}")

    def source(self) -> Source:
        """The repository, the files read so far, and the last commit that changed them."""
        found = self._git("log", "-1", "--format=%H %cs", "HEAD", "--", *self.paths)
        commit, date = found.split()
        return Source(self.repo, tuple(self.paths), commit, date)


def _host(raw: str) -> str | None:
    """The normalised host of a URL's authority or an address (port and brackets dropped)."""
    host = normalise(raw)
    return host if host and " " not in host else None


def _url_host(url: str) -> str | None:
    try:
        netloc = urlsplit(url).netloc
    except ValueError:  # a malformed IPv6 literal
        return None
    return _host(netloc.rpartition("@")[2])


# --- DNS-over-HTTPS resolvers -----------------------------------------------------------------

_HTTPS_URL = re.compile(r"https://[^\s<>|`()\[\]]+|https://\[[0-9a-fA-F:.]+\][^\s<>|`()]*")


def curl_wiki_hosts(text: str) -> list[str]:
    """The host of every DoH URL in the wiki page's "Publicly available servers" table.

    A row is `| who runs it | base URLs | working | comment |`; only the second cell is read,
    so the providers' home pages in the first cell are not taken for resolvers.
    """
    sections = re.split(r"(?m)^# ", text)
    section = next(s for s in sections if s.startswith("Publicly available servers"))
    hosts = []
    for line in section.splitlines():
        cells = line.strip().strip("|").split("|")
        if len(cells) >= 3:
            hosts += filter(None, map(_url_host, _HTTPS_URL.findall(cells[1])))
    return hosts


def _lp(data: bytes, at: int) -> tuple[bytes, int]:
    """A length-prefixed field of a DNS stamp, and where the next one starts."""
    end = at + 1 + data[at]
    return data[at + 1 : end], end


def doh_stamp(stamp: str) -> tuple[str | None, str] | None:
    """The server address (None if the stamp has none) and host name of a DoH stamp.

    DNS stamps (https://dnscrypt.info/stamps-specifications): `sdns://` and base64url of a
    protocol byte (0x02 for DoH), 8 bytes of properties, then the address, the certificate
    hashes (each length byte has 0x80 set while more follow), the host name and the path.
    Other protocols (DNSCrypt, ODoH) give None.
    """
    body = stamp.removeprefix("sdns://")
    data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    if data[0] != 0x02:
        return None
    address, at = _lp(data, 9)
    while data[at] & 0x80:
        at += 1 + (data[at] & 0x7F)
    _hash, at = _lp(data, at)
    hostname, _at = _lp(data, at)
    host = _host(hostname.decode("ascii"))
    if host is None:
        raise ValueError(f"{stamp}: no host name")
    return _host(address.decode("ascii")) if address else None, host


def dnscrypt_hosts(text: str) -> list[str]:
    """The host names and server addresses of every DoH stamp in `public-resolvers.md`."""
    hosts = []
    for stamp in re.findall(r"^sdns://\S+", text, flags=re.MULTILINE):
        found = doh_stamp(stamp)
        if found is not None:
            address, host = found
            hosts += [host] if address is None else [host, address]
    return hosts


def adguard_hosts(text: str) -> list[str]:
    """The DoH and DoT hosts of the known-providers page, and the plain DNS addresses of the
    providers that offer DoH or DoT (the same anycast addresses answer both for most)."""
    hosts = []
    for provider in re.split(r"(?m)^### ", text)[1:]:
        encrypted, plain = [], []
        for line in provider.splitlines():
            cells = line.split("|")
            if len(cells) < 3:
                continue
            protocol, values = cells[1].strip(), re.findall(r"`([^`]+)`", cells[2])
            if protocol in ("DNS-over-HTTPS", "DNS-over-TLS"):
                encrypted += filter(None, map(_url_host, values))
            elif protocol.startswith("DNS, IPv"):
                plain += [h for h in map(_host, values) if h and is_ip_address(h)]
        if encrypted:
            hosts += encrypted + plain
    return hosts


# --- front-ends -------------------------------------------------------------------------------


def libredirect_frontends(text: str) -> list[tuple[str, str]]:
    """(host, platform) of every clearnet instance of the front-ends in FRONTENDS."""
    data = json.loads(text)
    pairs = []
    for service, networks in data.items():
        platform = FRONTENDS.get(service.lower())
        if platform is not None:
            for url in networks.get("clearnet", []):
                pairs.append((url, f"{platform} ({service})"))
    return _hosts_of(pairs)


def farside_frontends(text: str) -> list[tuple[str, str]]:
    """(host, platform) of every instance and fallback of the front-ends Farside redirects to.

    A Piped instance is written `front-end URL|API URL`: both hosts serve the platform.
    """
    pairs = []
    for service in json.loads(text):
        platform = (FRONTENDS | FARSIDE_ONLY).get(service["type"])
        if platform is not None:
            for entry in [*service["instances"], service.get("fallback") or ""]:
                for url in filter(None, entry.split("|")):
                    pairs.append((url, f"{platform} ({service['type']})"))
    return _hosts_of(pairs)


def _hosts_of(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    found = []
    for url, label in pairs:
        host = _url_host(url)
        if host and not host.endswith(OVERLAY_NETWORKS):
            found.append((host, label))
    return found


# --- social-network, messaging and video lists -----------------------------------------------


def listed_names(text: str, fmt: str) -> list[str]:
    """The host names a list blocks, read as `schoolgate blocklist import --format fmt` reads
    them (plain, hosts or adblock). Addresses are dropped, and names without a dot (a hosts
    file's `snapchat-com`): these figures count sites by name."""
    return [
        found.domain
        for found in parse(text.splitlines(), fmt)
        if isinstance(found, Found) and "." in found.domain and not is_ip_address(found.domain)
    ]


def registry_group_names(group: str, text: str) -> list[str]:
    """The hosts of every service in `group` of AdGuard HostlistsRegistry's `services.json`.

    Its rules are adblock syntax; `|host^` (that exact host) is read as `||host^`, since only
    the host is kept either way.
    """
    rules = [
        rule
        for service in json.loads(text)["blocked_services"]
        if service["group"] == group
        for rule in service["rules"]
    ]
    exact_host = re.compile(r"^\|(?!\|)", flags=re.MULTILINE)
    return listed_names(exact_host.sub("||", "\n".join(rules)), "adblock")


def v2fly_names(read: Callable[[str], str], name: str) -> list[str]:
    """The domains of v2fly's list `data/<name>` and of the lists it includes.

    `domain:`, `full:` and bare entries are kept (attributes such as `@ads` are labels, not
    filters, here); `keyword:` and `regexp:` entries name no host and are left out.
    """
    return listed_names("\n".join(_v2fly_entries(read, name)), "plain")


def _v2fly_entries(read: Callable[[str], str], name: str) -> list[str]:
    entries = []
    for line in read(f"data/{name}").splitlines():
        entry, _at, attributes = line.partition("#")[0].strip().partition(" @")
        kind, colon, value = entry.partition(":")
        if not colon:
            kind, value = "domain", kind
        if kind == "include":
            if attributes:
                raise ValueError(f"data/{name}: {line!r}: an include filtered by attribute")
            entries += _v2fly_entries(read, value)
        elif kind in ("domain", "full") and value:
            entries.append(value)
    return entries


def stevenblack_social(sinfonietta: Checkout, tiuxo: Checkout) -> list[str]:
    """StevenBlack/hosts' social extension, made from the two upstreams its
    `extensions/social/{sinfonietta,tiuxo}/update.json` name: Sinfonietta's `social-hosts` and
    tiuxo's `social` (StevenBlack/hosts itself is too large a repository to clone for them)."""
    hosts = sinfonietta.text("social-hosts") + "\n" + tiuxo.text("social")
    return listed_names(hosts, "hosts")


# --- output -----------------------------------------------------------------------------------


def _sorted_hosts(hosts: Iterable[str]) -> list[str]:
    """Names alphabetically, then IPv4 and IPv6 addresses in numeric order; no repeats."""
    unique = set(hosts)
    names = sorted(h for h in unique if not is_ip_address(h))
    addresses = sorted((ipaddress.ip_address(h) for h in unique if is_ip_address(h)), key=_by_ip)
    return names + [str(a) for a in addresses]


def _by_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[int, int]:
    return address.version, int(address)


@dataclass(frozen=True)
class Body:
    """A reference list's entries, what they are, and how many."""

    kept: str
    counts: str
    lines: list[str]


def header(title: str, sources: Iterable[Source], licence: str, body: Body) -> list[str]:
    """The header every reference list starts with."""
    lines = [f"# source: {title}"]
    for source in sources:
        lines += [
            f"# repo: {source.repo}",
            f"# path: {', '.join(source.paths)}",
            f"# commit: {source.commit} ({source.committed})",
        ]
    return [
        *lines,
        f"# licence: {licence}",
        f"# kept: {body.kept}",
        f"# {body.counts}",
        "# made by benchmarks/references.py on "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d}: lowercase, no port or brackets, IDN as punycode,",
        "# IPv6 compressed; one host a line, names first, then addresses",
    ]


def resolvers(hosts: list[str]) -> Body:
    """A resolver list: the names, then the addresses."""
    ordered = _sorted_hosts(hosts)
    addresses = sum(map(is_ip_address, ordered))
    return Body(
        "the host name and address of each DNS-over-HTTPS (and DoT) endpoint",
        f"names: {len(ordered) - addresses}; addresses: {addresses}",
        ordered,
    )


def frontends(pairs: list[tuple[str, str]]) -> Body:
    """A front-end list: each host with its platform (and front-end) as a comment."""
    label_of: dict[str, str] = {}
    for host, label in pairs:
        label_of.setdefault(host, label)
    hosts = sorted(label_of, key=lambda h: (label_of[h], h))
    width = max(map(len, hosts), default=0) + 2
    return Body(
        "the host of each clearnet instance, with its platform (front-end) as a comment",
        f"hosts: {len(hosts)}",
        [f"{host:<{width}}# {label_of[host]}" for host in hosts],
    )


def names(hosts: list[str]) -> Body:
    """A social, messaging or video list: its host names."""
    ordered = _sorted_hosts(hosts)
    return Body(
        "the host names the list blocks; its addresses, and names without a dot, dropped",
        f"names: {len(ordered)}",
        ordered,
    )


NO_LICENCE = (
    "none stated in the repository; only facts are kept here (which host names and addresses "
    "serve DNS), not the page's text"
)

# Command-line option -> the repository a checkout of it is of.
REPOSITORIES = {
    "curl-wiki": "curl/curl.wiki (the curl project's GitHub wiki)",
    "dnscrypt": "DNSCrypt/dnscrypt-resolvers",
    "adguard": "AdguardTeam/KnowledgeBaseDNS",
    "libredirect": "libredirect/instances",
    "farside": "benbusby/farside",
    "ut1": "olbat/ut1-blacklists (a mirror of UT1's lists, Universite Toulouse Capitole)",
    "blocklistproject": "blocklistproject/Lists",
    "adguard-registry": "AdguardTeam/HostlistsRegistry",
    "sinfonietta": "Sinfonietta/hostfiles",
    "tiuxo": "tiuxo/hosts",
    "v2fly": "v2fly/domain-list-community",
}


def _file(path: str, extract: Callable[[str], list[Any]]) -> Callable[[Checkout], list[Any]]:
    """What `extract` finds in the file `path` of a checkout."""

    def read(checkout: Checkout) -> list[Any]:
        return extract(checkout.text(path))

    return read


@dataclass(frozen=True)
class Upstream:
    """A reference list: the checkouts it is made from, what is read there, and its form."""

    output: str
    title: str
    checkouts: tuple[str, ...]  # their command-line options
    licence: str
    extract: Callable[..., list[Any]]  # a Checkout for each -> hosts, or (host, label) pairs
    body: Callable[[list[Any]], Body]


UPSTREAMS = (
    Upstream(
        "doh_curl_wiki.txt",
        'curl wiki, page "DNS-over-HTTPS", table "Publicly available servers"',
        ("curl-wiki",),
        NO_LICENCE,
        _file("DNS-over-HTTPS.md", curl_wiki_hosts),
        resolvers,
    ),
    Upstream(
        "doh_dnscrypt.txt",
        "dnscrypt-proxy's public resolver list: every DoH stamp (sdns:// type 0x02)",
        ("dnscrypt",),
        NO_LICENCE,
        _file("v3/public-resolvers.md", dnscrypt_hosts),
        resolvers,
    ),
    Upstream(
        "doh_adguard.txt",
        'AdGuard DNS knowledge base, "Known DNS Providers": DoH and DoT hosts, and the plain '
        "DNS addresses of the providers offering them",
        ("adguard",),
        NO_LICENCE,
        _file("docs/general/dns-providers.md", adguard_hosts),
        resolvers,
    ),
    Upstream(
        "frontends_libredirect.txt",
        "LibRedirect's instance list, the front-ends of social and video platforms",
        ("libredirect",),
        "GPL-3.0 (the repository's LICENSE); only the instances' host names are kept",
        _file("data.json", libredirect_frontends),
        frontends,
    ),
    Upstream(
        "frontends_farside.txt",
        "Farside's instance list, the front-ends of social and video platforms",
        ("farside",),
        "MIT (the repository's LICENSE); only the instances' host names are kept",
        _file("services-full.json", farside_frontends),
        frontends,
    ),
    *(
        Upstream(
            f"ut1_{category}.txt",
            f"UT1 blacklists (Universite Toulouse Capitole), category '{category}'",
            ("ut1",),
            "CC BY-SA 4.0 (the lists, as the mirror's README says)",
            _file(f"blacklists/{category}/domains", functools.partial(listed_names, fmt="plain")),
            names,
        )
        for category in ("social_networks", "chat")
    ),
    *(
        Upstream(
            f"blocklistproject_{service}.txt",
            f"The Block List Project's '{service}' list (a hosts file: exact host names)",
            ("blocklistproject",),
            "Unlicense (the repository's LICENSE; the file's header says MIT)",
            _file(f"{service}.txt", functools.partial(listed_names, fmt="hosts")),
            names,
        )
        for service in ("facebook", "tiktok", "twitter", "whatsapp", "youtube")
    ),
    *(
        Upstream(
            f"adguard_{group}_group.txt",
            f"AdGuard HostlistsRegistry's blocked services: every service in the group '{group}'",
            ("adguard-registry",),
            "GPL-3.0 (the repository's LICENSE)",
            _file("assets/services.json", functools.partial(registry_group_names, group)),
            names,
        )
        for group in ("social_network", "messenger")
    ),
    Upstream(
        "stevenblack_social.txt",
        "StevenBlack/hosts' social extension (hosts files: exact host names), made from the "
        "two upstreams named by its extensions/social/{sinfonietta,tiuxo}/update.json",
        ("sinfonietta", "tiuxo"),
        "MIT (Sinfonietta/hostfiles), CC BY 4.0 (tiuxo/hosts): the repositories' LICENSE files",
        stevenblack_social,
        names,
    ),
    Upstream(
        "v2fly_social_media_notcn.txt",
        "v2fly domain-list-community's category-social-media-!cn, with the lists it includes",
        ("v2fly",),
        "MIT (the repository's LICENSE)",
        lambda checkout: v2fly_names(checkout.text, "category-social-media-!cn"),
        names,
    ),
)


def write(upstream: Upstream, checkouts: list[Checkout], output: Path) -> str:
    """Make one reference list from its checkouts; say what was written."""
    body = upstream.body(upstream.extract(*checkouts))
    sources = [checkout.source() for checkout in checkouts]
    lines = header(upstream.title, sources, upstream.licence, body) + body.lines
    path = output / upstream.output
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f"{path}: {body.counts}"


def _copy(text: str) -> tuple[str, str]:
    option, equals, repo = text.partition("=")
    if not equals or option not in REPOSITORIES:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected CHECKOUT=OWNER/NAME, CHECKOUT one of {', '.join(REPOSITORIES)}"
        )
    return option, repo


def main(argv: list[str] | None = None) -> None:
    """Read the checkouts given and write every reference list they make."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    for option, repo in REPOSITORIES.items():
        parser.add_argument(f"--{option}", type=Path, metavar="DIR", help=f"a checkout of {repo}")
    parser.add_argument(
        "--copy",
        type=_copy,
        action="append",
        default=[],
        metavar="CHECKOUT=OWNER/NAME",
        help="the checkout is of a copy of the source, OWNER/NAME on GitHub (for the header)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=OUTPUT,
        metavar="DIR",
        help="the folder to write the lists to, outside git (default: benchmarks/reference/)",
    )
    args = parser.parse_args(argv)
    given = {o: d for o in REPOSITORIES if (d := getattr(args, o.replace("-", "_"))) is not None}
    if not given:
        parser.error("give at least one checkout (--curl-wiki DIR, --ut1 DIR, ...)")
    copies = dict(args.copy)
    args.output.mkdir(parents=True, exist_ok=True)
    for upstream in UPSTREAMS:
        if all(option in given for option in upstream.checkouts):
            checkouts = [Checkout(given[o], _repo(o, copies.get(o))) for o in upstream.checkouts]
            try:
                print(write(upstream, checkouts, args.output))
            except ValueError as e:
                sys.exit(f"references.py: {upstream.output}: {e}")


def _repo(option: str, copy: str | None) -> str:
    repo = REPOSITORIES[option]
    return f"{repo}, read from {copy}, a copy with its history" if copy else repo


if __name__ == "__main__":
    main()
