"""Blocklist files: one entry per line, `#` comments, four entry forms.

- `facebook.com`    the domain and every subdomain
- `=cdn.example.org` that exact host only
- `*.example.org`   subdomains only, not the domain itself
- `1.1.1.1`, `2606:4700:4700::/48`  an IP address (`=1.1.1.1` is the same), or every address of
                    a network; matched on the address a client's host names in any spelling

Reading is the start-up cost of a million-line list, so the common line (an already
lowercase ASCII domain) is checked with one regular expression and nothing else.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path

from addons.errors import ConfigError
from addons.hosts import ip_address_of, normalise, parse_authority

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
# A name: its last label is not a number (`1.1.1.1` and `0x01010101` are addresses).
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)*(?!(?:[0-9]+|0x[0-9a-f]*)\Z){_LABEL}\Z")
_LAST_LABEL_NUMERIC = re.compile(r"(?:.*\.)?(?:[0-9]+|0x[0-9a-f]*)\.?\Z", re.IGNORECASE | re.DOTALL)
_NETWORK_SHAPE = re.compile(r"=?[0-9a-f:.]+/[0-9]+\Z", re.IGNORECASE)
_BYTE = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"(?:{_BYTE}\.){{3}}{_BYTE}\Z")  # as `ipaddress` writes it: canonical


class Scope(enum.Enum):
    """Which hosts an entry covers, relative to its domain."""

    DOMAIN = ""  # the domain and its subdomains
    EXACT = "="  # the host itself only
    SUBDOMAINS = "*."  # subdomains only
    NETWORK = "/"  # an IP address or a CIDR network, written as it is (no prefix)

    # Members are singletons compared by identity; Enum's own __hash__ runs in Python, and the
    # index hashes a scope for every entry it loads and every host it looks up.
    __hash__ = object.__hash__

    def spell(self, domain: str) -> str:
        """The entry as written in a list file."""
        return domain if self is Scope.NETWORK else f"{self.value}{domain}"


def _canonical_domain(name: str) -> str | None:
    if len(name) <= 253 and _DOMAIN.match(name):
        return name
    # IDN and upper case are accepted in their canonical form.
    folded = normalise(name)
    if len(folded) <= 253 and _DOMAIN.match(folded):
        return folded
    return None


def is_network(text: str) -> bool:
    """Whether an entry is written as a CIDR network (`1.1.1.0/24`), not a URL with a path."""
    return bool(_NETWORK_SHAPE.match(text))


def _is_address(name: str) -> bool:
    """Whether an entry names an address (or network) rather than a domain."""
    if (":" in name and "/" not in name) or name.startswith("[") or is_network(name):
        return True
    return bool(_LAST_LABEL_NUMERIC.match(name)) or ip_address_of(normalise(name)) is not None


def parse_network(text: str) -> str:
    """An address or CIDR network entry in canonical form (`1.1.1.1`, `1.1.1.0/24`,
    `2606:4700:4700::/48`); ValueError says what is wrong and how to write it.

    IPv4 is taken only as people read it (four decimal parts): `010.0.0.1` is 8.0.0.1 to the
    operating system and 10.0.0.1 to a person, so an entry in any other spelling is refused
    with the one to write, never guessed. IPv6 folds (case and `::` mean nothing else), and an
    IPv4-mapped address (`::ffff:1.1.1.1`) is its IPv4 address, where the OS connects it.
    """
    name = text.removeprefix("=")
    if is_network(name):
        return _cidr(text, name)
    if "%" in name:
        raise ValueError(f"{text!r}: an entry names an address, not an interface (drop the %zone)")
    try:
        host, port = parse_authority(name)
    except ValueError as e:
        raise ValueError(f"{text!r} is not a domain or an IP address: {e}") from None
    if ip_address_of(host) is None:
        raise ValueError(f"{text!r} is not a domain or an IP address")
    if port is not None:
        raise ValueError(f"{text!r}: an entry is a whole host, with no port (write {host})")
    written = name.lower().strip("[]")
    if ":" not in written and written != host:
        raise ValueError(
            f"{text!r} is {host} to the operating system: write it as {host}, so that everyone "
            "reads the list the same way"
        )
    return host


def _cidr(text: str, name: str) -> str:
    address, _, length = name.partition("/")
    try:
        network = ipaddress.ip_network(f"{address}/{length}", strict=False)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a domain or a network (like 1.1.1.0/24 or 2606:4700:4700::/48)"
        ) from None
    if str(network.network_address) != str(ipaddress.ip_address(address)):
        raise ValueError(
            f"{text!r} has bits set beyond /{network.prefixlen}: write {network}, or "
            f"{address} for the one address"
        )
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped:
        raise ValueError(f"{text!r} is an IPv4 network: write it in IPv4")
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def parse_entry(text: str) -> tuple[str, Scope]:
    """Split an entry into its canonical domain and scope; ValueError says what is wrong."""
    if text.startswith("="):
        name, scope = text[1:], Scope.EXACT
    elif text.startswith("*."):
        name, scope = text[2:], Scope.SUBDOMAINS
    else:
        name, scope = text, Scope.DOMAIN
    if _is_address(name):
        if scope is Scope.SUBDOMAINS:
            raise ValueError(f"{text!r}: an IP address has no subdomains")
        return parse_network(text), Scope.NETWORK
    domain = _canonical_domain(name)
    if domain is None:
        raise ValueError(
            f"{text!r} is not a domain (expected example.org, =host.example.org or *.example.org)"
        )
    return domain, scope


def entry_text(line: str) -> str:
    """A list line without its comment and surrounding blanks ('' for a comment-only line)."""
    return line.split("#", 1)[0].strip()


CHUNK = 1 << 20  # characters: one chunk is split in a few ms, so a reload never holds the GIL long


def _lines(path: Path) -> Iterator[str]:
    """The file's lines, split a chunk at a time.

    Splitting a whole million-line file is one 100 ms C call that holds the GIL; the proxy
    reloads lists in a thread beside the event loop, which must not wait that long.
    """
    with path.open(encoding="utf-8") as file:
        rest = ""
        while chunk := file.read(CHUNK):
            lines = (rest + chunk).split("\n")
            rest = lines.pop()
            yield from lines
        if rest:
            yield rest


def read_list(path: Path) -> Iterator[tuple[int, str, Scope]]:
    """Yield `(line number, domain, scope)` for each entry; ConfigError at the first bad line."""
    number = 0
    try:
        for number, line in enumerate(_lines(path), start=1):
            if len(line) <= 253 and _DOMAIN.match(line):
                yield number, line, Scope.DOMAIN  # the common line: a bare canonical domain
                continue
            if line.startswith("=") and len(line) <= 254 and _DOMAIN.match(line, 1):
                yield number, line[1:], Scope.EXACT  # an imported hosts file's line
                continue
            if _IPV4.match(line):
                yield number, line, Scope.NETWORK  # an IPv4 address, already canonical
                continue
            entry = entry_text(line)
            if not entry:
                continue
            try:
                domain, scope = parse_entry(entry)
            except ValueError as e:
                raise ConfigError(path, number, str(e)) from e
            yield number, domain, scope
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, number + 1 if number else None, f"cannot read list: {e}") from e


def find_line(path: Path, domain: str, scope: Scope) -> int | None:
    """The line of `path` that holds this entry, for explanations (None if it has gone)."""
    try:
        for number, found, found_scope in read_list(path):
            if found == domain and found_scope is scope:
                return number
    except ConfigError:
        return None
    return None
