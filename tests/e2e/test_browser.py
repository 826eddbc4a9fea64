"""What a person sees in a real browser: headless Chromium through the real gateway."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.browser import chromium, png_size_and_colours, screenshot
from tests.e2e.realparts import Gateway, Origin

HEADING = "This site is blocked on the school network"


def _assert_rendered(png: Path) -> None:
    width, height, rows = png_size_and_colours(png)
    assert (width, height) == (1000, 900)
    assert rows > 50, "the page rendered blank"


def test_chromium_shows_the_block_page_for_plain_http(
    gateway: Gateway, origin: Origin, tmp_path: Path
):
    url = origin.url("localhost", "/timeline")
    dom = chromium(url, "--dump-dom", proxy=gateway.proxy).stdout
    assert HEADING in dom
    assert "We do not allow school personnel" in dom
    assert "Weston All Saints &lt;Test&gt; School" in dom
    _assert_rendered(screenshot(url, tmp_path / "blockpage.png", proxy=gateway.proxy))
    rows = gateway.wait_for_incidents(2)  # the browser also asks for /favicon.ico
    assert {(row["method"], row["host"]) for row in rows} == {("GET", "localhost")}
    assert origin.requests == []


def test_chromium_https_attempt_is_refused_and_recorded(gateway: Gateway, tls_origin: Origin):
    """Browsers show their own error for a refused CONNECT; the attempt is logged all the same."""
    result = chromium(tls_origin.url("localhost"), "--dump-dom", proxy=gateway.proxy)
    assert "hello from the origin" not in result.stdout
    assert "ERR_TUNNEL_CONNECTION_FAILED" in result.stderr
    row = gateway.wait_for_incidents(1)[0]
    assert row["method"] == "CONNECT" and row["host"] == "localhost"
    assert tls_origin.connections == 0


def test_chromium_sees_the_block_page_over_https_in_intercept_mode(
    gateway_factory: Callable[..., Gateway], tmp_path: Path
):
    """With the school's CA trusted (here: certificate errors ignored), HTTPS shows the page.

    www.facebook.com is HSTS-preloaded, so this is what a device sees for the real site; it
    works offline because a blocked host is never contacted upstream.
    """
    gateway = gateway_factory(https_block="intercept")
    url, trust = "https://www.facebook.com/", "--ignore-certificate-errors"
    dom = chromium(url, trust, "--dump-dom", proxy=gateway.proxy).stdout
    assert HEADING in dom and "www.facebook.com" in dom
    png = tmp_path / "blockpage.png"
    result = chromium(
        url, trust, f"--screenshot={png}", "--window-size=1000,900", proxy=gateway.proxy
    )
    assert png.exists(), result.stderr
    _assert_rendered(png)
    if folder := os.environ.get("SCHOOLGATE_SCREENSHOTS"):  # docs/blockpage.png for the README
        shutil.copy(png, Path(folder) / "blockpage.png")
    rows = gateway.wait_for_incidents(2)
    assert {(row["method"], row["host"]) for row in rows} == {("GET", "www.facebook.com")}
