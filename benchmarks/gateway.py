"""Throughput, decisions per second, start-up time and memory of schoolgate, in one run.

    .venv/bin/python benchmarks/gateway.py [--quick]

1. Requests/s of allowed keep-alive traffic through plain mitmdump, mitmdump + schoolgate,
   mitmdump + a one-dict-lookup addon and mitmdump + its own `block_list` (1,000 entries), in
   interleaved rounds, the proxy pinned to one core, wrk and the origin to the other.
2. `Policy.decide` per CPU-second with 100 and 1,000,000 list entries: steady state (repeated
   hosts, as real traffic is) and uncached (every host new).
3. Start-up time and peak memory growth with 1,000,000 entries, each in a fresh process.

Needs `wrk` and `taskset` (Debian: `apt-get install -y wrk util-linux`). Prints Markdown
tables on stdout, progress on stderr; `benchmarks/README.md` says what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import http.client
import importlib.metadata
import ipaddress
import itertools
import json
import math
import multiprocessing
import os
import platform
import random
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from addons.config import load_config
from addons.policy import Policy

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CATEGORY = "social_networks"  # the synthetic lists join this category of the shipped policy

CONNECTIONS = 50  # wrk's keep-alive connections, as in shared/docs/measured-facts.md
GATEWAY_ENTRIES = 10_000  # synthetic entries beside the shipped lists, for the proxy under load
BLOCK_LIST_ENTRIES = 1_000
LIST_SIZES = (100, 1_000_000)
WORKING_SET = 5_000  # distinct hosts in steady-state traffic
LISTED_SHARE = 0.2  # share of hosts that are a listed domain or a subdomain of one
ADDRESS_SHARE = 0.05  # share of hosts that are an IP address (half of them listed)
# Staff, pupils, guests, and two clients in no group (the default group) of config/policy.yaml.
CLIENTS = ("10.10.4.20", "10.10.7.3", "10.20.1.5", "10.20.33.8", "10.20.200.9", "10.30.0.12")
CLIENTS += ("192.168.1.40", "172.16.5.5")

PASSES = 5  # best of: on a shared machine, slower passes measure the neighbours, not the code

TARGET_RATIO = 0.95
TARGET_DECISIONS = 1_000_000
TARGET_STARTUP_S = 2.0
TARGET_MEMORY_MB = 200.0


@dataclass(frozen=True)
class Settings:
    """How long to measure: the full run takes about 4 minutes, --quick under one."""

    rounds: int
    seconds: int  # per wrk run
    warm_up_seconds: int
    decisions: int  # per timed pass over steady-state traffic
    fresh_processes: int  # start-up measurements


# Short runs, many rounds: the two runs of a pair are close in time, so a neighbour's burst
# of work on the machine falls on both or on few pairs.
FULL = Settings(rounds=10, seconds=4, warm_up_seconds=2, decisions=500_000, fresh_processes=3)
QUICK = Settings(rounds=3, seconds=2, warm_up_seconds=1, decisions=100_000, fresh_processes=1)


# --- synthetic lists and traffic --------------------------------------------------------------

_WORDS = ("photo", "chat", "media", "friends", "clip", "stream", "social", "feed", "story", "pin")
_SUFFIXES = ("com", "net", "org", "co.uk", "io", "de", "com.br", "ru", "fr", "app")
_PREFIXES = ("", "", "www.", "m.", "api.", "edge-3.static.")


def synthetic_domain(number: int) -> str:
    """The `number`th synthetic domain: one per number, varied in length, depth and suffix."""
    word = _WORDS[number % len(_WORDS)]
    suffix = _SUFFIXES[number // len(_WORDS) % len(_SUFFIXES)]
    return f"{word}{number}.{suffix}" if number % 7 else f"img.{word}{number}.{suffix}"


# Network entries, one in 1,000 entries, of these prefix lengths in turn (IPv4, then IPv6).
_PREFIX_LENGTHS = ((4, 16), (4, 20), (4, 24), (4, 28), (6, 48), (6, 64))


def synthetic_address(
    number: int, version: int = 0
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The `number`th synthetic address: IPv4 in 11.0.0.0/8, or IPv6 in 2001:db8::/32 (one in
    three, unless `version` says which)."""
    if version == 6 or (not version and number % 3 == 2):
        return ipaddress.IPv6Address((0x20010DB8 << 96) + number * 0x9E3779B97F4A7C15 % 2**96)
    return ipaddress.IPv4Address(0x0B000000 + number * 2654435761 % 2**24)


