"""The gateway end to end: real mitmdump, real curl/httpx/ssl clients, real origins, real SQLite."""

from __future__ import annotations

import re
import signal
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.realparts import (
    LOOPBACK_ORIGINS,
    SCHOOL,
    Gateway,
    Origin,
    curl,
    start_gateway,
    write_config,
)


def _reference(page: str) -> int:
    found = re.search(r"Reference[^0-9]*([0-9]+)", page)
    assert found, page
    return int(found.group(1))


def test_allowed_http_reaches_the_origin_and_is_not_logged(gateway: Gateway, origin: Origin):
    with httpx.Client(proxy=gateway.proxy) as client:
        response = client.get(origin.url("127.0.0.1", "/lesson"))
    assert response.status_code == 200
    assert response.text == "hello from the origin\n"
    assert origin.requests == [(f"127.0.0.1:{origin.port}", "/lesson")]
    time.sleep(0.6)  # two writer intervals
    assert gateway.incidents() == []


def test_blocked_http_gets_the_block_page_and_one_incident(
    gateway_factory: Callable[..., Gateway], origin: Origin
):
    gateway = gateway_factory(extra="log_urls: url")
    url = origin.url("localhost", "/feed?<script>=1")
    with httpx.Client(proxy=gateway.proxy) as client:
        response = client.get(url, headers={"User-Agent": "pupil-laptop/1.0"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "Weston All Saints &lt;Test&gt; School" in page and SCHOOL not in page
    assert "localhost" in page and "social_networks" in page.replace(" ", "_").lower()
    assert "We do not allow school personnel" in page and "Section 3" in page
    assert "it@example.sch.uk" in page
    assert "<script>=1" not in page
    assert origin.connections == 0 and origin.requests == []

    [row] = gateway.wait_for_incidents(1)
    assert row["id"] == _reference(page)
    assert row["method"] == "GET" and row["action"] == "block"
    assert row["host"] == "localhost" and row["domain"] == "localhost"
    assert (
        row["url"] == f"http://localhost:{origin.port}/feed?%3Cscript%3E=1"
        or row["url"] == f"http://localhost:{origin.port}/feed?<script>=1"
    )
    assert row["client_ip"] == "127.0.0.1" and row["client_group"] == "loopback"
    assert row["site"] == "test" and row["rule"] == "school-it-ban"
    assert row["category"] == "social_networks"
    assert row["user_agent"] == "pupil-laptop/1.0"


def test_by_default_only_the_host_is_recorded_not_the_url(gateway: Gateway, origin: Origin):
    """A full URL can carry what a pupil searched for: kept only if the school chooses."""
    result = curl("-x", gateway.proxy, origin.url("localhost", "/search?q=private+words"))
    assert "We do not allow school personnel" in result.stdout
    [row] = gateway.wait_for_incidents(1)
    assert row["host"] == "localhost" and row["method"] == "GET" and row["url"] is None
    gateway.stop()
    files = [gateway.database, gateway.root / "gateway.log", *gateway.database.parent.iterdir()]
    assert not [f for f in files if b"private" in f.read_bytes()]  # nor in mitmdump's log


def test_a_blocked_host_header_blocks_whatever_the_target(gateway: Gateway, origin: Origin):
    """Transparent clients name the site only in the Host header: it must decide too."""
    result = curl(
        "-x", gateway.proxy, "-H", "Host: www.facebook.com", "-w", "%{http_code}", origin.url()
    )
    assert result.stdout.endswith("</html>403") and "www.facebook.com" in result.stdout
    assert origin.requests == []
    [row] = gateway.wait_for_incidents(1)
    assert row["host"] == "www.facebook.com" and row["domain"] == "facebook.com"


def test_https_connect_to_a_blocked_host_is_refused_and_never_contacted(
    gateway: Gateway, tls_origin: Origin
):
    result = curl("-x", gateway.proxy, tls_origin.url("localhost"))
    assert result.returncode != 0
    assert "403" in result.stderr  # curl: CONNECT tunnel failed, response 403
    assert tls_origin.connections == 0
    [row] = gateway.wait_for_incidents(1)
    assert row["method"] == "CONNECT" and row["url"] is None
    assert row["host"] == "localhost" and row["action"] == "block"


def test_allowed_https_passes_through_untouched(
    gateway_factory: Callable[..., Gateway], tls_origin: Origin, origin_cert: tuple[Path, Path]
):
    """Trusting only the origin's own certificate proves the proxy did not intercept.

    curl sends no SNI to an IP address, which the gateway refuses by default
    (tests/security/test_addresses.py): the test client's group is allowed it here.
    """
    gateway = gateway_factory(proxy=f"{LOOPBACK_ORIGINS}, allow_tls_without_sni: [loopback]")
    result = curl("-x", gateway.proxy, "--cacert", str(origin_cert[0]), tls_origin.url())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello from the origin\n"
    assert tls_origin.requests == [(f"127.0.0.1:{tls_origin.port}", "/")]
    time.sleep(0.6)
    assert gateway.incidents() == []


def test_a_blocked_sni_inside_an_allowed_connect_is_refused(gateway: Gateway, tls_origin: Origin):
    """CONNECT names an allowed IP, the ClientHello names a blocked site: TLS is refused."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        target = f"127.0.0.1:{tls_origin.port}"
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with pytest.raises((ssl.SSLError, OSError)):
            context.wrap_socket(sock, server_hostname="m.facebook.com").close()
    [row] = gateway.wait_for_incidents(1)
    assert row["method"] == "TLS" and row["host"] == "m.facebook.com" and row["url"] is None
    assert tls_origin.connections == 0


def test_intercept_mode_serves_the_block_page_over_https(
    gateway_factory: Callable[..., Gateway], tls_origin: Origin
):
    gateway = gateway_factory(https_block="intercept", extra="log_urls: url")
    result = curl(
        "-x", gateway.proxy, "--cacert", str(gateway.ca_cert), tls_origin.url("localhost", "/x")
    )
    assert result.returncode == 0, result.stderr
    assert "We do not allow school personnel" in result.stdout
    assert tls_origin.connections == 0
    [row] = gateway.wait_for_incidents(1)
    assert row["id"] == _reference(result.stdout)
    assert row["method"] == "GET" and row["url"] == f"https://localhost:{tls_origin.port}/x"

    # A device without the school's CA cannot see the page, but the attempt is still logged.
    result = curl("-x", gateway.proxy, tls_origin.url("localhost", "/y"))
    assert result.returncode == 60, result.stderr  # curl: SSL certificate problem
    rows = gateway.wait_for_incidents(2)
    assert rows[1]["method"] == "CONNECT" and rows[1]["url"] is None
    assert tls_origin.connections == 0


def test_monitor_records_but_allows(gateway_factory: Callable[..., Gateway], origin: Origin):
    gateway = gateway_factory(action="monitor")
    result = curl("-x", gateway.proxy, origin.url("localhost", "/watched"))
    assert result.stdout == "hello from the origin\n"
    [row] = gateway.wait_for_incidents(1)
    assert row["action"] == "monitor" and row["method"] == "GET"


def test_the_allowlist_wins(gateway: Gateway, origin: Origin):
    result = curl("-x", gateway.proxy, "-H", "Host: allowed.facebook.com", origin.url())
    assert result.stdout == "hello from the origin\n"
    time.sleep(0.6)
    assert gateway.incidents() == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_flushes_every_incident(
    gateway_factory: Callable[..., Gateway], origin: Origin, sig: int
):
    gateway = gateway_factory(extra="log_urls: url")
    sent = 40
    with httpx.Client(proxy=gateway.proxy) as client:
        for n in range(sent):
            assert client.get(origin.url("localhost", f"/{n}")).status_code == 403
    gateway.stop(sig)
    assert [row["url"] for row in gateway.incidents()] == [
        f"http://localhost:{origin.port}/{n}" for n in range(sent)
    ]


def test_a_bad_config_stops_start_up_with_file_line_and_key(tmp_path: Path):
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("10.10.0.0/16", "10.10.0.0/33"))
    with pytest.raises(BaseException) as failure:
        start_gateway(tmp_path, config, timeout=15)
    message = str(failure.value)
    assert "exited with 2" in message
    assert f"{config}:" in message and "networks" in message and "10.10.0.0/33" in message
    line = next(
        n for n, text in enumerate(config.read_text().splitlines(), 1) if "10.10.0.0/33" in text
    )
    assert f"{config}:{line}:" in message


def test_proxy_authentication_names_the_user_and_their_group(tmp_path: Path, origin: Origin):
    """With mitmproxy's proxyauth on, the row names the person, and their group follows them."""
    gateway = start_gateway(
        tmp_path, write_config(tmp_path), mitmdump_args=("--set", "proxyauth=alice:secret")
    )
    try:
        status = ("-o", "/dev/null", "-w", "%{http_code}")
        assert curl("-x", gateway.proxy, *status, origin.url("localhost")).stdout == "407"
        signed_in = curl(
            "-x", gateway.proxy, "-U", "alice:secret", *status, origin.url("localhost")
        )
        assert signed_in.stdout == "403"
        [row] = gateway.wait_for_incidents(1)
        assert row["username"] == "alice"
        assert row["client_group"] == "staff"  # by user, although 127.0.0.1 is in `loopback`
        assert origin.requests == []
    finally:
        gateway.stop()
