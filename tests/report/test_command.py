"""`schoolgate report` as a person runs it: formats, where the html goes, clear failures."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from addons.errors import ConfigError
from reports.cli import main
from tests.report.conftest import W43, Log


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["report", *args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def config(log: Log, w43: W43) -> Path:
    log.config()
    return log.config_path


def test_json_md_and_csv_agree(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    week = ("--config", str(config), "--week", "2026-W43")
    status, out, err = run(capsys, *week, "--format", "json")
    assert (status, err) == (0, "")
    totals = json.loads(out)["totals"]
    assert (totals["attempts"], totals["requests"]) == (9, 14)

    status, markdown, _ = run(capsys, *week, "--format", "md", "--output", "-")
    assert status == 0
    assert markdown.startswith("**CONFIDENTIAL**")
    assert "- **9 attempts** to reach blocked sites (14 requests)" in markdown
    assert "| alice | 10.10.0.5, 10.10.0.6 | staff | 3 | 6 |" in markdown

    status, text, _ = run(capsys, *week, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert status == 0 and len(rows) == 9  # one row per attempt
    assert sum(int(row["requests"]) for row in rows) == 13  # Monday 00:00 continues W42's
    alice = [(r["started"], r["requests"]) for r in rows if r["who"] == "alice"]
    assert alice == [
        ("2026-10-19 10:00:00+01:00", "3"),  # 10:00, 10:02, 10:07
        ("2026-10-19 10:03:00+01:00", "1"),  # instagram.com
        ("2026-10-19 10:12:01+01:00", "2"),  # 10:12:01 and 10:14 from her other device
    ]
    assert rows[0]["school_day"] == "yes" and rows[-1]["school_day"] == "no"


def test_html_goes_beside_the_database_by_default(
    capsys: pytest.CaptureFixture[str], config: Path, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(log.folder)  # PostgreSQL: ./reports
    status, out, err = run(capsys, "--config", str(config), "--week", "2026-W43")
    assert (status, err) == (0, "")
    beside = "data" if log.url.startswith("sqlite") else "."
    path = Path(out.strip())
    assert path.resolve() == (log.folder / beside / "reports" / "test-2026-W43.html").resolve()
    html = path.read_text(encoding="utf-8")
    assert "CONFIDENTIAL" in html and html.count("<svg") == 2
    # self-contained: no script, no link, no URL other than the SVG namespaces
    assert "<script" not in html and "<link" not in html
    assert "://" not in html.replace("http://www.w3.org/", "")


def test_the_term_statement_as_csv_is_one_row_per_week(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    status, out, _ = run(
        capsys, "--config", str(config), "--term", "Autumn 2026", "--format", "csv"
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    assert status == 0 and len(rows) == 16
    assert set(rows[0]) == {"week", "start", "end", "requests", "attempts"}
    assert sum(int(row["attempts"]) for row in rows) == 11


def test_a_missing_database_is_a_clear_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, log: Log
) -> None:
    log.url = f"sqlite:///{tmp_path / 'nowhere' / 'schoolgate.db'}"
    config = log.config().path
    status, out, err = run(capsys, "--config", str(config), "--format", "json")
    assert (status, out) == (2, "")
    assert err.startswith(
        f"schoolgate: no incident log at {tmp_path / 'nowhere' / 'schoolgate.db'}"
    )
    assert not (tmp_path / "nowhere").exists()  # reading never creates the database


def test_a_database_without_incidents_is_a_clear_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, log: Log
) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE notes (x)").connection.close()
    log.url = f"sqlite:///{other}"
    status, _, err = run(capsys, "--config", str(log.config().path), "--format", "json")
    assert status == 2
    assert "has no `incidents` table" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--week", "2026-47"], "--week '2026-47' is not an ISO week (like 2026-W47)"),
        (["--week", "2027-W53"], "2027 has no week 53"),
        (["--from", "2026-11-01"], "--from and --to go together"),
        (["--from", "2026-11-09", "--to", "2026-11-01"], "--to 2026-11-01 is before --from"),
        (
            ["--term", "Summer 1066"],
            "--term 'Summer 1066' is not a term in the config (known: Autumn 2026)",
        ),
    ],
)
def test_a_period_that_does_not_exist_is_a_clear_message(
    capsys: pytest.CaptureFixture[str], config: Path, args: list[str], message: str
) -> None:
    status, out, err = run(capsys, "--config", str(config), "--format", "json", *args)
    assert (status, out) == (2, "")
    assert message in err


def test_a_bad_report_key_names_file_and_line(log: Log) -> None:
    with pytest.raises(ConfigError) as caught:
        log.config("report:\n  recipients: [slt@example.org]\n  smpt: {host: x}\n")
    line = log.config_path.read_text().splitlines().index("  smpt: {host: x}") + 1
    assert str(caught.value) == (
        f"{log.config_path}:{line}: report.smpt: unknown key (known: recipients, devices, smtp)"
    )
