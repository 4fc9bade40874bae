"""Progress of a long batch run: inputs done out of total, rate and ETA.

The count is taken where input paths enter the graph, and where the pieces of a JSONL dump
read in pieces are taken for reading (one part per piece after its first: ``progress_total``).
Beam runs a fused stage depth-first (an element goes through read, parse, extraction, cleaning
and fields before the next one enters), so a path entering means the one before it is done
with those stages. On a terminal the line is redrawn in place; otherwise (a log file, a
scheduler, --quiet) a plain line is written every ``interval`` seconds.

With several workers on this machine (the DirectRunner's ``multi_processing`` and
``multi_threading`` modes, and a portable runner's LOOPBACK threads: Flink's or Spark's
embedded cluster, Prism; ``pipeline.runners.tallied_progress``) each worker counts its share
into a small file of a tally folder
(``ShowProgress(..., tally_dir)``), and the launching process sums the files and writes the
one line (``TallyProgress``). Elsewhere (one worker, or a cluster's workers, which see no
folder of this machine) ``ShowProgress`` writes the line itself.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import apache_beam as beam

from pipeline import logs

TTY_INTERVAL = 0.5
PLAIN_INTERVAL = 10.0


def progress_line(done: int, total: int, elapsed: float, unit: str = "inputs") -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else float("inf")
    eta_text = f"{eta:.0f}s" if eta != float("inf") else "?"
    pct = 100.0 * done / total if total else 100.0
    return (f"newsbeam: {done}/{total} {unit} ({pct:.0f}%), {rate:.1f}/s, "
            f"ETA {eta_text}")


def progress_total(inputs: Iterable[str], pieces: Mapping[str, int]) -> tuple[int, str]:
    """(total, unit) of a run's progress line: one per input file, but a JSONL dump that the
    read cuts into pieces (``pieces``: path -> number of pieces, ``transforms.read.dump_pieces``)
    counts one per piece, since the pieces are where its time goes; the unit is then "parts"."""
    total = sum(pieces.get(path, 1) for path in inputs)
    return total, "parts" if any(n > 1 for n in pieces.values()) else "inputs"


class Reporter:
    """Decides when to write a progress line (pure but for the clock and the stream)."""

    def __init__(self, total: int, mode: str, stream: TextIO | None = None,
                 clock: Any = time.monotonic, unit: str = "inputs") -> None:
        self.total = total
        self.mode = mode  # "tty", "plain" or "off"
        self.stream = stream
        self.clock = clock
        self.unit = unit
        self.started = clock()
        self.last = self.started
        self.done = 0
        self._lock = threading.Lock()  # ShowProgress instances of one process share it

    def tick(self, n: int = 1) -> str | None:
        with self._lock:
            return self.update(self.done + n)

    def update(self, done: int) -> str | None:
        """``done`` inputs so far: write a line when it is time to."""
        self.done = done
        if self.mode == "off":
            return None
        now = self.clock()
        interval = TTY_INTERVAL if self.mode == "tty" else PLAIN_INTERVAL
        if now - self.last < interval and self.done < self.total:
            return None
        if self.mode == "plain" and self.done >= self.total and now - self.started < interval:
            return None  # a short run: the summary says it all
        self.last = now
        line = progress_line(self.done, self.total, now - self.started, self.unit)
        stream = self.stream or sys.stderr
        if self.mode == "tty":
            end = "\n" if self.done >= self.total else ""
            stream.write("\r\x1b[K" + line + end)
            if stream is sys.stderr:
                logs.line_open(not end)
        else:
            stream.write(line + "\n")
        stream.flush()
        return line


# the Reporter of each run in this process, shared by its ShowProgress instances (the input
# paths' and the dump pieces'), so that one worker writes one line
_REPORTERS: dict[str, Reporter] = {}
_REPORTERS_LOCK = threading.Lock()


def shared_reporter(key: str, total: int, mode: str, unit: str = "inputs") -> Reporter:
    with _REPORTERS_LOCK:
        if key not in _REPORTERS:
            _REPORTERS[key] = Reporter(total, mode, unit=unit)
        return _REPORTERS[key]


class ShowProgress(beam.DoFn):
    """Pass input paths through, counting them (see the module docstring). ``key`` names
    the run: the instances of one run in one process share their line."""

    def __init__(self, total: int, mode: str, tally_dir: str | None = None,
                 key: str = "", unit: str = "inputs") -> None:
        self._total = total
        self._mode = mode
        self._tally_dir = tally_dir
        self._key = key
        self._unit = unit
        self._reporter: Reporter | None = None
        self._count = 0
        self._written = 0.0
        self._name = ""

    def setup(self) -> None:
        if self._tally_dir is None:
            self._reporter = (shared_reporter(self._key, self._total, self._mode, self._unit)
                              if self._key else
                              Reporter(self._total, self._mode, unit=self._unit))
        self._name = uuid.uuid4().hex  # this instance's count file

    def weight(self, element: Any) -> int:
        """What ``element`` counts for in the total: an input path, one."""
        return 1

    def process(self, element: Any) -> Iterator[Any]:
        n = self.weight(element)
        if n and self._reporter is not None:
            self._reporter.tick(n)
        elif n and self._tally_dir is not None:
            self._count += n
            if time.monotonic() - self._written >= TTY_INTERVAL:
                self._write_count()
        yield element

    def finish_bundle(self) -> None:
        if self._tally_dir is not None and self._count:
            self._write_count()

    def _write_count(self) -> None:
        """This worker's count, replacing its last one (a reader never sees half a file)."""
        assert self._tally_dir is not None
        self._written = time.monotonic()
        name = Path(self._tally_dir) / self._name
        part = name.with_suffix(".part")
        try:
            part.write_text(str(self._count), encoding="ascii")
            os.replace(part, name)
        except OSError:  # progress is never worth failing a run for
            pass


