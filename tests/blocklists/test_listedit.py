"""Add and remove keep every other byte of a list as it was, and a write is all or nothing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from addons.errors import ConfigError
from addons.importers import read_entry
from addons.listedit import ListEdit, Unchanged, add, apply, listed, remove
from addons.lists import Scope

LIST = """\
# category: social_networks
# Sources: each service's own help pages.   Last reviewed: 2026-11-26

# --- Facebook (Meta) ---
facebook.com
fbcdn.net                    # photos and video
=exact.example.org   # that host only

# --- Instagram ---
instagram.com
*.sub.example.net
"""


def _entries(*texts: str) -> list[tuple[str, Scope]]:
    return [read_entry(text) for text in texts]


def _write(tmp_path: Path, text: str = LIST, newline: str = "\n") -> Path:
    path = tmp_path / "social.txt"
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def _apply(*edits: ListEdit) -> None:
    apply(edits, lambda: None)


def test_add_appends_new_entries_and_keeps_every_other_byte(tmp_path: Path) -> None:
    path = _write(tmp_path)
    edit = add(path, _entries("BeReal.com", "bere.al"), comment="BeReal\n(new app)")
    _apply(edit)
    assert edit.changed == ["bereal.com", "bere.al"]
    assert (
        path.read_text() == LIST + "bereal.com  # BeReal (new app)\nbere.al  # BeReal (new app)\n"
    )


def test_remove_deletes_only_the_lines_of_removed_entries(tmp_path: Path) -> None:
    path = _write(tmp_path)
    edit = remove(path, _entries("fbcdn.net", "*.sub.example.net"))
    _apply(edit)
    assert edit.changed == ["fbcdn.net", "*.sub.example.net"]
    expected = LIST.replace("fbcdn.net                    # photos and video\n", "")
    assert path.read_text() == expected.replace("*.sub.example.net\n", "")


def test_add_then_remove_gives_back_the_same_bytes_with_windows_line_endings(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, newline="\r\n")
    before = path.read_bytes()
    _apply(add(path, _entries("tiktok.com", "=x.example.org"), comment="TikTok"))
    assert path.read_bytes() == before + b"tiktok.com  # TikTok\r\n=x.example.org  # TikTok\r\n"
    _apply(remove(path, _entries("tiktok.com", "=x.example.org")))
    assert path.read_bytes() == before


def test_add_to_a_file_without_a_final_newline_starts_a_new_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "facebook.com")
    _apply(add(path, _entries("tiktok.com")))
    assert path.read_text() == "facebook.com\ntiktok.com\n"


def test_an_import_heading_goes_before_the_new_entries(tmp_path: Path) -> None:
    path = _write(tmp_path, "")
    _apply(add(path, _entries("tiktok.com"), heading="imported from x by alice: why"))
    assert path.read_text() == "# imported from x by alice: why\ntiktok.com\n"


def test_add_reports_what_is_present_listed_covered_or_repeated(tmp_path: Path) -> None:
    path = _write(tmp_path)
    edit = add(
        path,
        _entries(
            "facebook.com", "m.facebook.com", "x.sub.example.net", "tiktok.com", "tiktok.com",
            "www.tiktok.com", "=exact.example.org",
        ),
    )  # fmt: skip
    assert edit.changed == ["tiktok.com"]
    assert edit.unchanged == [
        Unchanged("facebook.com", "listed at social.txt:5"),
        Unchanged("m.facebook.com", "covered by facebook.com at social.txt:5"),
        Unchanged("x.sub.example.net", "covered by *.sub.example.net at social.txt:11"),
        Unchanged("tiktok.com", "repeated"),
        Unchanged("www.tiktok.com", "covered by tiktok.com, added too"),
        Unchanged("=exact.example.org", "listed at social.txt:7"),
    ]


def test_a_child_given_before_its_parent_is_not_added_beside_it(tmp_path: Path) -> None:
    edit = add(_write(tmp_path, ""), _entries("www.tiktok.com", "tiktok.com"))
    assert edit.changed == ["tiktok.com"]
    assert edit.unchanged == [Unchanged("www.tiktok.com", "covered by tiktok.com, added too")]


def test_remove_says_which_entries_are_not_listed_and_what_still_covers_them(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path)
    edit = remove(path, _entries("m.facebook.com", "tiktok.com"))
    assert edit.changed == []
    assert edit.after == edit.before
    assert [str(u) for u in edit.unchanged] == [
        "m.facebook.com (not listed; facebook.com at social.txt:5 covers it, and stays)",
        "tiktok.com (not listed)",
    ]


def test_remove_deletes_every_line_of_an_entry_written_twice(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.example\nfacebook.com\nb.example\nfacebook.com # again\n")
    _apply(remove(path, _entries("facebook.com")))
    assert path.read_text() == "a.example\nb.example\n"


def test_the_list_keeps_its_permission_bits(tmp_path: Path) -> None:
    path = _write(tmp_path)
    path.chmod(0o640)
    _apply(add(path, _entries("tiktok.com")))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_refused_record_leaves_the_list_and_its_folder_as_they_were(tmp_path: Path) -> None:
    path = _write(tmp_path)

    def refuse() -> None:
        raise RuntimeError("database refused the write")

    with pytest.raises(RuntimeError):
        apply([add(path, _entries("tiktok.com"))], refuse)
    assert path.read_text() == LIST
    assert os.listdir(tmp_path) == ["social.txt"]


def test_a_list_edited_meanwhile_is_not_overwritten(tmp_path: Path) -> None:
    path = _write(tmp_path)
    edit = add(path, _entries("tiktok.com"))
    path.write_text(LIST + "snapchat.com\n")
    with pytest.raises(ConfigError, match="changed meanwhile"):
        _apply(edit)
    assert path.read_text() == LIST + "snapchat.com\n"


def test_listed_gives_each_entry_its_first_line(tmp_path: Path) -> None:
    held = listed(_write(tmp_path))
    assert [(h.entry, h.where) for h in held] == [
        ("facebook.com", 5),
        ("fbcdn.net", 6),
        ("instagram.com", 10),
        ("=exact.example.org", 7),
        ("*.sub.example.net", 11),
    ]
