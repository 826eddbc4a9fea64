"""The shipped lists as a school gets them, through the installed `schoolgate`: they load, they
block the bypass endpoints (encrypted-DNS resolvers by name and address, the platforms'
front-ends), and they leave the sites around them open.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.blocklists.conftest import schoolgate

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "policy.yaml"
PUPIL = "10.20.1.5"

BLOCKED = {
    "dns.google": "dns_over_https",
    "8.8.8.8": "dns_over_https",
    "2001:4860:4860::8888": "dns_over_https",
    "1.1.1.1": "dns_over_https",
    "2606:4700:4700::1111": "dns_over_https",
    "mozilla.cloudflare-dns.com": "dns_over_https",
    "dns.quad9.net": "dns_over_https",
    "9.9.9.9": "dns_over_https",
    "dns.adguard-dns.com": "dns_over_https",
    "94.140.14.14": "dns_over_https",
    "firefox.dns.nextdns.io": "dns_over_https",
    "doh.opendns.com": "dns_over_https",
    "base.dns.mullvad.net": "dns_over_https",
    "freedns.controld.com": "dns_over_https",
    "doh.cleanbrowsing.org": "dns_over_https",
    "xcancel.com": "social_networks",  # Nitter instances
    "nitter.poast.org": "social_networks",
    "fxtwitter.com": "social_networks",
    "imginn.com": "social_networks",  # Instagram viewers
    "www.picuki.com": "social_networks",
    "urlebird.com": "social_networks",  # TikTok front-ends and viewers
    "proxitok.pussthecat.org": "social_networks",
    "safereddit.com": "social_networks",  # Reddit front-ends
}
# The providers' own websites, the volunteers' other services, shared platforms and what a
# school runs on: a list that blocked these would be wrong.
NEVER_BLOCKED = [
    "google.com",
    "www.google.com",
    "classroom.google.com",
    "www.cloudflare.com",
    "www.quad9.net",
    "nextdns.io",
    "my.nextdns.io",
    "adguard-dns.io",
    "mullvad.net",
    "controld.com",
    "cleanbrowsing.org",
    "www.opendns.com",
    "poast.org",
    "pussthecat.org",
    "privacyredirect.com",
    "synology.me",
    "www.synology.me",
    "eu.org",
    "us.to",
    "cloudflare-gateway.com",
    "b-cdn.net",
    "workers.dev",
    "www.telekom.de",
    "teams.microsoft.com",
]


def _check(*hosts: str) -> dict[str, dict[str, str]]:
    done = schoolgate("check", "--config", SHIPPED, "--json", "--client", PUPIL, *hosts)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    return {answer["host"]: answer for answer in answers}


def test_the_shipped_lists_load_without_a_problem() -> None:
    done = schoolgate("blocklist", "validate", "--config", SHIPPED)
    assert (done.returncode, done.stdout) == (0, "0 error(s), 0 warning(s)\n")


def test_check_blocks_resolvers_and_front_ends_with_the_shipped_config() -> None:
    answers = _check(*BLOCKED)
    assert {host: (a["decision"], a["category"]) for host, a in answers.items()} == {
        host: ("block", category) for host, category in BLOCKED.items()
    }


def test_check_leaves_the_sites_around_them_open() -> None:
    answers = _check(*NEVER_BLOCKED)
    assert {host: a["decision"] for host, a in answers.items()} == dict.fromkeys(
        NEVER_BLOCKED, "allow"
    )
