"""`schoolgate check`: why a host is blocked, in-process and as the installed command."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reports.cli import main
from tests.unit.support import BASE_LISTS, PolicyFiles, line_of

SCHOOLGATE = Path(sys.executable).with_name("schoolgate")
FIELDS = {"host", "decision", "category", "rule", "matched", "source", "reason"}


@pytest.fixture
def config(files: PolicyFiles) -> Path:
    """The test policy, written to disk."""
    return files.write()


def check(
    capsys: pytest.CaptureFixture[str], config: Path, *args: str, stdin: str = ""
) -> list[dict[str, Any]]:
    """Run `schoolgate check --json` in-process; one dict per output line."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdin", io.StringIO(stdin))
        status = main(["check", "--config", str(config), "--json", *args])
    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    return [json.loads(line) for line in out.splitlines()]


def test_json_answers_why(
    capsys: pytest.CaptureFixture[str], config: Path, files: PolicyFiles
) -> None:
    [answer] = check(capsys, config, "m.instagram.com", "--client", "10.20.1.5")
    line = line_of(BASE_LISTS["social.txt"], "^instagram.com")
    assert answer.keys() >= FIELDS
    assert {key: answer[key] for key in FIELDS - {"reason"}} == {
        "host": "m.instagram.com",
        "decision": "block",
        "category": "social_networks",
        "rule": "school-it-ban",
        "matched": "instagram.com",
        "source": f"{files.list_path('social.txt')}:{line}",
    }
    assert answer["reason"] == (
        f"m.instagram.com is listed in social_networks (entry instagram.com at "
        f"{files.list_path('social.txt')}:{line}); rule school-it-ban blocks it "
        "for group pupils at all times"
    )


