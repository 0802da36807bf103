"""The AvaTax transaction import at its limit: 100,000 lines written and validated, each beside a
bare ``csv`` pass over the same rows in the same run, and peak RSS.

    python benchmarks/files.py                  # 100,000 lines (20 a document)
    python benchmarks/files.py --lines 2000 --runs 1    # CI smoke size

Each side is timed ``--runs`` times (default 3) and the best kept.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _memory import peak_rss_mb

from taxbridge.files import avatax_template, read
from taxbridge.files.template import Writer, letter_index

GOOD = {
    "A": "3", "C": "1", "D": "2026-11-20", "E": "DEFAULT", "I": "P0000000", "M": "1",
    "T": "350 5th Ave", "U": "New York", "V": "NY", "W": "10118", "X": "US",
    "Y": "822 Reed St", "Z": "Philadelphia", "AA": "PA", "AB": "19147", "AC": "US", "AG": "USD",
}  # fmt: skip


def rows(count: int) -> list[list[str]]:
    """``count`` valid lines, 20 a document."""
    template = avatax_template()
    base = [""] * template.width
    for letter, value in GOOD.items():
        base[letter_index(letter)] = value
    made = []
    for n in range(count):
        row = list(base)
        document, line = divmod(n, 20)
        row[letter_index("B")] = f"A-{document:07d}"
        row[letter_index("F")] = f"C{document % 97:03d}"
        row[letter_index("H")] = f"{document}-{line + 1}"
        row[letter_index("K")] = f"SKU-{line}"
        row[letter_index("L")] = f"Item {line} of order {document}"
        row[letter_index("N")] = f"{10 + line}.{line:02d}"
        made.append(row)
    return made


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The fastest of ``runs`` timings of ``work``: this shared machine's noise only adds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def validate(path: Path, lines: int, runs: int) -> None:
    """Time a bare csv.reader pass and the validator over ``path``, in a fresh process, so the
    peak RSS is the validator's own (it streams)."""
    template = avatax_template()

    def bare() -> int:
        with path.open(newline="") as handle:
            return sum(1 for _ in csv.reader(handle)) - 1

    report = read(template, path)
    assert report.ok, report.problems[:3]
    assert report.rows == bare() == lines
    bare_read = best_of(runs, bare)
    ours_read = best_of(runs, lambda: read(template, path))
    print(f"read:  bare csv.reader    {bare_read:.2f} s  (best of {runs})")
    print(f"read:  validate           {ours_read:.2f} s  ({ours_read / bare_read:.1f}x)")
    print(f"peak RSS (validating)     {peak_rss_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="timings of each side (best kept)")
    parser.add_argument("--validate", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.validate:
        validate(Path(args.validate), args.lines, args.runs)
        return
    template = avatax_template()
    data = rows(args.lines)
    with tempfile.TemporaryDirectory() as folder:
        bare_path, ours_path = Path(folder) / "bare.csv", Path(folder) / "ours.csv"

        def bare() -> None:
            with bare_path.open("w", newline="") as handle:
                out = csv.writer(handle, lineterminator="\r\n")
                out.writerow(template.headers)
                out.writerows(data)

        def ours() -> None:
            with Writer(template, ours_path) as writer:
                for row in data:
                    writer.write(list(row))

        bare_write = best_of(args.runs, bare)
        ours_write = best_of(args.runs, ours)
        print(f"lines                     {args.lines:,}")
        print(f"write: bare csv.writer    {bare_write:.2f} s  (best of {args.runs})")
        print(f"write: template Writer    {ours_write:.2f} s  ({ours_write / bare_write:.1f}x)")
        data.clear()
        command = [sys.executable, __file__, "--validate", str(ours_path)]
        command += ["--lines", str(args.lines), "--runs", str(args.runs)]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
