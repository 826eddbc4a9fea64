"""`load_config`: the shipped file loads, paths resolve, every mistake says file, line, key."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest

from addons.config import load_config
from addons.errors import ConfigError
from addons.policy import Policy
from tests.unit.support import BASE_CONFIG, BASE_LISTS, LONDON, PolicyFiles, edit, line_of

ROOT = Path(__file__).resolve().parents[2]


def assert_located(error: ConfigError, files: PolicyFiles, line: int, key: str) -> None:
    """The error names the config file, the line and the key, in that order, and says why."""
    assert (error.path, error.line, error.key) == (files.config_path, line, key)
    prefix = f"{files.config_path}:{line}: {key}: "
    assert str(error).startswith(prefix)
    assert str(error) != prefix


# --- the shipped config ----------------------------------------------------------------------


def test_shipped_policy_loads_and_indexes_its_lists() -> None:
    config = load_config(ROOT / "config" / "policy.yaml")
    policy = Policy(config)
    assert config.school.timezone.key == "Europe/London"
    assert config.categories["social_networks"] == (ROOT / "blocklists" / "social_networks.txt",)
    assert config.allowlist == (ROOT / "blocklists" / "allow.txt",)
    assert config.database == f"sqlite:///{ROOT / 'data' / 'schoolgate.db'}"
    assert all(rule.clause for rule in config.rules), "each rule cites its clause of the policy"
    assert policy.index.entries > 50
    assert policy.decide("www.facebook.com", "10.20.1.5", at=0).action == "block"
    assert policy.decide("example.org", "10.20.1.5", at=0).action == "allow"


# --- what a good file loads into -------------------------------------------------------------


def test_base_config_loads_into_typed_values(files: PolicyFiles) -> None:
    config = files.config()
    assert config.path == files.config_path
    assert config.school.timezone == LONDON
    assert config.school_day.weekdays == frozenset(range(5))
    assert (config.school_day.start, config.school_day.end) == (dt.time(8, 30), dt.time(15, 30))
    assert [t.name for t in config.school_day.terms] == ["Spring 2026", "Autumn 2026"]
    assert config.school_day.closures == frozenset({dt.date(2026, 11, 27)})
    assert config.group_names == ("staff", "pupils", "guests", "everyone")
    assert config.groups[0].networks == (
        ipaddress.ip_network("10.10.0.0/16"),
        ipaddress.ip_network("fd00:10::/32"),
    )
    assert config.groups[0].users == frozenset({"alice"})
    assert config.groups[2].users == frozenset()
    assert [r.name for r in config.rules] == [
        "staff-video-after-school",
        "video-in-lessons",
        "staff-monitored",
        "school-it-ban",
    ]
    assert config.rules[1].groups is None  # "*"
    assert config.rules[0].groups == frozenset({"staff"})
    assert config.retention_days == 30
    # Defaults for the optional keys.
    assert config.https_block == "refuse"
    assert (config.proxy.listen_host, config.proxy.listen_port, config.proxy.mode) == (
        "127.0.0.1",
        8080,
        "regular",
    )
    assert config.proxy.allow_tls_without_sni == frozenset()
    assert config.proxy.allow_destinations == ()


def test_the_gateways_own_rules_are_relaxed_by_name(files: PolicyFiles) -> None:
    text = edit(
        BASE_CONFIG,
        "retention_days: 30\n",
        "retention_days: 30\nproxy:\n  allow_tls_without_sni: [staff, everyone]\n"
        '  allow_destinations: [127.0.0.1/32, "::1"]\n',
    )
    proxy = files.config(text).proxy
    assert proxy.allow_tls_without_sni == frozenset({"staff", "everyone"})
    assert proxy.allow_destinations == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )


def test_proxy_security_keys_default_and_load(files: PolicyFiles) -> None:
    proxy = files.config().proxy
    assert (proxy.raw_tcp, proxy.head_timeout, proxy.idle_timeout) == (frozenset(), 60, 120)
    text = BASE_CONFIG + (
        "proxy:\n"
        "  raw_tcp: [10.0.0.5:22, Git.Example.ORG.:2222, '[2001:DB8::5]:22']\n"
        "  head_timeout: 20\n"
        "  idle_timeout: 300\n"
    )
    proxy = files.config(text).proxy
    assert proxy.raw_tcp == frozenset(
        {("10.0.0.5", 22), ("git.example.org", 2222), ("2001:db8::5", 22)}
    )
    assert (proxy.head_timeout, proxy.idle_timeout) == (20, 300)


def test_relative_paths_resolve_against_the_config_folder_not_the_working_directory(
    files: PolicyFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = files.config()
    assert config.categories == {
        "social_networks": (files.list_path("social.txt"),),
        "video": (files.list_path("video.txt"),),
    }
    assert config.allowlist == (files.list_path("allow.txt"),)
    assert config.database == f"sqlite:///{tmp_path / 'data' / 'test.db'}"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/lib/schoolgate/incidents.db",
        "sqlite://",
        "postgresql+psycopg://gate:s3cret@db.example:5432/schoolgate",
    ],
)
def test_absolute_memory_and_server_database_urls_are_kept(files: PolicyFiles, url: str) -> None:
    config = files.config(edits={"sqlite:///../data/test.db": url})
    assert config.database == url


# --- every mistake is located ----------------------------------------------------------------

ERRORS = {
    "unknown top-level key": (
        "retention_days: 30\n",
        "retention_days: 30\ncolour: blue\n",
        "colour: blue",
        "colour",
    ),
    "unknown key in school_day": (
        '  end: "15:30"\n',
        '  end: "15:30"\n  lunch: "12:00"\n',
        "lunch:",
        "school_day.lunch",
    ),
    "unknown key in a group": (
        "  guests: {networks: [10.0.0.0/8]}",
        "  guests: {networks: [10.0.0.0/8], printers: [p1]}",
        "printers",
        "groups.guests.printers",
    ),
    "unknown key in a rule": (
        "    action: monitor\n",
        "    action: monitor\n    colour: red\n",
        "colour: red",
        "rules[2].colour",
    ),
    "bad CIDR": (
        "[10.20.0.0/16,",
        "[10.20.0.300/16,",
        "10.20.0.300/16",
        "groups.pupils.networks[0]",
    ),
    "bad time": ('  end: "15:30"', '  end: "25:30"', "25:30", "school_day.end"),
    "unquoted time (YAML reads minutes)": (
        '  end: "15:30"',
        "  end: 15:30",
        "end: 15:30",
        "school_day.end",
    ),
    "start after end": ('  end: "15:30"', '  end: "08:00"', "^  end:", "school_day.end"),
    "start equal to end": ('  end: "15:30"', '  end: "08:30"', "^  end:", "school_day.end"),
    "bad weekday": ("wed, thu, fri]", "wed, thu, fry]", "fry", "school_day.weekdays[4]"),
    "term ending before it starts": (
        "end: 2026-12-17}",
        "end: 2026-08-17}",
        "2026-08-17",
        "school_day.terms[1].end",
    ),
    "impossible closure date": (
        "closures: [2026-11-27]",
        "closures: [2026-09-31]",
        "closures",
        "school_day.closures[0]",
    ),
    "unknown group in a rule": (
        "    groups: [staff]\n    categories: [social",
        "    groups: [staf]\n    categories: [social",
        r"\[staf\]",
        "rules[2].groups[0]",
    ),
    "unknown category in a rule": (
        "    categories: [video]\n    when: school_day",
        "    categories: [vidoe]\n    when: school_day",
        r"\[vidoe\]",
        "rules[1].categories[0]",
    ),
    "unknown action": ("    action: monitor", "    action: ban", "action: ban", "rules[2].action"),
    "unknown when": (
        "    when: outside_school_day",
        "    when: evenings",
        "evenings",
        "rules[0].when",
    ),
    "missing category list file": (
        "[../blocklists/video.txt]",
        "[../blocklists/missing.txt]",
        "missing.txt",
        "categories.video[0]",
    ),
    "missing allowlist file": (
        "allowlist: [../blocklists/allow.txt]",
        "allowlist: [../blocklists/alow.txt]",
        "alow.txt",
        "allowlist[0]",
    ),
    "invalid timezone": (
        "timezone: Europe/London",
        "timezone: Europe/Lndon",
        "Lndon",
        "school.timezone",
    ),
    "timezone that is a region, not a zone": (
        "timezone: Europe/London",
        "timezone: Europe",
        "timezone",
        "school.timezone",
    ),
    "bad database URL": (
        "database: sqlite:///../data/test.db",
        "database: not a url",
        "not a url",
        "database",
    ),
    "port out of range": (
        "retention_days: 30\n",
        "retention_days: 30\nproxy: {listen_port: 70000}\n",
        "70000",
        "proxy.listen_port",
    ),
    "unknown group allowed TLS without SNI": (
        "retention_days: 30\n",
        "retention_days: 30\nproxy:\n  allow_tls_without_sni: [staff, pupil]\n",
        "allow_tls_without_sni",
        "proxy.allow_tls_without_sni[1]",
    ),
    "a destination that is no network": (
        "retention_days: 30\n",
        "retention_days: 30\nproxy:\n  allow_destinations: [127.0.0.1/33]\n",
        "allow_destinations",
        "proxy.allow_destinations[0]",
    ),
    "raw TCP entry without a port": (
        "retention_days: 30\n",
        "retention_days: 30\nproxy:\n  raw_tcp: [10.0.0.5:22, git.example.org]\n",
        "raw_tcp",
        "proxy.raw_tcp[1]",
    ),
    "raw TCP entry with a port out of range": (
        "retention_days: 30\n",
        "retention_days: 30\nproxy:\n  raw_tcp:\n    - 10.0.0.5:22\n    - 10.0.0.5:0\n",
        "10.0.0.5:0",
        "proxy.raw_tcp[1]",
    ),
    "raw TCP entry that is no host": (
        "retention_days: 30\n",
        "retention_days: 30\nproxy:\n  raw_tcp: ['bad host!:22']\n",
        "raw_tcp",
        "proxy.raw_tcp[0]",
    ),
    "raw TCP IPv6 entry without brackets": (
        "retention_days: 30\n",
        "retention_days: 30\nproxy:\n  raw_tcp: ['2001:db8::5:22']\n",
        "raw_tcp",
        "proxy.raw_tcp[0]",
    ),
    "head timeout of zero": (
        "retention_days: 30\n",
        "retention_days: 30\nproxy:\n  head_timeout: 0\n",
        "head_timeout",
        "proxy.head_timeout",
    ),
    "idle timeout that is no number": (
        "retention_days: 30\n",
        "retention_days: 30\nproxy:\n  idle_timeout: 2m\n",
        "idle_timeout",
        "proxy.idle_timeout",
    ),
    "duplicate key": ("  site: test\n", "  site: test\n  site: other\n", "other", "site"),
    "missing required key": ("  contact: the school office\n", "", "^school:", "school"),
    "allow is reserved": (
        "  video: [../blocklists/video.txt]",
        "  allow: [../blocklists/video.txt]",
        "^categories:",
        "categories",
    ),
}


@pytest.mark.parametrize(("old", "new", "on_line", "key"), ERRORS.values(), ids=ERRORS.keys())
def test_a_mistake_names_the_file_the_line_and_the_key(
    files: PolicyFiles, old: str, new: str, on_line: str, key: str
) -> None:
    text = edit(BASE_CONFIG, old, new)
    error = files.error(text)
    assert_located(error, files, line_of(text, on_line), key)


def test_missing_list_file_names_the_resolved_path(files: PolicyFiles) -> None:
    error = files.error(edits={"../blocklists/video.txt": "../blocklists/missing.txt"})
    assert str(files.list_path("missing.txt")) in str(error)


def test_unknown_group_lists_the_known_ones(files: PolicyFiles) -> None:
    old, new, _, _ = ERRORS["unknown group in a rule"]
    error = files.error(edits={old: new})
    assert "unknown group 'staf' (known: *, staff, pupils, guests, everyone)" in str(error)


@pytest.mark.parametrize(
    ("old", "new", "bad_line"),
    [
        ("  name: Test Primary School", "  name: Test: Primary School", "Test: Primary"),
        ("    - {name: Spring 2026,", "    - {name: Spring 2026,,", "Spring 2026,,"),
        ("  site: test", "\tsite: test", "site: test"),
    ],
    ids=["colon in a value", "stray comma in a flow mapping", "tab indentation"],
)
def test_bad_yaml_names_the_file_and_the_line(
    files: PolicyFiles, old: str, new: str, bad_line: str
) -> None:
    text = edit(BASE_CONFIG, old, new)
    error = files.error(text)
    # A syntax error has no key to name: the parser stops before it knows one.
    assert (error.path, error.line) == (files.config_path, line_of(text, bad_line))
    assert str(error).startswith(f"{files.config_path}:{error.line}: bad YAML: ")


def test_a_non_name_key_is_a_located_error_not_a_crash(files: PolicyFiles) -> None:
    text = BASE_CONFIG + "? [a, b]\n: 1\n"
    error = files.error(text)
    assert (error.path, error.line) == (files.config_path, line_of(text, r"^\? \[a, b\]"))


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "the file is empty"), ("- a\n- b\n", "expected a mapping, got a list")],
)
def test_a_file_that_is_not_a_mapping_says_so(files: PolicyFiles, text: str, message: str) -> None:
    error = files.error(text)
    assert (error.path, error.key) == (files.config_path, "")
    assert message in str(error)


def test_an_unreadable_config_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nowhere.yaml")
    assert str(caught.value).startswith(f"{tmp_path / 'nowhere.yaml'}: cannot read config")


def test_a_bad_list_line_names_the_list_file_and_its_line(files: PolicyFiles) -> None:
    social = BASE_LISTS["social.txt"] + "not a domain!\n"
    config = files.config(lists={**BASE_LISTS, "social.txt": social})
    with pytest.raises(ConfigError) as caught:
        Policy(config)
    line = line_of(social, "^not a domain!")
    assert (caught.value.path, caught.value.line) == (files.list_path("social.txt"), line)
    assert str(caught.value).startswith(f"{files.list_path('social.txt')}:{line}: 'not a domain!'")


def test_an_address_in_proxy_direct_is_a_network_however_it_is_written(files: PolicyFiles) -> None:
    text = edit(
        BASE_CONFIG,
        "retention_days: 30\n",
        'retention_days: 30\nproxy:\n  direct: [10.0.0.0/8, "=192.168.5.7", school.example]\n',
    )
    proxy = files.config(text).proxy
    assert proxy.direct_networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.5.7/32"),
    )
    assert [domain for domain, _scope in proxy.direct_hosts] == ["school.example"]
