"""Device names for client addresses (`report.devices`), so the SLT reads 'Y4-iPad-07', not
10.20.3.41. The file is a CSV of ip,device-name, as a DHCP server exports its leases: a header
row, blank lines, `#` comments and further columns are allowed.
"""

from __future__ import annotations

import csv
import ipaddress
from pathlib import Path

from addons.errors import ConfigError


def load_devices(path: Path | None) -> dict[str, str]:
    """Map of canonical IP text to device name; {} when no file is configured."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel writes a BOM
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, None, f"cannot read devices file: {e}") from e
    devices: dict[str, str] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        try:
            ip = str(ipaddress.ip_address(cells[0]))
        except ValueError:
            if number == 1:  # a header row such as "ip,hostname"
                continue
            raise ConfigError(path, number, f"{cells[0]!r} is not an IP address") from None
        if len(cells) < 2 or not cells[1]:
            raise ConfigError(path, number, f"no device name for {ip}")
        devices[ip] = cells[1]
    return devices
