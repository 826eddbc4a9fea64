"""Community lists read as schoolgate entries: plain, hosts, adblock and UT1 formats.

Every line comes out as an entry, a rejection with its line number and a reason a person can
act on, or nothing (blank lines and comments): no line is dropped unexplained. What each
format means, and so the scope of its entries:

- plain    schoolgate's own list format (`example.org`, `=host.example.org`, `*.example.org`)
- hosts    `0.0.0.0 name...`: a hosts file names exact hosts, so each name becomes `=name`
- adblock  `||example.org^` (with or without `$options`): the domain and its subdomains;
           cosmetic, exception, regular-expression and path rules cannot be decided on a host
- ut1      a UT1 category folder: `domains` (squidGuard: domain and subdomains) and, if there,
           `urls` (page addresses, which a host-level filter cannot honour)
"""

from __future__ import annotations

import ipaddress
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from addons.hosts import is_public_suffix
from addons.lists import Scope, entry_text, is_network, parse_entry

FORMATS = ("auto", "plain", "hosts", "adblock", "ut1")


# Not frozen: a frozen dataclass is four times as slow to make, and an import makes millions.
@dataclass(slots=True)
class Found:
    """An entry read from line `line`."""

    line: int
    domain: str
    scope: Scope


@dataclass(slots=True)
class Rejected:
    """A line that gives no entry, and why."""

    line: int
    text: str
    reason: str


type Parsed = Found | Rejected


@dataclass(frozen=True, slots=True)
class Source:
    """One file to read, and the format of its lines."""

    path: Path
    format: str  # plain | hosts | adblock | ut1-urls


# A network entry holding more addresses than these prefixes would block a large part of the
# internet, as a public suffix would block every site under it.
_WIDEST = {4: 8, 6: 16}


def read_entry(text: str) -> tuple[str, Scope]:
    """An entry as a person or a plain list writes it, in canonical form (IDN as punycode,
    lower case, an IP address as `ipaddress` writes it); ValueError names the entry and says
    why it is refused."""
    if "/" in text and not is_network(text):
        host = text.split("://", 1)[-1].split("/", 1)[0]
        raise ValueError(
            f"{text!r} is an address, not a host: schoolgate blocks whole hosts (give {host!r})"
        )
    domain, scope = parse_entry(text)
    if scope is Scope.NETWORK:
        network = ipaddress.ip_network(domain)
        if network.prefixlen < _WIDEST[network.version]:
            raise ValueError(
                f"{text!r} is wider than /{_WIDEST[network.version]}: it would block a large "
                "part of the internet"
            )
    elif is_public_suffix(domain):
        raise ValueError(f"{text!r} is a public suffix: it would block every site under it")
    return domain, scope


def sources(target: Path, fmt: str = "auto") -> list[Source]:
    """The files to read for `target` and the format of each; ValueError if there are none."""
    if fmt == "ut1" and target.is_file() and target.name in ("domains", "urls"):
        target = target.parent
    if target.is_dir():
        if fmt not in ("auto", "ut1"):
            raise ValueError(f"{target} is a folder: only the ut1 format comes as a folder")
        domains = target / "domains"
        if not domains.is_file():
            raise ValueError(f"{target} is not a UT1 category folder (it has no 'domains' file)")
        urls = target / "urls"
        # UT1 `domains` lines are bare domains that cover their subdomains: the plain format.
        return [Source(domains, "plain")] + ([Source(urls, "ut1-urls")] if urls.is_file() else [])
    if not target.is_file():
        raise ValueError(f"{target}: no such file or folder")
    if fmt == "ut1":
        raise ValueError(f"{target}: the ut1 format is a category folder with a 'domains' file")
    return [Source(target, sniff(read_lines(target)[:200]) if fmt == "auto" else fmt)]


def read_lines(path: Path) -> list[str]:
    """The lines of a list; a byte that is not UTF-8 spoils only its own line (rejected)."""
    return path.read_text(encoding="utf-8-sig", errors="replace").splitlines()


def sniff(lines: Iterable[str]) -> str:
    """The format most of these lines are written in (plain when nothing says otherwise)."""
    votes: Counter[str] = Counter()
    for line in itertools.islice(filter(None, map(str.strip, lines)), 200):
        if line.startswith(("!", "[Adblock", "||", "@@")) or "##" in line:
            votes["adblock"] += 1
        elif line.startswith("#"):
            continue
        elif _is_address(line.split()[0]) and len(line.split()) > 1:
            votes["hosts"] += 1
        else:
            votes["plain"] += 1
    return votes.most_common(1)[0][0] if votes else "plain"


def parse(lines: Iterable[str], fmt: str) -> Iterator[Parsed]:
    """Entries and rejections, line by line, in the order of the file."""
    read_line = _READERS[fmt]
    for number, line in enumerate(lines, start=1):
        yield from read_line(number, line)


