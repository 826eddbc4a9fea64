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
from addons.hosts import ip_address_of, parse_authority
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
    check.add_argument(
        "--no-sni",
        action="store_true",
        help="decide as for HTTPS to the address with no site name (SNI) in the ClientHello",
    )
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
    """The mitmdump command line that runs the addon with this config.

    The addon sets the same options in `running`, but mitmproxy listens before that hook runs:
    these hold from the first connection.
    """
    flow_detail = "0" if config.log_urls == "host" else "1"  # 1 prints each request's URL
    return [
        program,
        "--scripts", str(ADDON),
        "--set", f"schoolgate_config={config.path}",
        "--set", "connection_strategy=lazy",
        "--set", "rawtcp=false",
        "--set", f"flow_detail={flow_detail}",
        "--listen-host", host or config.proxy.listen_host,
        "--listen-port", str(port or config.proxy.listen_port),
        "--mode", mode or config.proxy.mode,
    ]  # fmt: skip


def dns_mode(port: int, upstream: str | None) -> str:
    """mitmproxy's DNS listener: its own resolver, or forwarding to the school's `upstream`."""
    return f"reverse:dns://{upstream}@{port}" if upstream else f"dns@{port}"


# --- check ----------------------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    policy = Policy(config)
    destinations = Destinations(config.proxy)
    at = _moment(args.at, policy) if args.at else dt.datetime.now(dt.UTC)
    for target in _targets(args.targets):
        answer = _answer(policy, destinations, target, args, at)
        if args.json:
            print(json.dumps(answer))
            continue
        line = f"{answer['host']}: {answer['decision']} ({answer['reason']})"
        without = answer.get("without_sni")
        if without is not None:
            line += f"; HTTPS to it without SNI: {without['decision']} ({without['reason']})"
        if refused := answer.get("destination_refused"):
            line += f"; the gateway will not connect there: {refused}"
        print(line)
    return 0


def _answer(
    policy: Policy,
    destinations: Destinations,
    target: str,
    args: argparse.Namespace,
    at: dt.datetime,
) -> dict[str, object]:
    """What the proxy would do with `target`, as `explain` words it, before and after policy,
    and why the gateway would not connect there (`destination_refused`, None when it would)."""
    raw, kind, default_port = _host_of(target)
    try:
        host, port = parse_authority(raw)
    except ValueError as e:
        reason = f"malformed: {e}; the proxy answers 400 and relays nothing"
        answer = {**dict.fromkeys(_FIELDS), "host": raw, "decision": "refuse", "reason": reason}
        return {**answer, "destination_refused": None}  # refused before any destination
    return {
        **_decided(policy, host, kind == CONNECT, args, at),
        "destination_refused": destinations.refusal(kind, host, port or default_port),
    }


def _decided(
    policy: Policy, host: str, tunnel: bool, args: argparse.Namespace, at: dt.datetime
) -> dict[str, object]:
    """The policy's answer for a canonical `host`, and for HTTPS to an address (`tunnel`),
    what it would be without SNI (plain HTTP has none to lack)."""
    moment = at.timestamp()
    decision = policy.decide(host, args.client, args.user, moment)
    if args.no_sni:
        return explain(policy.decide_without_sni(host, args.client, args.user, moment), at)
    answer = explain(decision, at)
    if tunnel and ip_address_of(decision.host) is not None:
        without = policy.decide_without_sni(host, args.client, args.user, moment)
        answer["without_sni"] = {
            "decision": without.action,
            "rule": without.rule.name if without.rule else None,
            "reason": _without_sni_reason(policy, decision, without),
        }
    return answer


def _without_sni_reason(policy: Policy, decision: Decision, without: Decision) -> str:
    """Why HTTPS to an address with no SNI is decided as it is, in one clause."""
    if without.defence is not None:
        return f"rule {without.defence.rule.name}: {without.defence.rule.policy}"
    if decision.action == "block":
        return "blocked as above"
    if decision.allowed_by is not None:
        return f"allowlist entry {decision.allowed_by.entry} covers the address"
    if decision.group in policy.config.proxy.allow_tls_without_sni:
        return f"group {decision.group} is in proxy.allow_tls_without_sni"
    when = "during" if decision.school_day else "outside"
    return f"no blocking rule applies to group {decision.group} {when} the school day"


_FIELDS = ("host", "decision", "category", "rule", "matched", "source", "reason", "policy")


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


def _host_of(target: str) -> tuple[str, str, int]:
    """The authority of a URL (or the target itself when it is `host[:port]`), how the proxy
    would be asked to reach it (an http URL as a plain request, anything else as a CONNECT),
    and the port that implies."""
    if "://" in target:
        parts = urlsplit(target)
        authority = parts.netloc.rpartition("@")[2]
        return (authority, HTTP, 80) if parts.scheme == "http" else (authority, CONNECT, 443)
    return target.split("/", 1)[0], CONNECT, 443
    if "://" in target:
        parts = urlsplit(target)
        return parts.netloc.rpartition("@")[2], 443 if parts.scheme == "https" else 80
    return target.split("/", 1)[0], 80
