"""Running the gateway at a school: `schoolgate pac | status | selftest | every`.

Argument parsing, talking to the running proxy and printing; what is worth testing without a
proxy lives in the core (`addons.pac`, `addons.status`, `addons.selftest`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from addons import pac, selftest, status
from addons.changes import record_change
from addons.config import WEEKDAYS, Config, load_config
from addons.errors import ConfigError
from addons.incidents import make_engine
from addons.policy import Policy
from addons.reload import policy_version
from reports.commands import Commands, command

TIMEOUT = 5.0  # seconds: the proxy answers its own pages and block pages at once
DEFAULT_PROXY = "127.0.0.1:8080"  # where `status` looks when the config cannot be read


def register(commands: Commands) -> None:
    """Add `schoolgate pac`, `status`, `selftest` and `every` to the command line."""
    pac_command = command(
        commands,
        "pac",
        "write the proxy auto-config file (proxy.pac / wpad.dat) for the school's devices",
        "schoolgate pac --proxy 10.0.0.1:8080 --output /var/www/html/wpad.dat",
    )
    pac_command.add_argument(
        "--proxy", metavar="HOST:PORT", help="the gateway as devices reach it (default: config)"
    )
    pac_command.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")
    pac_command.set_defaults(handler=_pac)

    status_command = command(
        commands,
        "status",
        "is the proxy up, which policy and lists it enforces, today's incidents, the log's queue",
        "schoolgate status --proxy 127.0.0.1:8080 --json",
    )
    _proxy_argument(status_command)
    status_command.add_argument("--json", action="store_true", help="one JSON object")
    status_command.set_defaults(handler=_status)

    selftest_command = command(
        commands,
        "selftest",
        "send test requests through the running proxy and record whether it enforces the policy",
        "schoolgate selftest --per-category 3 --by 'IT office'",
    )
    _proxy_argument(selftest_command)
    selftest_command.add_argument(
        "--per-category", type=int, default=2, help="hosts sampled per list (default: 2)"
    )
    selftest_command.add_argument("--by", help="who ran it (default: the login name)")
    selftest_command.set_defaults(handler=_selftest)

    every = command(
        commands,
        "every",
        "run a schoolgate command every week at a time of the school's timezone, forever",
        "schoolgate every mon 07:00 -- report --email",
    )
    every.add_argument("weekday", choices=WEEKDAYS)
    every.add_argument("time", type=dt.time.fromisoformat, metavar="HH:MM")
    every.add_argument("schoolgate_args", nargs="+", metavar="-- COMMAND", help="after --")
    every.set_defaults(handler=_every)


def _proxy_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--proxy",
        metavar="HOST:PORT",
        help="the running proxy (default: the config's listen address, loopback for 0.0.0.0)",
    )


def proxy_of(config: Config, given: str | None, wildcard: str | None = "127.0.0.1") -> str:
    """`host:port` of the proxy: as given, or from the config.

    A wildcard listen address (every interface) says nothing about where the proxy is reached:
    from the gateway itself it is `wildcard`; with `wildcard=None` the caller must be told.
    """
    if given:
        return given
    host, port = config.proxy.listen_host, config.proxy.listen_port
    if host in ("", "0.0.0.0", "::"):
        if wildcard is None:
            raise SystemExit(
                f"schoolgate: the config listens on every address ({host or '*'}): "
                "say where devices reach the gateway, like --proxy 10.0.0.1:8080"
            )
        host = wildcard
    return pac.proxy_address(host, port)


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise SystemExit(f"schoolgate: {address!r} is not HOST:PORT") from None


# --- pac ------------------------------------------------------------------------------------


def _pac(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    proxy = proxy_of(config, args.proxy, wildcard=None)
    text = pac.pac_file(config.school.name, proxy, config.proxy)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"schoolgate: wrote {args.output} (PROXY {proxy})", file=sys.stderr)
    return 0


# --- status ---------------------------------------------------------------------------------


def fetch_status(proxy: str) -> dict[str, Any]:
    """The running proxy's own report; OSError saying why when there is none at `proxy`."""
    host, port = _split(proxy)
    url = f"http://{pac.proxy_address(host, port)}{status.PATH}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via $http_proxy
    try:
        with opener.open(url, timeout=TIMEOUT) as response:
            return json.load(response)
    except urllib.error.HTTPError as e:  # an OSError, but its text says little
        raise OSError(
            f"{url} answered {e.code}: {e.read().decode(errors='replace').strip()}"
        ) from e
    except ValueError as e:
        raise OSError(f"{url} is not schoolgate's status: {e}") from e


def _status(args: argparse.Namespace) -> int:
    try:
        config: Config | None = load_config(args.config)
    except ConfigError as e:  # the proxy keeps its last good policy: ask it all the same
        config, problem = None, str(e)
    proxy = proxy_of(config, args.proxy) if config else args.proxy or DEFAULT_PROXY
    try:
        report = fetch_status(proxy)
    except OSError as e:
        report = {"proxy": "down", "address": proxy, "reason": str(e)}
    if config is None:
        report["config_error"] = problem
    else:
        engine = make_engine(config.database)
        try:
            now = dt.datetime.now(dt.UTC)
            report |= status.database_figures(engine, config.school.timezone, now)
        finally:
            engine.dispose()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_status_text(report, proxy))
    return 0 if report["proxy"] == "up" else 1


