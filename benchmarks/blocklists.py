"""How long `schoolgate blocklist import` takes for a 1,000,000-line hosts file.

    .venv/bin/python benchmarks/blocklists.py [--lines N]

Writes a StevenBlack-style hosts file (a header, section comments, `0.0.0.0 host` lines, one
in a hundred a repeat and one in a thousand a name the importer rejects) and a copy of the
shipped config and lists in a temporary folder, then runs the installed command twice, as IT
would: the first import adds every new host, the second finds them all present. Each time is
the whole command (start-up, reading, checking every line against the list, writing the list
and its policy_changes row). Target (the blocklists issue): 1,000,000 lines in under 20 s.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHOOLGATE = Path(sys.executable).with_name("schoolgate")


def write_hosts(path: Path, lines: int) -> None:
    """A hosts file of `lines` lines shaped like the community lists schools import."""
    with path.open("w") as out:
        out.write("# Title: synthetic hosts file for the schoolgate import benchmark\n#\n")
        for n in range(lines - 2):
            if n % 1000 == 0:
                out.write(f"# section {n // 1000}\n")
            elif n % 1000 == 500:
                out.write("0.0.0.0 bad_name!.example\n")
            elif n % 100 == 1:
                out.write(f"0.0.0.0 host{n - 1}.site{(n - 1) % 4999}.example\n")
            else:
                out.write(f"0.0.0.0 host{n}.site{n % 4999}.example\n")


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_import(config: Path, hosts: Path) -> tuple[float, float, str]:
    """Wall and CPU seconds for one whole `schoolgate blocklist import`, and what it printed.

    CPU time is printed too because a shared machine's wall time says as much about the
    other work on it as about the import."""
    command = [str(SCHOOLGATE), "blocklist", "import", "social_networks", str(hosts)]
    cpu = _child_cpu()
    start = time.perf_counter()
    done = subprocess.run(
        [*command, "--config", str(config), "--reason", "benchmark", "--show-rejected", "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - start, _child_cpu() - cpu, done.stdout


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        shutil.copytree(ROOT / "config", root / "config")
        shutil.copytree(ROOT / "blocklists", root / "blocklists")
        config = root / "config" / "policy.yaml"
        shipped = config.read_text()
        config.write_text(shipped.replace("../data/schoolgate.db", "../data/bench.db"))
        hosts = root / "big.hosts"
        write_hosts(hosts, args.lines)
        size = hosts.stat().st_size / 1e6
        print(f"hosts file: {args.lines:,} lines, {size:.1f} MB")
        for label in ("first import (adds)", "second import (all present)"):
            seconds, cpu, output = run_import(config, hosts)
            counts = [line.strip() for line in output.splitlines() if line.startswith("  ")][:3]
            rate = args.lines / seconds
            print(
                f"{label}: {seconds:.2f} s ({cpu:.2f} s CPU), {rate:,.0f} lines/s; "
                + "; ".join(counts)
            )


if __name__ == "__main__":
    main()
