"""Host names as the policy sees them: one canonical spelling per host.

Everything a client can send (a Host header, a URL's authority, a CONNECT target, a TLS SNI) is
read here before it is matched, the way the client's operating system and mitmproxy would read
it: `FaceBook.com.:443`, `[::1]` and full-width `facebook.com` are `facebook.com`, `::1` and
`facebook.com`; `2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`, `127.0.0.1.` and
`[::ffff:127.0.0.1]` are all `127.0.0.1`, as `connect()` would make them.

- `parse_authority` and `canonical_host` are strict: anything the gateway must not relay (a
  non-numeric or out-of-range port, a control character, a number that is no IPv4 address)
  raises ValueError, which the addon answers with 400.
- `normalise` never raises: it is the strict reading where there is one, else a best-effort
  fold that still lets a listed parent domain match (deciding fails closed).
- `ip_address_of` tells an address from a name, for a host already canonical.
"""

from __future__ import annotations

import functools
import ipaddress
import re

import idna
import tldextract

type Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_HOST = 253
"""The longest host name DNS can carry (without its trailing dot); anything longer is malformed."""
_MAX_AUTHORITY = 300  # a longest name, or an IPv6 address with a zone id, with brackets and port

# Hosts that are already canonical: the fast path for almost every request.
_PLAIN_HOST = re.compile(r"[a-z0-9_.-]+\Z")
_PLAIN_NAME = re.compile(r"(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}\Z")
_LABEL = re.compile(r"[a-z0-9_-]{1,63}\Z")
# A last label the OS reads as a number makes the whole host an IPv4 address, or nothing (as
# browsers do): `1.2.3.4.5` and `example.08` are refused, never looked up as names.
_NUMERIC = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)\Z")
_IPV4_PART = re.compile(r"(?:0x([0-9a-f]+)|0([0-7]*)|([1-9][0-9]*))\Z")
_ZONE = re.compile(r"[A-Za-z0-9_.~-]{1,64}\Z")
_PORT_SUFFIX = re.compile(r":[0-9]*\Z")


@functools.lru_cache(maxsize=16384)
def parse_authority(text: str) -> tuple[str, int | None]:
    """Read a Host header, URL authority or CONNECT target as the client's OS would connect to
    it: (canonical host, port or None when none is given).

    ValueError says what is wrong, without repeating the text (it may be hostile): a port that
    is not 1-65535 in ASCII digits, a character no host name has, a number that is no IPv4
    address, a host over 253 characters. Cached (an error is not), so the cache holds keys of
    at most 300 characters.
    """
    if len(text) > _MAX_AUTHORITY:
        raise ValueError(f"the host is longer than {MAX_HOST} characters")
    return _authority(text)


def canonical_host(text: str) -> str:
    """The canonical host of an authority or host (`0x08080808:443` -> `8.8.8.8`); ValueError."""
    return parse_authority(text)[0]


