"""The proxy auto-config file, evaluated as a browser evaluates it (Node.js, Netscape's helpers).

Written by `schoolgate pac` and served by the running proxy at /proxy.pac and /wpad.dat.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.e2e.realparts import BIN, Gateway, curl, write_config

EVALUATE = Path(__file__).with_name("pac_eval.js")
DIRECT = (
    'direct: [school.example.sch.uk, "=intranet.example.org", "*.lan.example.org", 10.0.0.0/8, '
    "192.168.5.7]"
)


def _answers(pac: Path, *urls: str) -> dict[str, str]:
    result = subprocess.run(
        ["node", str(EVALUATE), str(pac), *urls], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_schoolgate_pac_keeps_the_school_direct_and_sends_the_web_through(tmp_path: Path):
    config = write_config(tmp_path, proxy=DIRECT)
    pac = tmp_path / "proxy.pac"
    command = [str(BIN / "schoolgate"), "pac", "--config", str(config)]
    written = subprocess.run(
        [*command, "--proxy", "10.0.0.1:8080", "--output", str(pac)], capture_output=True
    )
    assert written.returncode == 0, written.stderr
    proxy, direct = "PROXY 10.0.0.1:8080", "DIRECT"
    expected = {
        "https://www.facebook.com/": proxy,
        "http://school.example.sch.uk/": direct,
        "https://www.school.example.sch.uk/homework": direct,
        "http://notschool.example.sch.uk/": proxy,
        "http://intranet.example.org/": direct,
        "http://www.intranet.example.org/": proxy,
        "http://files.lan.example.org/": direct,
        "http://lan.example.org/": proxy,
        "http://10.1.2.3/": direct,
        "http://11.1.2.3/": proxy,
        "http://192.168.5.7/": direct,
        "http://192.168.5.8/": proxy,
        "http://printer/": direct,
        "http://localhost:8000/": direct,
        "http://127.0.0.1/": direct,
    }
    assert _answers(pac, *expected) == expected


def test_pac_needs_the_address_devices_reach_when_listening_everywhere(tmp_path: Path):
    config = write_config(tmp_path, proxy="listen_host: 0.0.0.0")
    result = subprocess.run(
        [str(BIN / "schoolgate"), "pac", "--config", str(config)], capture_output=True, text=True
    )
    assert result.returncode != 0 and "--proxy 10.0.0.1:8080" in result.stderr


def test_the_running_proxy_serves_its_pac_file(gateway: Gateway, tmp_path: Path):
    pac = tmp_path / "served.pac"
    for path in ("/proxy.pac", "/wpad.dat"):
        served = curl("-w", "%{content_type}", "-o", str(pac), f"{gateway.proxy}{path}")
        assert served.stdout == "application/x-ns-proxy-autoconfig"
        answers = _answers(pac, "https://www.facebook.com/", "http://printer/")
        assert answers == {
            "https://www.facebook.com/": f"PROXY 127.0.0.1:{gateway.port}",
            "http://printer/": "DIRECT",
        }
    # Asked through the proxy (as a browser configured with the proxy does): no loop.
    through = curl("-x", gateway.proxy, "-w", "%{http_code}", "-o", "/dev/null",
                   f"{gateway.proxy}/proxy.pac")  # fmt: skip
    assert through.stdout == "200"
