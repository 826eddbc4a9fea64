"""DNS as a second layer: what the gateway's resolver says NXDOMAIN to, and what it records.

Apps that ignore the proxy setting still look names up, so the school's resolver answers
NXDOMAIN for every name the policy blocks for the asking client (same groups, same school day).
It also answers NXDOMAIN for Mozilla's canary domain, which tells Firefox to keep
DNS-over-HTTPS off on this network (https://support.mozilla.org/kb/canary-domain-use-application-dnsnet).

One look-up is not one attempt: a device asks for A, AAAA and HTTPS records and asks again when
an answer expires, so a blocked name is recorded once per client per `window` seconds.
Monitored names resolve and are not recorded here: the proxy records the visit itself, and a
second row per look-up would count every monitored visit twice.
"""

from __future__ import annotations

from addons.hosts import normalise

DOH_CANARY = "use-application-dns.net"


def is_doh_canary(name: str) -> bool:
    """Whether `name` is Firefox's DNS-over-HTTPS canary domain."""
    return normalise(name) == DOH_CANARY


class RepeatFilter:
    """Remembers which events (a client and a host, say) were recorded in the last `window` s.

    The DNS layer records a blocked name once per client a minute; the proxy logs a refused
    destination once per client, destination and reason a minute.
    """

    def __init__(self, window: float = 60.0, limit: int = 65536) -> None:
        self.window = window
        self.limit = limit
        self._last: dict[tuple[str, ...], float] = {}

    def first(self, key: tuple[str, ...], now: float) -> bool:
        """True when this event has not been recorded within the window."""
        last = self._last.get(key)
        if last is not None and now - last < self.window:
            return False
        if len(self._last) >= self.limit:  # a scan of many names: forget what has expired
            self._last = {k: t for k, t in self._last.items() if now - t < self.window}
        self._last[key] = now
        return True
