"""Who may use the proxy: the school's own networks, never the whole internet.

A proxy that answers anyone is an open proxy: it is found and abused within hours, and the
school's address ends up on spam blocklists. So the addon refuses every client outside the
group networks and `allowed_clients`, and refuses to start on a non-loopback address when the
config names no network at all. The gateway itself (loopback) is always allowed: `schoolgate
status`, `schoolgate selftest` and the container's health check run there.

Plain Python: the addon asks, this module knows the rules.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from addons.config import Config, Network


class ClientAccess:
    """The networks whose clients the proxy answers."""

    def __init__(self, config: Config) -> None:
        self.networks: tuple[Network, ...] = (
            *(network for group in config.groups for network in group.networks),
            *config.allowed_clients,
        )
        self.allows = functools.lru_cache(maxsize=16384)(self._allows)

    def _allows(self, client_ip: str) -> bool:
        """Whether the client at `client_ip` (as mitmproxy reports it) may use the proxy."""
        try:
            address = ipaddress.ip_address(client_ip.partition("%")[0])  # fe80::1%eth0
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return address.is_loopback or any(address in network for network in self.networks)

    def refuse_open_proxy(self, listen_hosts: Iterable[str]) -> None:
        """Raise ValueError when the proxy would listen beyond loopback with no network to allow."""
        if self.networks:
            return
        exposed = sorted({host or "*" for host in listen_hosts if not is_loopback(host)})
        if exposed:
            raise ValueError(
                f"refusing to listen on {', '.join(exposed)}: the config names no group networks "
                "and no allowed_clients, so anyone who can reach the gateway could use it as an "
                "open proxy (add the school's networks to groups or allowed_clients)"
            )


def is_loopback(host: str) -> bool:
    """Whether a listen address only accepts connections from the gateway itself."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # "" (every address), or a name that could resolve anywhere
        return False
