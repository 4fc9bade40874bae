"""Where a run's time and memory go, stage by stage, on the DirectRunner.

    python benchmarks/stages.py INPUT... [newsbeam run options]   (--output defaults to a
                                                                   temporary folder)
    python benchmarks/stages.py --cpu INPUT...                    (CPU seconds per stage)
    python benchmarks/stages.py --engine FlinkRunner INPUT...     (whole-run peaks instead)

Default: runs `newsbeam run` in this process and prints, for each fused stage the
FnApiRunner executes (a bundle), its seconds and the resident set after it (current and
peak), then the ten slowest stages. The wrapper times `FnApiRunner._execute_bundle`, a
private method of apache-beam 2.77: it is a measuring tool, not part of newsbeam.

With --engine: runs `newsbeam run --runner ENGINE` in a child process and samples, every
0.5 s, the resident set of that process (the Python worker, with LOOPBACK) and of its
children (the JVM of an embedded Flink or Spark, the Prism binary); prints seconds and peaks.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _status_mib(pid: int | str = "self") -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in MiB; (0, 0) once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0

    def field(name: str) -> int:
        found = re.search(name + r":\s+(\d+)", text)
        return int(found.group(1)) // 1024 if found else 0

    return field("VmRSS"), field("VmHWM")


def _children(pid: int) -> list[int]:
    """All descendants of a process (from /proc/PID/task/*/children)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def per_stage(argv: list[str], clock=time.perf_counter) -> int:
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    from pipeline.main import main

    original = fn_runner.FnApiRunner._execute_bundle
    rows: list[tuple[float, str]] = []

    def timed(self, context, bundle_context, bundle_input):  # type: ignore[no-untyped-def]
        t0 = clock()
        result = original(self, context, bundle_context, bundle_input)
        seconds = clock() - t0
        name = bundle_context.stage.name
        rows.append((seconds, name))
        rss, hwm = _status_mib()
        print(f"{seconds:8.2f} s  rss {rss:5d} MiB  peak {hwm:5d} MiB  {name[:110]}",
              file=sys.stderr)
        return result

    fn_runner.FnApiRunner._execute_bundle = timed
    try:
        code = main(["run", *argv])
    finally:
        fn_runner.FnApiRunner._execute_bundle = original
    total = sum(seconds for seconds, _ in rows)
    print(f"\n{len(rows)} stages, {total:.1f} s in all; the slowest:")
    for seconds, name in sorted(rows, reverse=True)[:10]:
        print(f"{seconds:8.2f} s  {name[:150]}")
    return code


def engine_peaks(engine: str, argv: list[str]) -> int:
    cmd = [sys.executable, "-m", "pipeline", "run", *argv, "--runner", engine, "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO)
    own = kids = 0
    while proc.poll() is None:
        own = max(own, _status_mib(proc.pid)[0])
        kids = max(kids, sum(_status_mib(k)[0] for k in _children(proc.pid)))
        time.sleep(0.5)
    seconds = time.perf_counter() - t0
    print(f"{engine}: exit {proc.returncode}, {seconds:.1f} s, Python process peak {own} MiB, "
          f"its children's peak {kids} MiB")
    return proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", help="FlinkRunner, SparkRunner or PrismRunner")
    parser.add_argument("--cpu", action="store_true",
                        help="time each stage in CPU seconds of this process (all its "
                             "threads) instead of wall seconds: steadier on a shared machine")
    args, rest = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        if "--output" not in rest:
            rest += ["--output", str(Path(tmp) / "out")]
        if args.engine:
            return engine_peaks(args.engine, rest)
        return per_stage(rest + ["--quiet"], time.process_time if args.cpu else time.perf_counter)


if __name__ == "__main__":
    sys.exit(main())
