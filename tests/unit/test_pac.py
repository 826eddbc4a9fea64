"""`gateway_host`: the served PAC file names the gateway by a host name or address the device
used, never by other text from the request, which would go into the JavaScript."""

from __future__ import annotations

import pytest

from addons.hosts import is_host
from addons.pac import gateway_host


@pytest.mark.parametrize(
    "asked",
    ["10.0.0.1", "::1", "2001:db8::1", "wpad", "wpad.school.example", "WPAD.School.Example.",
     "proxy-1.example.org", "a" * 63 + ".example.org"],
)  # fmt: skip
def test_a_host_name_or_address_names_the_gateway(asked: str) -> None:
    assert is_host(asked) and gateway_host(asked, "10.9.9.9") == asked


@pytest.mark.parametrize(
    "asked",
    ['"); alert(1); //', "wpad\n", "wpad\u2028x", "a_b", "-wpad", "wpad-", "a..b", "", ".",
     "1.2.3", "10.0.0.256", "a" * 64 + ".example.org", ("a." * 127) + "org", "wpad:8080",
     "[::1]", "wpad.school.example/x"],
)  # fmt: skip
def test_anything_else_is_replaced_by_the_address_the_device_connected_to(asked: str) -> None:
    assert not is_host(asked) and gateway_host(asked, "10.9.9.9") == "10.9.9.9"
