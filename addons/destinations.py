"""Where the gateway may connect for a client: web ports only, never itself, never link-local.

A proxy connects wherever its clients ask unless it is told otherwise. A CONNECT to the
gateway's own SSH, SMTP or PostgreSQL makes it an open relay into the machine; a request to the
cloud's metadata service (169.254.169.254) hands out the gateway's credentials; one to its own
port is a loop that ends when its file descriptors do. The defaults are squid's (`deny CONNECT
!SSL_ports`, `deny !Safe_ports`, `deny to_localhost`): tunnels to port 443, plain HTTP to
Safe_ports, never the gateway's own addresses or link-local space unless `allow_destinations`
lists them. A school's own servers on private ranges stay reachable: that is normal use.

The addon asks twice. Early, on the CONNECT target or the request (`refusal`), so the client's
answer can say why. Then when it is about to connect (`connection`), on every address the name
resolves to, once: a name that resolves to 127.0.0.1, or that rebinds between two look-ups, gets
no further, because the connection is made with the addresses that were checked
(`CheckedNames`).

Plain Python: the addon asks, this module knows the rules.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from addons.config import Network, PortRange, ProxyConfig

CONNECT = "connect"  # a tunnel: a CONNECT, or TLS passed through in transparent mode
HTTP = "http"  # a plain HTTP request

type Address = ipaddress.IPv4Address | ipaddress.IPv6Address
type AddrInfo = tuple[Any, ...]  # one getaddrinfo result: family, type, proto, name, sockaddr
type Resolver = Callable[[str, int], Awaitable[list[AddrInfo]]]

THIS_HOST = ipaddress.ip_network("0.0.0.0/8")  # "this host on this network" (RFC 1122)
AWS_METADATA_V6 = ipaddress.ip_address("fd00:ec2::254")  # the metadata service over IPv6


def ip_of(host: str) -> Address | None:
    """`host` as an IP address when it is one in standard notation (IPv4-mapped as IPv4)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_own_address(address: Address) -> bool:
    """Whether the kernel would deliver a connection to `address` to this machine.

    Asks the routing table, as a connection would: a datagram socket connected to one of the
    machine's own addresses takes that very address as its source. Unlike a test bind, this is
    not fooled by `net.ipv4.ip_nonlocal_bind`; like it, it sees addresses added at run time.
    """
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((str(address), 9))
            source = probe.getsockname()[0]
    except OSError:  # no route there: no connection could be made either
        return False
    return ipaddress.ip_address(source.partition("%")[0]) == address


def listing(ranges: tuple[PortRange, ...]) -> str:
    """Ports as the config writes them: `80, 21, 443, 1025-65535`."""
    return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


def describe(proxy: ProxyConfig) -> dict[str, object]:
    """The destination rules in force, as the config names them (for `schoolgate status`)."""
    return {
        "connect_ports": listing(proxy.connect_ports),
        "http_ports": listing(proxy.http_ports),
        "allow_destinations": [str(network) for network in proxy.allow_destinations],
    }


class _Ports:
    """One port list of the config, as a table indexed by port."""

    def __init__(self, key: str, ranges: tuple[PortRange, ...]) -> None:
        table = bytearray(65536)
        for low, high in ranges:
            table[low : high + 1] = b"\x01" * (high - low + 1)
        self._table = bytes(table)
        self.key = key
        self.listing = listing(ranges)

    def refusal(self, port: int) -> str | None:
        if 0 < port < 65536 and self._table[port]:
            return None
        return f"port {port} is not a web port ({self.key}: {self.listing})"


