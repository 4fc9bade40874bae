"""Progress of a long batch run: inputs done out of total, rate and ETA.

The count is taken where input paths enter the graph. Beam runs a fused stage depth-first (an
element goes through read, parse, extraction, cleaning and fields before the next one enters),
so a path entering means the one before it is done with those stages. On a terminal the line
is redrawn in place; otherwise (a log file, a scheduler, --quiet) a plain line is written
every ``interval`` seconds. Counts are per worker process: with several workers each reports
its share.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

import apache_beam as beam

TTY_INTERVAL = 0.5
PLAIN_INTERVAL = 10.0


def progress_line(done: int, total: int, elapsed: float) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else float("inf")
    eta_text = f"{eta:.0f}s" if eta != float("inf") else "?"
    pct = 100.0 * done / total if total else 100.0
    return (f"newsbeam: {done}/{total} inputs ({pct:.0f}%), {rate:.1f}/s, "
            f"ETA {eta_text}")


class Reporter:
    """Decides when to write a progress line (pure but for the clock and the stream)."""

    def __init__(self, total: int, mode: str, stream: TextIO | None = None,
                 clock: Any = time.monotonic) -> None:
        self.total = total
        self.mode = mode  # "tty", "plain" or "off"
        self.stream = stream
        self.clock = clock
        self.started = clock()
        self.last = self.started
        self.done = 0

    def tick(self, n: int = 1) -> str | None:
        self.done += n
        if self.mode == "off":
            return None
        now = self.clock()
        interval = TTY_INTERVAL if self.mode == "tty" else PLAIN_INTERVAL
        if now - self.last < interval and self.done < self.total:
            return None
        if self.mode == "plain" and self.done >= self.total and now - self.started < interval:
            return None  # a short run: the summary says it all
        self.last = now
        line = progress_line(self.done, self.total, now - self.started)
        stream = self.stream or sys.stderr
        if self.mode == "tty":
            end = "\n" if self.done >= self.total else ""
            stream.write("\r\x1b[K" + line + end)
        else:
            stream.write(line + "\n")
        stream.flush()
        return line


class ShowProgress(beam.DoFn):
    """Pass input paths through, counting them (see the module docstring)."""

    def __init__(self, total: int, mode: str) -> None:
        self._total = total
        self._mode = mode
        self._reporter: Reporter | None = None

    def setup(self) -> None:
        self._reporter = Reporter(self._total, self._mode)

    def process(self, path: str) -> Iterator[str]:
        if self._reporter is not None:
            self._reporter.tick()
        yield path


def progress_mode(quiet: bool, stream: TextIO | None = None) -> str:
    stream = stream or sys.stderr
    if quiet or not stream.isatty():
        return "plain"
    return "tty"
