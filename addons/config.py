"""`config/policy.yaml`: loaded once, validated whole, every error traced to file, line and key.

The result is plain frozen data. Relative paths (lists, the SQLite file) resolve against the
config file's folder, so the same file works from any working directory and in a container.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from addons.errors import ConfigError
from addons.hosts import parse_authority
from addons.lists import Scope, parse_entry
from addons.matching import ALLOW

SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "config" / "policy.yaml"


def default_config_path() -> str:
    """`SCHOOLGATE_CONFIG` if set (as in the container), else the shipped config/policy.yaml."""
    return os.environ.get("SCHOOLGATE_CONFIG", str(SHIPPED_CONFIG))


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WHEN = ("always", "school_day", "outside_school_day")
ACTIONS = ("block", "monitor", "allow")
HTTPS_BLOCK = ("refuse", "intercept")
MODES = ("regular", "transparent")
LOG_URLS = ("host", "url")

type Network = ipaddress.IPv4Network | ipaddress.IPv6Network
type PortRange = tuple[int, int]  # first and last port, inclusive

# squid's defaults: `acl SSL_ports port 443` and `acl Safe_ports port ...`, in squid's order.
CONNECT_PORTS: tuple[PortRange, ...] = ((443, 443),)
HTTP_PORTS: tuple[PortRange, ...] = (
    *((port, port) for port in (80, 21, 443, 70, 210)),
    (1025, 65535),
    *((port, port) for port in (280, 488, 591, 777)),
)


@dataclass(frozen=True)
class School:
    name: str
    site: str
    timezone: ZoneInfo
    contact: str
    policy_url: str


@dataclass(frozen=True)
class Term:
    name: str
    start: dt.date
    end: dt.date


@dataclass(frozen=True)
class SchoolDayConfig:
    weekdays: frozenset[int]  # Monday is 0, as datetime.weekday()
    start: dt.time
    end: dt.time
    terms: tuple[Term, ...]
    closures: frozenset[dt.date]


@dataclass(frozen=True)
class Group:
    name: str
    networks: tuple[Network, ...]
    users: frozenset[str]


@dataclass(frozen=True)
class Rule:
    name: str
    groups: frozenset[str] | None  # None: every group ("*")
    categories: tuple[str, ...]
    when: Literal["always", "school_day", "outside_school_day"]
    action: Literal["block", "monitor", "allow"]
    policy: str
    clause: str


@dataclass(frozen=True)
class ProxyConfig:
    listen_host: str
    listen_port: int
    mode: Literal["regular", "transparent"]
    # `proxy.direct`: what the PAC file sends around the proxy (the school's own hosts).
    direct_networks: tuple[ipaddress.IPv4Network, ...] = ()
    direct_hosts: tuple[tuple[str, Scope], ...] = ()
    # Where the gateway may connect for its clients (addons/destinations.py).
    connect_ports: tuple[PortRange, ...] = CONNECT_PORTS  # a CONNECT tunnel, transparent TLS
    http_ports: tuple[PortRange, ...] = HTTP_PORTS  # a plain HTTP request
    allow_destinations: tuple[Network, ...] = ()  # its own or link-local, reachable all the same
    # Groups whose HTTPS to a bare IP address without SNI is let through (default: none).
    allow_tls_without_sni: frozenset[str] = frozenset()
    # `proxy.raw_tcp`: (host, port) the gateway relays bytes to that are neither TLS nor HTTP.
    raw_tcp: frozenset[tuple[str, int]] = frozenset()
    head_timeout: int = 60  # seconds to a connection's first complete request head or ClientHello
    idle_timeout: int = 120  # seconds a kept-alive connection may wait for its next request


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    starttls: bool
    username: str | None
    password_env: str | None  # the environment variable that holds the password
    sender: str  # `from:` in the file


@dataclass(frozen=True)
class ReportConfig:
    """`report:`: who gets the emailed report, how to send it, and names for devices."""

    recipients: tuple[str, ...] = ()
    devices: Path | None = None  # one more devices file (as `devices:`), for the report only
    smtp: SmtpConfig | None = None


@dataclass(frozen=True)
class Config:
    path: Path
    school: School
    school_day: SchoolDayConfig
    groups: tuple[Group, ...]
    default_group: str
    categories: dict[str, tuple[Path, ...]]
    allowlist: tuple[Path, ...]
    rules: tuple[Rule, ...]
    database: str
    retention_days: int
    https_block: Literal["refuse", "intercept"]
    proxy: ProxyConfig
    allowed_clients: tuple[Network, ...] = ()  # may use the proxy besides the group networks
    devices: tuple[Path, ...] = ()  # inventory CSVs and DHCP leases files: device names
    # `host` keeps full URLs (which may carry search terms) out of the log unless the school
    # chooses `url`.
    log_urls: Literal["host", "url"] = "host"
    report: ReportConfig = field(default_factory=ReportConfig)
    group_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = tuple(g.name for g in self.groups)
        object.__setattr__(self, "group_names", (*names, self.default_group))


# --- YAML with line numbers -------------------------------------------------------------


class _Mapping(dict[str, Any]):
    """A YAML mapping that remembers the line of each key."""

    line: int = 0
    lines: dict[str, int]


class _Sequence(list[Any]):
    """A YAML sequence that remembers the line of each item."""

    line: int = 0
    lines: list[int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Mapping:
    mapping = _Mapping()
    mapping.line = node.start_mark.line + 1
    mapping.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if isinstance(key, list | dict):
            raise ConfigError(loader.name, line, "a key must be a name, not a list or mapping")
        if key in mapping:
            raise ConfigError(loader.name, line, "duplicate key", key=str(key))
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = line
    return mapping


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _Sequence:
    sequence = _Sequence(loader.construct_object(item, deep=True) for item in node.value)
    sequence.line = node.start_mark.line + 1
    sequence.lines = [item.start_mark.line + 1 for item in node.value]
    return sequence


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
# Dates stay text until `_Node.date` reads them: YAML's own constructor raises a bare ValueError,
# with no line, for an impossible date such as 2026-09-31.
_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


@dataclass(frozen=True)
class _Node:
    """A value in the file with its key path and line, so every check can say where it failed."""

    path: Path
    key: str
    line: int
    value: Any

    def error(self, message: str) -> ConfigError:
        return ConfigError(self.path, self.line, message, key=self.key)

    def child(self, key: str) -> _Node | None:
        """The value under `key` of this mapping, or None when the key is absent."""
        if key not in self.value:
            return None
        line = self.value.lines.get(key, self.line)
        return _Node(self.path, f"{self.key}.{key}" if self.key else key, line, self.value[key])

    def require(self, key: str) -> _Node:
        found = self.child(key)
        if found is None:
            raise self.error(f"missing key '{key}'")
        return found

    def mapping(self, allowed: tuple[str, ...]) -> _Node:
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {_kind(self.value)}")
        for key, line in self.value.lines.items():
            if key not in allowed:
                where = f"{self.key}.{key}" if self.key else str(key)
                raise ConfigError(
                    self.path, line, f"unknown key (known: {', '.join(allowed)})", key=where
                )
        return self

    def items(self) -> list[_Node]:
        if not isinstance(self.value, list):
            raise self.error(f"expected a list, got {_kind(self.value)}")
        return [
            _Node(self.path, f"{self.key}[{i}]", line, item)
            for i, (item, line) in enumerate(zip(self.value, self.value.lines, strict=True))
        ]

    def entries(self) -> list[tuple[str, _Node]]:
        """The (key, value) pairs of a mapping whose keys are names chosen by the school."""
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {_kind(self.value)}")
        return [(str(key), self.require(key)) for key in self.value]

    def text(self) -> str:
        if not isinstance(self.value, str) or not self.value.strip():
            raise self.error(f"expected text, got {_kind(self.value)}")
        return self.value

    def integer(self, low: int, high: int) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise self.error(f"expected a whole number, got {_kind(self.value)}")
        if not low <= self.value <= high:
            raise self.error(f"{self.value} is out of range {low}..{high}")
        return self.value

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.error(f"expected true or false, got {_kind(self.value)}")
        return self.value

    def email(self) -> str:
        address = self.text()
        if "@" not in address or any(c.isspace() for c in address.strip()):
            raise self.error(f"{address!r} is not an email address")
        return address.strip()

    def choice(self, choices: tuple[str, ...]) -> Any:
        if self.value not in choices:
            raise self.error(f"{self.value!r} is not one of: {', '.join(choices)}")
        return self.value

    def date(self) -> dt.date:
        if isinstance(self.value, dt.date) and not isinstance(self.value, dt.datetime):
            return self.value
        try:
            return dt.date.fromisoformat(str(self.value))
        except ValueError:
            raise self.error(f"{self.value!r} is not a date (YYYY-MM-DD)") from None

    def time(self) -> dt.time:
        if isinstance(self.value, int):  # YAML 1.1 reads an unquoted 08:30 as 510 minutes
            raise self.error('write times in quotes, like "08:30"')
        try:
            return dt.time.fromisoformat(str(self.value))
        except ValueError:
            raise self.error(f"{self.value!r} is not a time (HH:MM)") from None


def _kind(value: object) -> str:
    for kind, name in (
        (dict, "a mapping"),
        (list, "a list"),
        (str, "text"),
        (type(None), "nothing"),
    ):
        if isinstance(value, kind):
            return name
    return f"{type(value).__name__} {value!r}"


def _optional[T](node: _Node, key: str, read: Callable[[_Node], T], default: T) -> T:
    found = node.child(key)
    return default if found is None else read(found)


# --- Sections -----------------------------------------------------------------------------


def _school(node: _Node) -> School:
    node.mapping(("name", "site", "timezone", "contact", "policy_url"))
    tz_node = node.require("timezone")
    try:
        timezone = ZoneInfo(tz_node.text())
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a folder
        raise tz_node.error(f"unknown timezone {tz_node.value!r} (like Europe/London)") from None
    site = node.require("site").text()
    if not site.replace("-", "").replace("_", "").isalnum():
        raise node.require("site").error("use letters, digits, '-' and '_' only")
    return School(
        name=node.require("name").text(),
        site=site,
        timezone=timezone,
        contact=node.require("contact").text(),
        policy_url=_optional(node, "policy_url", _Node.text, ""),
    )


def _term(node: _Node) -> Term:
    node.mapping(("name", "start", "end"))
    start, end = node.require("start").date(), node.require("end").date()
    if end < start:
        raise node.require("end").error(f"term ends ({end}) before it starts ({start})")
    return Term(_optional(node, "name", _Node.text, f"{start}..{end}"), start, end)


def _school_day(node: _Node) -> SchoolDayConfig:
    node.mapping(("weekdays", "start", "end", "terms", "closures"))
    weekdays = frozenset(
        WEEKDAYS.index(day.choice(WEEKDAYS)) for day in node.require("weekdays").items()
    )
    start, end = node.require("start").time(), node.require("end").time()
    if end <= start:
        raise node.require("end").error(f"the school day ends ({end}) before it starts ({start})")
    terms = tuple(_term(t) for t in _optional(node, "terms", _Node.items, []))
    closures = frozenset(c.date() for c in _optional(node, "closures", _Node.items, []))
    return SchoolDayConfig(weekdays, start, end, terms, closures)


def _network(node: _Node) -> Network:
    try:
        return ipaddress.ip_network(node.text(), strict=False)
    except ValueError:
        raise node.error(f"{node.value!r} is not a network (like 10.10.0.0/16)") from None


def _group(name: str, node: _Node) -> Group:
    node.mapping(("networks", "users"))
    networks = tuple(_network(n) for n in _optional(node, "networks", _Node.items, []))
    users = frozenset(u.text() for u in _optional(node, "users", _Node.items, []))
    return Group(name, networks, users)


def _file(node: _Node, base: Path, kind: str = "list") -> Path:
    path = (base / node.text()).resolve()
    if not path.is_file():
        raise node.error(f"{kind} file not found: {path}")
    return path


def _rule(node: _Node, groups: tuple[str, ...], categories: tuple[str, ...]) -> Rule:
    node.mapping(("name", "groups", "categories", "when", "action", "policy", "clause"))
    group_names: set[str] = set()
    for g in node.require("groups").items():
        if g.value != "*" and g.value not in groups:
            raise g.error(f"unknown group {g.value!r} (known: *, {', '.join(groups)})")
        group_names.add(g.value)
    rule_categories = tuple(c.text() for c in node.require("categories").items())
    for c in node.require("categories").items():
        if c.value not in categories:
            raise c.error(f"unknown category {c.value!r} (known: {', '.join(categories)})")
    return Rule(
        name=node.require("name").text(),
        groups=None if "*" in group_names else frozenset(group_names),
        categories=rule_categories,
        when=node.require("when").choice(WHEN),
        action=node.require("action").choice(ACTIONS),
        policy=node.require("policy").text(),
        clause=_optional(node, "clause", _Node.text, ""),
    )


def _database(node: _Node, base: Path) -> str:
    try:
        url = make_url(node.text())
    except ArgumentError:
        raise node.error(f"{node.value!r} is not a database URL (like sqlite:///data.db)") from None
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        url = url.set(database=str((base / url.database).resolve()))
    return url.render_as_string(hide_password=False)


def _direct(node: _Node) -> ipaddress.IPv4Network | tuple[str, Scope]:
    """One `proxy.direct` entry: an IPv4 network, or a host entry as in the blocklists."""
    text = node.text()
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        try:
            domain, scope = parse_entry(text)
        except ValueError as e:
            raise node.error(f"{e}, nor a network (like 10.0.0.0/8)") from None
        if scope is not Scope.NETWORK:
            return domain, scope
        network = ipaddress.ip_network(domain)  # `=10.0.0.1`, `[::1]`: an address after all
    if not isinstance(network, ipaddress.IPv4Network):
        raise node.error("a PAC file can test IPv4 networks only (list the hosts by name)")
    return network


def _group_name(node: _Node, groups: tuple[str, ...]) -> str:
    if node.value not in groups:
        raise node.error(f"unknown group {node.value!r} (known: {', '.join(groups)})")
    return str(node.value)


def _host_port(node: _Node) -> tuple[str, int]:
    """One `proxy.raw_tcp` entry: `host:port`, or `[IPv6 address]:port`, host made canonical."""
    text = node.text().strip()
    try:
        host, port = parse_authority(text)
    except ValueError as e:
        raise node.error(f"{text!r} is not host:port: {e}") from None
    if port is None:
        raise node.error(
            f"{text!r} is not host:port (like 10.0.0.5:22, git.example.org:22 or [2001:db8::5]:22)"
        )
    return host, port


def _port_range(node: _Node) -> PortRange:
    """A port (`443`) or an inclusive range of ports (`1025-65535`)."""
    if isinstance(node.value, int) and not isinstance(node.value, bool):
        port = node.integer(1, 65535)
        return port, port
    low, dash, high = str(node.value).partition("-")
    if not low.strip().isdigit() or (dash and not high.strip().isdigit()):
        raise node.error(f"{node.value!r} is not a port or a range of ports (like 1025-65535)")
    first = int(low)
    last = int(high) if dash else first
    if not 1 <= first <= last <= 65535:
        raise node.error(f"{node.value!r} is not within 1..65535, lowest port first")
    return first, last


def _ports(node: _Node) -> tuple[PortRange, ...]:
    ports = tuple(_port_range(n) for n in node.items())
    if not ports:
        raise node.error("list at least one port (an empty list would refuse every connection)")
    return ports


def _destination(node: _Node) -> Network:
    """An `allow_destinations` entry; the gateway compares IPv4-mapped addresses as IPv4."""
    network = _network(node)
    mapped = getattr(network.network_address, "ipv4_mapped", None)
    if mapped is not None:
        raise node.error(
            f"write {node.value!r} as IPv4 ({mapped}/{max(network.prefixlen - 96, 0)}): "
            "the gateway compares IPv4-mapped addresses as IPv4"
        )
    return network


def _proxy(node: _Node, groups: tuple[str, ...]) -> ProxyConfig:
    node.mapping(
        (
            "listen_host",
            "listen_port",
            "mode",
            "direct",
            "connect_ports",
            "http_ports",
            "allow_destinations",
            "allow_tls_without_sni",
            "raw_tcp",
            "head_timeout",
            "idle_timeout",
        )
    )
    direct = [_direct(n) for n in _optional(node, "direct", _Node.items, [])]
    sni_groups = _optional(node, "allow_tls_without_sni", _Node.items, [])
    return ProxyConfig(
        listen_host=_optional(node, "listen_host", _Node.text, "127.0.0.1"),
        listen_port=_optional(node, "listen_port", lambda n: n.integer(1, 65535), 8080),
        mode=_optional(node, "mode", lambda n: n.choice(MODES), "regular"),
        direct_networks=tuple(d for d in direct if isinstance(d, ipaddress.IPv4Network)),
        direct_hosts=tuple(d for d in direct if isinstance(d, tuple)),
        connect_ports=_optional(node, "connect_ports", _ports, CONNECT_PORTS),
        http_ports=_optional(node, "http_ports", _ports, HTTP_PORTS),
        allow_destinations=tuple(
            _destination(n) for n in _optional(node, "allow_destinations", _Node.items, [])
        ),
        allow_tls_without_sni=frozenset(_group_name(g, groups) for g in sni_groups),
        raw_tcp=frozenset(_host_port(n) for n in _optional(node, "raw_tcp", _Node.items, [])),
        head_timeout=_optional(node, "head_timeout", lambda n: n.integer(1, 600), 60),
        idle_timeout=_optional(node, "idle_timeout", lambda n: n.integer(1, 3600), 120),
    )


def _smtp(node: _Node) -> SmtpConfig:
    node.mapping(("host", "port", "starttls", "username", "password_env", "from"))
    starttls = _optional(node, "starttls", _Node.boolean, True)
    return SmtpConfig(
        host=node.require("host").text(),
        port=_optional(node, "port", lambda n: n.integer(1, 65535), 587 if starttls else 25),
        starttls=starttls,
        username=_optional(node, "username", _Node.text, None),
        password_env=_optional(node, "password_env", _Node.text, None),
        sender=node.require("from").email(),
    )


def _report(node: _Node, base: Path) -> ReportConfig:
    node.mapping(("recipients", "devices", "smtp"))
    return ReportConfig(
        recipients=tuple(r.email() for r in _optional(node, "recipients", _Node.items, [])),
        devices=_optional(node, "devices", lambda n: _file(n, base, "devices"), None),
        smtp=_optional(node, "smtp", _smtp, None),
    )


TOP_KEYS = (
    "school",
    "school_day",
    "groups",
    "default_group",
    "categories",
    "allowlist",
    "rules",
    "database",
    "retention_days",
    "https_block",
    "proxy",
    "allowed_clients",
    "devices",
    "log_urls",
    "report",
)


def load_config(path: Path | str) -> Config:
    """Read and validate a policy file; raise ConfigError naming file, line and key."""
    path = Path(path).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, None, f"cannot read config: {e}") from e
    try:
        loader = _Loader(text)
        loader.name = str(path)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise ConfigError(path, mark.line + 1 if mark else None, f"bad YAML: {e.problem}") from e
    except yaml.YAMLError as e:
        raise ConfigError(path, None, f"bad YAML: {e}") from e
    if data is None:
        raise ConfigError(path, None, "the file is empty")
    root = _Node(path, "", 1, data).mapping(TOP_KEYS)
    base = path.parent

    groups = tuple(_group(name, node) for name, node in root.require("groups").entries())
    default_group = root.require("default_group").text()
    group_names = (*(g.name for g in groups), default_group)
    categories = {
        name: tuple(_file(p, base) for p in node.items())
        for name, node in root.require("categories").entries()
    }
    if ALLOW in categories:
        raise root.require("categories").error(f"'{ALLOW}' is reserved for the allowlist")
    allowlist = tuple(_file(p, base) for p in _optional(root, "allowlist", _Node.items, []))
    return Config(
        path=path,
        school=_school(root.require("school")),
        school_day=_school_day(root.require("school_day")),
        groups=groups,
        default_group=default_group,
        categories=categories,
        allowlist=allowlist,
        rules=tuple(
            _rule(r, group_names, tuple(categories)) for r in root.require("rules").items()
        ),
        database=_database(root.require("database"), base),
        retention_days=_optional(root, "retention_days", lambda n: n.integer(1, 36500), 365),
        https_block=_optional(root, "https_block", lambda n: n.choice(HTTPS_BLOCK), "refuse"),
        proxy=_optional(
            root,
            "proxy",
            lambda n: _proxy(n, group_names),
            ProxyConfig("127.0.0.1", 8080, "regular"),
        ),
        allowed_clients=tuple(
            _network(n) for n in _optional(root, "allowed_clients", _Node.items, [])
        ),
        devices=tuple(
            _file(p, base, "devices") for p in _optional(root, "devices", _Node.items, [])
        ),
        log_urls=_optional(root, "log_urls", lambda n: n.choice(LOG_URLS), "host"),
        report=_optional(root, "report", lambda n: _report(n, base), ReportConfig()),
    )
