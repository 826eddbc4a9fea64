"""How fast the incident log writes, and what logging costs blocked traffic through the proxy.

    .venv/bin/python benchmarks/writer.py [--quick] [--postgres URL]

(a) The writer alone, on SQLite (a file in a temporary folder) and on PostgreSQL (a schema of
    its own, dropped afterwards): a thread offers incident rows at a steady rate (10,000/s,
    20,000/s, 40,000/s, ...) until the writer falls behind; "sustained" is the best rate it
    wrote with nothing spilled and under a second of backlog at the end. Then a burst (every
    row queued at once), which goes partly through the spill file, as a backlog does. The
    table is counted after each run (no loss). Target (issue 5): >= 20,000/s on SQLite.
(b) Blocked traffic through the proxy with logging on (`addons/schoolgate.py`) and off
    (`benchmarks/unlogged_addon.py`), the same options, in interleaved rounds: the proxy pinned
    to one core, wrk (50 keep-alive connections asking for a listed host) on the other.
    Target: logging on >= 95% of logging off, per CPU-second of the proxy (its rate on a core
    of its own: these machines are shared); the wall-clock rate is printed beside it. The
    logged proxy is then stopped and its rows counted against the 403s wrk read.

Uses benchmarks/gateway.py's wrk and process helpers. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import gateway
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from addons.config import load_config
from addons.incidents import Incident, create_schema, incident_row, make_engine
from addons.policy import Policy
from addons.writer import IncidentWriter

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGET_WRITES = 20_000
TARGET_RATIO = 0.95
BLOCKED_HOST = "www.facebook.com"  # in the shipped social_networks list


@dataclass(frozen=True)
class Settings:
    steady_seconds: int  # per offered rate, for the writer alone
    burst: int  # rows queued at once, for the writer alone
    rounds: int  # of the proxy comparison
    seconds: int  # per wrk run


FULL = Settings(steady_seconds=5, burst=300_000, rounds=10, seconds=4)
QUICK = Settings(steady_seconds=2, burst=60_000, rounds=2, seconds=3)
RATES = (10_000, 20_000, 40_000, 60_000, 80_000)  # offered until the writer falls behind
TICK = 0.01  # the producer queues a slice of rows every 10 ms


# --- (a) the writer alone -------------------------------------------------------------------


@dataclass(frozen=True)
class WriterRun:
    database: str
    rate: int | None  # offered a second; None: every row at once
    rows: int
    seconds: float  # from the first row queued to the last one committed
    lag: float  # from the last row queued to the last one committed
    spilled: int
    stored: int

    @property
    def kept_up(self) -> bool:
        """Everything written as it came: nothing spilled, nothing lost, no backlog left."""
        return self.spilled == 0 and self.stored == self.rows and self.lag < 1.0


def blocked_rows(count: int) -> list[dict[str, object]]:
    """Rows as the proxy makes them for a pupil's blocked request, each with its own id."""
    policy = Policy(load_config(gateway.ROOT / "config" / "policy.yaml"))
    decision = policy.decide(BLOCKED_HOST, "10.20.1.5")
    return [
        incident_row(
            decision,
            site="bench",
            client_ip="10.20.1.5",
            username=None,
            method="GET",
            url=f"http://{BLOCKED_HOST}/",
            user_agent="benchmarks/writer.py",
        )
        for _ in range(count)
    ]


def run_writer(
    engine: Engine, spill: Path, rows: Sequence[dict[str, object]], rate: int | None
) -> WriterRun:
    """Queue `rows` at `rate` a second (None: all at once) until the writer has stored them."""
    create_schema(engine)  # not timed: a running proxy has its schema already
    writer = IncidentWriter(engine, spill)
    writer.start()
    step = int(rate * TICK) if rate else len(rows)
    start = time.perf_counter()
    for first in range(0, len(rows), step):
        if rate:
            time.sleep(max(0.0, start + first / rate - time.perf_counter()))
        for row in rows[first : first + step]:
            writer.add(row)
    queued = time.perf_counter()
    while writer.pending:
        time.sleep(0.005)
    end = time.perf_counter()
    writer.close()
    with engine.connect() as connection:
        stored = connection.scalar(select(func.count()).select_from(Incident)) or 0
        connection.execute(Incident.__table__.delete())
        connection.commit()
    lag = end - queued
    return WriterRun(engine.dialect.name, rate, len(rows), end - start, lag, writer.spilled, stored)


