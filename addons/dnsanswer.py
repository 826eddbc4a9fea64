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
    """Remembers which events (a client and a host, say) were recorded in the last `window` s.

    The DNS layer records a blocked name once per client a minute; the proxy logs or records a
    refusal once per client and reason (and destination) a minute.

    Bounded: at most `limit` events, the oldest forgotten first, so a client asking for a million
    random names cannot grow it (a forgotten event is at worst recorded once more).
    """

    def __init__(self, window: float = 60.0, limit: int = 65536) -> None:
        self.window = window
        self.limit = limit
        self._last: dict[tuple[str, ...], float] = {}  # oldest first: re-recorded ones move last

    def first(self, key: tuple[str, ...], now: float) -> bool:
        """True when this event has not been recorded within the window."""
        last = self._last.get(key)
        if last is not None and now - last < self.window:
            return False
        self._last.pop(key, None)
        while self._last and (
            len(self._last) >= self.limit or now - next(iter(self._last.values())) >= self.window
        ):
            del self._last[next(iter(self._last))]  # expired, or the oldest over the limit
        self._last[key] = now
        return True

    def __len__(self) -> int:
        return len(self._last)
