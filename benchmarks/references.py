"""Make the reference lists in `benchmarks/reference/` from checkouts of their sources.

`coverage.py` measures the DNS-over-HTTPS category and the platform front-ends against them:
the public resolvers that curl's wiki, dnscrypt-proxy and AdGuard publish, and the front-end
instances that LibRedirect and Farside redirect to. Each file keeps only what the gateway can
match, host names and IP addresses, normalised as the gateway normalises a host, under a header
naming the source repository, path, commit and licence. So the coverage figures can be
remade from this repository alone, and the lists refreshed from newer checkouts:

    .venv/bin/python benchmarks/references.py --curl-wiki DIR --dnscrypt DIR --adguard DIR \\
        --libredirect DIR --farside DIR [--output DIR]

Each DIR is a git repository, a clone or a bare mirror, whose HEAD is read: curl's wiki
(github.com/curl/curl.wiki.git), DNSCrypt/dnscrypt-resolvers, AdguardTeam/KnowledgeBaseDNS,
libredirect/instances and benbusby/farside.
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from addons.hosts import is_ip_address, normalise

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

    title: str
    repo: str
    path: str
    commit: str
    committed: str  # the commit's date, YYYY-MM-DD
    licence: str


def read_head(checkout: Path, path: str) -> tuple[str, str, str]:
    """The text of `path` at HEAD of the git repository `checkout`, and the commit that last
    changed it (a mirror's own later commits do not hide the source's) with its date."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(checkout), *args], capture_output=True, text=True, check=True
        )
        return done.stdout

    commit, date = git("log", "-1", "--format=%H %cs", "HEAD", "--", path).split()
    return git("show", f"HEAD:{path}"), commit, date


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


# --- output -----------------------------------------------------------------------------------


def _sorted_hosts(hosts: Iterable[str]) -> list[str]:
    """Names alphabetically, then IPv4 and IPv6 addresses in numeric order; no repeats."""
    unique = set(hosts)
    names = sorted(h for h in unique if not is_ip_address(h))
    addresses = sorted((ipaddress.ip_address(h) for h in unique if is_ip_address(h)), key=_by_ip)
    return names + [str(a) for a in addresses]


def _by_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[int, int]:
    return address.version, int(address)


def header(source: Source, what: str, counts: str) -> list[str]:
    """The header every reference list starts with."""
    return [
        f"# source: {source.title}",
        f"# repo: {source.repo}",
        f"# path: {source.path}",
        f"# commit: {source.commit} ({source.committed})",
        f"# licence: {source.licence}",
        f"# kept: {what}",
        f"# {counts}",
        "# made by benchmarks/references.py on "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d}: lowercase, no port or brackets, IDN as punycode,",
        "# IPv6 compressed; one host a line, names first, then addresses",
    ]


def resolver_lines(extract: Callable[[str], list[str]], source: Source, text: str) -> list[str]:
    """A resolver list's file: the header, the names, then the addresses."""
    ordered = _sorted_hosts(extract(text))
    addresses = sum(map(is_ip_address, ordered))
    counts = f"names: {len(ordered) - addresses}; addresses: {addresses}"
    what = "the host name and address of each DNS-over-HTTPS (and DoT) endpoint"
    return header(source, what, counts) + ordered


def frontend_lines(
    extract: Callable[[str], list[tuple[str, str]]], source: Source, text: str
) -> list[str]:
    """A front-end list's file: the header, then each host with its platform (and front-end)
    as a comment."""
    label_of: dict[str, str] = {}
    for host, label in extract(text):
        label_of.setdefault(host, label)
    hosts = sorted(label_of, key=lambda h: (label_of[h], h))
    width = max(map(len, hosts), default=0) + 2
    what = "the host of each clearnet instance, with its platform (front-end) as a comment"
    return header(source, what, f"hosts: {len(hosts)}") + [
        f"{host:<{width}}# {label_of[host]}" for host in hosts
    ]


NO_LICENCE = (
    "none stated in the repository; only facts are kept here (which host names and addresses "
    "serve DNS), not the page's text"
)


@dataclass(frozen=True)
class Upstream:
    """A public list: the option naming its checkout, its file there, and what it becomes."""

    option: str
    path: str
    title: str
    repo: str
    licence: str
    output: str
    lines: Callable[[Source, str], list[str]]


UPSTREAMS = (
    Upstream(
        "curl-wiki",
        "DNS-over-HTTPS.md",
        'curl wiki, page "DNS-over-HTTPS", table "Publicly available servers"',
        "curl/curl.wiki (the curl project's GitHub wiki)",
        NO_LICENCE,
        "doh_curl_wiki.txt",
        functools.partial(resolver_lines, curl_wiki_hosts),
    ),
    Upstream(
        "dnscrypt",
        "v3/public-resolvers.md",
        "dnscrypt-proxy's public resolver list: every DoH stamp (sdns:// type 0x02)",
        "DNSCrypt/dnscrypt-resolvers",
        NO_LICENCE,
        "doh_dnscrypt.txt",
        functools.partial(resolver_lines, dnscrypt_hosts),
    ),
    Upstream(
        "adguard",
        "docs/general/dns-providers.md",
        'AdGuard DNS knowledge base, "Known DNS Providers": DoH and DoT hosts, and the plain '
        "DNS addresses of the providers offering them",
        "AdguardTeam/KnowledgeBaseDNS",
        NO_LICENCE,
        "doh_adguard.txt",
        functools.partial(resolver_lines, adguard_hosts),
    ),
    Upstream(
        "libredirect",
        "data.json",
        "LibRedirect's instance list, the front-ends of social and video platforms",
        "libredirect/instances",
        "GPL-3.0 (the repository's LICENSE); only the instances' host names are kept",
        "frontends_libredirect.txt",
        functools.partial(frontend_lines, libredirect_frontends),
    ),
    Upstream(
        "farside",
        "services-full.json",
        "Farside's instance list, the front-ends of social and video platforms",
        "benbusby/farside",
        "MIT (the repository's LICENSE); only the instances' host names are kept",
        "frontends_farside.txt",
        functools.partial(frontend_lines, farside_frontends),
    ),
)


def main(argv: list[str] | None = None) -> None:
    """Read the five checkouts and write the reference lists."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    for upstream in UPSTREAMS:
        parser.add_argument(f"--{upstream.option}", type=Path, required=True, metavar="DIR")
    parser.add_argument(
        "--curl-wiki-copy",
        metavar="OWNER/NAME",
        help="the GitHub repository the wiki was read from, if a copy of it (for the header)",
    )
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    for upstream in UPSTREAMS:
        checkout = getattr(args, upstream.option.replace("-", "_"))
        text, commit, date = read_head(checkout, upstream.path)
        repo = upstream.repo
        if upstream.option == "curl-wiki" and args.curl_wiki_copy:
            repo += f", read from {args.curl_wiki_copy}, a copy with its history"
        source = Source(upstream.title, repo, upstream.path, commit, date, upstream.licence)
        lines = upstream.lines(source, text)
        (args.output / upstream.output).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