def runs_on(
    engine: Engine, work: Path, rows: Sequence[dict[str, object]], settings: Settings
) -> list[WriterRun]:
    """Rising offered rates until the writer falls behind, then a burst through the spill file."""
    runs: list[WriterRun] = []
    for rate in RATES:
        gateway.progress(f"writer alone: {engine.dialect.name}, {rate:,}/s offered")
        count = rate * settings.steady_seconds
        runs.append(
            run_writer(engine, work / f"{engine.dialect.name}-{rate}.jsonl", rows[:count], rate)
        )
        if not runs[-1].kept_up:
            break
    gateway.progress(f"writer alone: {engine.dialect.name}, {settings.burst:,} rows at once")
    runs.append(
        run_writer(
            engine, work / f"{engine.dialect.name}-burst.jsonl", rows[: settings.burst], None
        )
    )
    return runs


@contextlib.contextmanager
def own_schema(url: str) -> Iterator[str]:
    """A PostgreSQL schema for this run only; yields a URL whose tables are made there."""
    schema = f"schoolgate_bench_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            make_url(url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def writer_runs(settings: Settings, work: Path, postgres: str) -> tuple[list[WriterRun], str]:
    """SQLite, then PostgreSQL if it answers."""
    rows = blocked_rows(max(max(RATES) * settings.steady_seconds, settings.burst))
    engine = make_engine(f"sqlite:///{work / 'writer.db'}")
    runs = runs_on(engine, work, rows, settings)
    engine.dispose()
    note = ""
    try:
        with own_schema(postgres) as url:
            engine = make_engine(url)
            runs += runs_on(engine, work, rows, settings)
            engine.dispose()
    except OperationalError as e:
        note = f"PostgreSQL at {postgres} did not answer, so it is not measured: {e.orig}"
    return runs, note


def writer_report(runs: Sequence[WriterRun], note: str) -> str:
    header = ["database", "load", "rows", "written/s", "lag s", "spilled", "stored"]
    table = [
        [
            run.database,
            f"{run.rate:,}/s offered" if run.rate else "all at once",
            f"{run.rows:,}",
            f"{run.rows / run.seconds:,.0f}",
            f"{run.lag:.2f}",
            f"{run.spilled:,}",
            f"{run.stored:,}" + ("" if run.stored == run.rows else " LOST"),
        ]
        for run in runs
    ]
    lines = [gateway.markdown_table(header, table)]
    for database in dict.fromkeys(run.database for run in runs):
        best = max((r.rate or 0 for r in runs if r.database == database and r.kept_up), default=0)
        lost = any(r.stored != r.rows for r in runs if r.database == database)
        line = f"{database}: keeps up with {best:,} incidents/s (nothing spilled, lag under 1 s)"
        if database == "sqlite":
            met = best >= TARGET_WRITES and not lost
            line += f", target >= {TARGET_WRITES:,}/s with no loss: {gateway.verdict(met)}"
        lines.append(line + ("; ROWS LOST" if lost else "; no row lost"))
    return "\n\n".join([*lines, note] if note else lines)


# --- (b) through the proxy ------------------------------------------------------------------


def proxy_argv(addon: Path, config: Path, port: int, confdir: Path) -> tuple[str, ...]:
    """mitmdump as `schoolgate run` starts it, with `addon` as its script."""
    return (
        str(gateway.BIN / "mitmdump"),
        "-q",
        "--listen-host", "127.0.0.1",
        "--listen-port", str(port),
        "-s", str(addon),
        "--set", f"schoolgate_config={config}",
        "--set", "connection_strategy=lazy",
        "--set", f"confdir={confdir}",
    )  # fmt: skip


@dataclass
class Variant:
    label: str
    addon: Path
    port: int
    runs: list[gateway.Load]
    background_cpu_s: float = 0.0  # over the runs, in threads other than the event loop's


