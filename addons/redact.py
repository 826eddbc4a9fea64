"""Keep URLs' paths and queries, and raw request bytes, out of the proxy's log.

With `log_urls: host` the school keeps full URLs (which carry search terms, names and tokens)
out of every record. mitmdump's own flow lines are off then (`flow_detail=0`), but mitmproxy
still logs some errors with what the client sent: `Bad HTTP request line: b'GET /search?q=...'`,
`Client closed connection before completing request headers: b'...'`. `UrlFilter` rewrites
mitmproxy's records before any handler prints them: a URL keeps its scheme and host, a request
line its method, and raw bytes (request heads, with their cookies) nothing at all.

Plain Python logging: the addon installs the filter on the log's handlers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

# A bytes literal, also one cut short at the end of a line that was shortened.
_BYTES = re.compile(r"""\bb'(?:[^'\\]|\\.)*(?:'|\Z)|\bb"(?:[^"\\]|\\.)*(?:"|\Z)""")
# After the bytes literals are gone, a path runs to the next space, quotes and all.
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/?#]*)[/?#]\S*")
_TARGET = re.compile(r"\b([A-Z]+ )/\S*")  # a request line's target after its method
HIDDEN = "..."


def without_paths(text: str) -> str:
    """`text` with every URL's path and query, and every bytes literal's content, hidden."""
    if "/" not in text and "b'" not in text and 'b"' not in text:
        return text
    text = _BYTES.sub(f"b'{HIDDEN}'", text)
    text = _URL.sub(rf"\1/{HIDDEN}", text)
    return _TARGET.sub(rf"\1/{HIDDEN}", text)


class UrlFilter(logging.Filter):
    """Hides paths in mitmproxy's records while `active()` says so (`log_urls: host`)."""

    def __init__(self, active: Callable[[], bool]) -> None:
        super().__init__()
        self.active = active

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("mitmproxy") and self.active():
            message = record.getMessage()
            hidden = without_paths(message)
            if hidden != message:
                record.msg, record.args = hidden, ()
        return True