def synthetic_entry(number: int) -> str:
    """The `number`th list entry: mostly bare domains, 2% `*.` and 2% `=` entries, 0.1% IP
    addresses and 0.1% networks of several prefix lengths (a resolver list's share)."""
    if number % 1000 == 1:
        return str(synthetic_address(number))
    if number % 1000 == 2:
        version, length = _PREFIX_LENGTHS[number // 1000 % len(_PREFIX_LENGTHS)]
        address = synthetic_address(number, version)
        return str(ipaddress.ip_network((address, length), strict=False))
    return ("*.", "=", *[""] * 48)[number % 50] + synthetic_domain(number)


def write_list(path: Path, entries: int) -> Path:
    """A list as real ones are: mostly bare domains, a few `*.`, `=`, address and network
    entries."""
    with path.open("w", encoding="utf-8") as out:
        out.write(f"# {entries:,} synthetic entries for benchmarks/gateway.py\n")
        out.writelines(f"{synthetic_entry(n)}\n" for n in range(entries))
    return path


def traffic(rng: random.Random, listed: int, count: int) -> list[str]:
    """Hosts as clients ask for them: some listed domains and their subdomains, most not; a
    few IP addresses, canonical as the addon passes them, half of them listed."""
    hosts = []
    for _ in range(count):
        if rng.random() < ADDRESS_SHARE:
            number = rng.randrange(listed) // 1000 * 1000 + 1  # an address entry's number
            hosts.append(str(synthetic_address(number if rng.random() < 0.5 else listed + number)))
            continue
        if rng.random() < LISTED_SHARE:
            domain = synthetic_domain(rng.randrange(listed))
        else:
            domain = synthetic_domain(listed + rng.randrange(100 * count))
        hosts.append(rng.choice(_PREFIXES) + domain)
    return hosts


def write_config(
    folder: Path,
    synthetic: Path,
    keep_shipped_lists: bool,
    shipped: Path = ROOT / "config" / "policy.yaml",
    loopback_origin: bool = True,
) -> Path:
    """The `shipped` policy (groups, school day, rules, allowlist) with `synthetic` added to its
    CATEGORY, the shipped category lists kept or emptied, incidents in a SQLite file here, and
    (with `loopback_origin`) the origin on loopback allowed."""
    config = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    empty = folder / "empty.txt"
    empty.touch()

    def resolved(paths: list[str]) -> list[str]:
        return [str((shipped.parent / path).resolve()) for path in paths]

    config["categories"] = {
        name: resolved(paths) if keep_shipped_lists else [str(empty)]
        for name, paths in config["categories"].items()
    }
    config["categories"][CATEGORY].append(str(synthetic))
    config["allowlist"] = resolved(config.get("allowlist", []))
    config["database"] = f"sqlite:///{folder / 'incidents.db'}"
    if loopback_origin:  # the gateway refuses its own addresses unless they are listed here
        config["proxy"] = {**config.get("proxy", {}), "allow_destinations": ["127.0.0.1/32"]}
    path = folder / "policy.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


# --- the policy alone (each function runs in a fresh process) ---------------------------------


def decision_rates(config: Path, listed: int, count: int, cpu: int) -> tuple[float, float]:
    """Decisions per CPU-second, best of PASSES: steady state (Zipf over a working set, caches
    warm), and with every host new (normalisation, suffix walk and rules each time)."""
    os.sched_setaffinity(0, {cpu})
    policy = Policy(load_config(config))
    gc.freeze()  # as the addon does once the proxy runs
    rng = random.Random(listed)
    working_set = list(dict.fromkeys(traffic(rng, listed, WORKING_SET)))
    popularity = list(itertools.accumulate(1 / rank for rank in range(1, len(working_set) + 1)))
    hosts = rng.choices(working_set, cum_weights=popularity, k=count)
    requests = list(zip(hosts, rng.choices(CLIENTS, k=count), strict=True))
    _rate(policy, requests)  # fills the caches
    steady = max(_rate(policy, requests) for _ in range(PASSES))
    uncached = []
    for number in range(PASSES):
        new_hosts = traffic(rng, listed, count // 20)
        fresh = [
            (f"n{number}-{k}.{host}", CLIENTS[k % len(CLIENTS)]) for k, host in enumerate(new_hosts)
        ]
        uncached.append(_rate(policy, fresh))
    return steady, max(uncached)


def _rate(policy: Policy, requests: Sequence[tuple[str, str]]) -> float:
    # CPU time, not wall time: on a shared machine, wall time also counts other processes' turns.
    decide = policy.decide
    start = time.process_time()
    for host, client in requests:
        decide(host, client)  # at=None: now, as the addon asks
    return len(requests) / (time.process_time() - start)


@dataclass(frozen=True)
class Startup:
    """The cost of load_config + Policy in one fresh process."""

    wall_s: float
    cpu_s: float
    memory_mb: float  # peak RSS growth


def startup_cost(config: Path, cpu: int) -> Startup:
    """Time and peak memory growth to load `config` and build its Policy."""
    os.sched_setaffinity(0, {cpu})
    before = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    wall, processor = time.perf_counter(), time.process_time()
    Policy(load_config(config))
    wall, processor = time.perf_counter() - wall, time.process_time() - processor
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return Startup(wall, processor, (peak - before) / 2**20)


def in_fresh_process[T](function: Callable[..., T], *args: object) -> T:
    """Run `function` in a new interpreter: its memory and caches start empty."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(function, *args).result()


# --- the origin -------------------------------------------------------------------------------

_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


class Responder(asyncio.Protocol):
    """Answers every complete request head with one canned response (wrk sends bodiless GETs)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        heads = self.buffer.count(b"\r\n\r\n")
        if heads:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(_RESPONSE * heads)


def serve_origin(port: int, cpu: int) -> None:
    """A keep-alive HTTP/1.1 origin ~100 times faster than mitmdump, so never the limit
    (`python -m http.server` is slower, and nginx would be one more thing to install)."""

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Responder, "127.0.0.1", port)
        await server.serve_forever()

    os.sched_setaffinity(0, {cpu})
    asyncio.run(serve())


# --- proxies under load -----------------------------------------------------------------------


@dataclass(frozen=True)
class Proxy:
    """One mitmdump under test."""

    label: str
    argv: tuple[str, ...]
    port: int
    blocks: str | None  # a host its addon answers with 403: proof the addon is live


@dataclass(frozen=True)
class Load:
    """What one wrk run measured."""

    requests: int
    requests_per_second: float
    p99_ms: float
    non_2xx: int  # answers other than 2xx/3xx (all of them, where the proxy blocks)
    errors: int  # socket errors: connect, read, write, timeout
    proxy_cpu_s: float  # CPU time the proxy used meanwhile (0 when no proxy was watched)

    @property
    def failures(self) -> int:
        """Non-2xx/3xx answers and socket errors."""
        return self.non_2xx + self.errors

    @property
    def per_cpu_second(self) -> float:
        """Requests per second of the proxy's CPU: its rate on a core of its own."""
        return self.requests / self.proxy_cpu_s if self.proxy_cpu_s else 0.0


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def proxies(work: Path, config: Path) -> list[Proxy]:
    """Plain mitmdump first, then with each addon; the same options otherwise, so each ratio
    to plain is the addon's own cost."""

    def options(name: str) -> tuple[str, ...]:
        confdir = work / name
        confdir.mkdir()
        return ("-q", "--set", f"confdir={confdir}")

    def mitmdump(port: int, name: str, *addon: str) -> tuple[str, ...]:
        listen = ("--listen-host", "127.0.0.1", "--listen-port", str(port))
        lazy = ("--set", "connection_strategy=lazy")  # as `schoolgate run` sets
        return (str(BIN / "mitmdump"), *listen, *addon, *lazy, *options(name))

    plain, schoolgate, reference, built_in = (free_port() for _ in range(4))
    entries = Policy(load_config(config)).index.entries
    run = ("run", "--config", str(config), "--listen-port", str(schoolgate), "--")
    dict_addon = ("-s", str(ROOT / "benchmarks" / "dict_addon.py"))
    found = [
        Proxy("mitmdump, no addon", mitmdump(plain, "plain"), plain, None),
        Proxy(
            f"mitmdump + schoolgate ({entries:,} entries)",
            (str(BIN / "schoolgate"), *run, *options("schoolgate")),
            schoolgate,
            f"www.{synthetic_domain(GATEWAY_ENTRIES - 1)}",
        ),
        Proxy(
            "mitmdump + dict lookup (reference)",
            mitmdump(reference, "dict", *dict_addon),
            reference,
            "blocked0.example",
        ),
        Proxy(
            f"mitmdump + block_list ({BLOCK_LIST_ENTRIES:,} entries)",
            mitmdump(built_in, "block_list"),
            built_in,
            "blocked0.example",
        ),
    ]
    # mitmdump reads config.yaml in its confdir: 1,000 --set arguments would do the same.
    filters = [f"/~d blocked{number}.example/403" for number in range(BLOCK_LIST_ENTRIES)]
    (work / "block_list" / "config.yaml").write_text(json.dumps({"block_list": filters}))
    return found


def wait_for_port(
    port: int, alive: Callable[[], bool], what: str, log: Path | None, host: str = "127.0.0.1"
) -> None:
    """Return once `host:port` accepts connections; exit with the log's tail if `what` died."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and alive():
        with contextlib.suppress(OSError), socket.create_connection((host, port), 1):
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log else ""
    raise SystemExit(f"{Path(sys.argv[0]).name}: {what} is not listening on {host}:{port}\n{tail}")


@contextlib.contextmanager
def running(
    argv: Sequence[str],
    cpu: int,
    port: int,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[int]:
    """`argv` pinned to `cpu` with taskset, listening on `port`, for the duration of the block;
    yields its process id (taskset and `schoolgate run` exec, so it is mitmdump's)."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["taskset", "-c", str(cpu), *argv], stdout=out, stderr=out, env=env, cwd=cwd
        )
    try:
        wait_for_port(port, lambda: process.poll() is None, argv[0], log)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def origin(port: int, cpu: int) -> Iterator[None]:
    """The origin in its own process for the duration of the block."""
    process = multiprocessing.get_context("spawn").Process(target=serve_origin, args=(port, cpu))
    process.start()
    try:
        wait_for_port(port, process.is_alive, "the origin", None)
        yield
    finally:
        process.terminate()
        process.join()


_P99 = re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\b", re.MULTILINE)
_MS_PER_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_FAILURES = re.compile(r"Non-2xx or 3xx responses: (\d+)|(?:connect|read|write|timeout) (\d+)")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process `pid` has used, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, seconds: int, cpu: int, script: Path | None, proxy: int | None) -> Load:
    """One wrk run: one thread, CONNECTIONS keep-alive connections, pinned to `cpu`; watches
    the CPU time of process `proxy`."""
    through = ["-s", str(script)] if script else []
    argv = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s"]
    argv += ["--timeout", "10s"]  # a slow proxy (block_list) is measured, not timed out
    before = cpu_seconds(proxy) if proxy else 0.0
    out = subprocess.run(
        [*argv, "--latency", *through, url], capture_output=True, text=True, check=True
    ).stdout
    used = cpu_seconds(proxy) - before if proxy else 0.0
    count, rate = re.search(r"(\d+) requests in", out), re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = _P99.search(out)
    if count is None or rate is None or p99 is None:
        raise SystemExit(f"{Path(sys.argv[0]).name}: cannot read wrk's output:\n{out}")
    found = _FAILURES.findall(out)
    non_2xx, errors = (sum(int(pair[kind] or 0) for pair in found) for kind in (0, 1))
    p99_ms = float(p99[1]) * _MS_PER_UNIT[p99[2]]
    return Load(int(count[1]), float(rate[1]), p99_ms, non_2xx, errors, used)


