"""A real browser for tests: headless Chromium renders a page to PNG, or dumps its DOM.

Used wherever a page is shown to a person (the block page, the report), so that a broken
layout is seen, not assumed.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"


def chromium(url: str, *args: str, proxy: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium once on `url`; loopback goes through `proxy` too when given."""
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    if proxy:
        # Chromium bypasses the proxy for loopback unless told not to.
        flags += [f"--proxy-server={proxy}", "--proxy-bypass-list=<-loopback>"]
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:  # runs may overlap
        return subprocess.run(
            [CHROMIUM, *flags, f"--user-data-dir={profile}", *args, url],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )


def screenshot(
    url: str,
    out: Path,
    *args: str,
    width: int = 1000,
    height: int = 900,
    proxy: str | None = None,
) -> Path:
    """Render `url` to a PNG file of the given window size."""
    size = f"--window-size={width},{height}"
    result = chromium(url, f"--screenshot={out}", size, *args, proxy=proxy)
    assert out.exists(), result.stderr
    return out


def png_size_and_colours(path: Path) -> tuple[int, int, int]:
    """Width, height and the number of distinct pixel rows: a blank page has one."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    position, idat, width, height = 8, b"", 0, 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    raw = zlib.decompress(idat)
    stride = len(raw) // height
    rows = {raw[i * stride + 1 : (i + 1) * stride] for i in range(height)}
    return width, height, len(rows)
