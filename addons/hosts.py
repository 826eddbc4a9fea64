"""Host names as the policy sees them: one canonical spelling per host.

Everything a client can send (a Host header, a CONNECT target, a TLS SNI) goes through
`normalise` before it is matched, so `FaceBook.com.:443`, `[::1]` and full-width `facebook.com`
are matched as `facebook.com`, `::1` and `facebook.com`.
"""

from __future__ import annotations

import functools
import ipaddress
import re

import idna
import tldextract

# Hosts that are already canonical: the fast path for almost every request.
_PLAIN_HOST = re.compile(r"[a-z0-9_.-]+\Z")
_PORT_SUFFIX = re.compile(r":[0-9]*\Z")


@functools.lru_cache(maxsize=65536)
def normalise(raw: str) -> str:
    """Return the canonical form of a host: lowercase, no port, no brackets, no trailing dot,
    IDN as punycode (UTS #46 mapping, so full-width and mixed-case spellings fold together).

    Never raises: in a string that is no valid host name, each label is folded on its own where
    it can be and kept as sent where not, so a listed parent domain still matches it.
    """
    host = raw.strip().lower()
    if host.startswith("["):
        # "[::1]" or "[::1]:443": an IPv6 literal, compressed as a bare one is.
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
        return str(ipaddress.IPv6Address(host))
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