def status_through(port: int, host: str) -> int:
    """The status the proxy on `port` answers for `http://host/`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", f"http://{host}/")
        return connection.getresponse().status
    finally:
        connection.close()


def wrk_script(folder: Path, target: str) -> Path:
    """wrk through an explicit proxy: connect to the proxy, ask for `target`'s absolute URL
    (`target` is a host or host:port)."""
    script = folder / f"through-proxy-{target}.lua"
    script.write_text(f'wrk.path = "http://{target}/"\nwrk.headers["Host"] = "{target}"\n')
    return script


def throughput(
    settings: Settings, work: Path, config: Path, proxy_cpu: int, load_cpu: int
) -> tuple[Load, dict[str, list[Load]]]:
    """The origin alone, then every proxy once per round, each round starting one proxy later."""
    origin_port = free_port()
    script = wrk_script(work, f"127.0.0.1:{origin_port}")
    candidates = proxies(work, config)
    loads: dict[str, list[Load]] = {proxy.label: [] for proxy in candidates}
    with contextlib.ExitStack() as stack:
        stack.enter_context(origin(origin_port, load_cpu))
        origin_url = f"http://127.0.0.1:{origin_port}/"
        alone = run_wrk(origin_url, settings.warm_up_seconds, load_cpu, None, None)
        pids = {}
        for proxy in candidates:
            progress(f"starting {proxy.label}")
            log = work / f"proxy-{proxy.port}.log"
            pids[proxy] = stack.enter_context(running(proxy.argv, proxy_cpu, proxy.port, log))
            if proxy.blocks and status_through(proxy.port, proxy.blocks) != 403:
                raise SystemExit(f"gateway.py: {proxy.label} did not block {proxy.blocks}")
            url = f"http://127.0.0.1:{proxy.port}/"
            run_wrk(url, settings.warm_up_seconds, load_cpu, script, None)
        for number in range(settings.rounds):
            progress(f"round {number + 1} of {settings.rounds}")
            shift = number % len(candidates)
            for proxy in candidates[shift:] + candidates[:shift]:
                url = f"http://127.0.0.1:{proxy.port}/"
                run = run_wrk(url, settings.seconds, load_cpu, script, pids[proxy])
                loads[proxy.label].append(run)
    return alone, loads


# --- the report -------------------------------------------------------------------------------


def progress(message: str) -> None:
    """What the run is doing, on stderr, so stdout holds only the figures."""
    print(f"... {message}", file=sys.stderr, flush=True)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned Markdown table: readable in a terminal, pasteable into benchmarks/README.md."""
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])


