"""The weekly report over 1,000,000 incidents spread over a term: wall time and peak memory.

    .venv/bin/python benchmarks/report.py [--incidents N] [--keep DIR] [--repeat N]

Builds a SQLite incident log (rows written with sqlite3.executemany in one transaction, in
time order as the proxy writes them: bursts of a few requests per attempt, mostly in school
hours, from 700 people), then runs `schoolgate report` for week 2026-W47 as a fresh process
per run, and prints a Markdown table. The trend reads the eleven weeks of term before W47:
the first report on the log counts them all and stores them (`week_counts`); on a Monday,
last week's report has stored all but the week just ended; run again, all are stored.
Targets from issue 3: json under 3 s, html under 5 s, peak memory under 300 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from addons.incidents import create_schema, make_engine

BIN = Path(sys.executable).parent
TERM_START, TERM_END = dt.date(2026, 9, 3), dt.date(2026, 12, 17)
SERVICES = [f"{name}.com" for name in ("instagram", "tiktok", "facebook", "snapchat", "x")]
SERVICES += [f"social{n}.example" for n in range(25)]
COLUMNS = (
    *("id", "occurred_at", "site", "client_ip", "username", "client_group", "host", "domain"),
    *("category", "rule", "action", "method", "url", "user_agent"),
)
W46_SINCE = "2026-11-09 00:00:00"  # Monday 9 November 2026, 00:00 in London (GMT) as UTC
HOURS = [7, 8, 9, 10, 10, 11, 11, 12, 12, 12, 13, 13, 14, 14, 15, 16, 17, 18, 19, 20, 21, 22]
CONFIG = """\
school: {{name: Benchmark School, site: bench, timezone: Europe/London, contact: the office}}
school_day:
  weekdays: [mon, tue, wed, thu, fri]
  start: "08:30"
  end: "15:30"
  terms: [{{name: Autumn 2026, start: {start}, end: {end}}}]
groups: {{staff: {{networks: [10.10.0.0/16]}}, pupils: {{networks: [10.20.0.0/16]}}}}
default_group: everyone
categories: {{social_networks: [blocked.txt]}}
rules:
  - {{name: school-it-ban, groups: ["*"], categories: [social_networks], when: always,
     action: block, clause: "Section 3", policy: "No social networking on the school IT system."}}
database: sqlite:///{database}
"""


def incidents(count: int, seed: int = 3) -> Iterator[tuple[object, ...]]:
    """`count` rows in time order: attempts of 1 to 8 requests, seconds apart."""
    rng = random.Random(seed)
    people = [(f"staff{n:03d}", f"10.10.{n // 250}.{n % 250}", "staff") for n in range(100)]
    people += [(None, f"10.20.{n // 250}.{n % 250}", "pupils") for n in range(600)]
    days = [TERM_START + dt.timedelta(days=n) for n in range((TERM_END - TERM_START).days + 1)]
    weights = [5 if day.weekday() < 5 else 1 for day in days]
    starts = []
    while len(starts) * 4.5 < count:
        day = rng.choices(days, weights)[0]
        moment = dt.datetime.combine(day, dt.time(rng.choice(HOURS), rng.randrange(60)))
        starts.append(moment + dt.timedelta(seconds=rng.randrange(60)))
    rows = []
    for start in starts:
        user, ip, group = rng.choice(people)
        domain = rng.choices(SERVICES, weights=range(len(SERVICES), 0, -1))[0]
        for burst in range(rng.randint(1, 8)):
            at = start + dt.timedelta(seconds=burst * rng.randint(1, 50))
            rows.append((at, user, ip, group, domain))
    rows.sort(key=lambda row: row[0])
    for number, (at, user, ip, group, domain) in enumerate(rows[:count], start=1):
        yield (
            number, at.isoformat(" ", "microseconds"), "bench", ip, user, group,
            f"www.{domain}", domain, "social_networks", "school-it-ban", "block", "CONNECT",
            None, None,
        )  # fmt: skip


def build(folder: Path, count: int) -> Path:
    """Write the config, its list and the incident log; return the config's path."""
    database = folder / "data" / "schoolgate.db"
    engine = make_engine(f"sqlite:///{database}")
    create_schema(engine)
    engine.dispose()
    with sqlite3.connect(database) as db:
        db.executemany(
            f"INSERT INTO incidents ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * 14)})",
            incidents(count),
        )
    (folder / "blocked.txt").write_text("".join(f"{s}\n" for s in SERVICES))
    config = folder / "policy.yaml"
    config.write_text(CONFIG.format(start=TERM_START, end=TERM_END, database=database))
    return config


def measure(*args: str) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one `schoolgate` process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(BIN / "schoolgate"), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    assert status == 0, process.stderr.read() if process.stderr else status
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="build the log here and keep it")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each report (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="schoolgate-report-") as scratch:
        folder = args.keep or Path(scratch)
        started = time.perf_counter()
        # in a process of its own: a child forked from one holding the million rows would
        # count them in its own peak RSS
        with ProcessPoolExecutor(max_workers=1) as builder:
            config = builder.submit(build, folder, args.incidents).result()
        print(f"built {args.incidents:,} incidents in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)  # fmt: skip
        week = ("report", "--config", str(config), "--week", "2026-W47")
        term = ("report", "--config", str(config), "--term", "Autumn 2026")
        database = folder / "data" / "schoolgate.db"
        runs: dict[str, tuple[str | None, tuple[str, ...]]] = {
            # (SQL run on the log before the report: what the earlier reports left stored)
            "json, week 2026-W47, first report on the log": (
                "DELETE FROM week_counts", (*week, "--format", "json")
            ),
            "json, week 2026-W47, a Monday: W46 counted, W36-W45 stored": (
                f"DELETE FROM week_counts WHERE since >= '{W46_SINCE}'",
                (*week, "--format", "json"),
            ),
            "json, week 2026-W47, run again": (None, (*week, "--format", "json")),
            "html, week 2026-W47, run again": (
                None, (*week, "--format", "html", "--output", str(folder / "w.html"))
            ),
            "json, term statement": (None, (*term, "--format", "json")),
        }  # fmt: skip
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores\n")
        print(f"median of {args.repeat} runs (range in brackets)\n")
        print("| report | wall (s) | CPU (s) | peak RSS (MB) |\n|---|---:|---:|---:|")
        figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
        for _ in range(args.repeat):  # interleaved, so a noisy moment spreads over every row
            for name, (before, run) in runs.items():
                if before:
                    with sqlite3.connect(database) as db:
                        db.execute(before)
                figures[name].append(measure(*run))
        for name, measured in figures.items():
            wall, cpu, peak = (sorted(column) for column in zip(*measured, strict=True))
            print(f"| {name} | {_median(wall)} | {_median(cpu)} | {_median(peak, 0)} |")
        print("\ntargets: json < 3 s, html < 5 s, peak < 300 MB (weekly reports)")


def _median(values: list[float], digits: int = 2) -> str:
    middle = values[len(values) // 2]
    if len(values) < 3:
        return f"{middle:.{digits}f}"
    return f"{middle:.{digits}f} ({values[0]:.{digits}f}-{values[-1]:.{digits}f})"


if __name__ == "__main__":
    main()
