"""Streaming: the latency from a file drop to a visible article, and the CPU when idle.

    python benchmarks/stream.py [--drops 50] [--window 2s] [--poll 1s] [--idle 30]

Starts `newsbeam stream` on an empty folder, drops one new story every couple of seconds, and
for each drop measures the time until its article can be read from OUT/articles (a reader
polling the dataset every 0.1 s, as a user's notebook would). Then, with nothing arriving,
samples the stream process's CPU time over --idle seconds (from /proc: user + system ticks).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.dataset as ds

REPO = Path(__file__).resolve().parent.parent


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (the Prism runner newsbeam starts is one)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, IndexError):
                continue
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (those that exited since count nothing)."""
    total = 0
    for pid in pids:
        try:
            fields = _stat(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def visible_urls(out: Path) -> set[str]:
    folder = out / "articles"
    if not folder.exists():
        return set()
    try:
        table = ds.dataset(str(folder), format="parquet", partitioning="hive").to_table(
            columns=["url"])
    except (FileNotFoundError, OSError):
        return set()  # a file committed between listing and reading: look again
    return set(table.column("url").to_pylist())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drops", type=int, default=50)
    parser.add_argument("--window", default="2s")
    parser.add_argument("--poll", default="1s")
    parser.add_argument("--settle", default="1s")
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--runner", default="PrismRunner",
                        help="PrismRunner (the streaming graph, the default) or DirectRunner "
                             "(micro-batches)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        folder, out = tmp / "in", tmp / "out"
        folder.mkdir()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "stream", str(folder), "--output", str(out),
             "--window", args.window, "--poll", args.poll, "--settle", args.settle, "-q",
             "--runner", args.runner],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(3 if args.runner == "DirectRunner" else 6)  # start-up
        latencies = []
        for i in range(args.drops):
            url = f"https://latency.example/{i}"
            record = {"url": url, "title": f"Drop {i}",
                      "text": " ".join(f"d{i}w{k} x{k % 11}." for k in range(100))}
            t0 = time.monotonic()
            (folder / f"drop{i:03d}.jsonl").write_text(json.dumps(record) + "\n")
            while url not in visible_urls(out):
                if proc.poll() is not None:
                    raise SystemExit(proc.stderr.read() if proc.stderr else "stream died")
                time.sleep(0.1)
            latencies.append(time.monotonic() - t0)
        time.sleep(5)  # let the last window finish
        tree = process_tree(proc.pid)
        c0, t0 = cpu_seconds(tree), time.monotonic()
        time.sleep(args.idle)
        idle = (cpu_seconds(tree) - c0) / (time.monotonic() - t0)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    print(f"newsbeam stream on {args.runner} ({len(tree)} processes), window {args.window}, "
          f"poll {args.poll}, settle {args.settle}")
    print(f"  drop -> visible article over {len(latencies)} drops: median "
          f"{statistics.median(latencies):.2f} s, max {max(latencies):.2f} s, "
          f"min {min(latencies):.2f} s")
    print(f"  idle CPU over {args.idle:.0f} s: {idle * 100:.2f}% of one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
