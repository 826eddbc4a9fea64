"""benchmarks/coverage.py as a person runs it, on the shipped config: it reads the reference
copies from the folders it is given (made-up lists here, a few hosts whose fate the shipped lists
decide), and says in one line which copy is missing and the command that makes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COVERAGE = ROOT / "benchmarks" / "coverage.py"

BYPASS_COPIES = {
    "doh_curl_wiki.txt": "# made up\ndns.google\ndoh.resolver.example\n",
    "doh_dnscrypt.txt": "dns.google\n8.8.8.8\n192.0.2.53\n",
    "doh_adguard.txt": "dns.quad9.net\n9.9.9.9\n",
    "frontends_libredirect.txt": "xcancel.com  # X / Twitter (nitter)\n"
    "nitter.alpha.example  # X / Twitter (nitter)\n"
    "yt.beta.example  # YouTube (invidious)\n",
    "frontends_farside.txt": "safereddit.com  # Reddit (redlib)\n",
}
SOCIAL_COPIES = {
    "ut1_social_networks.txt": "facebook.com\nwww.instagram.com\nsocial.example\n",
    "stevenblack_social.txt": "www.facebook.com\n",
    "adguard_social_network_group.txt": "twitter.com\n",
    "v2fly_social_media_notcn.txt": "reddit.com\n",
    "blocklistproject_facebook.txt": "m.facebook.com\n",
    "blocklistproject_tiktok.txt": "www.tiktok.com\n",
    "blocklistproject_twitter.txt": "x.com\n",
    "adguard_messenger_group.txt": "web.whatsapp.com\nteams.microsoft.com\n",
    "ut1_chat.txt": "chat.example\n",
    "blocklistproject_whatsapp.txt": "whatsapp.com\n",
    "blocklistproject_youtube.txt": "www.youtube.com\n",
}


def _write(folder: Path, copies: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in copies.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def coverage(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run benchmarks/coverage.py as the README says, and wait for it."""
    return subprocess.run(
        [sys.executable, str(COVERAGE), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_bypass_tables_count_the_copies_in_the_folder_given(tmp_path: Path) -> None:
    copies = _write(tmp_path / "copies", BYPASS_COPIES)

    done = coverage("--bypass-only", "--bypass-references", copies)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [
        line for line in lines if line.startswith("| ") and not line.startswith("| list |")
    ] == [
        "| curl wiki, DNS-over-HTTPS | 2 | 1 | 50.0% | 0 | 0 | - |",
        "| dnscrypt-proxy public-resolvers (DoH) | 1 | 1 | 100.0% | 2 | 1 | 50.0% |",
        "| AdGuard known DNS providers | 1 | 1 | 100.0% | 1 | 1 | 100.0% |",
        "| all three, once each | 3 | 2 | 66.7% | 3 | 2 | 66.7% |",
        "| LibRedirect instances | 3 | 1 | 33.3% | 1 | 33.3% |",
        "| Farside instances | 1 | 1 | 100.0% | 1 | 100.0% |",
        "| Reddit, both lists | 1 | 1 | 100.0% | 1 | 100.0% |",
        "| X / Twitter, both lists | 2 | 1 | 50.0% | 1 | 50.0% |",
        "| YouTube, both lists | 1 | 0 | 0.0% | 0 | 0.0% |",
    ]
    assert "- doh.resolver.example (1)" in lines
    assert "- 192.0.2.53 (2)" in lines
    assert "- nitter.alpha.example (X / Twitter)" in lines
    assert "- yt.beta.example (YouTube)" in lines


def test_the_social_tables_read_the_references_folder(tmp_path: Path) -> None:
    social = _write(tmp_path / "social", SOCIAL_COPIES)
    bypass = _write(tmp_path / "bypass", BYPASS_COPIES)

    done = coverage("--references", social, "--bypass-references", bypass)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "| UT1 social_networks | 3 | 2 | 66.7% | 66.7% |" in lines
    assert "| AdGuard messenger group | 2 | messaging | 50.0% | 50.0% |" in lines
    assert "| Block List Project youtube | 1 | video_sharing | 100.0% | 0.0% |" in lines


def test_a_missing_copy_is_one_line_naming_the_folder_and_the_command(tmp_path: Path) -> None:
    missing = tmp_path / "reference"

    done = coverage("--bypass-only", "--bypass-references", missing)

    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"coverage.py: no doh_curl_wiki.txt in {missing}: make the copies with "
        "`.venv/bin/python benchmarks/references.py --curl-wiki DIR --dnscrypt DIR --adguard DIR "
        f"--libredirect DIR --farside DIR --output {missing}`, each DIR a clone of the "
        "repository blocklists/README.md names\n"
    )


def test_the_social_lists_are_asked_for_unless_bypass_only(tmp_path: Path) -> None:
    bypass = _write(tmp_path / "bypass", BYPASS_COPIES)
    social = _write(tmp_path / "social", {"ut1_chat.txt": "chat.example\n"})

    done = coverage("--references", social, "--bypass-references", bypass)

    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"coverage.py: no ut1_social_networks.txt in {social}: make the copies with "
        "`.venv/bin/python benchmarks/references.py --ut1 DIR --blocklistproject DIR "
        f"--adguard-registry DIR --sinfonietta DIR --tiuxo DIR --v2fly DIR --output {social}`, "
        "each DIR a clone of the repository blocklists/README.md names"
    ]
