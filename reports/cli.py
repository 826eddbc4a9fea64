"""`schoolgate`: the one command IT and the SLT use. Each subcommand's --help shows an example.

This module is the only place that sees both the core (`addons`) and the reports, so the
dependency runs one way: cli -> reports -> addons.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from addons.access import ClientAccess
from addons.config import MODES, Config, load_config
from addons.destinations import CONNECT, HTTP, Destinations
from addons.errors import ConfigError
from addons.policy import Decision, Policy
from reports import blocklist_cmd, db_cmd, ops_cmd, report_cmd
from reports.commands import command

ADDON = Path(__file__).resolve().parent.parent / "addons" / "schoolgate.py"


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, every subcommand with an example."""
    parser = argparse.ArgumentParser(
        prog="schoolgate",
        description="Enforce the school's social-media policy on its network, and report on it.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = command(
        commands,
        "run",
        "start the filtering proxy (mitmdump with the schoolgate addon)",
        "schoolgate run --config config/policy.yaml --listen-host 0.0.0.0 --listen-port 8080",
    )
    run.add_argument("--listen-host", help="address to listen on (default: from the config)")
    run.add_argument("--listen-port", type=int, help="port to listen on (default: from the config)")
    run.add_argument("--mode", choices=MODES, help="proxy mode (default: from the config)")
    run.add_argument(
        "--dns", action="store_true", help="also answer DNS: NXDOMAIN for blocked names"
    )
    run.add_argument("--dns-port", type=int, default=53, help="DNS port (default: %(default)s)")
    run.add_argument(
        "--dns-upstream",
        metavar="IP[:PORT]",
        help="resolver to forward allowed names to (default: the system's resolvers)",
    )
    run.add_argument(
        "mitmdump_args", nargs="*", help="further mitmdump options, after --", metavar="-- ARGS"
    )
    run.set_defaults(handler=_run)

    check = command(
        commands,
        "check",
        "say whether the policy blocks a host or URL, and why; and whether the gateway "
        "refuses its port or address (HOST:PORT)",
        "schoolgate check www.facebook.com https://x.com/home 10.0.0.1:22 --client 10.20.1.5",
    )
    check.add_argument(
        "targets", nargs="+", metavar="HOST_OR_URL", help="hosts[:port] or URLs; - reads stdin"
    )
    check.add_argument(
        "--at", help="decide as at this ISO 8601 time (default: now, school timezone)"
    )
    check.add_argument("--client", default="", help="client IP address (selects the group)")
    check.add_argument("--user", help="proxy user name (selects the group)")
    check.add_argument("--json", action="store_true", help="one JSON object per line")
    check.set_defaults(handler=_check)
    blocklist_cmd.register(commands)
    db_cmd.register(commands)
    ops_cmd.register(commands)
    report_cmd.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `schoolgate` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as e:
        print(f"schoolgate: {e}", file=sys.stderr)
        return 2


# --- run ------------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)  # fail here, with the same message, before mitmdump starts
    try:
        ClientAccess(config).refuse_open_proxy([args.listen_host or config.proxy.listen_host])
    except ValueError as e:
        print(f"schoolgate: {config.path}: {e}", file=sys.stderr)
        return 2
    mitmdump = Path(sys.executable).with_name("mitmdump")
    program = str(mitmdump) if mitmdump.exists() else shutil.which("mitmdump")
    if program is None:
        print(
            "schoolgate: mitmdump not found; install the project: pip install -e .", file=sys.stderr
        )
        return 2
    argv = mitmdump_argv(program, config, args.listen_host, args.listen_port, args.mode)
    if args.dns:
        argv += ["--mode", dns_mode(args.dns_port, args.dns_upstream)]
    os.execv(program, [*argv, *args.mitmdump_args])


def mitmdump_argv(
    program: str, config: Config, host: str | None, port: int | None, mode: str | None
) -> list[str]:
    """The mitmdump command line that runs the addon with this config."""
    return [
        program,
        "--scripts", str(ADDON),
        "--set", f"schoolgate_config={config.path}",
        "--set", "connection_strategy=lazy",
        "--listen-host", host or config.proxy.listen_host,
        "--listen-port", str(port or config.proxy.listen_port),
        "--mode", mode or config.proxy.mode,
    ]  # fmt: skip


def dns_mode(port: int, upstream: str | None) -> str:
    """mitmproxy's DNS listener: its own resolver, or forwarding to the school's `upstream`."""
    return f"reverse:dns://{upstream}@{port}" if upstream else f"dns@{port}"


# --- check ----------------------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    policy = Policy(load_config(args.config))
    destinations = Destinations(policy.config.proxy)
    at = _moment(args.at, policy) if args.at else dt.datetime.now(dt.UTC)
    for target in _targets(args.targets):
        decision = policy.decide(_host_of(target), args.client, args.user, at.timestamp())
        destination = _destination_of(target)
        refused = destinations.refusal(*destination) if destination else None
        if args.json:
            print(json.dumps({**explain(decision, at), "destination_refused": refused}))
        else:
            why = f"; the gateway will not connect there: {refused}" if refused else ""
            print(f"{decision.host}: {decision.action} ({decision.reason()}){why}")
    return 0


def explain(decision: Decision, at: dt.datetime) -> dict[str, object]:
    """The JSON answer to 'why is this blocked?'."""
    match, rule, allow = decision.match, decision.rule, decision.allowed_by
    return {
        "host": decision.host,
        "decision": decision.action,
        "category": decision.category,
        "rule": rule.name if rule else None,
        "matched": match.entry if match else None,
        "source": match.location() if match else None,
        "reason": decision.reason(),
        "group": decision.group,
        "school_day": decision.school_day,
        "at": at.isoformat(),
        "policy": rule.policy if rule else None,
        "allowlisted": allow.entry if allow else None,
        "allowlist_source": allow.location() if allow else None,
    }


def _moment(text: str, policy: Policy) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"schoolgate: --at {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=policy.config.school.timezone)
    return moment


def _targets(targets: list[str]) -> Iterator[str]:
    for target in targets:
        if target == "-":
            yield from (line.strip() for line in sys.stdin if line.strip())
        else:
            yield target


def _destination_of(target: str) -> tuple[str, str, int] | None:
    """How the proxy would be asked to reach a target: an http URL as a plain request, anything
    else (`host[:port]`, https) as a CONNECT; None when the port is not a number."""
    parts = urlsplit(target if "://" in target else f"//{target}")
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme == "http":
        return HTTP, parts.hostname or "", port or 80
    return CONNECT, parts.hostname or "", port or 443


def _host_of(target: str) -> str:
    """The host of a URL, or the target itself when it is a host."""
    if "://" in target:
        return urlsplit(target).netloc.rpartition("@")[2]
    return target.split("/", 1)[0]
