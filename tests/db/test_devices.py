"""Device names: the inventory CSV and dnsmasq's leases file, told apart by content, validated
like the lists (file:line), read again when they change, and recorded with each incident."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from addons import devices
from addons.devices import Devices
from addons.errors import ConfigError
from tests.db.conftest import run_refused
from tests.e2e.realparts import Gateway, curl
from tests.unit.support import BASE_CONFIG, PolicyFiles

INVENTORY = """\
ip_or_mac,name
# the office
10.20.1.5,office-pc-1
AA-BB-CC-DD-EE-01,"pupil laptop 1, trolley A"
fd00:20::9,ipv6-desk
"""
# dnsmasq's own format: expiry, MAC (an IAID for DHCPv6), address, hostname, client id.
LEASES = """\
1732617600 aa:bb:cc:dd:ee:01 10.20.1.40 laptop-01 01:aa:bb:cc:dd:ee:01
1732617600 aa:bb:cc:dd:ee:02 10.20.1.41 chromebook-7 *
0 aa:bb:cc:dd:ee:03 10.20.1.42 * *
duid 00:01:00:01:2c:5e:1f:aa:52:54:00:12:34:56
1732617600 1234567 fd00:20::40 laptop-v6 00:01:00:01
"""


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def test_an_inventory_names_by_ip_and_a_lease_by_its_mac_or_hostname(
    write: Callable[[str, str], Path],
) -> None:
    names = Devices((write("inventory.csv", INVENTORY), write("dnsmasq.leases", LEASES)))
    assert names.name_of("10.20.1.5") == "office-pc-1"
    assert names.name_of("::ffff:10.20.1.5") == "office-pc-1"  # a dual-stack listener's view
    assert names.name_of("fd00:20:0::9") == "ipv6-desk"
    # The lease gives the MAC, the inventory names the MAC: the inventory's name wins.
    assert names.name_of("10.20.1.40") == "pupil laptop 1, trolley A"
    assert names.name_of("10.20.1.41") == "chromebook-7"  # no inventory entry: lease hostname
    assert names.name_of("10.20.1.42") is None  # '*': the device gave no name
    assert names.name_of("fd00:20::40") == "laptop-v6"
    assert names.name_of("10.20.9.9") is None
    assert names.name_of("") is None


def test_no_files_name_nothing() -> None:
    assert Devices(()).name_of("10.20.1.5") is None


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("10.20.1.5,office\n10.20.1.300,broken\n", 2, "'10.20.1.300' is not an IP or MAC"),
        ("AA-BB-CC-DD-EE,office\n", 1, "'AA-BB-CC-DD-EE' is not an IP or MAC"),
        ("# header\n\n10.20.1.5\n", 3, "expected ip_or_mac,name, got '10.20.1.5'"),
        ("10.20.1.5,office,extra\n", 1, "expected ip_or_mac,name"),
        ("10.20.1.5, \n", 1, "expected ip_or_mac,name"),
    ],
)
def test_a_bad_inventory_line_is_refused_with_file_and_line(
    write: Callable[[str, str], Path], text: str, line: int, message: str
) -> None:
    path = write("inventory.csv", text)
    with pytest.raises(ConfigError) as error:
        Devices((path,))
    assert error.value.path == path and error.value.line == line
    assert message in str(error.value)


def test_an_inventory_may_start_with_a_header_and_a_byte_order_mark(
    write: Callable[[str, str], Path],
) -> None:
    names = Devices((write("export.csv", "\ufeffIP Address,hostname\n10.20.1.5,office-pc-1\n"),))
    assert names.name_of("10.20.1.5") == "office-pc-1"


def test_a_bad_lease_line_is_refused_with_file_and_line(
    write: Callable[[str, str], Path],
) -> None:
    path = write("dnsmasq.leases", LEASES + "1732617600 aa:bb:cc:dd:ee:09 not-an-ip host *\n")
    with pytest.raises(ConfigError, match=rf"{path}:6: not a dnsmasq lease"):
        Devices((path,))


def test_the_config_names_the_files_and_a_missing_one_is_refused_with_its_line(
    tmp_path: Path, write: Callable[[str, str], Path]
) -> None:
    files = PolicyFiles(tmp_path / "school")
    inventory = write("inventory.csv", INVENTORY)
    policy = files.policy(BASE_CONFIG + f"devices: [{inventory}]\n")
    assert policy.devices.name_of("10.20.1.5") == "office-pc-1"
    error = files.error(BASE_CONFIG + "devices: [../missing.csv]\n")
    assert error.line == BASE_CONFIG.count("\n") + 1 and error.key == "devices[0]"
    assert "devices file not found" in error.message


def test_changed_files_are_read_again_and_a_broken_one_keeps_the_last_names(
    write: Callable[[str, str], Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(devices, "RECHECK_SECONDS", 0.0)
    leases = write("dnsmasq.leases", LEASES)
    names = Devices((leases,))
    assert names.name_of("10.20.1.41") == "chromebook-7"

    # The address goes to another machine: an incident must not name the old one.
    leases.write_text(LEASES.replace("chromebook-7", "chromebook-9"))
    os.utime(leases, ns=(0, 10**18))
    assert names.name_of("10.20.1.41") == "chromebook-9"

    leases.write_text(LEASES + "1732617600 aa:bb")  # caught half-written
    os.utime(leases, ns=(0, 2 * 10**18))
    assert names.name_of("10.20.1.41") == "chromebook-9"
    assert "device names kept as they were" in caplog.text and f"{leases}:6" in caplog.text


def test_each_incident_records_its_device(
    start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    inventory = tmp_path / "devices.csv"
    inventory.write_text("127.0.0.1,reception-pc\n")
    gateway = start_gateway(extra=f"devices: [{inventory}]")
    assert "403" in curl("-x", gateway.proxy, "-w", "%{http_code}", "http://localhost:9/").stdout
    [row] = gateway.wait_for_incidents(1)
    assert row["device"] == "reception-pc"


def test_a_bad_devices_file_stops_the_proxy_with_file_and_line(
    tmp_path: Path, config_for: Callable[..., Path]
) -> None:
    inventory = tmp_path / "devices.csv"
    inventory.write_text("127.0.0.1,reception-pc\n127.0.0.300,typo\n")
    url = f"sqlite:///{tmp_path / 'log.db'}"
    result = run_refused(config_for(url, extra=f"devices: [{inventory}]"), tmp_path)
    assert result.returncode != 0
    assert f"{inventory}:2: '127.0.0.300' is not an IP or MAC address" in result.stdout
