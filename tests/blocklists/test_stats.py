"""`schoolgate blocklist stats` on lists whose figures were counted by hand (lists.py)."""

from __future__ import annotations

from addons.config import load_config
from addons.liststats import category_lists, list_stats
from tests.blocklists.lists import LISTS
from tests.unit.support import PolicyFiles


def test_the_figures_are_the_hand_counted_ones(files: PolicyFiles) -> None:
    files.write(lists=LISTS)
    figures = list_stats(category_lists(load_config(files.config_path)))
    social, video, allow = (files.list_path(n) for n in ("social.txt", "video.txt", "allow.txt"))
    assert figures["categories"] == [
        {
            "category": "social_networks",
            "files": [str(social)],
            "entries": 7,  # facebook.com once, the bad line not at all
            "domain": 5,
            "exact": 1,
            "subdomains": 1,
            "network": 0,
            "repeated": 1,
            "redundant": 2,
            "unreadable_lines": 1,
        },
        {
            "category": "video",
            "files": [str(video)],
            "entries": 3,
            "domain": 3,
            "exact": 0,
            "subdomains": 0,
            "network": 0,
            "repeated": 0,
            "redundant": 0,
            "unreadable_lines": 0,
        },
        {
            "category": "allowlist",
            "files": [str(allow)],
            "entries": 3,
            "domain": 2,
            "exact": 1,
            "subdomains": 0,
            "network": 0,
            "repeated": 0,
            "redundant": 0,
            "unreadable_lines": 0,
        },
    ]
    assert [
        (o["category"], o["covered_by"], o["entries"], o["first"]) for o in figures["overlaps"]
    ] == [
        ("social_networks", "video", 3, ["facebook.com", "m.facebook.com", "youtube.com"]),
        ("social_networks", "allowlist", 1, ["fbcdn.net"]),
        ("video", "social_networks", 2, ["youtube.com", "facebook.com"]),
        ("allowlist", "social_networks", 2, ["help.youtube.com", "fbcdn.net"]),
        ("allowlist", "video", 1, ["help.youtube.com"]),
    ]
    assert figures["redundant"] == [
        {
            "category": "social_networks",
            "entry": "m.facebook.com",
            "at": f"{social}:3",
            "covered_by": "facebook.com",
            "covered_at": f"{social}:2",
        },
        {
            "category": "social_networks",
            "entry": "a.sub.example.net",
            "at": f"{social}:7",
            "covered_by": "*.sub.example.net",
            "covered_at": f"{social}:6",
        },
    ]


def test_a_category_of_several_files_counts_an_entry_once(files: PolicyFiles) -> None:
    files.write(
        lists={**LISTS, "more.txt": "tiktok.com\nyoutube.com\n"},
        edits={"[../blocklists/video.txt]": "[../blocklists/video.txt, ../blocklists/more.txt]"},
    )
    (video,) = [c for c in category_lists(load_config(files.config_path)) if c.name == "video"]
    assert [e.entry for e in video.entries] == [
        "youtube.com", "facebook.com", "www.instagram.com", "tiktok.com",
    ]  # fmt: skip
    ((where, first),) = video.repeated
    assert (where.path.name, where.line, str(first.where.path.name), first.where.line) == (
        "more.txt", 2, "video.txt", 1,
    )  # fmt: skip


def test_addresses_and_networks_are_counted_and_covered_by_their_networks(
    files: PolicyFiles,
) -> None:
    files.write(
        lists={
            **LISTS,
            "video.txt": "1.1.1.0/24\n1.1.1.1\n=8.8.8.8\n2606:4700:4700::/48\n"
            "2606:4700:4700::1111\n",
            "allow.txt": "8.8.8.8\n",
        }
    )
    figures = list_stats(category_lists(load_config(files.config_path)))
    video = figures["categories"][1]
    assert (video["entries"], video["network"], video["domain"], video["redundant"]) == (5, 5, 0, 2)
    video_path = files.list_path("video.txt")
    assert [(r["entry"], r["at"], r["covered_by"]) for r in figures["redundant"][-2:]] == [
        ("1.1.1.1", f"{video_path}:2", "1.1.1.0/24"),
        ("2606:4700:4700::1111", f"{video_path}:5", "2606:4700:4700::/48"),
    ]
    assert ("video", "allowlist", 1, ["8.8.8.8"]) in [
        (o["category"], o["covered_by"], o["entries"], o["first"]) for o in figures["overlaps"]
    ]
