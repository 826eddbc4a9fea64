"""The html report in a real browser: headless Chromium renders it, so a broken layout is seen.

The same run, at desktop width, made `docs/report.png` (see the README).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from reports.build import build_report
from reports.period import iso_week
from reports.render import render_html
from tests.browser import chromium, png_size_and_colours, screenshot
from tests.report.conftest import LONDON, Log, demo_term


@pytest.fixture
def page(log: Log, tmp_path: Path) -> Path:
    demo_term(log)
    config = log.config("report: {devices: devices.csv}")
    now = dt.datetime(2026, 11, 23, 7, 0, tzinfo=LONDON)
    report = build_report(log.engine, config, iso_week("2026-W47", LONDON), now=now)
    path = tmp_path / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


@pytest.mark.parametrize("log", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("width", "height"), [(1000, 2600), (390, 3200)])  # desktop, phone
def test_chromium_renders_the_report(page: Path, tmp_path: Path, width: int, height: int) -> None:
    png = screenshot(page.as_uri(), tmp_path / f"report-{width}.png", width=width, height=height)
    png_width, png_height, distinct_rows = png_size_and_colours(png)
    assert (png_width, png_height) == (width, height)
    assert distinct_rows > height // 4  # text, tables and charts all the way down, not blank


@pytest.mark.parametrize("log", ["sqlite"], indirect=True)
def test_the_page_fits_a_narrow_screen_without_sideways_scrolling(page: Path) -> None:
    # Chromium's DOM after layout, in the narrowest window headless Chromium lays out (about
    # 500 px): the page is no wider than its viewport; wide tables scroll inside their box.
    probe = page.with_suffix(".probe.html")
    measure = (
        "<script>var d = document.documentElement; document.title ="
        " d.scrollWidth <= innerWidth ? 'fits' : 'overflows ' + d.scrollWidth;</script>"
    )
    html = page.read_text(encoding="utf-8")
    probe.write_text(html.replace("</body>", measure + "</body>"), encoding="utf-8")
    result = chromium(probe.as_uri(), "--window-size=390,800", "--dump-dom")
    assert "<title>fits</title>" in result.stdout, result.stdout[-300:]
