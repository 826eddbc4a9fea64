"""DNS as a second layer: what the gateway's resolver says NXDOMAIN to, and what it records.

Apps that ignore the proxy setting still look names up, so the school's resolver answers
NXDOMAIN for every name the policy blocks for the asking client (same groups, same school day).
It also answers NXDOMAIN for Mozilla's canary domain, which tells Firefox to keep
DNS-over-HTTPS off on this network (https://support.mozilla.org/kb/canary-domain-use-application-dnsnet),
and answers `_dns.resolver.arpa` with no records: that is how a device asks its resolver which
encrypted resolver it may upgrade to (RFC 9462, Discovery of Designated Resolvers, which
Windows and Apple's systems support), and an upstream such as 1.1.1.1 would name its own DoH
server, past the school's filtering. With no answer, the device keeps using the school's resolver.

One look-up is not one attempt: a device asks for A, AAAA and HTTPS records and asks again when
an answer expires, so a blocked name is recorded once per client per `window` seconds.
Monitored names resolve and are not recorded here: the proxy records the visit itself, and a
second row per look-up would count every monitored visit twice.
"""

from __future__ import annotations

from addons.hosts import normalise

DOH_CANARY = "use-application-dns.net"
DDR_NAME = "_dns.resolver.arpa"


def is_doh_canary(name: str) -> bool:
    """Whether `name` is Firefox's DNS-over-HTTPS canary domain."""
    return normalise(name) == DOH_CANARY


def is_ddr_query(name: str) -> bool:
    """Whether `name` asks which encrypted resolvers this one designates (RFC 9462), whatever
    the record type (SVCB is the one clients ask for; every type gets no data)."""
    return normalise(name) == DDR_NAME


class RepeatFilter:
    """Remembers which (client, host) pairs were recorded in the last `window` seconds."""

    def __init__(self, window: float = 60.0, limit: int = 65536) -> None:
        self.window = window
        self.limit = limit
        self._last: dict[tuple[str, str], float] = {}

    def first(self, client_ip: str, host: str, now: float) -> bool:
        """True when this client has not been recorded for this host within the window."""
        key = (client_ip, host)
        last = self._last.get(key)
        if last is not None and now - last < self.window:
            return False
        if len(self._last) >= self.limit:  # a scan of many names: forget what has expired
            self._last = {k: t for k, t in self._last.items() if now - t < self.window}
        self._last[key] = now
        return True
