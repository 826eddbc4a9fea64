"""Live reload through a real mitmdump: IT edits a list, the running proxy follows within 2 s,
and a broken edit changes nothing until it is fixed."""

from __future__ import annotations

import sqlite3
import time

from tests.e2e.realparts import BLOCKLIST, Gateway, Origin, curl, wait_until

RELOAD_WITHIN = 2.0  # seconds, as the blocklists issue promises


def _status(gateway: Gateway, origin: Origin, host: str) -> int:
    result = curl("-x", gateway.proxy, "-H", f"Host: {host}", "-o", "/dev/null", "-w",
                  "%{http_code}", origin.url())  # fmt: skip
    return int(result.stdout)


def _becomes(gateway: Gateway, origin: Origin, host: str, status: int) -> float:
    """Seconds until requests for `host` get `status`; fails after the promised time."""
    start = time.monotonic()
    wait_until(lambda: _status(gateway, origin, host) == status, RELOAD_WITHIN, f"{host} {status}")
    return time.monotonic() - start


def test_list_edits_apply_live_and_broken_edits_are_refused(gateway: Gateway, origin: Origin):
    blocklist = gateway.root / "blocklists" / "social_networks.txt"
    assert _status(gateway, origin, "newsite.example") == 200

    blocklist.write_text(BLOCKLIST + "newsite.example  # added by IT\n")
    _becomes(gateway, origin, "newsite.example", 403)

    # A broken edit that would also unblock the site: refused, the last good policy stays.
    blocklist.write_text(BLOCKLIST + "not a domain!\n")
    wait_until(lambda: "edit refused" in gateway.log(), 5.0, "the refusal in the log")
    line = len(BLOCKLIST.splitlines()) + 1
    assert f"{blocklist}:{line}:" in gateway.log()
    assert _status(gateway, origin, "newsite.example") == 403
    assert _status(gateway, origin, "www.facebook.com") == 403

    # The fix applies.
    blocklist.write_text(BLOCKLIST)
    _becomes(gateway, origin, "newsite.example", 200)
    assert _status(gateway, origin, "www.facebook.com") == 403

    gateway.stop()
    with sqlite3.connect(gateway.database) as db:
        changes = db.execute(
            "SELECT action, who, policy_version FROM policy_changes ORDER BY id"
        ).fetchall()
    assert [(a, w) for a, w, _ in changes] == [
        ("reload", "schoolgate (start)"),
        ("reload", "schoolgate (reload)"),
        ("reload", "schoolgate (reload)"),
    ]
    versions = [v for _, _, v in changes]
    assert versions[0] == versions[2] != versions[1]  # same files, same version


def test_config_edits_apply_live(gateway: Gateway, origin: Origin):
    config = gateway.root / "config" / "policy.yaml"
    assert _status(gateway, origin, "www.facebook.com") == 403
    config.write_text(config.read_text().replace("action: block", "action: monitor"))
    _becomes(gateway, origin, "www.facebook.com", 200)
    gateway.wait_for_incidents(2)
    # Requests blocked while the edit was on its way are written first; rows land in batches.
    wait_until(lambda: gateway.incidents()[-1]["action"] == "monitor", 5.0, "a monitor row")