def _authority(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError("an IPv6 address in brackets has no closing bracket")
        rest = text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError("text follows an IPv6 address in brackets")
        return _ipv6(text[1:end]), _port(rest[1:]) if rest else None
    colons = text.count(":")
    if colons > 1:
        return _ipv6(text), None  # a bare IPv6 address, as mitmproxy gives a server's address
    if colons == 1:
        host, _, port = text.partition(":")
        return _host(host), _port(port)
    return _host(text), None


def _port(text: str) -> int | None:
    if not text:
        return None  # `host:`: RFC 3986 allows an empty port, which means the default
    if not (text.isascii() and text.isdigit()):
        raise ValueError("the port is not a number (1-65535)")
    digits = text.lstrip("0")
    if len(digits) > 5 or not 1 <= int(digits or "0") <= 65535:
        raise ValueError(f"the port {digits[:12] or '0'} is out of range (1-65535)")
    return int(digits)


def _host(text: str) -> str:
    """A name or an IPv4 address in any spelling `inet_aton` takes, without port or brackets."""
    name = text[:-1] if text.endswith(".") else text  # one trailing dot: a fully qualified name
    if not name:
        raise ValueError("the host is empty")
    name = name.lower() if name.isascii() else _mapped(name)
    if len(name) > MAX_HOST:
        raise ValueError(f"the host is longer than {MAX_HOST} characters")
    if _NUMERIC.match(name, name.rfind(".") + 1):
        return _ipv4(name)
    if _PLAIN_NAME.match(name):
        return name
    return _checked_labels(name)


def _mapped(name: str) -> str:
    """UTS #46 mapping, as browsers and Python's resolver apply it: full-width letters and
    digits, other full stops and case fold to one spelling."""
    try:
        mapped = idna.uts46_remap(name, std3_rules=False, transitional=False)
    except (idna.IDNAError, UnicodeError, ValueError):
        raise ValueError("the host has a character no host name has") from None
    mapped = mapped[:-1] if mapped.endswith(".") else mapped  # `facebook.com。`
    if not mapped:
        raise ValueError("the host is empty")
    return mapped


def _checked_labels(name: str) -> str:
    """A name that is not plain ASCII: each label valid, Unicode labels as punycode."""
    labels = []
    for label in name.split("."):
        if not label:
            raise ValueError("the host has an empty label (two dots in a row)")
        if label.isascii():
            if not _LABEL.match(label):
                what = "a label longer than 63 characters" if len(label) > 63 else "a character"
                raise ValueError(f"the host has {what} no host name has")
            labels.append(label)
            continue
        try:
            labels.append(idna.alabel(label).decode("ascii"))
        except (idna.IDNAError, UnicodeError, ValueError):
            raise ValueError("the host is not a valid internationalised name") from None
    host = ".".join(labels)
    if len(host) > MAX_HOST:
        raise ValueError(f"the host is longer than {MAX_HOST} characters")
    return host


def _ipv4(name: str) -> str:
    """`inet_aton`'s reading: 1 to 4 parts, each decimal, octal (leading 0) or hex (0x); the
    last part fills the bytes the others leave (`127.1` is 127.0.0.1, `2130706433` too)."""
    parts = name.split(".")
    if len(parts) > 4:
        raise ValueError("the host ends in a number but is not an IPv4 address (too many parts)")
    numbers = []
    for part in parts:
        found = _IPV4_PART.match(part)
        if found is None:
            raise ValueError("the host ends in a number but is not an IPv4 address")
        hexadecimal, octal, decimal = found.groups()
        if hexadecimal is not None:
            numbers.append(int(hexadecimal, 16))
        elif octal is not None:
            numbers.append(int(octal or "0", 8))
        else:
            numbers.append(int(decimal))
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 1 << (8 * (5 - len(numbers))):
        raise ValueError("the host ends in a number but is not an IPv4 address (out of range)")
    value = last
    for shift, number in zip((24, 16, 8), head, strict=False):
        value |= number << shift
    return str(ipaddress.IPv4Address(value))


def _ipv6(text: str) -> str:
    """An IPv6 address, compressed; IPv4-mapped ones (`::ffff:1.1.1.1`) as the IPv4 address,
    which is where the OS connects them. A zone id (`fe80::1%eth0`, `%25eth0` in a URL) is
    checked and dropped: the policy decides on the address."""
    address, percent, zone = text.partition("%")
    if percent:
        zone = zone[2:] if zone.startswith("25") and len(zone) > 2 else zone
        if not _ZONE.match(zone):
            raise ValueError("the IPv6 address has a malformed zone id")
    try:
        parsed = ipaddress.IPv6Address(address)
    except ValueError:
        raise ValueError("the host is not a valid IPv6 address") from None
    mapped = parsed.ipv4_mapped
    return str(mapped) if mapped is not None else str(parsed)


def ip_address_of(host: str) -> Address | None:
    """The address a canonical host names (`normalise`'s or `canonical_host`'s), None for a name."""
    if ":" not in host and not host[-1:].isdigit():
        return None  # a name: most hosts, told apart without an exception
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@functools.lru_cache(maxsize=65536)
def normalise(raw: str) -> str:
    """Return the canonical form of a host: lowercase, no port, no brackets, no trailing dot,
    IDN as punycode (UTS #46 mapping, so full-width and mixed-case spellings fold together), an
    IP address in the one spelling `ipaddress` gives it whatever spelling the OS was given.

    Never raises: in a string that is no valid host name, each label is folded on its own where
    it can be and kept as sent where not, so a listed parent domain still matches it.
    """
    text = raw.strip()
    if len(text) <= _MAX_AUTHORITY:
        try:
            return _authority(text)[0]
        except ValueError:
            pass
    return _lenient(text.lower())


def _lenient(host: str) -> str:
    if host.startswith("["):
        # "[::1" or "[::1]x": no valid IPv6 literal; fold what is inside the brackets if it can.
        end = host.find("]")
        return _ipv6_or_raw(host[1:end]) if end > 0 else host
    if host.count(":") == 1:
        host = _PORT_SUFFIX.sub("", host)
    elif ":" in host:
        return _ipv6_or_raw(host)
    host = host.rstrip(".")
    if _PLAIN_HOST.match(host):
        return host
    return _idna_or_raw(host)


def _ipv6_or_raw(host: str) -> str:
    try:
        return _ipv6(host)
    except ValueError:
        return host


def _idna_or_raw(host: str) -> str:
    try:
        return idna.encode(host, uts46=True, transitional=False).decode("ascii").rstrip(".")
    except (idna.IDNAError, UnicodeError, ValueError):
        return _label_by_label(host)


def _label_by_label(host: str) -> str:
    """Fold a host IDNA refuses as a whole (a label like `-` or `a_b`) one label at a time, so
    `a_b.` + full-width `facebook.com` still ends in `facebook.com`: deciding fails closed."""
    try:
        mapped = idna.uts46_remap(host, std3_rules=False, transitional=False)
    except (idna.IDNAError, UnicodeError, ValueError):
        return host
    return ".".join(_alabel_or_raw(label) for label in mapped.split(".")).rstrip(".")


def _alabel_or_raw(label: str) -> str:
    if label.isascii():
        return label
    try:
        return idna.alabel(label).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return label


# Offline: the snapshot bundled with tldextract, never a download at run time.
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")


def is_host(text: str) -> bool:
    """Whether `text` is, as written, an IP address or a DNS host name (RFC 1123: letters,
    digits and hyphens, labels of 1 to 63, a last label that is not all digits, 253 at most; a
    final dot allowed): strict, for text the gateway writes back out, such as the PAC file's."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    labels = text.removesuffix(".").split(".")
    return (
        len(text) <= 253
        and all(_DNS_LABEL.match(label) for label in labels)
        and not labels[-1].isdigit()
    )


@functools.lru_cache(maxsize=65536)
def registrable_domain(host: str) -> str:
    """The domain a person registered (`scontent.xx.fbcdn.net` -> `fbcdn.net`), for reports.

    IP literals and names without a public suffix come back unchanged.
    """
    if not _PLAIN_HOST.match(host) or is_ip_address(host):
        return host
    return _EXTRACT(host).top_domain_under_public_suffix or host


def is_ip_address(host: str) -> bool:
    """Whether a normalised host is an IP address (`192.0.2.1`, `2001:db8::1`), not a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@functools.cache
def _public_suffixes() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """The bundled list's suffixes, the parents of its wildcard rules, and its exceptions."""
    rules = _EXTRACT.tlds
    return (
        frozenset(rules),
        frozenset(rule[2:] for rule in rules if rule.startswith("*.")),
        frozenset(rule[1:] for rule in rules if rule.startswith("!")),
    )


def is_public_suffix(name: str) -> bool:
    """Whether `name` is a public suffix (`com`, `co.uk`, `anything.sch.uk`): a list entry for
    it would block every site registered under it, so the blocklist commands refuse one."""
    suffixes, wildcards, exceptions = _public_suffixes()
    if name in suffixes:
        return True
    return name.partition(".")[2] in wildcards and name not in exceptions
