"""Operating the gateway: `schoolgate status`, `schoolgate selftest`, `schoolgate every`, and the
refusal to start as an open proxy, each against a real running proxy and its SQLite file.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from addons.config import load_config
from addons.reload import policy_version
from reports.ops_cmd import next_run
from tests.e2e.realparts import BIN, Gateway, wait_until

LONDON = ZoneInfo("Europe/London")


def _schoolgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "schoolgate"), *args], capture_output=True, text=True, timeout=60
    )


def _status(gateway: Gateway) -> tuple[int, dict]:
    config = gateway.root / "config" / "policy.yaml"
    result = _schoolgate("status", "--config", str(config), "--proxy", gateway.proxy[7:], "--json")
    return result.returncode, json.loads(result.stdout)


def test_status_reports_the_policy_lists_reloads_and_incidents(gateway: Gateway):
    config = gateway.root / "config" / "policy.yaml"
    with httpx.Client(proxy=gateway.proxy) as client:
        assert client.get("http://www.facebook.com/").status_code == 403
    gateway.wait_for_incidents(1)

    code, report = _status(gateway)
    assert code == 0 and report["proxy"] == "up"
    assert report["policy_version"] == policy_version(load_config(config))
    assert [(item["category"], item["entries"]) for item in report["lists"]] == [
        ("allow", 1),
        ("social_networks", 3),
    ]
    assert report["last_reload"]["result"] == "loaded" and report["last_reload"]["how"] == "start"
    assert report["incidents_today"] == 1 and report["incidents_queued"] == 0
    assert report["database_bytes"] > 0
    assert report["destinations"] == {  # as tests/e2e/realparts.py writes them
        "connect_ports": "443, 1025-65535",
        "http_ports": "80, 21, 443, 70, 210, 1025-65535, 280, 488, 591, 777",
        "allow_destinations": ["127.0.0.1/32", "::1/128"],
    }

    version = report["policy_version"]
    config.write_text(config.read_text().replace("action: block", "action: sulk"))

    def refused() -> dict | None:
        report = httpx.get(f"{gateway.proxy}/schoolgate/status").json()
        return report if report["last_reload"]["result"] == "refused" else None

    report = wait_until(refused, 10, "the refused edit")
    assert "'sulk' is not one of" in report["last_reload"]["error"]
    assert report["policy_version"] == version  # the last good policy stays in force
    # The command cannot read the broken file, and says so; the proxy answers all the same.
    text = _schoolgate("status", "--config", str(config), "--proxy", gateway.proxy[7:]).stdout
    assert f"policy: version {version}" in text and "config: ERROR" in text
    assert "destinations: CONNECT to 443, 1025-65535; HTTP to 80, 21, " in text

    config.write_text(config.read_text().replace("action: sulk", "action: block"))
    gateway.stop()
    code, report = _status(gateway)
    assert code == 1 and report["proxy"] == "down" and report["incidents_today"] == 1


def test_selftest_passes_is_recorded_and_fails_where_the_proxy_differs(
    gateway: Gateway, tmp_path: Path
):
    config = gateway.root / "config" / "policy.yaml"
    result = _schoolgate("selftest", "--config", str(config), "--proxy", gateway.proxy[7:],
                         "--by", "IT office")  # fmt: skip
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert "pass http://localhost/ (social_networks): expected block, got block" in result.stdout
    assert (
        "pass https://facebook.com/ (social_networks): expected block, got block" in result.stdout
    )
    assert "pass http://allowed.facebook.com/ (allowlist): expected allow, got allow" in lines[4]
    assert lines[-1].endswith(": 10 of 10 passed")

    with sqlite3.connect(gateway.database) as db:
        who, reason, entries, version = db.execute(
            "SELECT who, reason, entries, policy_version FROM policy_changes"
            " WHERE action = 'selftest'"
        ).fetchone()
    assert who == "IT office" and reason == lines[-1]
    assert entries.splitlines() == lines[:-1]
    assert version == policy_version(load_config(config))
    # Its blocked requests are incidents too, marked by their user agent.
    agents = {row["user_agent"] for row in gateway.wait_for_incidents(4)}
    assert agents == {"schoolgate-selftest/1"}

    # The files say a new host is blocked; this proxy runs without it: that check fails.
    files = tmp_path / "edited"
    shutil.copytree(gateway.root / "config", files / "config")
    shutil.copytree(gateway.root / "blocklists", files / "blocklists")
    listed = files / "blocklists" / "social_networks.txt"
    listed.write_text("newapp.example\n" + listed.read_text())
    config = files / "config" / "policy.yaml"
    result = _schoolgate("selftest", "--config", str(config), "--proxy", gateway.proxy[7:])
    assert result.returncode == 1
    assert "FAIL http://newapp.example/ (social_networks): expected block, got allow" in (
        result.stdout
    )
    assert result.stdout.startswith("note: the proxy enforces policy version")


def test_never_starts_as_an_open_proxy(unnetworked_config: Path, tmp_path: Path):
    result = _schoolgate("run", "--config", str(unnetworked_config), "--listen-host", "0.0.0.0",
                         "--", "--set", f"confdir={tmp_path}")  # fmt: skip
    assert result.returncode != 0
    assert "refusing to listen on 0.0.0.0" in result.stdout + result.stderr
    assert "listening at" not in result.stdout


def test_every_monday_at_seven_in_the_school_timezone():
    def after(moment: str) -> str:
        now = dt.datetime.fromisoformat(moment)
        return next_run(now, 0, dt.time(7, 0), LONDON).astimezone(dt.UTC).isoformat()

    assert after("2026-11-29T12:00+00:00") == "2026-11-30T07:00:00+00:00"  # Sunday: tomorrow
    assert after("2026-11-30T07:00+00:00") == "2026-12-07T07:00:00+00:00"  # just run: next week
    assert after("2026-11-30T06:59+00:00") == "2026-11-30T07:00:00+00:00"
    assert after("2027-03-27T12:00+00:00") == "2027-03-29T06:00:00+00:00"  # BST from the 28th
