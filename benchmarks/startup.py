"""What starting costs: ``import taxbridge``, ``taxbridge --version`` and ``taxbridge --help``,
each in a fresh interpreter, against the interpreter alone (``python -c pass``, the floor) in
the same run. A cron job every minute pays this on every run. Prints the median and the best of
N runs in ms, and the modules that cost most to import for ``taxbridge --version``.

    python benchmarks/startup.py              # 21 runs each
    python benchmarks/startup.py --runs 3     # CI smoke size
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "python -c pass (the floor)": [sys.executable, "-c", "pass"],
    "import taxbridge": [sys.executable, "-c", "import taxbridge"],
    "taxbridge --version": [sys.executable, "-m", "taxbridge", "--version"],
    "taxbridge --help": [sys.executable, "-m", "taxbridge", "--help"],
}


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def _heaviest(argv: list[str], count: int) -> list[tuple[int, str]]:
    """The top-level imports with the largest cumulative time (``-X importtime``), in us."""
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    found = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or "cumulative" in line:
            continue
        name = parts[2][1:]  # one space, then two more per level of nesting
        if not name.startswith(" "):
            found.append((int(parts[1]), name))
    return sorted(found, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs of each case (default 21)")
    args = parser.parse_args()
    for argv in CASES.values():
        _time(argv)  # warm the file cache
    print(f"{'case':<30} {'median ms':>10} {'best ms':>8}   ({args.runs} runs each)")
    for name, argv in CASES.items():
        times = [_time(argv) for _ in range(args.runs)]
        print(f"{name:<30} {statistics.median(times):>10.1f} {min(times):>8.1f}")
    print("heaviest top-level imports of taxbridge --version (cumulative ms):")
    for micros, name in _heaviest(CASES["taxbridge --version"], 6):
        print(f"  {micros / 1000:>7.1f}  {name}")


if __name__ == "__main__":
    main()