# --- one function a format: a line in, its entries and rejections out --------------------


def _plain(number: int, line: str) -> Sequence[Parsed]:
    text = entry_text(line)
    if not text:
        return ()
    try:
        domain, scope = read_entry(text)
    except ValueError as e:
        return (Rejected(number, text, str(e)),)
    return (Found(number, domain, scope),)


# Names a hosts file maps for the machine itself (StevenBlack's header lists them).
_LOCAL_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
        "0.0.0.0",
    }
)


def _is_address(text: str) -> bool:
    if text in ("0.0.0.0", "127.0.0.1"):
        return True
    try:
        ipaddress.ip_address(text.split("%", 1)[0])  # fe80::1%lo0
    except ValueError:
        return False
    return True


def _hosts(number: int, line: str) -> Sequence[Parsed]:
    fields = line.partition("#")[0].split()
    if not fields:
        return ()
    address, *names = fields
    if not _is_address(address):
        text = " ".join(fields)
        return (Rejected(number, text, "not a hosts line: expected an address, then names"),)
    if not names:
        return (Rejected(number, address, "an address with no host name"),)
    return [_host_name(number, name) for name in names]


def _host_name(number: int, name: str) -> Parsed:
    if name.lower() in _LOCAL_NAMES:
        return Rejected(number, name, "a name for the machine itself, not a site")
    found = _bare_host(number, name, name)
    if isinstance(found, Rejected):
        return found
    if found.scope is Scope.NETWORK:  # `0.0.0.0 1.1.1.1` maps no name
        return Rejected(number, name, f"{name!r} is an IP address, not a host name")
    return Found(number, found.domain, Scope.EXACT)


def _bare_host(number: int, text: str, name: str) -> Parsed:
    """A bare host (no `=`, no `*.`, no network): a domain, or an IP address."""
    try:
        domain, scope = read_entry(name)
    except ValueError as e:
        return Rejected(number, text, str(e))
    if scope is Scope.EXACT or scope is Scope.SUBDOMAINS or "/" in domain:
        return Rejected(number, text, f"{name!r} is not a host name")
    return Found(number, domain, scope)


_COSMETIC = ("##", "#@#", "#?#", "#$#", "#%#", "#@$#", "#@?#", "$$", "$@$")
_PATH_RULE = "a rule for part of an address (a path), not a whole host"
_NOT_A_BLOCK = ("badfilter", "denyallow", "dnsrewrite", "dnstype", "redirect", "removeparam")


def _adblock(number: int, line: str) -> Sequence[Parsed]:
    text = line.strip()
    if not text or text.startswith("!") or (text.startswith("[") and text.endswith("]")):
        return ()
    if any(marker in text for marker in _COSMETIC):
        reason = "a cosmetic rule (it hides part of a page); schoolgate decides on whole hosts"
    elif text.startswith("#"):
        return ()  # a hosts-style comment, found in many adblock-syntax DNS lists
    elif text.startswith("@@"):
        reason = "an exception rule (@@): to let a host through, add it to the allowlist"
    elif text.startswith("/") and (text.endswith("/") or "/$" in text) and len(text) > 2:
        reason = "a regular-expression rule: schoolgate takes host names only"
    elif text.startswith("||"):
        return (_adblock_host(number, text),)
    elif "/" in text:
        reason = _PATH_RULE
    else:
        reason = "not a host rule: adblock host rules look like ||example.org^"
    return (Rejected(number, text, reason),)


def _adblock_host(number: int, text: str) -> Parsed:
    body, _, options = text[2:].partition("$")
    for option in options.split(","):
        if option.split("=", 1)[0].lstrip("~") in _NOT_A_BLOCK:
            return Rejected(number, text, f"the option ${option} makes this no plain block")
    host = body.removesuffix("|").removesuffix("^")
    if any(c in host for c in "/^?:"):
        return Rejected(number, text, _PATH_RULE)
    if "*" in host:
        return Rejected(number, text, "a wildcard in the host name")
    if host.endswith("."):
        return Rejected(number, text, "a partial host name (it ends with a dot)")
    return _bare_host(number, text, host)


def _ut1_url(number: int, line: str) -> Sequence[Parsed]:
    text = entry_text(line)
    host, slash, _path = text.partition("/")
    if slash:
        reason = f"a page address: schoolgate blocks whole hosts (block {host} for the site)"
        return (Rejected(number, text, reason),)
    return _plain(number, line)


_READERS: dict[str, Callable[[int, str], Sequence[Parsed]]] = {
    "plain": _plain,
    "hosts": _hosts,
    "adblock": _adblock,
    "ut1-urls": _ut1_url,
}
