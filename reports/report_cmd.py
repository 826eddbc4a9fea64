"""`schoolgate report`: the SLT's weekly report, or with --term the governors' statement.

Argument parsing, choosing the output and sending the email; the figures come from
`reports.build`, the formats from `reports.render`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import make_url

from addons.config import Config, load_config
from reports import period as periods
from reports.build import build_report, report_devices, scope_for
from reports.commands import Commands, command
from reports.mail import MailError, report_message, send
from reports.model import Report
from reports.queries import NoIncidentLog, attempts, open_log
from reports.render import FORMATS, render_html, render_md, write_attempts_csv, write_weeks_csv


def register(commands: Commands) -> None:
    """Add `schoolgate report` to the command line."""
    report = command(
        commands,
        "report",
        "the SLT's weekly report on blocked attempts, or the governors' termly statement",
        "schoolgate report --week 2026-W47 --format html --email slt@school.example",
    )
    when = report.add_mutually_exclusive_group()
    when.add_argument("--week", help="ISO week like 2026-W47 (default: the last complete week)")
    when.add_argument("--from", dest="start", metavar="DATE", help="first day (YYYY-MM-DD)")
    when.add_argument("--term", metavar="NAME", help="a term in the config: governors' statement")
    report.add_argument("--to", dest="end", metavar="DATE", help="last day, with --from")
    report.add_argument("--site", help="site to report on (default: school.site in the config)")
    report.add_argument("--format", choices=FORMATS, default="html", help="default: %(default)s")
    report.add_argument(
        "--output",
        metavar="PATH",
        help="file to write, - for stdout (default: stdout; for html <site>-<period>.html in a "
        "reports folder beside the database)",
    )
    report.add_argument(
        "--email",
        nargs="*",
        metavar="ADDR",
        help="also email the html report (md as the plain text) to ADDR..., or with no ADDR "
        "to report.recipients, via report.smtp in the config",
    )
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        period = _period(args, config)
        engine = open_log(config.database)
    except (periods.PeriodError, NoIncidentLog) as e:
        print(f"schoolgate: {e}", file=sys.stderr)
        return 2
    try:
        statement = period.kind == "term"
        report = None
        if args.format != "csv" or statement or args.email is not None:
            report = build_report(engine, config, period, site=args.site)
        with _output(args, config, period) as out:
            if report is not None and (args.format != "csv" or statement):
                _write(report, args.format, out)
            else:
                rows = attempts(engine, scope_for(config, period, args.site))
                write_attempts_csv(rows, out, report_devices(config), config.school.timezone)
    finally:
        engine.dispose()
    if args.email is not None:
        assert report is not None
        return _email(args.email, config, report)
    return 0


def _write(report: Report, format: str, out: TextIO) -> None:
    if format == "csv":  # the governors' statement: one row per week, no one named
        write_weeks_csv(report, out)
    else:
        out.write({"html": render_html, "md": render_md, "json": Report.to_json}[format](report))


def _period(args: argparse.Namespace, config: Config) -> periods.Period:
    timezone = config.school.timezone
    if (args.start is None) != (args.end is None):
        raise periods.PeriodError("--from and --to go together")
    if args.week:
        return periods.iso_week(args.week, timezone)
    if args.start:
        return periods.date_range(args.start, args.end, timezone)
    if args.term:
        return periods.term_named(args.term, config.school_day.terms, timezone)
    return periods.last_complete_week(dt.datetime.now(dt.UTC), timezone)


@contextlib.contextmanager
def _output(args: argparse.Namespace, config: Config, period: periods.Period) -> Iterator[TextIO]:
    """stdout, --output PATH, or for html by default a file in the reports folder."""
    if args.output == "-" or (args.output is None and args.format != "html"):
        yield sys.stdout
        return
    path = Path(args.output) if args.output else default_path(config, period, args.site)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        yield out
    print(path)


def default_path(config: Config, period: periods.Period, site: str | None = None) -> Path:
    """`<site>-<period>.html` in a `reports` folder beside the SQLite file (the data volume in
    a deployment), or in the working folder for a database server."""
    url = make_url(config.database)
    sqlite = url.get_backend_name() == "sqlite" and url.database
    folder = Path(url.database).parent if sqlite else Path()
    return folder / "reports" / f"{site or config.school.site}-{period.slug}.html"


def _email(addresses: list[str], config: Config, report: Report) -> int:
    recipients = addresses or list(config.report.recipients)
    smtp = config.report.smtp
    if not recipients or smtp is None:
        missing = "report.smtp in the config" if smtp is None else "ADDR or report.recipients"
        print(f"schoolgate: --email needs {missing}", file=sys.stderr)
        return 2
    kind = "weekly report" if report.kind == "weekly" else "statement on effectiveness"
    message = report_message(
        sender=smtp.sender,
        recipients=recipients,
        subject=f"CONFIDENTIAL: {report.school}, social-media policy {kind}, {report.period.label}",
        text=render_md(report),
        html=render_html(report),
    )
    try:
        send(smtp, message)
    except MailError as e:
        print(f"schoolgate: {e}", file=sys.stderr)
        return 2
    print(f"sent to {', '.join(recipients)}", file=sys.stderr)
    return 0