def verdict(met: bool) -> str:
    """How a figure stands against its target."""
    return "met" if met else "MISSED"


def machine() -> str:
    """Cores, processor and versions: the context every figure needs."""
    model = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split(" [")[0]
    return (
        f"{os.cpu_count()} cores ({model[1] if model else platform.machine()}), "
        f"Python {platform.python_version()}, mitmproxy {importlib.metadata.version('mitmproxy')}, "
        f"{wrk}"
    )


def throughput_report(alone: Load, loads: dict[str, list[Load]]) -> str:
    """The proxies' table and schoolgate's verdict; ratios are medians of per-round ratios."""
    plain = next(iter(loads.values()))

    def ratio(runs: list[Load], figure: Callable[[Load], float]) -> float:
        pairs = [figure(a) / figure(b) for a, b in zip(runs, plain, strict=True) if figure(b)]
        return statistics.median(pairs) if pairs else math.nan

    rows = []
    for label, runs in loads.items():
        rates = [run.requests_per_second for run in runs]
        rows.append(
            [
                label,
                f"{statistics.median(rates):,.0f}",
                f"{ratio(runs, lambda load: load.requests_per_second):.2f}",
                f"{min(rates):,.0f}-{max(rates):,.0f}",
                f"{statistics.median(run.per_cpu_second for run in runs):,.0f}",
                f"{ratio(runs, lambda load: load.per_cpu_second):.2f}",
                f"{statistics.median(run.p99_ms for run in runs):.0f}",
                str(sum(run.failures for run in runs)),
            ]
        )
    rows.append(
        [
            "origin alone (on wrk's core)",
            f"{alone.requests_per_second:,.0f}",
            *[""] * 4,
            f"{alone.p99_ms:.1f}",
            str(alone.failures),
        ]
    )
    header = ["proxy (allowed, keep-alive)", "req/s", "x plain", "range"]
    header += ["req/CPU-s", "x plain", "p99 ms", "failed"]
    schoolgate = next(runs for label, runs in loads.items() if "schoolgate" in label)
    by_cpu = ratio(schoolgate, lambda load: load.per_cpu_second)
    by_wall = ratio(schoolgate, lambda load: load.requests_per_second)
    return (
        f"{markdown_table(header, rows)}\n\nschoolgate keeps {by_cpu:.2f} x plain mitmdump's "
        f"requests per CPU-second ({by_wall:.2f} x its requests per second), "
        f"target >= {TARGET_RATIO:.2f}: {verdict(by_cpu >= TARGET_RATIO)}."
    )