class Destinations:
    """The destination rules of one config: built at load, asked for each connection."""

    def __init__(
        self,
        proxy: ProxyConfig,
        is_own: Callable[[Address], bool] = is_own_address,
        ttl: float = 2.0,
        limit: int = 4096,
        proxy_ports: Iterable[int] | None = None,
    ) -> None:
        """`proxy_ports`: the ports the proxy listens on (`proxy.listen_port` unless given)."""
        self._ports = {
            CONNECT: _Ports("connect_ports", proxy.connect_ports),
            HTTP: _Ports("http_ports", proxy.http_ports),
        }
        self._allowed: tuple[Network, ...] = proxy.allow_destinations
        self._raw_tcp = proxy.raw_tcp  # listed host:port pairs: a tunnel there is intended
        self._proxy_ports = frozenset(proxy_ports or (proxy.listen_port,))
        self._is_own = is_own
        self._ttl = ttl
        self._limit = limit
        # host -> (whether it is an IP address, the gateway's own, why refused or None, until)
        self._verdicts: dict[str, tuple[bool, bool, str | None, float]] = {}

    def port_refusal(self, kind: str, port: int) -> str | None:
        """Why `port` is not allowed for this kind of connection (CONNECT or HTTP), or None."""
        return self._ports[kind].refusal(port)

    def refusal(self, kind: str, host: str, port: int) -> str | None:
        """Why a connection to `host:port` is refused, as far as is known before resolving it."""
        return self._listed_port_refusal(kind, host, port) or self.address_refusal(host, port)

    def address_refusal(self, host: str, port: int) -> str | None:
        """Why the gateway must not connect to `host:port` for a client; a name is left to
        `connection`.

        The proxy's own port on one of its own addresses is refused even where
        `allow_destinations` lists the address: a request through the proxy to itself comes
        back from the gateway, skips the client's rules, and looped, exhausts its descriptors.
        """
        own, reason = self._verdict(host)[1:]
        if own and port in self._proxy_ports:
            return f"{host}:{port} is this proxy itself: a request to itself would loop"
        return reason

    def _listed_port_refusal(self, kind: str, host: str, port: int) -> str | None:
        """`port_refusal`, except that a tunnel to a `proxy.raw_tcp` entry is what the school
        listed it for: its port needs no second listing in `connect_ports`."""
        if kind == CONNECT and (host, port) in self._raw_tcp:
            return None
        return self.port_refusal(kind, port)

    async def connection(
        self, kind: str, host: str, port: int, resolve: Resolver
    ) -> tuple[str | None, str, list[AddrInfo] | None]:
        """Check `host:port` where it really leads: why it is refused (or None), the address
        that decided, and for a name the addresses it resolved to, to connect with.

        A name is resolved once (`resolve`: getaddrinfo, as the connection would), and every
        address it has must be allowed. Raises OSError when the name does not resolve.
        """
        if reason := self._listed_port_refusal(kind, host, port):
            return reason, host, None
        if self._verdict(host)[0]:  # an address: no look-up
            return self.address_refusal(host, port), host, None
        infos = await resolve(host, port)
        for info in infos:
            address = str(info[4][0])
            if reason := self.address_refusal(address, port):
                return reason, address, infos
        return None, str(infos[0][4][0]), infos

    def _verdict(self, host: str) -> tuple[bool, bool, str | None]:
        """Whether `host` is an IP address, whether it is one of the gateway's own, and why it
        is refused (None: it is not, or it is a name).

        The gateway's own addresses can change while it runs, so a verdict is kept for `ttl`
        seconds only; within them, asking again is one dictionary look-up instead of parsing
        the address (4-7 us) and asking the kernel.
        """
        now = time.monotonic()
        known = self._verdicts.get(host)
        if known is not None and known[3] > now:
            return known[:3]
        address = ip_of(host)
        own, reason = (False, None) if address is None else self._refusal_of(address)
        if len(self._verdicts) >= self._limit:  # many destinations: forget the expired ones
            self._verdicts = {h: v for h, v in self._verdicts.items() if v[3] > now}
            if len(self._verdicts) >= self._limit:
                self._verdicts.clear()
        self._verdicts[host] = (address is not None, own, reason, now + self._ttl)
        return address is not None, own, reason

    def _refusal_of(self, address: Address) -> tuple[bool, str | None]:
        """Whether `address` is the gateway's own, and why a client may not reach it."""
        if address.is_loopback:
            own, why = True, "the gateway itself (loopback)"
        elif address in THIS_HOST or address.is_unspecified:
            own, why = True, "the gateway itself (this host)"
        elif address.is_link_local:
            own = self._is_own(address)
            why = "link-local" + (" (cloud metadata)" if address.version == 4 else "")
        elif address == AWS_METADATA_V6:
            own, why = False, "the cloud's metadata service"
        else:
            own = self._is_own(address)
            why = "the gateway itself" if own else ""
        if not why or any(address in network for network in self._allowed):
            return own, None
        return own, f"{address} is {why}"


class CheckedNames:
    """The addresses a name was checked at, handed to the connection about to open to it.

    mitmproxy resolves a server's name when it connects: asyncio's `create_connection` asks the
    event loop's `getaddrinfo`, then tries each address in turn. A second look-up after the
    check could answer differently (DNS rebinding), and would cost a second query. So `pin`
    keeps the check's own answer, and the loop's `getaddrinfo`, wrapped by `install`, gives it
    to the next look-up of that name and port, once. Every other look-up in the process goes to
    the resolver as before. Pins are served oldest first: connections to one server that wait
    their turn (mitmproxy opens five at a time per address) each take one answer that was
    checked; none is dropped, so none of them can reach the resolver unchecked.
    """

    def __init__(self) -> None:
        self._pinned: dict[tuple[str, int], collections.deque[list[AddrInfo]]] = {}
        self._resolve: Callable[..., Awaitable[list[AddrInfo]]] | None = None

    async def resolve(self, host: str, port: int) -> list[AddrInfo]:
        """Look `host` up with the resolver itself, as a TCP connection would; never a pin."""
        resolve = self._resolve or asyncio.get_running_loop().getaddrinfo
        return await resolve(host, port, type=socket.SOCK_STREAM)

    def pin(self, host: str, port: int, infos: list[AddrInfo]) -> None:
        """Keep `infos` for the next connection to `host:port`."""
        self._pinned.setdefault((host, port), collections.deque()).append(infos)

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make `loop.getaddrinfo` answer pinned names from their pins."""
        self._resolve = resolve = loop.getaddrinfo

        async def getaddrinfo(
            host: str, port: int, *, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
        ) -> list[AddrInfo]:
            pinned = self._pinned.get((host, port))
            if pinned is None:
                return await resolve(host, port, family=family, type=type, proto=proto, flags=flags)
            infos = pinned.popleft()
            if not pinned:
                del self._pinned[(host, port)]
            return infos

        loop.getaddrinfo = getaddrinfo  # type: ignore[method-assign]
