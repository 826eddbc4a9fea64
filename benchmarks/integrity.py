"""What the enforcement checks of issue 12 cost per request: the gateway at a baseline commit
against this checkout, side by side in one run.

    .venv/bin/python benchmarks/integrity.py [--baseline REF] [--quick] [--rounds N] [--seconds S]

The baseline is REF (default d99ab30: main before issue 12) checked out with `git worktree` in
a temporary folder; the candidate is this checkout as it is, uncommitted changes included.
Both run as a school runs them, `schoolgate run`, on this virtualenv with their own tree first
on PYTHONPATH (checked before the run: each imports its own `addons` and `reports`), pinned to
CPU 0, with the same policy: the baseline's shipped config and lists, so only the code differs.
The load generators and the origin share CPU 1.

The origin is in a network namespace of its own, on a private address (10.204.N.2), HTTP on
port 80 and TLS on 443, as a web site or a school's intranet server is: the new destination
checks refuse loopback, and 80 and 443 are ports they allow by default. The proxies find it by
name (origin.bench.test) in a hosts file bind-mounted over /etc/hosts in a mount namespace of
their own, as they would find a site through DNS.

Scenarios, each measured for both trees in every round, one after the other (which goes first
alternates from round to round and from scenario to scenario), 50 clients each:
- HTTP allowed, keep-alive (wrk);
- HTTP allowed, a new connection per request (hey, `-disable-keepalive`);
- HTTP blocked: www.facebook.com, answered 403 with the block page and logged (wrk, keep-alive);
- CONNECT allowed: a new connection per request: CONNECT, a TLS handshake with the origin
  through the tunnel (passed through, not decrypted), one GET (hey);
- CONNECT refused: CONNECT www.facebook.com:443, answered 403 and logged (hey).

Prints a Markdown table (and each run's figures on stderr): per scenario and tree, the medians
over the rounds of requests/s and of the proxy's CPU time per request (user + system of all its
threads, /proc/PID/stat), and the candidate/baseline ratio of each: the median of the per-round
ratios, with their range. The header says how busy other processes kept the proxies' core. Target
(issue 12): the checks cost under 3% per request, judged on CPU per request (steadier than
requests/s on a shared machine). Exits non-zero on errors only (a tool or a proxy failed, or a
scenario's answers were not what it expects), never on a missed target.

Needs root (network and mount namespaces) and these Debian packages:
    apt-get install -y wrk hey util-linux iproute2 openssl git
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import multiprocessing
import os
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import gateway

DEFAULT_BASELINE = "d99ab30"  # main before issue 12
ORIGIN_NAME = "origin.bench.test"
BLOCKED_HOST = "www.facebook.com"  # in the shipped social_networks list, blocked for everyone
CLIENTS = gateway.CONNECTIONS  # wrk's connections and hey's workers
TARGET = 1.03  # candidate / baseline CPU per request
MOST_UNEXPECTED = 0.01  # more answers than this share not as the scenario expects: an error
TOOLS = {
    "wrk": "wrk",
    "hey": "hey",
    "taskset": "util-linux",
    "unshare": "util-linux",
    "ip": "iproute2",
    "openssl": "openssl",
    "git": "git",
}


@dataclass(frozen=True)
class Settings:
    rounds: int
    seconds: int  # per run
    warm_up_seconds: int


# Many short rounds: the two runs of a pair are seconds apart, so a neighbour's burst of work
# falls on both, and the median of the per-round ratios outvotes the pairs it splits.
FULL = Settings(rounds=10, seconds=3, warm_up_seconds=2)
QUICK = Settings(rounds=3, seconds=2, warm_up_seconds=1)


@dataclass(frozen=True)
class Tree:
    """One version of the code: a git work tree."""

    label: str  # baseline | candidate
    root: Path
    description: str  # the commit, for the report


@dataclass(frozen=True)
class Run:
    """One load run against one proxy."""

    expected: int  # answers as the scenario expects them (200, or 403 where it blocks)
    unexpected: int  # any other answer, and socket errors
    seconds: float
    proxy_cpu_s: float

    @property
    def per_second(self) -> float:
        return self.expected / self.seconds

    @property
    def cpu_us(self) -> float:
        """The proxy's CPU time per request, in microseconds."""
        return self.proxy_cpu_s / self.expected * 1e6 if self.expected else math.nan


Measure = Callable[[int, int | None, int], Run]  # proxy port, proxy pid (or None), seconds


