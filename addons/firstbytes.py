"""What a connection's first bytes are, before the gateway relays any of them.

mitmproxy picks a connection's protocol from whatever bytes arrived first, and falls back to a raw
TCP relay when they look like nothing it knows: a ClientHello whose first byte comes alone, or an
HTTP request after an empty line, passed unchecked. So the gateway waits until the bytes are a
complete TLS ClientHello (over as many records as the client cut it into) or a complete HTTP
request head (after any empty lines, which HTTP/1.1 tells servers to ignore), and refuses
anything else: bytes that cannot become either, or still neither after `LIMIT` bytes.

Plain Python: the addon asks, this module knows the formats.
"""

from __future__ import annotations

import enum
import re

LIMIT = 65536  # bytes to wait for: squid's request_header_max_size; a ClientHello is < 16 KiB

_HANDSHAKE = 0x16  # TLS record type
_CLIENT_HELLO = 0x01  # TLS handshake message type
_MAX_RECORD = 1 << 14  # TLSPlaintext.length may not exceed 2^14 (RFC 8446, 5.1)

_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"  # an HTTP token's characters (RFC 9110, 5.6.2)
_TARGET = rb"[^\x00-\x20\x7f]"  # a request target: no spaces or controls
_REQUEST_LINE = re.compile(rb"%s+ %s+ HTTP/[0-9]\.[0-9]\r?" % (_TCHAR, _TARGET))
# Every prefix of a request line, and nothing else: a method, a target, then "HTTP/d.d\r" begun.
_VERSION_BEGUN = rb"(?:H(?:T(?:T(?:P(?:/(?:[0-9](?:\.(?:[0-9]\r?)?)?)?)?)?)?)?)?"
_REQUEST_LINE_BEGUN = re.compile(rb"%s+(?: %s*(?: %s)?)?" % (_TCHAR, _TARGET, _VERSION_BEGUN))
_HEAD_END = re.compile(rb"\n\r?\n")  # the empty line after the headers, as h11 finds it


class Kind(enum.Enum):
    """What the first bytes are, so far."""

    MORE = "not decidable yet: a prefix of a ClientHello or of a request head"
    TLS = "a complete TLS ClientHello"
    HTTP = "a complete HTTP request head"
    OTHER = "neither: raw TCP"


def classify(data: bytes, limit: int = LIMIT) -> Kind:
    """What `data`, the client's bytes so far, is."""
    if data[:1] == b"\x16":
        return _tls(data, limit)
    return _http(data, limit)


def blank_prefix(data: bytes) -> int:
    """How many bytes of empty lines come before the request line."""
    return len(data) - len(data.lstrip(b"\r\n"))


def _tls(data: bytes, limit: int) -> Kind:
    """A ClientHello, possibly spread over several handshake records."""
    message = bytearray()
    offset = 0
    while True:
        header = data[offset : offset + 5]
        if len(header) < 5:
            return Kind.MORE if _starts_like_record(header) and len(data) < limit else Kind.OTHER
        if not _starts_like_record(header):
            return Kind.OTHER
        size = int.from_bytes(header[3:5])
        if size == 0 or size > _MAX_RECORD:
            return Kind.OTHER
        body = data[offset + 5 : offset + 5 + size]
        message += body
        if message and message[0] != _CLIENT_HELLO:
            return Kind.OTHER
        if len(message) >= 4:
            needed = 4 + int.from_bytes(message[1:4])
            if needed > limit:
                return Kind.OTHER
            if len(message) >= needed:
                return Kind.TLS if offset + 5 + size <= limit else Kind.OTHER
        if len(body) < size:
            return Kind.MORE if len(data) < limit else Kind.OTHER
        offset += 5 + size


def _starts_like_record(header: bytes) -> bool:
    """(A prefix of) a handshake record header of TLS 1.0-1.3, as mitmproxy tests each one."""
    return (
        header[:1] in (b"", b"\x16")
        and header[1:2] in (b"", b"\x03")
        and (len(header) < 3 or header[2] <= 0x03)
    )


def _http(data: bytes, limit: int) -> Kind:
    """A request head: request line, headers, empty line; empty lines before it are skipped."""
    skipped = blank_prefix(data)
    head = data[skipped:]
    line_end = head.find(b"\n")
    if line_end < 0:
        if skipped + len(head) > limit:
            return Kind.OTHER
        if not head or _REQUEST_LINE_BEGUN.fullmatch(head):
            return Kind.MORE
        return Kind.OTHER
    if not _REQUEST_LINE.fullmatch(head, 0, line_end):
        return Kind.OTHER
    end = _HEAD_END.search(head, line_end)
    if end is not None and skipped + end.end() <= limit:
        return Kind.HTTP
    return Kind.MORE if len(data) <= limit else Kind.OTHER
