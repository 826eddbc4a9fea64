"""The blocklist commands as a person runs them: the installed `schoolgate`, in a subprocess."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from reports.cli import build_parser
from tests.blocklists.conftest import DATA, schoolgate
from tests.blocklists.lists import LISTS
from tests.unit.support import BASE_LISTS, PolicyFiles

README = (Path(__file__).resolve().parent.parent.parent / "README.md").read_text(encoding="utf-8")
COMMANDS = ("add", "remove", "import", "validate", "stats", "history")


def _run(files: PolicyFiles, *args: str | Path) -> tuple[int, str, str]:
    done = schoolgate("blocklist", *args, "--config", files.config_path)
    return done.returncode, done.stdout, done.stderr


def _blocklist_commands() -> dict[str, argparse.ArgumentParser]:
    top = next(a for a in build_parser()._actions if a.dest == "command")
    group = top.choices["blocklist"]  # type: ignore[index]
    sub = next(a for a in group._actions if a.dest == "blocklist_command")
    return dict(sub.choices)  # type: ignore[arg-type]


def test_the_blocklist_commands_are_these() -> None:
    assert sorted(_blocklist_commands()) == sorted(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_blocklist_command_has_an_example_and_a_readme_row(name: str) -> None:
    assert f"example:\n  schoolgate blocklist {name} " in _blocklist_commands()[name].format_help()
    assert f"| `schoolgate blocklist {name} " in README


def test_add_appends_normalised_entries_and_keeps_the_rest_of_the_file(files: PolicyFiles) -> None:
    social = files.list_path("social.txt")
    code, out, err = _run(
        files, "add", "social_networks", "TikTok.com", "bücher.example", "m.facebook.com",
        "--comment", "seen in incidents", "--reason", "new apps", "--by", "alice",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert social.read_text() == BASE_LISTS["social.txt"] + "tiktok.com  # seen in incidents\n"
    assert f"social_networks ({social}):" in out
    assert "already present: xn--bcher-kva.example (listed at social.txt:8)" in out
    assert "already present: m.facebook.com (covered by facebook.com at social.txt:3)" in out
    assert f"added 1 in {social}: tiktok.com" in out
    assert "recorded as policy change 1 by alice" in out


def test_a_malformed_entry_refuses_the_whole_command(files: PolicyFiles) -> None:
    code, _out, err = _run(
        files, "add", "social_networks", "tiktok.com", "https://x.com/home", "com",
        "--reason", "r",
    )  # fmt: skip
    assert code == 1
    assert err == (
        "schoolgate: nothing changed:\n"
        "  'https://x.com/home' is an address, not a host: schoolgate blocks whole hosts "
        "(give 'x.com')\n"
        "  'com' is a public suffix: it would block every site under it\n"
    )
    assert files.list_path("social.txt").read_text() == BASE_LISTS["social.txt"]
    assert not (files.root / "data").exists()  # nothing recorded either


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "socials", "x.example", "--reason", "r"), "unknown category 'socials' (known:"),
        (("add", "video", "x.example", "--reason", "  "), "--reason must say why"),
    ],
)
def test_a_wrong_category_or_an_empty_reason_is_refused(
    files: PolicyFiles, args: tuple[str, ...], message: str
) -> None:
    code, _out, err = _run(files, *args)
    assert code == 1 and message in err


def test_the_allowlist_is_edited_as_a_category(files: PolicyFiles) -> None:
    code, _out, _err = _run(files, "add", "allowlist", "=classroom.example.org", "--reason", "r")
    assert code == 0
    assert files.list_path("allow.txt").read_text().endswith("\n=classroom.example.org\n")


def test_remove_takes_the_entry_out_of_every_list_of_the_category(files: PolicyFiles) -> None:
    files.write(
        lists={**BASE_LISTS, "more.txt": "# more\nyoutube.com  # twice\ntiktok.com\n"},
        edits={"[../blocklists/video.txt]": "[../blocklists/video.txt, ../blocklists/more.txt]"},
    )
    code, out, _err = _run(files, "remove", "video", "youtube.com", "vimeo.com", "--reason", "r")
    assert code == 0
    assert files.list_path("video.txt").read_text() == "facebook.com   # listed in two categories\n"
    assert files.list_path("more.txt").read_text() == "# more\ntiktok.com\n"
    assert "left alone: vimeo.com (not listed)" in out
    assert out.count("removed 1 in") == 2


def test_nothing_to_change_records_nothing(files: PolicyFiles) -> None:
    code, out, _err = _run(files, "remove", "video", "vimeo.com", "--reason", "r")
    assert code == 0
    assert "nothing to change; nothing recorded" in out
    assert not (files.root / "data").exists()


@pytest.mark.parametrize(
    ("source", "fmt", "added", "present", "rejected"),
    [
        ("ut1/social_networks", "auto", 40, 0, 0),
        ("ut1/dating", "ut1", 15, 0, 15),
        ("hosts/stevenblack_social_only.hosts", "hosts", 18, 18, 0),
        ("adblock/adguard_social_filter.txt", "auto", 21, 0, 30),
        ("adblock/adguard_dns_filter.txt", "adblock", 21, 0, 8),
    ],
)
def test_import_counts_added_present_and_rejected_and_is_idempotent(
    files: PolicyFiles, source: str, fmt: str, added: int, present: int, rejected: int
) -> None:
    args = ("import", "social_networks", DATA / source, "--format", fmt, "--reason", "trial")
    code, out, _err = _run(files, *args, "--show-rejected", "3")
    assert code == 0
    assert f"  added: {added}\n" in out
    assert f"  already present: {present} (" in out
    assert f"  rejected: {rejected}\n" in out
    assert out.count(f"    {DATA}/") == min(rejected, 3)
    text = files.list_path("social.txt").read_text()
    assert text.startswith(BASE_LISTS["social.txt"])
    assert f"\n# imported from {Path(source).name} (" in text
    assert len(text.splitlines()) == len(BASE_LISTS["social.txt"].splitlines()) + 1 + added

    code, out, _err = _run(files, *args)
    assert (code, "  added: 0\n" in out, "nothing recorded" in out) == (0, True, True)
    assert f"  already present: {added + present} (" in out


def test_import_shows_the_first_rejected_lines_with_file_line_and_why(files: PolicyFiles) -> None:
    source = DATA / "adblock" / "adguard_dns_filter.txt"
    args = ("import", "video", source, "--reason", "trial", "--show-rejected", "2")
    code, out, _err = _run(files, *args)
    assert code == 0
    assert (
        f"    {source}:40: ||ad-host-backup-*.aliyuncs.com^: a wildcard in the host name\n" in out
    )
    assert f"    {source}:49: " in out
    assert f"    {source}:50: " not in out
    assert "    ... and 6 more\n" in out


def test_import_of_something_that_is_not_a_list_is_refused(files: PolicyFiles) -> None:
    code, _out, err = _run(files, "import", "video", DATA / "hosts", "--reason", "r")
    assert code == 1 and "is not a UT1 category folder" in err


def test_validate_prints_every_problem_and_fails_on_an_error(files: PolicyFiles) -> None:
    assert _run(files, "validate")[:2] == (0, "0 error(s), 0 warning(s)\n")
    files.write(lists=LISTS)
    code, out, _err = _run(files, "validate")
    social = files.list_path("social.txt")
    assert code == 1
    assert f"{social}:8: error: facebook.com is already listed at {social}:2\n" in out
    assert out.endswith("4 error(s), 1 warning(s)\n")


def test_validate_with_only_warnings_passes(files: PolicyFiles) -> None:
    files.write(lists={**BASE_LISTS, "allow.txt": "youtube.com\n"})
    code, out, _err = _run(files, "validate")
    assert (code, out.endswith("0 error(s), 1 warning(s)\n")) == (0, True)


def test_stats_prints_a_table_or_json(files: PolicyFiles) -> None:
    files.write(lists=LISTS)
    code, out, _err = _run(files, "stats")
    assert code == 0
    assert out.splitlines()[1].split() == ["social_networks", "7", "5", "1", "1", "0", "2"]
    assert "  video in social_networks: 2 (youtube.com, facebook.com)" in out
    social = files.list_path("social.txt")
    assert f"  social_networks: m.facebook.com ({social}:3) by facebook.com ({social}:2)" in out
    code, out, _err = _run(files, "stats", "--json")
    assert json.loads(out)["categories"][1]["entries"] == 3


def test_add_takes_addresses_and_networks_and_knows_which_network_covers_which(
    files: PolicyFiles,
) -> None:
    social = files.list_path("social.txt")
    code, out, err = _run(
        files, "add", "social_networks", "1.1.1.0/24", "1.1.1.1", "2606:4700:4700:0::/48",
        "--reason", "DoH resolvers",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert social.read_text().endswith("\n1.1.1.0/24\n2606:4700:4700::/48\n")
    assert "already present: 1.1.1.1 (covered by 1.1.1.0/24, added too)" in out
    code, out, _err = _run(files, "add", "social_networks", "1.1.1.7", "--reason", "r")
    assert code == 0 and "already present: 1.1.1.7 (covered by 1.1.1.0/24 at social.txt:" in out


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("0x01010101", "'0x01010101' is 1.1.1.1 to the operating system: write it as 1.1.1.1"),
        ("1.1.1.1/24", "has bits set beyond /24: write 1.1.1.0/24"),
        ("0.0.0.0/0", "is wider than /8: it would block a large part of the internet"),
        ("2000::/3", "is wider than /16"),
    ],
)
def test_add_refuses_an_address_people_would_read_otherwise_or_half_the_internet(
    files: PolicyFiles, entry: str, why: str
) -> None:
    code, _out, err = _run(files, "add", "social_networks", entry, "--reason", "r")
    assert code == 1 and why in err
    assert files.list_path("social.txt").read_text() == BASE_LISTS["social.txt"]
