"""Which list entry already blocks everything a new entry would: the test behind "already
present" in add and import, and behind "redundant" in validate and stats.

An entry is redundant when another entry covers every host it covers: `facebook.com` covers
`m.facebook.com`, `=m.facebook.com` and `*.facebook.com`; `*.facebook.com` covers
`m.facebook.com` but not `facebook.com`; `=facebook.com` covers only itself; `1.1.1.0/24` covers
`1.1.1.1` and `1.1.1.128/25`. Like the matcher, a question costs one dict lookup per label (per
prefix length in use, for an address), whatever the number of entries.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from addons.lists import Scope


@dataclass(slots=True)  # not frozen: four times as quick to make, and an import makes millions
class Held[T]:
    """An entry in the set, with what its owner keeps about it (a line, a file and line)."""

    domain: str
    scope: Scope
    where: T

    @property
    def entry(self) -> str:
        """The entry as written in a list file."""
        return self.scope.spell(self.domain)


class EntrySet[T]:
    """Entries by scope and domain; the first place each entry was seen is the one kept."""

    def __init__(self) -> None:
        self._tables: dict[Scope, dict[str, T]] = {scope: {} for scope in Scope}
        self._lengths: dict[int, set[int]] = {4: set(), 6: set()}  # prefix lengths held

    def __len__(self) -> int:
        return sum(len(table) for table in self._tables.values())

    def __iter__(self) -> Iterator[Held[T]]:
        for scope, table in self._tables.items():
            for domain, where in table.items():
                yield Held(domain, scope, where)

    def add(self, domain: str, scope: Scope, where: T) -> Held[T] | None:
        """Add an entry; if it is already in the set, keep the first and return it."""
        table = self._tables[scope]
        if domain in table:
            return Held(domain, scope, table[domain])
        table[domain] = where
        if scope is Scope.NETWORK:
            network = ipaddress.ip_network(domain)
            self._lengths[network.version].add(network.prefixlen)
        return None

    def get(self, domain: str, scope: Scope) -> Held[T] | None:
        """This very entry, if the set has it."""
        where = self._tables[scope].get(domain)
        return None if where is None else Held(domain, scope, where)

    def covering(self, domain: str, scope: Scope) -> Held[T] | None:
        """Another entry that covers every host this one covers, the nearest first."""
        if scope is Scope.NETWORK:
            return self._covering_network(domain)
        domains = self._tables[Scope.DOMAIN]
        subdomains = self._tables[Scope.SUBDOMAINS]
        if not domains and not subdomains:
            return None  # a set of exact hosts (an imported hosts file): nothing covers
        if scope is not Scope.DOMAIN and domain in domains:
            return Held(domain, Scope.DOMAIN, domains[domain])
        name = domain
        dot = name.find(".")
        while dot >= 0:  # unrolled over the two tables: this loop is most of a big import
            name = name[dot + 1 :]
            if name in domains:
                return Held(name, Scope.DOMAIN, domains[name])
            if name in subdomains:
                return Held(name, Scope.SUBDOMAINS, subdomains[name])
            dot = name.find(".")
        return None

    def _covering_network(self, entry: str) -> Held[T] | None:
        """The longest other network in the set that holds every address of `entry`."""
        networks = self._tables[Scope.NETWORK]
        network = ipaddress.ip_network(entry)
        for length in sorted(self._lengths[network.version], reverse=True):
            if length < network.prefixlen:
                parent = str(network.supernet(new_prefix=length))
                if parent in networks:
                    return Held(parent, Scope.NETWORK, networks[parent])
        return None

    def holding(self, domain: str, scope: Scope) -> Held[T] | None:
        """This entry or one that covers it: whatever makes adding it change nothing."""
        return self.get(domain, scope) or self.covering(domain, scope)
