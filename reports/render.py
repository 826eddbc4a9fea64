"""The report's formats. html and md are Jinja2 templates over the same `Report`, json is the
model itself, csv streams one row per attempt straight from the query: no format computes a
figure of its own, so they cannot disagree.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import Row

from addons.devices import Devices
from reports.model import Report

FORMATS = ("html", "md", "csv", "json")
_TEMPLATES = Path(__file__).resolve().parent / "templates"


def _environment(autoescape: bool) -> Environment:
    # autoescape=True, not select_autoescape(): that one skips templates named *.html.j2
    environment = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(
        when=lambda moment: moment.strftime("%a %d %b %H:%M"),
        day=lambda date: date.strftime("%a %d %b %Y"),
        num=lambda number: f"{number:,}",
        signed=lambda number: f"+{number:,}" if number > 0 else f"{number:,}",
        share=lambda part, whole: f"{part / whole:.0%}" if whole else "-",
    )
    return environment


_HTML = _environment(autoescape=True)
_TEXT = _environment(autoescape=False)


def render_html(report: Report) -> str:
    """One self-contained page: inline CSS and SVG charts, no scripts, no external resources."""
    # matplotlib takes about a second to import: only the html, which draws, pays for it
    from reports.charts import heatmap_svg, trend_svg

    start, end = (_hours(text) for text in report.school_hours)
    charts = {
        "heatmap": heatmap_svg(report.heatmap, (start, end), set(report.school_weekdays)),
        "trend": trend_svg(report.trend) if report.trend else "",
    }
    return _HTML.get_template("report.html.j2").render(report=report, charts=charts)


def render_md(report: Report) -> str:
    """The same content as text, for an email's plain part or a ticket."""
    return _TEXT.get_template("report.md.j2").render(report=report)


def _hours(text: str) -> float:
    time = dt.time.fromisoformat(text)
    return time.hour + time.minute / 60


ATTEMPT_COLUMNS = (
    "reference",
    "started",
    "ended",
    "requests",
    "who",
    "username",
    "client_ip",
    "device",
    "group",
    "host",
    "domain",
    "rule",
    "action",
    "school_day",
)


def write_attempts_csv(
    rows: Iterable[Row[Any]], out: TextIO, devices: Devices, timezone: ZoneInfo
) -> None:
    """One row per attempt, local times, for Excel; the device is the name recorded with the
    incident, else the one `devices` gives."""
    writer = csv.writer(out)
    writer.writerow(ATTEMPT_COLUMNS)
    for row in rows:
        writer.writerow(
            (
                row.reference,
                _local(row.started, timezone),
                _local(row.ended, timezone),
                row.requests,
                row.person,
                row.username or "",
                row.client_ip,
                row.device or devices.name_of(row.client_ip) or "",
                row.client_group,
                row.host,
                row.domain,
                row.rule,
                row.action,
                "yes" if row.school_day else "no",
            )
        )


def write_weeks_csv(report: Report, out: TextIO) -> None:
    """The governors' statement as a spreadsheet: one row per week, no one named."""
    writer = csv.writer(out)
    writer.writerow(("week", "start", "end", "requests", "attempts"))
    for week in report.trend:
        writer.writerow((week.week, week.start, week.end, week.requests, week.attempts))


def _local(utc: dt.datetime, timezone: ZoneInfo) -> str:
    return utc.replace(tzinfo=dt.UTC).astimezone(timezone).isoformat(sep=" ", timespec="seconds")
