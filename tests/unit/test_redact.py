"""`without_paths` and `UrlFilter`: with `log_urls: host`, no path, query or raw request bytes
reach the log, in the shapes mitmproxy writes them; the host stays, and other lines are kept."""

from __future__ import annotations

import logging
import os
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from addons.redact import UrlFilter, without_paths

PROFILE = settings.get_profile("schoolgate-" + os.environ.get("SCHOOLGATE_HYPOTHESIS", "unit"))
SECRET = "Secret42"
# What a path or query may hold around the secret: URL characters, quotes and escapes included.
AROUND = st.text(string.ascii_letters + string.digits + "/?&=%#.;,:@!$'()*+-_~\\\"", max_size=20)


@given(
    scheme=st.sampled_from(["http", "https", "ws"]),
    host=st.sampled_from(["www.facebook.com", "10.0.0.5:8080", "[::1]:443"]),
    before=AROUND,
    after=AROUND,
    query=st.booleans(),
)
@PROFILE
def test_urls_keep_their_host_and_lose_path_and_query(
    scheme: str, host: str, before: str, after: str, query: bool
) -> None:
    tail = f"?q={before}{SECRET}{after}" if query else f"/{before}{SECRET}{after}"
    line = f"server said no for {scheme}://{host}{tail}"
    hidden = without_paths(line)
    assert SECRET not in hidden and f"{scheme}://{host}/" in hidden
    assert without_paths(hidden) == hidden


@given(before=AROUND, after=AROUND, method=st.sampled_from(["GET", "POST", "CONNECT"]))
@PROFILE
def test_mitmproxys_request_lines_and_raw_bytes_lose_everything_the_client_sent(
    before: str, after: str, method: str
) -> None:
    raw = f"{method} /{before}{SECRET}{after} HTTP/1.1\r\nCookie: {SECRET}\r\n".encode()
    for line in (
        f"127.0.0.1:5000: Bad HTTP request line: {raw!r}",
        f"Client closed connection before completing request headers: {raw!r}",
        f"Client closed connection before completing request headers: {raw!r}"[:70] + "…",
        f"{method} /{before}{SECRET}",
    ):
        assert SECRET not in without_paths(line), line


def test_other_lines_are_kept_as_they_are() -> None:
    for line in (
        "Loading script /opt/schoolgate/addons/schoolgate.py",
        "HTTP(S) proxy listening at *:8080.",
        "server connect 10.203.1.2:443",
        "Client TLS handshake failed. The client does not trust the proxy's certificate",
    ):
        assert without_paths(line) == line


def test_the_filter_rewrites_mitmproxys_records_only_while_active() -> None:
    active = True
    url_filter = UrlFilter(lambda: active)

    def record(name: str) -> logging.LogRecord:
        return logging.LogRecord(
            name, logging.INFO, __file__, 1, "Bad HTTP request line: %r", (b"GET /x?q=1",), None
        )

    mitmproxy, ours = record("mitmproxy.proxy.server"), record("schoolgate")
    assert url_filter.filter(mitmproxy) and url_filter.filter(ours)
    assert mitmproxy.getMessage() == "Bad HTTP request line: b'...'"
    assert ours.getMessage() == "Bad HTTP request line: b'GET /x?q=1'"
    active = False
    later = record("mitmproxy.proxy.server")
    url_filter.filter(later)
    assert later.getMessage() == "Bad HTTP request line: b'GET /x?q=1'"
