"""`classify`: a connection's first bytes are a ClientHello, a request head, not yet known, or
neither, however the client cuts them into pieces and records.

The ClientHellos are real ones, made by Python's `ssl` for several names; the property tests
cut them (and request heads) at every point hypothesis picks, as a client dodging mitmproxy's
protocol detection would.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addons.firstbytes import LIMIT, Kind, blank_prefix, classify
from tests.clienthello import client_hello, in_records

PROFILE = settings.get_profile("schoolgate-" + os.environ.get("SCHOOLGATE_HYPOTHESIS", "unit"))
NAMES = ("www.facebook.com", "www.example.org", "a" * 60 + ".example.org")


HEADS = (
    b"GET http://www.facebook.com/ HTTP/1.1\r\nHost: www.facebook.com\r\n\r\n",
    b"CONNECT www.facebook.com:443 HTTP/1.1\r\nHost: www.facebook.com:443\r\n\r\n",
    b"POST /upload?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.1\nHost: a\n\n",  # bare line feeds, as HTTP/1.1 lets servers accept
    b"PRI * HTTP/2.0\r\n\r\n",  # HTTP/2 with prior knowledge
    b"M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n",
)


def test_a_whole_client_hello_is_tls() -> None:
    for name in NAMES:
        assert classify(client_hello(name)) is Kind.TLS


@given(
    name=st.sampled_from(NAMES),
    sizes=st.lists(st.integers(1, 300), min_size=1, max_size=8),
    data=st.data(),
)
@PROFILE
def test_a_client_hello_in_any_records_is_tls_only_when_complete(
    name: str, sizes: list[int], data: st.DataObject
) -> None:
    hello = in_records(client_hello(name), sizes)
    cut = data.draw(st.integers(0, len(hello) - 1), label="cut")
    assert classify(hello) is Kind.TLS
    if cut:
        assert classify(hello[:cut]) is Kind.MORE  # e.g. the first byte alone: wait, never relay


@given(head=st.sampled_from(HEADS), blank=st.sampled_from([b"", b"\r\n", b"\n", b"\r\n" * 3]))
@PROFILE
def test_a_request_head_after_empty_lines_is_http_only_when_complete(
    head: bytes, blank: bytes
) -> None:
    data = blank + head
    assert classify(data) is Kind.HTTP
    assert blank_prefix(data) == len(blank)
    for cut in range(1, len(data)):
        assert classify(data[:cut]) is Kind.MORE, data[:cut]
    assert classify(data + b"body and the next request") is Kind.HTTP


@pytest.mark.parametrize(
    "data",
    [
        b"SSH-2.0-OpenSSH_9.6p1 Debian-3\r\n",
        b"\x00\x00\x00\x08\x04\xd2\x16\x2f",  # PostgreSQL's SSLRequest
        b"EHLO pupil\r\n",
        b"GET /\r\n",  # HTTP/0.9: no version
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b" GET / HTTP/1.1\r\n\r\n",
        b"\r\n\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",  # a ClientHello after an empty line
        b"\x16\x03\x04",  # a record version mitmproxy would not parse
        b"\x16\x03\x01\x00\x00",  # an empty record
        b"\x16\x03\x01\x00\x04\x02\x00\x00\x00",  # a ServerHello
        b"\x16\x03\x01\x00\x05\x01\x00\x00\x10\x00\x17\x03\x03",  # then not a handshake record
    ],
)
def test_what_cannot_become_a_hello_or_a_head_is_other(data: bytes) -> None:
    assert classify(data) is Kind.OTHER


@given(st.binary(min_size=1, max_size=64))
@PROFILE
def test_bytes_that_start_with_neither_are_refused_at_once(data: bytes) -> None:
    first = data[:1]
    if first not in b"\x16\r\n" and not (first.isalnum() or first in b"!#$%&'*+-.^_`|~"):
        assert classify(data) is Kind.OTHER


def test_nothing_waits_beyond_the_limit() -> None:
    endless_head = b"GET / HTTP/1.1\r\nCookie: " + b"x" * LIMIT
    assert classify(endless_head) is Kind.OTHER
    assert classify(endless_head[:LIMIT]) is Kind.MORE
    endless_line = b"GET /" + b"a" * LIMIT
    assert classify(endless_line) is Kind.OTHER
    assert classify(b"\r\n" * LIMIT) is Kind.OTHER
    huge_hello = b"\x16\x03\x01\x40\x00\x01\x01\x00\x00"  # a ClientHello of 64 KiB
    assert classify(huge_hello) is Kind.OTHER
    tiny_records = in_records(client_hello(NAMES[0]), [1])  # 6 bytes per byte of the message
    assert len(tiny_records) < LIMIT and classify(tiny_records) is Kind.TLS
    assert classify(tiny_records, limit=1000) is Kind.OTHER
