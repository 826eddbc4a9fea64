"""Device names for the incident log: which of the school's machines a client address is.

The DfE filtering and monitoring standards expect each blocked attempt to identify the device.
The names come from the files the config lists under `devices:`, each told apart by its content:
- an inventory CSV, one `ip_or_mac,name` a line (`#` comments, an optional header line such as
  `ip_or_mac,name` or `ip,hostname`, a byte-order mark as Excel writes);
- a DHCP leases file as dnsmasq writes it: `expiry mac ip hostname client-id` a line.
A client address is named by the inventory entry for its IP, else by the inventory entry for
the MAC its lease gives, else by the hostname the device gave in its lease.

Leases change all day, and a stale one would put the wrong machine on an incident, so the files
are read again when they change (looked at once a second at most, and only when an incident
needs a name); a file caught half-rewritten keeps the names read last.
"""

from __future__ import annotations

import csv
import ipaddress
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from addons.errors import ConfigError

logger = logging.getLogger(__name__)

RECHECK_SECONDS = 1.0
_MAC = re.compile(r"[0-9a-f]{2}(?:[:-][0-9a-f]{2}){5}\Z")
_LEASE = re.compile(r"\d+ \S+ \S+ \S+")  # dnsmasq: expiry hwaddr ip hostname [client-id]
# a header's first cell is a word; a mistyped address (10.20.1.300, AA-BB-CC) is not
_HEADER = re.compile(r"[a-z][a-z _]*\Z", re.IGNORECASE)


@dataclass(frozen=True)
class _Names:
    by_address: dict[str, str] = field(default_factory=dict)  # inventory: IP or MAC -> name
    mac_of: dict[str, str] = field(default_factory=dict)  # leases: IP -> MAC
    leased: dict[str, str] = field(default_factory=dict)  # leases: IP -> the device's hostname


class Devices:
    """The device names of the configured files; `name_of` a client address."""

    def __init__(self, paths: tuple[Path, ...]) -> None:
        """Read every file now: a malformed one raises ConfigError (file:line), like a list."""
        self.paths = paths
        self._stamps = _stamps(paths)
        self._names = read_devices(paths)
        self._checked = time.monotonic()

    def name_of(self, client_ip: str) -> str | None:
        """The device's name, or None when no file names it."""
        self._refresh()
        ip = _ip(client_ip)
        if ip is None:
            return None
        names = self._names
        mac = names.mac_of.get(ip)
        found = names.by_address.get(ip) or (names.by_address.get(mac) if mac else None)
        return found or names.leased.get(ip)

    def _refresh(self) -> None:
        now = time.monotonic()
        if not self.paths or now - self._checked < RECHECK_SECONDS:
            return
        self._checked = now
        stamps = _stamps(self.paths)
        if stamps == self._stamps:
            return
        self._stamps = stamps  # a broken file is read again only once it changes again
        try:
            self._names = read_devices(self.paths)
        except ConfigError as e:
            logger.warning("schoolgate: device names kept as they were: %s", e)


def _stamps(paths: tuple[Path, ...]) -> tuple[tuple[int, int], ...]:
    stamps = []
    for path in paths:
        try:
            status = path.stat()
        except OSError:
            stamps.append((-1, -1))
        else:
            stamps.append((status.st_mtime_ns, status.st_size))
    return tuple(stamps)


def read_devices(paths: tuple[Path, ...]) -> _Names:
    """Every file's names, merged in order (a later file's entry for an address wins)."""
    names = _Names()
    for path in paths:
        lines = list(_lines(path))
        if lines and (_LEASE.match(lines[0][1]) or lines[0][1].startswith("duid ")):
            _read_leases(path, lines, names)
        else:
            _read_inventory(path, lines, names)
    return names


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line that is not blank or a comment."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, None, f"cannot read devices file: {e}") from e
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, line.strip()


def _read_inventory(path: Path, lines: list[tuple[int, str]], names: _Names) -> None:
    for index, (number, line) in enumerate(lines):
        fields = [f.strip() for f in next(csv.reader([line]))]
        if index == 0 and _HEADER.match(fields[0]):
            continue
        if len(fields) != 2 or not fields[1]:
            raise ConfigError(path, number, f"expected ip_or_mac,name, got {line!r}")
        address = _ip(fields[0]) or _mac(fields[0])
        if address is None:
            raise ConfigError(path, number, f"{fields[0]!r} is not an IP or MAC address")
        names.by_address[address] = fields[1][:255]


def _read_leases(path: Path, lines: list[tuple[int, str]], names: _Names) -> None:
    for number, line in lines:
        fields = line.split()
        if fields[0] == "duid":  # dnsmasq's server DUID, before its DHCPv6 leases
            continue
        ip = _ip(fields[2]) if len(fields) >= 4 and fields[0].isdigit() else None
        if ip is None:
            raise ConfigError(path, number, f"not a dnsmasq lease: {line!r}")
        mac = _mac(fields[1])  # DHCPv6 leases have an IAID here, not a MAC
        if mac is not None:
            names.mac_of[ip] = mac
        if fields[3] != "*":
            names.leased[ip] = fields[3][:255]


def _ip(text: str) -> str | None:
    """The canonical spelling of an IP address (an IPv4-mapped IPv6 one as IPv4), or None."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def _mac(text: str) -> str | None:
    """A MAC address as aa:bb:cc:dd:ee:ff, or None."""
    text = text.lower()
    return text.replace("-", ":") if _MAC.match(text) else None
