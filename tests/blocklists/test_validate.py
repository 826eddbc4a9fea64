"""`schoolgate blocklist validate` finds every problem and says file and line."""

from __future__ import annotations

from addons.listcheck import validate
from tests.blocklists.lists import LISTS
from tests.unit.support import PolicyFiles, line_of


def test_every_problem_of_every_list_is_reported_with_file_and_line(files: PolicyFiles) -> None:
    files.write(lists=LISTS)
    social, allow = files.list_path("social.txt"), files.list_path("allow.txt")
    assert [str(p) for p in validate(files.config_path)] == [
        f"{social}:3: error: m.facebook.com is redundant: facebook.com ({social}:2) already "
        "covers it",
        f"{social}:4: warning: fbcdn.net (social_networks) is never blocked: allowlist entry "
        f"fbcdn.net ({allow}:3) covers it",
        f"{social}:7: error: a.sub.example.net is redundant: *.sub.example.net ({social}:6) "
        "already covers it",
        f"{social}:8: error: facebook.com is already listed at {social}:2",
        f"{social}:10: error: 'not a domain!' is not a domain (expected example.org, "
        "=host.example.org or *.example.org)",
    ]


def test_the_shipped_unit_lists_have_no_problem(files: PolicyFiles) -> None:
    assert validate(files.config_path) == []


def test_a_config_that_does_not_load_is_one_located_error(files: PolicyFiles) -> None:
    files.write(edits={"retention_days: 30": "retention_days: lots"})
    (problem,) = validate(files.config_path)
    line = line_of(files.config_path.read_text(), "retention_days")
    assert str(problem) == (
        f"{files.config_path}:{line}: error: retention_days: expected a whole number, got text"
    )


def test_addresses_and_networks_are_validated_with_file_and_line(files: PolicyFiles) -> None:
    social = "1.1.1.0/24\n1.1.1.1\n0x08080808\n9.9.9.9/24\n=8.8.8.8\n"
    files.write(lists={**LISTS, "social.txt": social, "allow.txt": "8.8.8.0/24\n"})
    path, allow = files.list_path("social.txt"), files.list_path("allow.txt")
    assert [str(p) for p in validate(files.config_path) if str(p).startswith(str(path))] == [
        f"{path}:2: error: 1.1.1.1 is redundant: 1.1.1.0/24 ({path}:1) already covers it",
        f"{path}:3: error: '0x08080808' is 8.8.8.8 to the operating system: write it as "
        "8.8.8.8, so that everyone reads the list the same way",
        f"{path}:4: error: '9.9.9.9/24' has bits set beyond /24: write 9.9.9.0/24, or 9.9.9.9 "
        "for the one address",
        f"{path}:5: warning: 8.8.8.8 (social_networks) is never blocked: allowlist entry "
        f"8.8.8.0/24 ({allow}:1) covers it",
    ]