def _status_text(report: dict[str, Any], proxy: str) -> str:
    if report["proxy"] != "up":
        lines = [f"proxy: DOWN at {proxy} ({report['reason']})"]
    else:
        reload = report["last_reload"]
        lines = [
            f"proxy: up at {proxy} since {report['started_at']} (pid {report['pid']})",
            f"policy: version {report['policy_version']} loaded {report['policy_loaded_at']} "
            f"from {report['config']}",
            f"lists: {report['entries']} entries",
            *(
                f"  {item['category']}: {item['entries']} entries in {item['path']}"
                for item in report["lists"]
            ),
            f"last reload: {reload['at']} ({reload['how']}) {reload['result']}"
            + (f": {reload['error']}" if reload["error"] else ""),
            f"incident queue: {report['incidents_queued']} waiting to be written, "
            f"{report['incidents_written']} written since start",
            _destinations_text(report["destinations"]),
        ]
    if "config_error" in report:
        lines.append(f"config: ERROR {report['config_error']} (no database figures without it)")
    elif "error" in report:
        lines.append(f"database: {report['database']}: ERROR {report['error']}")
    else:
        lines.append(f"incidents today: {report['incidents_today']}")
        size = report["database_bytes"]
        shown = "size unknown" if size is None else f"{size / 1e6:.1f} MB"
        lines.append(f"database: {report['database']} ({shown})")
    return "\n".join(lines)


def _destinations_text(rules: dict[str, Any]) -> str:
    allowed = ", ".join(rules["allow_destinations"]) or "none"
    return (
        f"destinations: CONNECT to {rules['connect_ports']}; HTTP to {rules['http_ports']}; "
        f"the gateway itself and link-local refused, except {allowed}"
    )


# --- selftest -------------------------------------------------------------------------------


def _selftest(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    policy = Policy(config)
    version = policy_version(config)
    proxy = proxy_of(config, args.proxy)
    address = _split(proxy)
    try:
        running = fetch_status(proxy)["policy_version"]
    except OSError:  # not on the gateway itself: the checks say all that matters
        running = version
    if running != version:
        print(
            f"note: the proxy enforces policy version {running}, the files are version "
            f"{version} (see `schoolgate status`): checks expect the files' policy"
        )
    try:
        client = selftest.client_address(address, TIMEOUT)
    except OSError as e:
        print(f"FAIL: cannot connect to the proxy at {proxy}: {e}")
        client = ""
    checks = selftest.plan(policy, client, args.per_category)
    results = [selftest.run(address, check, TIMEOUT) for check in checks]
    for result in results:
        print(result.line())
    passed = sum(result.passed for result in results)
    summary = f"selftest through {proxy} from {client or '?'}: {passed} of {len(results)} passed"
    print(summary)
    engine = make_engine(config.database)
    try:
        record_change(
            engine,
            site=config.school.site,
            who=args.by or getpass.getuser(),
            action="selftest",
            entries=[result.line() for result in results],
            reason=summary,
            policy_version=version,
        )
    except SQLAlchemyError as e:
        print(f"schoolgate: could not record the selftest: {e}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0 if passed == len(results) else 1


# --- every ----------------------------------------------------------------------------------


def next_run(now: dt.datetime, weekday: int, at: dt.time, timezone: ZoneInfo) -> dt.datetime:
    """The next `weekday` (Monday 0) at wall-clock time `at` in `timezone`, after `now`."""
    local = now.astimezone(timezone)
    days = (weekday - local.weekday()) % 7
    candidate = dt.datetime.combine(local.date() + dt.timedelta(days=days), at, timezone)
    if candidate <= local:
        candidate = dt.datetime.combine(candidate.date() + dt.timedelta(days=7), at, timezone)
    return candidate


def _every(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    weekday = WEEKDAYS.index(args.weekday)
    program = Path(sys.executable).with_name("schoolgate")
    command = [str(program) if program.exists() else shutil.which("schoolgate") or "schoolgate"]
    command += args.schoolgate_args
    environment = {**os.environ, "SCHOOLGATE_CONFIG": str(config.path)}  # the command's default
    while True:
        due = next_run(dt.datetime.now(dt.UTC), weekday, args.time, config.school.timezone)
        print(f"schoolgate every: next run of `{' '.join(args.schoolgate_args)}` at {due}")
        sys.stdout.flush()
        while (left := (due - dt.datetime.now(dt.UTC)).total_seconds()) > 0:
            time.sleep(min(left, 3600))  # wake hourly: a suspended host does not oversleep
        code = subprocess.run(command, check=False, env=environment).returncode
        print(f"schoolgate every: `{' '.join(args.schoolgate_args)}` exited with {code}")