def test_an_unlisted_host_has_no_category_rule_or_source(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    [answer] = check(capsys, config, "example.org")
    assert {key: answer[key] for key in FIELDS} == {
        "host": "example.org",
        "decision": "allow",
        "category": None,
        "rule": None,
        "matched": None,
        "source": None,
        "reason": "example.org is in no list",
    }


def test_plain_output_is_one_line_per_host(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    assert main(["check", "--config", str(config), "example.org", "M.Instagram.COM."]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "example.org: allow (example.org is in no list)"
    assert lines[1].startswith("m.instagram.com: block (m.instagram.com is listed in ")
    assert len(lines) == 2


@pytest.mark.parametrize(
    ("target", "host"),
    [
        ("https://bob:secret@WWW.Instagram.com:443/p?q=1", "www.instagram.com"),
        ("http://[2001:DB8::1]:8080/", "2001:db8::1"),
        ("m.instagram.com/some/path", "m.instagram.com"),
        ("instagram.com.:443", "instagram.com"),
    ],
)
def test_urls_and_spellings_are_reduced_to_the_host(
    capsys: pytest.CaptureFixture[str], config: Path, target: str, host: str
) -> None:
    [answer] = check(capsys, config, target)
    assert answer["host"] == host


@pytest.mark.parametrize(
    ("target", "refused"),
    [
        ("example.org", None),
        ("10.0.0.1:22", "port 22 is not a web port (connect_ports: 443)"),
        ("http://10.0.0.1:8080/", None),
        ("https://10.0.0.1:8080/", "port 8080 is not a web port (connect_ports: 443)"),
        ("127.0.0.1", "127.0.0.1 is the gateway itself (loopback)"),
        ("http://169.254.169.254/latest/", "169.254.169.254 is link-local (cloud metadata)"),
        ("example.org:abc", None),  # malformed: refused (400) before any destination
    ],
)
def test_check_says_when_the_gateway_refuses_the_destination(
    capsys: pytest.CaptureFixture[str], config: Path, target: str, refused: str | None
) -> None:
    [answer] = check(capsys, config, target)
    assert answer["destination_refused"] == refused
    assert main(["check", "--config", str(config), target]) == 0
    line = capsys.readouterr().out.strip()
    assert line.endswith(f"; the gateway will not connect there: {refused}") == bool(refused)


def test_a_dash_reads_hosts_from_stdin_in_order(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    stdin = "m.instagram.com\n\n  x.com \n"
    answers = check(capsys, config, "youtube.com", "-", "example.org", stdin=stdin)
    hosts = [a["host"] for a in answers]
    assert hosts == ["youtube.com", "m.instagram.com", "x.com", "example.org"]


@pytest.mark.parametrize(
    ("at", "decision", "school_day"),
    [
        ("2026-11-23T10:00", "block", True),  # no zone: the school's clock (GMT)
        ("2026-11-23T18:00", "allow", False),
        ("2026-09-07T08:30", "block", True),  # BST: 07:30 UTC
        ("2026-09-07T08:29:59", "allow", False),
        ("2026-09-07T07:30:00+00:00", "block", True),
        ("2026-09-07T07:29:59Z", "allow", False),
        ("2026-11-27T10:00", "allow", False),  # closure
    ],
)
def test_at_decides_as_at_that_moment(
    capsys: pytest.CaptureFixture[str], config: Path, at: str, decision: str, school_day: bool
) -> None:
    [answer] = check(capsys, config, "www.youtube.com", "--client", "10.20.1.5", "--at", at)
    assert (answer["decision"], answer["school_day"]) == (decision, school_day)


@pytest.mark.parametrize(
    ("args", "group", "decision"),
    [
        ((), "everyone", "block"),
        (("--client", "10.20.1.5"), "pupils", "block"),
        (("--client", "10.10.1.5"), "staff", "monitor"),
        (("--client", "fd00:10::1"), "staff", "monitor"),
        (("--user", "alice"), "staff", "monitor"),
        (("--client", "10.20.1.5", "--user", "alice"), "staff", "monitor"),
        (("--client", "10.10.1.5", "--user", "bob"), "staff", "monitor"),
    ],
)
def test_client_and_user_select_the_group(
    capsys: pytest.CaptureFixture[str],
    config: Path,
    args: tuple[str, ...],
    group: str,
    decision: str,
) -> None:
    [answer] = check(capsys, config, "m.instagram.com", *args)
    assert (answer["group"], answer["decision"]) == (group, decision)


def test_an_allowlisted_host_names_its_allowlist_entry(
    capsys: pytest.CaptureFixture[str], config: Path, files: PolicyFiles
) -> None:
    [answer] = check(capsys, config, "about.instagram.com", "--client", "10.20.1.5")
    line = line_of(BASE_LISTS["allow.txt"], "=about.instagram.com")
    assert (answer["decision"], answer["allowlisted"]) == ("allow", "=about.instagram.com")
    assert answer["allowlist_source"] == f"{files.list_path('allow.txt')}:{line}"


def test_a_bad_config_exits_2_naming_file_line_and_key(
    capsys: pytest.CaptureFixture[str], files: PolicyFiles
) -> None:
    path = files.write(edits={"timezone: Europe/London": "timezone: Mars/Olympus"})
    assert main(["check", "--config", str(path), "example.org"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"schoolgate: {path}:4: school.timezone: unknown timezone 'Mars/Olympus'")


def test_a_bad_list_line_exits_2_naming_the_list_and_line(
    capsys: pytest.CaptureFixture[str], files: PolicyFiles
) -> None:
    path = files.write(lists={**BASE_LISTS, "video.txt": "youtube.com\nhttp://vimeo.com\n"})
    assert main(["check", "--config", str(path), "example.org"]) == 2
    assert capsys.readouterr().err.startswith(
        f"schoolgate: {files.list_path('video.txt')}:2: 'http://vimeo.com' is not a domain"
    )


def test_a_bad_at_says_so(config: Path) -> None:
    with pytest.raises(SystemExit, match="--at 'tuesday' is not an ISO 8601 time"):
        main(["check", "--config", str(config), "--at", "tuesday", "example.org"])


# --- the installed command ----------------------------------------------------------------------


def schoolgate(cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run the installed `schoolgate` console script."""
    return subprocess.run(
        [str(SCHOOLGATE), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_the_installed_command_answers_in_json(
    config: Path, files: PolicyFiles, tmp_path: Path
) -> None:
    done = schoolgate(
        tmp_path,
        *("check", "--json", "--config", str(config), "--at", "2026-11-23T10:00:00+00:00"),
        *("--client", "10.20.1.5", "-", "https://www.youtube.com/watch?v=1"),
        stdin="scontent-lhr8-1.xx.fbcdn.net\nexample.org\n",
    )
    assert (done.returncode, done.stderr) == (0, "")
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(a["host"], a["decision"], a["rule"], a["matched"]) for a in answers] == [
        ("scontent-lhr8-1.xx.fbcdn.net", "block", "school-it-ban", "fbcdn.net"),
        ("example.org", "allow", None, None),
        ("www.youtube.com", "block", "video-in-lessons", "youtube.com"),
    ]
    line = line_of(BASE_LISTS["social.txt"], "^fbcdn.net")
    assert answers[0]["source"] == f"{files.list_path('social.txt')}:{line}"
    assert all(a.keys() >= FIELDS for a in answers)


def test_the_installed_command_exits_2_on_a_bad_config(files: PolicyFiles, tmp_path: Path) -> None:
    path = files.write(edits={'  start: "08:30"': '  start: "8.30am"'})
    done = schoolgate(tmp_path, "check", "--json", "--config", str(path), "example.org")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"schoolgate: {path}:9: school_day.start: '8.30am' is not a time (HH:MM)\n"
    )


# --- addresses, the gateway itself, malformed hosts, and TLS without SNI -------------------------


def test_an_address_is_checked_in_any_spelling_and_its_sni_less_answer_is_given(
    capsys: pytest.CaptureFixture[str], files: PolicyFiles
) -> None:
    config = files.write(lists={**BASE_LISTS, "social.txt": "1.1.1.0/24\n"})
    [listed, unlisted] = check(
        capsys, config, "https://16843009/", "0xcb007105", "--client", "10.20.1.5"
    )
    assert (listed["host"], listed["decision"], listed["matched"]) == (
        "1.1.1.1",
        "block",
        "1.1.1.0/24",
    )
    assert listed["without_sni"] == {
        "decision": "block",
        "rule": "school-it-ban",
        "reason": "blocked as above",
    }
    assert (unlisted["host"], unlisted["decision"]) == ("203.0.113.5", "allow")
    assert unlisted["without_sni"]["decision"] == "block"
    assert unlisted["without_sni"]["rule"] == "tls-without-sni"
    assert "without_sni" not in check(capsys, config, "example.org")[0]
    assert "without_sni" not in check(capsys, config, "http://16843009/")[0]  # plain HTTP


def test_no_sni_decides_as_for_a_client_hello_that_names_no_site(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    [answer] = check(capsys, config, "203.0.113.5", "--no-sni", "--client", "10.20.1.5")
    assert (answer["decision"], answer["category"], answer["rule"]) == (
        "block",
        "tls_without_sni",
        "tls-without-sni",
    )
    assert answer["reason"].startswith("rule tls-without-sni blocks it for group pupils: HTTPS")
    assert main(["check", "--config", str(config), "--no-sni", "203.0.113.5"]) == 0
    assert capsys.readouterr().out.startswith("203.0.113.5: block (rule tls-without-sni ")


def test_plain_output_names_the_sni_less_rule_for_an_address(
    capsys: pytest.CaptureFixture[str], files: PolicyFiles
) -> None:
    config = files.write(
        edits={
            "retention_days: 30\n": "retention_days: 30\nproxy:\n  allow_tls_without_sni: [staff]\n"
        }
    )
    args = ["check", "--config", str(config), "203.0.113.5", "--client"]
    assert main([*args, "10.20.1.5"]) == 0
    assert capsys.readouterr().out == (
        "203.0.113.5: allow (203.0.113.5 is in no list); HTTPS to it without SNI: block "
        "(rule tls-without-sni: HTTPS to a bare IP address whose greeting names no site (no SNI) "
        "is refused while a blocking rule applies: the gateway cannot tell which site it is.)\n"
    )
    assert main([*args, "10.10.1.5"]) == 0
    assert capsys.readouterr().out.endswith(
        "HTTPS to it without SNI: allow (group staff is in proxy.allow_tls_without_sni)\n"
    )


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("http://127.0.0.1:8080/", "127.0.0.1:8080 is this proxy itself"),
        ("http://2130706433/", "127.0.0.1 is the gateway itself"),
        ("https://[::ffff:127.0.0.1]/", "127.0.0.1 is the gateway itself"),
        ("0.0.0.0", "0.0.0.0 is the gateway itself"),
    ],
)
def test_the_gateway_itself_is_refused_in_any_spelling_whatever_the_lists_say(
    capsys: pytest.CaptureFixture[str], config: Path, target: str, why: str
) -> None:
    [answer] = check(capsys, config, target)
    assert answer["decision"] == "allow"  # in no list: the policy has nothing against it
    assert answer["destination_refused"].startswith(why)


@pytest.mark.parametrize("target", ["www.facebook.com:abc", "x:0", "x:99999999999", "a b.com"])
def test_a_malformed_host_is_refused_as_the_proxy_refuses_it(
    capsys: pytest.CaptureFixture[str], config: Path, target: str
) -> None:
    [answer] = check(capsys, config, target)
    assert answer["decision"] == "refuse"
    assert answer["reason"].startswith("malformed: ")
    assert answer["reason"].endswith("; the proxy answers 400 and relays nothing")
