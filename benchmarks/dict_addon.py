"""The reference addon for `gateway.py`: one dict lookup per request and nothing else.

It is the least any deciding addon can cost, so schoolgate's throughput is judged against it
as well as against plain mitmdump.
"""

from __future__ import annotations

from mitmproxy import http

BLOCKED = dict.fromkeys(f"blocked{number}.example" for number in range(10_000))


class DictLookup:
    def request(self, flow: http.HTTPFlow) -> None:
        if flow.request.pretty_host in BLOCKED:
            flow.response = http.Response.make(403)


addons = [DictLookup()]
