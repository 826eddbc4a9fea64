"""Latency of requests while the running proxy reloads a 1,000,000-entry list.

    .venv/bin/python benchmarks/reload.py [--entries N] [--seconds S]

A client sends one keep-alive request every 10 ms through a real `schoolgate run` to a local
origin and records each latency: first with the lists unchanged (the baseline), then while
an entry is appended to the list every 2 s, so the proxy rebuilds its policy several times.
Target (the blocklists issue): p99 during reloads under 50 ms above the baseline p99. Also
prints how long one edit takes to apply, from the write to the first blocked request.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHOOLGATE = Path(sys.executable).with_name("schoolgate")
INTERVAL = 0.01  # one request every 10 ms


class _Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body meet a 40 ms delayed ACK

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_setup(folder: Path, entries: int) -> tuple[Path, Path]:
    lists = folder / "big.txt"
    with lists.open("w") as out:
        out.write("# synthetic list for the reload benchmark\n")
        out.writelines(f"site{n}.example{n % 997}.com\n" for n in range(entries))
    config = folder / "policy.yaml"
    shipped = (ROOT / "config" / "policy.yaml").read_text()
    config.write_text(
        shipped.replace("../blocklists/social_networks.txt", str(lists))
        .replace("../blocklists/allow.txt", str(ROOT / "blocklists" / "allow.txt"))
        .replace("sqlite:///../data/schoolgate.db", f"sqlite:///{folder}/bench.db")
        .replace("\nproxy:\n", "\nproxy:\n  allow_destinations: [127.0.0.1/32]  # the origin\n")
    )
    return config, lists


def _latencies(proxy_port: int, origin_port: int, seconds: float) -> list[float]:
    """Milliseconds per request, one request every INTERVAL on one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=30)
    url = f"http://127.0.0.1:{origin_port}/"
    result: list[float] = []
    end = time.monotonic() + seconds
    while (start := time.monotonic()) < end:
        connection.request("GET", url)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
        result.append((time.monotonic() - start) * 1000)
        time.sleep(max(0.0, INTERVAL - (time.monotonic() - start)))
    connection.close()
    return result


def _time_to_apply(proxy_port: int, origin_port: int, lists: Path) -> float:
    """Seconds from appending an entry to the first request the proxy blocks for it."""
    connection = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=30)
    with lists.open("a") as out:
        out.write("probe.example.net\n")
    start = time.monotonic()
    while True:
        connection.request(
            "GET", f"http://127.0.0.1:{origin_port}/", headers={"Host": "probe.example.net"}
        )
        response = connection.getresponse()
        response.read()
        if response.status == 403:
            connection.close()
            return time.monotonic() - start
        time.sleep(0.02)


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()

    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    origin_port = origin.server_address[1]

    with tempfile.TemporaryDirectory(prefix="schoolgate-reload-") as tmp:
        folder = Path(tmp)
        config, lists = _write_setup(folder, args.entries)
        port = _free_port()
        log = (folder / "proxy.log").open("wb")
        proxy = subprocess.Popen(
            [str(SCHOOLGATE), "run", "--config", str(config), "--listen-port", str(port),
             "--", "--set", f"confdir={folder / 'mitmproxy'}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            started = time.monotonic()
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    assert proxy.poll() is None, (folder / "proxy.log").read_text()
                    time.sleep(0.05)
            print(f"proxy up with {args.entries:,} entries in {time.monotonic() - started:.2f} s")
            _latencies(port, origin_port, 1.0)  # warm up

            baseline = _latencies(port, origin_port, args.seconds)

            stop = threading.Event()
            reloads: list[float] = []

            def edit() -> None:
                n = 0
                while not stop.wait(2.0):
                    n += 1
                    with lists.open("a") as out:
                        out.write(f"edit{n}.example.org\n")
                    reloads.append(time.monotonic())

            editor = threading.Thread(target=edit)
            editor.start()
            during = _latencies(port, origin_port, args.seconds)
            stop.set()
            editor.join()
            time.sleep(2.0)
            applied = (folder / "proxy.log").read_text().count("loaded at reload")
            apply_seconds = _time_to_apply(port, origin_port, lists)
        finally:
            proxy.send_signal(signal.SIGTERM)
            proxy.wait(30)
            log.close()
            origin.shutdown()

    print(f"{'':24}{'requests':>10}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, values in (("baseline", baseline), ("during reloads", during)):
        print(
            f"{name:24}{len(values):>10}{statistics.median(values):>10.2f}"
            f"{_p(values, 0.99):>10.2f}{max(values):>10.2f}"
        )
    extra = _p(during, 0.99) - _p(baseline, 0.99)
    verdict = "met" if extra < 50 else "NOT met"
    print(f"edits: {len(reloads)}, reloads applied: {applied}")
    print(f"an edit applies in {apply_seconds:.2f} s (promised: within 2 s)")
    print(f"p99 during reloads - baseline p99 = {extra:.2f} ms (target < 50 ms: {verdict})")


if __name__ == "__main__":
    os.environ.pop("http_proxy", None)
    main()
