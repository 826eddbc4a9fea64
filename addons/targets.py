"""Targets that are the gateway itself, refused before anything is decided.

A client that asks the proxy for its own address (its loopback, `0.0.0.0`, the address it
listens on or was reached at, in any spelling: `2130706433`, `[::ffff:127.0.0.1]`) chains the
proxy into itself: the request comes back from 127.0.0.1, falls into the group loopback is in,
skips the client's own rules and reaches the gateway's own pages and services; a loop of such
chains exhausts file descriptors. So such a target is refused on its canonical address (see
`addons.hosts`), whatever the policy says.

`proxy.allow_destinations` may open one of these addresses (a test origin on loopback), never
the proxy's own port on it. Only the literal target is judged here; a name that resolves to the
gateway is refused when the connection to it is made.

Plain Python: the addon and `schoolgate check` ask, this module knows the rules.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from addons.config import Network
from addons.hosts import Address, ip_address_of, normalise

# "This host on this network" (RFC 1122): Linux connects 0.0.0.0 and :: to itself.
_THIS_HOST = (ipaddress.ip_network("0.0.0.0/8"), ipaddress.ip_network("::/128"))


class GatewayItself:
    """The gateway's own addresses and ports, as the proxy listens on them."""

    def __init__(
        self, listen: Iterable[tuple[str, int | None]], allowed: Iterable[Network]
    ) -> None:
        """`listen`: (address, port) of each listener ('' or a name for the address: every one,
        or not an address); `allowed`: `proxy.allow_destinations`."""
        listeners = list(listen)
        self.addresses = frozenset(
            address for host, _port in listeners if (address := ip_address_of(normalise(host)))
        )
        self.ports = frozenset(port for _host, port in listeners if port)
        self.allowed = tuple(allowed)

    def refuses(self, host: str, port: int, reached: tuple[str, int] | None = None) -> str | None:
        """Why the canonical `host`:`port` is the gateway itself, or None when it is not (or is
        allowed). `reached` is the proxy's own end of the client's connection."""
        address = ip_address_of(host)
        if address is None or not self._own(address, reached):
            return None
        if port in self.ports or (reached is not None and port == reached[1]):
            return f"{host}:{port} is this proxy itself: a request through it to itself would loop"
        if any(address in network for network in self.allowed):
            return None
        return (
            f"{host} is the gateway itself: the proxy does not relay to its own addresses "
            "(proxy.allow_destinations lists any it may reach)"
        )

    def _own(self, address: Address, reached: tuple[str, int] | None) -> bool:
        if address.is_loopback or address in self.addresses:
            return True
        if any(address in network for network in _THIS_HOST):
            return True
        return reached is not None and ip_address_of(normalise(reached[0])) == address