def decisions_report(rates: dict[int, tuple[float, float]]) -> str:
    """Steady-state and uncached decisions per CPU-second at each list size."""
    steady_met = all(steady >= TARGET_DECISIONS for steady, _ in rates.values())
    rows = [
        [
            f"steady state (Zipf over {WORKING_SET:,} hosts, {len(CLIENTS)} clients, now)",
            *(f"{steady:,.0f}" for steady, _ in rates.values()),
            f">= {TARGET_DECISIONS:,}: {verdict(steady_met)}",
        ],
        [
            "uncached (every host new)",
            *(f"{uncached:,.0f}" for _, uncached in rates.values()),
            "none: for scale",
        ],
    ]
    header = [
        f"Policy.decide per CPU-second, best of {PASSES}",
        *(f"{size:,} entries" for size in rates),
        "target",
    ]
    return markdown_table(header, rows)


def startup_report(startups: Sequence[Startup]) -> str:
    """Medians over fresh processes; the time target is judged on CPU time (see README)."""
    wall = statistics.median(s.wall_s for s in startups)
    cpu = statistics.median(s.cpu_s for s in startups)
    memory = statistics.median(s.memory_mb for s in startups)
    header = [
        f"start-up, {LIST_SIZES[-1]:,} entries, fresh processes: {len(startups)}",
        "measured",
        "target",
    ]
    rows = [
        [
            "load_config + Policy: CPU (wall)",
            f"{cpu:.2f} s ({wall:.2f} s)",
            f"< {TARGET_STARTUP_S:.0f} s: {verdict(cpu < TARGET_STARTUP_S)}",
        ],
        [
            "peak RSS growth",
            f"{memory:.0f} MB",
            f"< {TARGET_MEMORY_MB:.0f} MB: {verdict(memory < TARGET_MEMORY_MB)}",
        ],
    ]
    return markdown_table(header, rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the policy alone, then the proxies under load; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs (< 1 minute)")
    settings = QUICK if parser.parse_args(argv).quick else FULL
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        print(
            f"gateway.py: {' and '.join(missing)} not found; on Debian: "
            "apt-get update && apt-get install -y wrk util-linux",
            file=sys.stderr,
        )
        return 2
    cpus = sorted(os.sched_getaffinity(0))
    proxy_cpu, load_cpu = cpus[0], cpus[-1]  # one and the same on a single core
    started, load_at_start = dt.datetime.now(dt.UTC), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="schoolgate-benchmark-") as folder:
        work = Path(folder)
        progress("writing synthetic lists")
        configs = {}
        for size in LIST_SIZES:
            (work / str(size)).mkdir()
            synthetic = write_list(work / f"{size}.txt", size)
            configs[size] = write_config(work / str(size), synthetic, keep_shipped_lists=False)
        progress(f"start-up with {LIST_SIZES[-1]:,} entries in fresh processes")
        large = configs[LIST_SIZES[-1]]
        startups = [
            in_fresh_process(startup_cost, large, proxy_cpu)
            for _ in range(settings.fresh_processes)
        ]
        rates = {}
        for size, config in configs.items():
            progress(f"Policy.decide with {size:,} entries")
            args = (config, size, settings.decisions, proxy_cpu)
            rates[size] = in_fresh_process(decision_rates, *args)
        synthetic = write_list(work / "gateway.txt", GATEWAY_ENTRIES)
        gateway = write_config(work, synthetic, keep_shipped_lists=True)
        alone, loads = throughput(settings, work, gateway, proxy_cpu, load_cpu)

    kind = "quick" if settings is QUICK else "full"
    print(f"# schoolgate benchmark, {started:%Y-%m-%d %H:%M} UTC, {kind} run\n\n{machine()}")
    # Other processes' work skews every figure: the reader needs to know it was there.
    print(f"Load average when the run started: {load_at_start:.2f}.\n")
    print(
        f"Throughput: {settings.rounds} interleaved rounds of {settings.seconds} s; proxy on "
        f"CPU {proxy_cpu}; wrk (1 thread, {CONNECTIONS} connections) and origin on CPU {load_cpu}."
    )
    print(f"\n{throughput_report(alone, loads)}\n\n{decisions_report(rates)}\n")
    print(startup_report(startups))
    return 0


if __name__ == "__main__":
    sys.exit(main())