def background_cpu_seconds(pid: int) -> float:
    """CPU time of process `pid`'s threads but its main one: for schoolgate, the writer and the
    guard (the reload watcher and the retention timer sleep)."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        if task.name != str(pid):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def proxy_runs(settings: Settings, work: Path) -> tuple[dict[str, Variant], int, int]:
    """Interleaved wrk rounds against both proxies; then the logged one's rows and 403s."""
    empty = work / "empty.txt"
    empty.touch()
    config = gateway.write_config(work, empty, keep_shipped_lists=True)
    script = gateway.wrk_script(work, BLOCKED_HOST)
    variants = {
        "logging on": Variant(
            "logging on", gateway.ROOT / "addons" / "schoolgate.py", gateway.free_port(), []
        ),
        "logging off": Variant(
            "logging off",
            gateway.ROOT / "benchmarks" / "unlogged_addon.py",
            gateway.free_port(),
            [],
        ),
    }
    proxy_cpu, load_cpu = 0, 1
    answered = 0  # 403s wrk read from the logged proxy, warm-up included
    with contextlib.ExitStack() as stack:
        pids = {}
        for variant in variants.values():
            gateway.progress(f"starting the proxy with {variant.label}")
            argv = proxy_argv(
                variant.addon, config, variant.port, work / variant.label.replace(" ", "-")
            )
            log = work / f"proxy-{variant.port}.log"
            pids[variant.label] = stack.enter_context(
                gateway.running(argv, proxy_cpu, variant.port, log)
            )
            if gateway.status_through(variant.port, BLOCKED_HOST) != 403:
                raise SystemExit(f"writer.py: the proxy with {variant.label} did not block")
            warm = gateway.run_wrk(f"http://127.0.0.1:{variant.port}/", 2, load_cpu, script, None)
            if variant.label == "logging on":
                answered += 1 + warm.requests  # status_through's request, then the warm-up
        for number in range(settings.rounds):
            gateway.progress(f"round {number + 1} of {settings.rounds}")
            order = list(variants.values())
            for variant in order[number % 2 :] + order[: number % 2]:
                url = f"http://127.0.0.1:{variant.port}/"
                pid = pids[variant.label]
                before = background_cpu_seconds(pid)
                variant.runs.append(gateway.run_wrk(url, settings.seconds, load_cpu, script, pid))
                variant.background_cpu_s += background_cpu_seconds(pid) - before
        answered += sum(run.requests for run in variants["logging on"].runs)
    # Both proxies have stopped (SIGTERM): the logged one wrote everything it queued.
    engine = make_engine(load_config(config).database)
    with engine.connect() as connection:
        stored = connection.scalar(select(func.count()).select_from(Incident)) or 0
    engine.dispose()
    return variants, answered, stored


def proxy_report(variants: dict[str, Variant], answered: int, stored: int) -> str:
    on, off = variants["logging on"].runs, variants["logging off"].runs

    def ratio(figure: str) -> float:
        return statistics.median(
            getattr(a, figure) / getattr(b, figure) for a, b in zip(on, off, strict=True)
        )

    header = ["proxy (blocked, keep-alive)", "req/s", "range", "req/CPU-s", "p99 ms"]
    table = [
        [
            f"schoolgate, {label}",
            f"{statistics.median(run.requests_per_second for run in runs):,.0f}",
            f"{min(run.requests_per_second for run in runs):,.0f}-"
            f"{max(run.requests_per_second for run in runs):,.0f}",
            f"{statistics.median(run.per_cpu_second for run in runs):,.0f}",
            f"{statistics.median(run.p99_ms for run in runs):.0f}",
        ]
        for label, runs in (("logging on", on), ("logging off", off))
    ]
    by_cpu, by_wall = ratio("per_cpu_second"), ratio("requests_per_second")
    in_flight = gateway.CONNECTIONS * (len(on) + 1)  # wrk stops with requests unanswered
    rows_ok = answered <= stored <= answered + in_flight
    requests, cpu = sum(run.requests for run in on), sum(run.proxy_cpu_s for run in on)
    background = variants["logging on"].background_cpu_s
    return (
        f"{gateway.markdown_table(header, table)}\n\n"
        f"logging on keeps {by_cpu:.2f} x the requests per CPU-second of logging off "
        f"({by_wall:.2f} x its requests per second), target >= {TARGET_RATIO:.2f}: "
        f"{gateway.verdict(by_cpu >= TARGET_RATIO)}.\n"
        f"the writer's threads (all but the event loop's) used {background / cpu:.1%} of the "
        f"logged proxy's CPU, {background / requests * 1e6:.0f} us a request; the rest of the "
        f"difference is in the event loop's thread (building the row, the log line).\n"
        f"rows written by the logged proxy: {stored:,} for {answered:,} 403s wrk read "
        f"(up to {in_flight} more were in flight when wrk stopped): "
        f"{'none lost' if rows_ok else 'MISMATCH'}."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, fewer rounds")
    parser.add_argument(
        "--postgres", default=POSTGRES, help=f"a server to measure (default {POSTGRES})"
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="schoolgate-writer-") as folder:
        work = Path(folder)
        runs, note = writer_runs(settings, work, args.postgres)
        variants, answered, stored = proxy_runs(settings, work)
    print(f"# benchmarks/writer.py, {time.strftime('%Y-%m-%d %H:%M')}, {gateway.machine()}\n")
    print(f"## (a) the writer alone: {settings.steady_seconds} s a rate, then a burst\n")
    print(writer_report(runs, note))
    print(f"\n## (b) blocked traffic through the proxy, {settings.rounds} interleaved rounds of "
          f"{settings.seconds} s, {gateway.CONNECTIONS} connections\n")  # fmt: skip
    print(proxy_report(variants, answered, stored))
    return 0


if __name__ == "__main__":
    os.environ.pop("http_proxy", None)
    sys.exit(main())
