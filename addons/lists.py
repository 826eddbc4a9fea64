"""Blocklist files: one entry per line, `#` comments, three entry forms.

- `facebook.com`    the domain and every subdomain
- `=cdn.example.org` that exact host only
- `*.example.org`   subdomains only, not the domain itself

Reading is the start-up cost of a million-line list, so the common line (an already
lowercase ASCII domain) is checked with one regular expression and nothing else.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path

from addons.errors import ConfigError
from addons.hosts import normalise

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}\Z")


class Scope(enum.Enum):
    """Which hosts an entry covers, relative to its domain."""

    DOMAIN = ""  # the domain and its subdomains
    EXACT = "="  # the host itself only
    SUBDOMAINS = "*."  # subdomains only

    # Members are singletons compared by identity; Enum's own __hash__ runs in Python, and the
    # index hashes a scope for every entry it loads and every host it looks up.
    __hash__ = object.__hash__

    def spell(self, domain: str) -> str:
        """The entry as written in a list file."""
        return f"{self.value}{domain}"


def _canonical_domain(name: str) -> str | None:
    if len(name) <= 253 and _DOMAIN.match(name):
        return name
    # IDN, upper case and IPv6 literals are accepted in their canonical form.
    folded = normalise(name)
    if len(folded) <= 253 and (_DOMAIN.match(folded) or _is_ipv6(folded)):
        return folded
    return None


def _is_ipv6(name: str) -> bool:
    try:
        ipaddress.IPv6Address(name)
    except ValueError:
        return False
    return True


def parse_entry(text: str) -> tuple[str, Scope]:
    """Split an entry into its canonical domain and scope; ValueError says what is wrong."""
    if text.startswith("="):
        name, scope = text[1:], Scope.EXACT
    elif text.startswith("*."):
        name, scope = text[2:], Scope.SUBDOMAINS
    else:
        name, scope = text, Scope.DOMAIN
    domain = _canonical_domain(name)
    if domain is None:
        raise ValueError(
            f"{text!r} is not a domain (expected example.org, =host.example.org or *.example.org)"
        )
    return domain, scope


def entry_text(line: str) -> str:
    """A list line without its comment and surrounding blanks ('' for a comment-only line)."""
    return line.split("#", 1)[0].strip()


CHUNK = 1 << 20  # characters: one chunk is split in a few ms, so a reload never holds the GIL long


def _lines(path: Path) -> Iterator[str]:
    """The file's lines, split a chunk at a time.

    Splitting a whole million-line file is one 100 ms C call that holds the GIL; the proxy
    reloads lists in a thread beside the event loop, which must not wait that long.
    """
    with path.open(encoding="utf-8") as file:
        rest = ""
        while chunk := file.read(CHUNK):
            lines = (rest + chunk).split("\n")
            rest = lines.pop()
            yield from lines
        if rest:
            yield rest


def read_list(path: Path) -> Iterator[tuple[int, str, Scope]]:
    """Yield `(line number, domain, scope)` for each entry; ConfigError at the first bad line."""
    number = 0
    try:
        for number, line in enumerate(_lines(path), start=1):
            if len(line) <= 253 and _DOMAIN.match(line):
                yield number, line, Scope.DOMAIN  # the common line: a bare canonical domain
                continue
            if line.startswith("=") and len(line) <= 254 and _DOMAIN.match(line, 1):
                yield number, line[1:], Scope.EXACT  # an imported hosts file's line
                continue
            entry = entry_text(line)
            if not entry:
                continue
            try:
                domain, scope = parse_entry(entry)
            except ValueError as e:
                raise ConfigError(path, number, str(e)) from e
            yield number, domain, scope
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, number + 1 if number else None, f"cannot read list: {e}") from e


def find_line(path: Path, domain: str, scope: Scope) -> int | None:
    """The line of `path` that holds this entry, for explanations (None if it has gone)."""
    try:
        for number, found, found_scope in read_list(path):
            if found == domain and found_scope is scope:
                return number
    except ConfigError:
        return None
    return None
