"""Which list entries cover a host: a walk up the host's parent domains, one dict lookup each;
for an IP address, one dict lookup per prefix length the lists use.

The cost of a lookup depends on the number of labels in the host (or of distinct prefix lengths),
never on the size of the lists (mitmproxy's own `block_list` scans every entry and falls to 1%
throughput at 10,000 entries). A name never matches an address entry, nor an address a name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from addons.hosts import Address, ip_address_of
from addons.lists import Scope, find_line, read_list

ALLOW = "allow"
"""The category name of the allowlist: an entry there wins over every other category."""


@dataclass(frozen=True, slots=True)
class Source:
    """One list file and the category it feeds."""

    category: str
    path: Path


@dataclass(frozen=True, slots=True)
class Match:
    """A list entry that covers a host."""

    domain: str
    scope: Scope
    source: Source

    @property
    def category(self) -> str:
        """The category of the list the entry is in."""
        return self.source.category

    @property
    def entry(self) -> str:
        """The entry as written in its list."""
        return self.scope.spell(self.domain)

    def location(self) -> str:
        """`file:line` of the entry, looked up when a person asks (lines are not kept in memory)."""
        line = find_line(self.source.path, self.domain, self.scope)
        return f"{self.source.path}:{line}" if line else str(self.source.path)


# Dict values are the index of the source in `DomainIndex.sources` (a small int, shared by
# Python), or a tuple of them for the rare domain listed in several files: this keeps a
# million-entry index near 100 MB.
_Hit = int | tuple[int, ...]


def _merged(hit: _Hit, number: int) -> _Hit:
    """`hit` with source `number` added: a domain listed in several files."""
    if isinstance(hit, int):
        return (hit, number)
    return hit if number in hit else (*hit, number)


class NetworkIndex:
    """Address and CIDR entries: for each IP version, one dict per prefix length in use, keyed
    by the network's leading bits. A lookup shifts the address once per length: a handful of
    dict lookups however many entries there are."""

    def __init__(self) -> None:
        self._tables: dict[tuple[int, int], dict[int, _Hit]] = {}  # (version, length) -> table
        self._lengths: dict[int, tuple[int, ...]] = {4: (), 6: ()}  # longest first

    def add(self, entry: str, number: int) -> None:
        """Index the canonical entry (`1.1.1.1`, `1.1.1.0/24`) as from source `number`."""
        if "/" in entry:
            network = ipaddress.ip_network(entry)
            address, length = network.network_address, network.prefixlen
        else:  # an address: the common entry, without building a network
            address = ipaddress.ip_address(entry)
            length = address.max_prefixlen
        version = address.version
        table = self._tables.get((version, length))
        if table is None:
            table = self._tables[(version, length)] = {}
            self._lengths[version] = tuple(sorted({*self._lengths[version], length}, reverse=True))
        key = int(address) >> (address.max_prefixlen - length)
        hit = table.setdefault(key, number)
        if hit != number:
            table[key] = _merged(hit, number)

    def lookup(self, address: Address) -> Iterator[tuple[str, _Hit]]:
        """(entry, hit) for every entry holding `address`, the longest prefix first."""
        bits, value = address.max_prefixlen, int(address)
        for length in self._lengths[address.version]:
            hit = self._tables[(address.version, length)].get(value >> (bits - length))
            if hit is not None:
                yield _spelled(address, length), hit


def _spelled(address: Address, length: int) -> str:
    """The canonical entry of the /length network holding `address` (the address at full length)."""
    if length == address.max_prefixlen:
        return str(address)
    return str(ipaddress.ip_network((address, length), strict=False))


class DomainIndex:
    """Every entry of every list, indexed by domain, one dict per scope; addresses and networks
    in a `NetworkIndex`."""

    def __init__(self, sources: Iterable[Source]) -> None:
        self.sources: tuple[Source, ...] = tuple(sources)
        self._tables: dict[Scope, dict[str, _Hit]] = {scope: {} for scope in Scope}
        self._networks = NetworkIndex()
        self.entries = 0
        counts: list[int] = []
        for number, source in enumerate(self.sources):
            before = self.entries
            for _line, domain, scope in read_list(source.path):
                if scope is Scope.NETWORK:
                    self._networks.add(domain, number)
                    self.entries += 1
                    continue
                # One C call for the common entry (new, or repeated in the same list): the
                # start-up cost of a million-entry list is this loop.
                table = self._tables[scope]
                hit = table.setdefault(domain, number)
                if hit != number:
                    table[domain] = _merged(hit, number)
                self.entries += 1
            counts.append(self.entries - before)
        self.entries_per_source: tuple[int, ...] = tuple(counts)  # for `schoolgate status`

    def lookup(self, host: str) -> tuple[Match, ...]:
        """Every entry covering `host` (already normalised), the most specific first."""
        found: list[Match] = []
        address = ip_address_of(host)
        if address is not None:
            for entry, hit in self._networks.lookup(address):
                self._collect(found, entry, Scope.NETWORK, hit)
            return tuple(found)
        domains = self._tables[Scope.DOMAIN]
        subdomains = self._tables[Scope.SUBDOMAINS]
        for scope, name in ((Scope.EXACT, host), (Scope.DOMAIN, host)):
            hit = self._tables[scope].get(name)
            if hit is not None:
                self._collect(found, name, scope, hit)
        dot = host.find(".")
        while dot >= 0:
            name = name[dot + 1 :]
            for scope, table in ((Scope.DOMAIN, domains), (Scope.SUBDOMAINS, subdomains)):
                hit = table.get(name)
                if hit is not None:
                    self._collect(found, name, scope, hit)
            dot = name.find(".")
        return tuple(found)

    def _collect(self, found: list[Match], domain: str, scope: Scope, hit: _Hit) -> None:
        for number in (hit,) if isinstance(hit, int) else hit:
            found.append(Match(domain, scope, self.sources[number]))
