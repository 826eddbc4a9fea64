"""Incidents made by a real proxy: `schoolgate run` (mitmdump with the addon), curl through it
to a local web server, then `schoolgate report --format json` over the SQLite file it wrote."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

BIN = Path(sys.executable).parent

CONFIG = """\
school: {{name: Gateway Test School, site: gw, timezone: Europe/London, contact: the office}}
school_day: {{weekdays: [mon, tue, wed, thu, fri], start: "08:30", end: "15:30"}}
groups: {{staff: {{networks: [10.10.0.0/16]}}}}
default_group: everyone
categories: {{social_networks: [blocked.txt]}}
rules:
  - {{name: school-it-ban, groups: ["*"], categories: [social_networks], when: always,
     action: block, clause: "Section 3", policy: "No social networking on the school IT system."}}
database: sqlite:///{database}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def origin() -> Iterator[int]:
    """A local web server; the proxy must never reach it for a blocked name."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _rows(database: Path) -> int:
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(database) as db:
            return int(db.execute("SELECT count(*) FROM incidents").fetchone()[0])
    except sqlite3.OperationalError:  # the table is made with the first batch
        return 0


def test_a_real_proxys_incidents_make_the_report(tmp_path: Path, origin: int) -> None:
    database = tmp_path / "data" / "schoolgate.db"
    (tmp_path / "blocked.txt").write_text("localhost\n")
    config = tmp_path / "policy.yaml"
    config.write_text(CONFIG.format(database=database))
    port = _free_port()
    with (tmp_path / "gateway.log").open("wb") as log:
        gateway = subprocess.Popen(
            [BIN / "schoolgate", "run", "--config", config, "--listen-port", str(port),
             "--", "--set", f"confdir={tmp_path / 'mitmproxy'}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _listening(port):
            assert gateway.poll() is None and time.monotonic() < deadline, "proxy did not start"
            time.sleep(0.1)
        for _ in range(3):  # one person, one domain, seconds apart: one attempt
            curl = subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                 "-x", f"http://127.0.0.1:{port}", f"http://localhost:{origin}/"],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            assert curl.stdout == "403"
        while _rows(database) < 3:
            assert time.monotonic() < deadline, (tmp_path / "gateway.log").read_text()
            time.sleep(0.1)
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=20)

    today = dt.datetime.now(ZoneInfo("Europe/London")).date().isoformat()
    result = subprocess.run(
        [BIN / "schoolgate", "report", "--config", config, "--from", today, "--to", today,
         "--format", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert report["totals"] == {
        "requests": 3,
        "attempts": 1,
        "people": 1,
        "clients": 1,
        "blocked": 1,
        "monitored": 0,
        "repeat_people": 0,
    }
    assert [(d["domain"], d["attempts"], d["requests"]) for d in report["by_domain"]] == [
        ("localhost", 1, 3)
    ]
    assert [(g["group"], g["attempts"]) for g in report["by_group"]] == [
        ("everyone", 1),
        ("staff", 0),
    ]
    assert [(r["rule"], r["clause"]) for r in report["by_rule"]] == [("school-it-ban", "Section 3")]
    [attempt] = report["incidents"]
    assert (attempt["who"], attempt["host"], attempt["action"]) == (
        "127.0.0.1",
        "localhost",
        "block",
    )
    with sqlite3.connect(database) as db:
        first = db.execute("SELECT min(id) FROM incidents").fetchone()[0]
    assert attempt["reference"] == first  # the number the first block page showed
