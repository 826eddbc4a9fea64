"""`schoolgate selftest`: does the running gateway do what the policy says it does?

The DfE filtering standards ask schools to check that their filtering works. The selftest sends
real requests through the running proxy, over HTTP and over HTTPS (CONNECT), for a sample of
every blocked category and a few sites that must stay reachable, and compares each answer with
the policy's own decision for the address the proxy sees.

How an answer is judged: the proxy decides before it contacts any server (lazy connections),
so a blocked request is answered at once with the block page, recognised by `BLOCKED_HEADER`,
or its CONNECT is refused with 403. Anything else (the site's own answer, a 502 because the
gateway has no internet, a tunnel that opens, silence) means the proxy passed it on: allowed.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from addons.lists import Scope, read_list
from addons.policy import Policy

BLOCKED_HEADER = "X-Schoolgate-Reference"
USER_AGENT = "schoolgate-selftest/1"  # the incidents the selftest causes carry it
KNOWN_GOOD = ("www.gov.uk", "www.bbc.co.uk")  # sites a school never means to block
SCHEMES = ("http", "https")


@dataclass(frozen=True)
class Check:
    """One request the selftest sends, and what the policy says should happen to it."""

    label: str  # the category sampled, "allowlist" or "known good"
    host: str
    scheme: str
    expected: str  # "block" | "allow"


@dataclass(frozen=True)
class Result:
    check: Check
    actual: str  # "block" | "allow" | "error"
    detail: str

    @property
    def passed(self) -> bool:
        return self.actual == self.check.expected

    def line(self) -> str:
        """One line for the terminal and for the record in `policy_changes`."""
        check = self.check
        verdict = "pass" if self.passed else "FAIL"
        return (
            f"{verdict} {check.scheme}://{check.host}/ ({check.label}): expected {check.expected}, "
            f"got {self.actual}: {self.detail}"
        )


def plan(policy: Policy, client_ip: str, per_category: int) -> list[Check]:
    """The checks: `per_category` hosts of every category a rule blocks, and allowed sites."""
    blocked = {c for rule in policy.config.rules if rule.action == "block" for c in rule.categories}
    samples = [
        (category, host)
        for category, paths in policy.config.categories.items()
        if category in blocked
        for host in _sample(paths, per_category)
    ]
    samples += [("allowlist", host) for host in _sample(policy.config.allowlist, per_category)]
    samples += [("known good", host) for host in KNOWN_GOOD]
    return [
        Check(label, host, scheme, _expected(policy, host, client_ip))
        for label, host in samples
        for scheme in SCHEMES
    ]


def _sample(paths: tuple[Path, ...], count: int) -> Iterator[str]:
    """The first `count` hosts the lists name, in file order: the same checks every week."""
    seen: set[str] = set()
    for path in paths:
        for _line, domain, scope in read_list(path):
            # A network's first address stands for it: `1.1.1.0/24` -> 1.1.1.0.
            host = f"selftest.{domain}" if scope is Scope.SUBDOMAINS else domain.partition("/")[0]
            if host not in seen:
                seen.add(host)
                yield host
                if len(seen) == count:
                    return


def _expected(policy: Policy, host: str, client_ip: str) -> str:
    return "block" if policy.decide(host, client_ip).action == "block" else "allow"


def client_address(proxy: tuple[str, int], timeout: float) -> str:
    """The address the proxy sees this machine connect from (it selects the group)."""
    with socket.create_connection(proxy, timeout=timeout) as sock:
        return sock.getsockname()[0]


def run(proxy: tuple[str, int], check: Check, timeout: float) -> Result:
    """Send one check through the proxy and judge the answer."""
    try:
        sock = socket.create_connection(proxy, timeout=timeout)
    except OSError as e:
        return Result(check, "error", f"cannot connect to the proxy at {proxy[0]}:{proxy[1]}: {e}")
    try:
        if check.scheme == "http":
            actual, detail = _http(sock, check.host)
        else:
            actual, detail = _https(sock, check.host)
    except TimeoutError:
        actual, detail = "allow", f"passed on (no answer within {timeout:g} s)"
    except (OSError, http.client.HTTPException) as e:
        actual, detail = "allow", f"passed on (then {type(e).__name__})"
    finally:
        sock.close()
    return Result(check, actual, detail)


def _http(sock: socket.socket, host: str, target: str = "") -> tuple[str, str]:
    """GET `target` (default: the absolute URL, as a browser asks a proxy)."""
    authority = f"[{host}]" if ":" in host else host  # an IPv6 address in brackets
    target = target or f"http://{authority}/"
    sock.sendall(
        f"GET {target} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {USER_AGENT}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    response = http.client.HTTPResponse(sock)  # type: ignore[arg-type]
    response.begin()
    reference = response.getheader(BLOCKED_HEADER)
    if reference:
        return "block", f"block page, reference {reference}"
    return "allow", f"passed on ({response.status} {response.reason})"


def _https(sock: socket.socket, host: str) -> tuple[str, str]:
    """CONNECT, then (if the tunnel opens) TLS and GET: the block page may come from inside."""
    authority = f"[{host}]:443" if ":" in host else f"{host}:443"
    request = (
        f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {USER_AGENT}\r\n\r\n"
    )
    sock.sendall(request.encode())
    response = http.client.HTTPResponse(sock, method="CONNECT")  # type: ignore[arg-type]
    response.begin()
    if response.status == 403:
        return "block", "CONNECT refused (403)"
    if response.status != 200:
        return "allow", f"passed on (CONNECT {response.status} {response.reason})"
    # The tunnel is open: where `https_block: intercept` applies, the block page is inside.
    # Certificates are not checked: this is about who answers, not about trust.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with context.wrap_socket(sock, server_hostname=host) as tls:
        return _http(tls, host, "/")