@dataclass(frozen=True)
class Scenario:
    label: str
    measure: Measure


# --- git: the two trees -----------------------------------------------------------------------


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(gateway.ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def describe(commit: str) -> str:
    """`hash (date) subject`, shortened: which code a column measured."""
    line = git("log", "-1", "--format=%h (%cs) %s", commit)
    return line if len(line) <= 90 else line[:87] + "..."


@contextlib.contextmanager
def baseline_tree(ref: str, folder: Path) -> Iterator[Tree]:
    """`ref` checked out in a temporary git work tree, removed afterwards."""
    try:
        commit = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(f"integrity.py: {ref!r} is not a commit of this repository") from None
    path = folder / "baseline"
    git("worktree", "add", "--detach", "--quiet", str(path), commit)
    try:
        yield Tree("baseline", path, describe(commit))
    finally:
        git("worktree", "remove", "--force", str(path))


def candidate_tree() -> Tree:
    dirty = " + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    return Tree("candidate", gateway.ROOT, describe("HEAD") + dirty)


def tree_environment(tree: Tree) -> dict[str, str]:
    """This virtualenv, with `tree` first on the import path; no proxy variables for the tools."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and k != "PYTHONPATH"}
    return {**env, "PYTHONPATH": str(tree.root)}


def check_imports(tree: Tree, work: Path) -> None:
    """Exit unless a process started as `tree`'s proxy imports `tree`'s own code."""
    probe = "import addons, reports; print(addons.__file__); print(reports.__file__)"
    found = subprocess.run(
        [str(gateway.BIN / "python"), "-c", probe],
        env=tree_environment(tree),
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    strays = [path for path in found if not Path(path).resolve().is_relative_to(tree.root)]
    if strays:
        raise SystemExit(f"integrity.py: the {tree.label} would import {strays}, not its own code")


# --- the origin, beyond the gateway -----------------------------------------------------------


def ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(
            f"integrity.py: `ip {' '.join(args)}` failed ({result.stderr.strip()}); the origin's "
            "network namespace needs root with CAP_NET_ADMIN and CAP_SYS_ADMIN"
        )


@contextlib.contextmanager
def origin_network() -> Iterator[tuple[str, str]]:
    """A network namespace linked to this one by a veth pair, on a subnet no route here uses;
    yields its name and the origin's address. Deleted afterwards."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    pid = os.getpid()
    subnet = next(
        prefix
        for prefix in (f"10.204.{(pid + n) % 250 + 1}" for n in range(250))
        if f"{prefix}." not in routes
    )
    namespace, near, far = f"sg-bench-{pid}", f"sgbn{pid}"[:15], f"sgbf{pid}"[:15]
    ip("netns", "add", namespace)
    try:
        ip("link", "add", near, "type", "veth", "peer", "name", far, "netns", namespace)
        ip("addr", "add", f"{subnet}.1/30", "dev", near)
        ip("link", "set", near, "up")
        ip("-n", namespace, "addr", "add", f"{subnet}.2/30", "dev", far)
        ip("-n", namespace, "link", "set", far, "up")
        yield namespace, f"{subnet}.2"
    finally:
        subprocess.run(["ip", "link", "del", near], capture_output=True)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


def origin_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed P-256 certificate: a cheap handshake, so the origin's core keeps up."""
    cert, key = folder / "origin.pem", folder / "origin.key"
    argv = [
        "openssl", "req", "-x509", "-nodes", "-days", "2",
        "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-subj", f"/CN={ORIGIN_NAME}", "-addext", f"subjectAltName=DNS:{ORIGIN_NAME}",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    subprocess.run(argv, capture_output=True, check=True)
    return cert, key


def serve_origin(namespace: str, address: str, cert: Path, key: Path, cpu: int) -> None:
    """gateway.py's canned responder on port 80, and behind TLS on 443, inside `namespace`."""
    with open(f"/run/netns/{namespace}") as target:
        os.setns(target.fileno(), os.CLONE_NEWNET)
    os.sched_setaffinity(0, {cpu})
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        plain = await loop.create_server(gateway.Responder, address, 80, backlog=1024)
        secure = await loop.create_server(gateway.Responder, address, 443, ssl=tls, backlog=1024)
        await asyncio.gather(plain.serve_forever(), secure.serve_forever())

    asyncio.run(serve())


@contextlib.contextmanager
def origin(namespace: str, address: str, cert: Path, key: Path, cpu: int) -> Iterator[None]:
    """The origin in its own process for the duration of the block."""
    spawn = multiprocessing.get_context("spawn")
    process = spawn.Process(target=serve_origin, args=(namespace, address, cert, key, cpu))
    process.start()
    try:
        for port in (80, 443):
            gateway.wait_for_port(port, process.is_alive, "the origin", None, address)
        yield
    finally:
        process.terminate()
        process.join()


# --- the load ---------------------------------------------------------------------------------


def wrk_scenario(label: str, script: Path, blocked: bool, cpu: int) -> Scenario:
    """wrk through the proxy; a blocked scenario expects every answer to be non-2xx (403)."""

    def measure(port: int, pid: int | None, seconds: int) -> Run:
        url = f"http://127.0.0.1:{port}/"
        load = gateway.run_wrk(url, seconds, cpu, script, pid)
        passed = load.requests - load.non_2xx
        expected, wrong = (load.non_2xx, passed) if blocked else (passed, load.non_2xx)
        return Run(expected, wrong + load.errors, seconds, load.proxy_cpu_s)

    return Scenario(label, measure)


_HEY_STATUS = re.compile(r"^\s+\[(\d{3})\]\s+(\d+) responses$", re.MULTILINE)
_HEY_ERROR = re.compile(r"^\s+\[(\d+)\]\s+(.+)$", re.MULTILINE)


def hey_scenario(label: str, url: str, refused: bool, cpu: int) -> Scenario:
    """hey through the proxy, a new connection per request (for https, CONNECT and a TLS
    handshake in the tunnel before the GET); a refused scenario expects every CONNECT to be
    answered 403 (Go reports `Forbidden`)."""

    def measure(port: int, pid: int | None, seconds: int) -> Run:
        argv = ["taskset", "-c", str(cpu), "hey", "-z", f"{seconds}s", "-c", str(CLIENTS)]
        argv += ["-t", "10", "-disable-keepalive", "-x", f"http://127.0.0.1:{port}", url]
        before = gateway.cpu_seconds(pid) if pid else 0.0
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        used = gateway.cpu_seconds(pid) - before if pid else 0.0
        answers = {int(code): int(count) for code, count in _HEY_STATUS.findall(out)}
        errors = out.partition("Error distribution:")[2]
        failed = [(int(count), message) for count, message in _HEY_ERROR.findall(errors)]
        forbidden = sum(count for count, message in failed if message.endswith(": Forbidden"))
        other_errors = sum(count for count, _ in failed) - forbidden
        if refused:
            expected, wrong = forbidden, sum(answers.values())
        else:
            expected, wrong = answers.get(200, 0), sum(answers.values()) - answers.get(200, 0)
            wrong += forbidden
        return Run(expected, wrong + other_errors, seconds, used)

    return Scenario(label, measure)


def scenarios(work: Path, cpu: int) -> list[Scenario]:
    """The five scenarios, their load generators pinned to `cpu`."""
    allowed, blocked = gateway.wrk_script(work, ORIGIN_NAME), gateway.wrk_script(work, BLOCKED_HOST)
    return [
        wrk_scenario("HTTP allowed, keep-alive", allowed, blocked=False, cpu=cpu),
        hey_scenario(
            "HTTP allowed, new connection", f"http://{ORIGIN_NAME}/", refused=False, cpu=cpu
        ),
        wrk_scenario("HTTP blocked (403, logged)", blocked, blocked=True, cpu=cpu),
        hey_scenario(
            "CONNECT allowed, TLS passthrough", f"https://{ORIGIN_NAME}/", refused=False, cpu=cpu
        ),
        hey_scenario(
            "CONNECT refused (403, logged)", f"https://{BLOCKED_HOST}/", refused=True, cpu=cpu
        ),
    ]


# --- the proxies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proxy:
    tree: Tree
    port: int
    pid: int


def proxy_argv(config: Path, port: int, hosts: Path, confdir: Path) -> list[str]:
    """`schoolgate run` in a mount namespace whose /etc/hosts is `hosts`."""
    mount = 'mount --bind "$0" /etc/hosts && exec "$@"'
    return [
        "unshare", "--mount", "sh", "-c", mount, str(hosts),
        str(gateway.BIN / "schoolgate"), "run", "--config", str(config),
        "--listen-port", str(port),
        "--", "-q", "--set", f"confdir={confdir}",
    ]  # fmt: skip


def start_proxy(
    stack: contextlib.ExitStack, tree: Tree, shipped: Path, hosts: Path, work: Path, cpu: int
) -> Proxy:
    """`tree`'s gateway pinned to `cpu`, with the shipped policy, its own incident log and confdir;
    checked to block BLOCKED_HOST and to pass ORIGIN_NAME before it is measured."""
    folder = work / f"{tree.label}-proxy"
    folder.mkdir()
    empty = folder / "empty.txt"
    empty.touch()
    config = gateway.write_config(
        folder, empty, keep_shipped_lists=True, shipped=shipped, loopback_origin=False
    )
    check_imports(tree, work)
    port = gateway.free_port()
    argv = proxy_argv(config, port, hosts, folder / "confdir")
    log = folder / "proxy.log"
    env = tree_environment(tree)
    pid = stack.enter_context(gateway.running(argv, cpu, port, log, env, work))
    for host, status in ((ORIGIN_NAME, 200), (BLOCKED_HOST, 403)):
        answer = gateway.status_through(port, host)
        if answer != status:
            tail = log.read_text(errors="replace")[-2000:]
            raise SystemExit(
                f"integrity.py: the {tree.label} answered {answer} for http://{host}/, "
                f"not {status}\n{tail}"
            )
    return Proxy(tree, port, pid)


# --- the rounds -------------------------------------------------------------------------------


def check(scenario: Scenario, tree: Tree, run: Run) -> str | None:
    """What is wrong with a run, if anything: no answer as expected, or too many others."""
    if run.expected == 0 or run.unexpected > MOST_UNEXPECTED * run.expected:
        return (
            f"{scenario.label}, {tree.label}: {run.expected} answers as expected, "
            f"{run.unexpected} not"
        )
    return None


def rounds(
    settings: Settings, cases: Sequence[Scenario], proxies: Sequence[Proxy]
) -> tuple[dict[str, dict[str, list[Run]]], list[str]]:
    """Every scenario against every proxy in each round, the order turned round by round and
    scenario by scenario; the runs, and what was wrong with any of them."""
    results: dict[str, dict[str, list[Run]]] = {
        case.label: {proxy.tree.label: [] for proxy in proxies} for case in cases
    }
    errors = []
    for number in range(settings.rounds):
        gateway.progress(f"round {number + 1} of {settings.rounds}")
        for index, scenario in enumerate(cases):
            order = proxies if (number + index) % 2 == 0 else proxies[::-1]
            for proxy in order:
                run = scenario.measure(proxy.port, proxy.pid, settings.seconds)
                results[scenario.label][proxy.tree.label].append(run)
                gateway.progress(
                    f"  {scenario.label}, {proxy.tree.label}: {run.per_second:,.0f} req/s, "
                    f"{run.cpu_us:,.0f} us CPU a request, {run.unexpected} unexpected"
                )
                if problem := check(scenario, proxy.tree, run):
                    errors.append(problem)
    return results, errors


def cpu_of(proxy: Proxy) -> float:
    return gateway.cpu_seconds(proxy.pid)


def cpu_busy(cpu: int) -> tuple[float, float]:
    """Seconds `cpu` has been busy (anything but idle and waiting for I/O), and in all, since
    boot (/proc/stat): how much of the proxies' core other processes took."""
    with open("/proc/stat") as stat:
        fields = next(line.split() for line in stat if line.startswith(f"cpu{cpu} "))
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, fields[1:9])
    busy = user + nice + system + irq + softirq + steal
    tick = os.sysconf("SC_CLK_TCK")
    return busy / tick, (busy + idle + iowait) / tick


# --- the report -------------------------------------------------------------------------------


def ratios(runs: dict[str, list[Run]], figure: Callable[[Run], float]) -> list[float]:
    """Candidate / baseline, round by round."""
    return [figure(c) / figure(b) for b, c in zip(runs["baseline"], runs["candidate"], strict=True)]


def report(results: dict[str, dict[str, list[Run]]]) -> tuple[str, list[str]]:
    """The table, and the verdict on the target per scenario."""
    header = ["scenario", "baseline req/s", "candidate req/s", "x baseline (range)"]
    header += ["baseline CPU us/req", "candidate CPU us/req", "x baseline (range)", "failed"]
    rows, verdicts = [], []
    for label, runs in results.items():
        by_rate = ratios(runs, lambda run: run.per_second)
        by_cpu = ratios(runs, lambda run: run.cpu_us)
        cost = statistics.median(by_cpu)
        rows.append(
            [
                label,
                *(f"{statistics.median(r.per_second for r in runs[t]):,.0f}" for t in runs),
                f"{statistics.median(by_rate):.3f} ({min(by_rate):.2f}-{max(by_rate):.2f})",
                *(f"{statistics.median(r.cpu_us for r in runs[t]):,.0f}" for t in runs),
                f"{cost:.3f} ({min(by_cpu):.2f}-{max(by_cpu):.2f})",
                "/".join(str(sum(r.unexpected for r in runs[t])) for t in runs),
            ]
        )
        verdicts.append(
            f"{label}: CPU per request {cost - 1:+.1%} against the baseline, "
            f"target under {TARGET - 1:+.0%}: {gateway.verdict(cost < TARGET)}"
        )
    return gateway.markdown_table(header, rows), verdicts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--baseline",
        default=DEFAULT_BASELINE,
        help=f"the commit to compare with ({DEFAULT_BASELINE})",
    )
    parser.add_argument("--quick", action="store_true", help="3 rounds of 2 s: a smoke test")
    parser.add_argument("--rounds", type=int, help="rounds (at least 3)")
    parser.add_argument("--seconds", type=int, help="seconds per run")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    settings = Settings(
        max(3, args.rounds or settings.rounds),
        args.seconds or settings.seconds,
        settings.warm_up_seconds,
    )
    missing = sorted({package for tool, package in TOOLS.items() if not shutil.which(tool)})
    if missing:
        print(
            f"integrity.py: missing tools; on Debian: apt-get install -y {' '.join(missing)}",
            file=sys.stderr,
        )
        return 2
    if os.geteuid() != 0:
        print("integrity.py: needs root (network and mount namespaces)", file=sys.stderr)
        return 2
    cpus = sorted(os.sched_getaffinity(0))
    proxy_cpu, load_cpu = cpus[0], cpus[-1]  # one and the same on a single core
    started, clock, load_at_start = dt.datetime.now(dt.UTC), time.monotonic(), os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="schoolgate-integrity-") as folder,
        contextlib.ExitStack() as stack,
    ):
        work = Path(folder)
        baseline = stack.enter_context(baseline_tree(args.baseline, work))
        trees = (baseline, candidate_tree())
        namespace, address = stack.enter_context(origin_network())
        hosts = work / "hosts"
        hosts.write_text(f"{Path('/etc/hosts').read_text()}\n{address} {ORIGIN_NAME}\n")
        stack.enter_context(origin(namespace, address, *origin_certificate(work), load_cpu))
        shipped = baseline.root / "config" / "policy.yaml"
        cases = scenarios(work, load_cpu)
        proxies = []
        for tree in trees:
            gateway.progress(f"starting the {tree.label}: {tree.description}")
            proxy = start_proxy(stack, tree, shipped, hosts, work, proxy_cpu)
            proxies.append(proxy)
            for scenario in cases:
                warm = scenario.measure(proxy.port, None, settings.warm_up_seconds)
                if problem := check(scenario, tree, warm):
                    raise SystemExit(f"integrity.py: warm-up failed: {problem}")
        (busy, total), ours = cpu_busy(proxy_cpu), sum(map(cpu_of, proxies))
        results, errors = rounds(settings, cases, proxies)
        (busy_after, total_after), ours_after = cpu_busy(proxy_cpu), sum(map(cpu_of, proxies))
        others = (busy_after - busy - (ours_after - ours)) / (total_after - total)
    table, verdicts = report(results)
    print(f"# benchmarks/integrity.py, {started:%Y-%m-%d %H:%M} UTC\n\n{gateway.machine()}")
    print(
        f"Load average when the run started: {load_at_start:.2f}. Other processes kept CPU "
        f"{proxy_cpu}, the proxies' core, busy {max(others, 0):.0%} of the time during the "
        "rounds (about 0% on a quiet machine; the busier, the noisier the ratios).\n"
    )
    for tree in trees:
        print(f"- {tree.label}: {tree.description}")
    print(
        f"\n{settings.rounds} interleaved rounds of {settings.seconds} s per scenario and tree; "
        f"the proxies on CPU {proxy_cpu}; {CLIENTS} clients (wrk, hey) and the origin on CPU "
        f"{load_cpu}. Ratios are candidate / baseline, the median of the per-round ratios.\n"
    )
    print(table, "", *verdicts, sep="\n")
    print(f"\nThe run took {time.monotonic() - clock:.0f} s.")
    for problem in errors:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