class ShowPieceProgress(ShowProgress):
    """Pass a JSONL dump's pieces (``transforms.read.Chunk``) through, counting those of the
    dumps in ``planned`` (the driver's ``dump_pieces``, which gave the total) but the first:
    the dump's path counted one as it entered. The pieces of a dump the driver did not plan
    (on an object store, where it does not open files) count nothing: that path counted one."""

    def __init__(self, total: int, mode: str, tally_dir: str | None = None,
                 key: str = "", unit: str = "inputs",
                 planned: Iterable[str] = ()) -> None:
        super().__init__(total, mode, tally_dir, key, unit)
        self._planned = frozenset(planned)

    def weight(self, element: Any) -> int:
        return int(element.piece > 0 and element.input_path in self._planned)


def tally(tally_dir: str) -> int:
    """The sum of the workers' counts in ``tally_dir``."""
    done = 0
    for entry in Path(tally_dir).iterdir():
        if entry.suffix == ".part":
            continue
        try:
            done += int(entry.read_text(encoding="ascii"))
        except (OSError, ValueError):
            continue
    return done


class TallyProgress:
    """In the launching process, while a run's worker processes count into ``tally_dir``: one
    progress line for all of them, as ``Reporter`` writes it. A context manager."""

    def __init__(self, tally_dir: str, total: int, mode: str,
                 stream: TextIO | None = None, unit: str = "inputs") -> None:
        self.tally_dir = tally_dir
        self.reporter = Reporter(total, mode, stream, unit=unit)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="newsbeam-progress",
                                        daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(TTY_INTERVAL):
            self.poll()

    def poll(self) -> str | None:
        """Read the counts; a line when it is time for one."""
        done = tally(self.tally_dir)
        if done == self.reporter.done:
            return None
        if self.reporter.done == 0 and done < self.reporter.total:
            # rate and ETA from the first input on, not from the workers' start-up
            self.reporter.started = self.reporter.last = self.reporter.clock()
        return self.reporter.update(done)

    def __enter__(self) -> TallyProgress:
        if self.reporter.mode != "off":
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
            self.poll()  # the workers' last counts


def progress_mode(quiet: bool, stream: TextIO | None = None) -> str:
    stream = stream or sys.stderr
    if quiet or not stream.isatty():
        return "plain"
    return "tty"
