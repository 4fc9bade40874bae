"""newsbeam stream: watch folders and poll feeds, and ingest what arrives, window by window.

Locally the stream runs as successive bounded runs of the batch graph (micro-batches on the
DirectRunner), one per window of arrival time in which something arrived:

- Every ``--poll`` the watched folders are listed. A file is ready once it is no temporary
  name (``.part``, ``.tmp``, ``.crdownload``, hidden...) and its size and modification time
  have stayed the same for ``settle`` seconds (a file still being written is not read half
  done). A file already read is never read again (its path, size and mtime are kept in
  OUT/_state/files, so this holds across restarts); a file rewritten in place with new
  content is read again, as new input.
- At the end of every ``--window`` the ready files, and the feeds when a poll fell in the
  window, go through the same graph as ``newsbeam run``: same stages, same dedupe against
  OUT/_index (so a story that arrives again an hour or a restart later is a duplicate), same
  staged commit and manifest (one per window, in OUT/_runs). Windows follow arrival time;
  partitions still come from ``published_at``, so a back-filled story lands in its own old
  ``date=`` partition and is never "late". One file per window and partition.
- ``--stop-after``, SIGINT and SIGTERM stop cleanly: what is ready is flushed as a last window,
  the stream's own manifest is written, exit 0. A second SIGINT aborts at once (the lock is
  released; the next start cleans the staged leftovers).

This keeps every promise of the streaming mode on one machine without a streaming runner. The
unbounded graph for Dataflow or Flink is not built yet (see README, "Streaming").
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.options import Config, UsageError
from transforms.http import redact

LOG = logging.getLogger("newsbeam")

TEMP_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download",
                 ".inprogress", ".swp", "~")
FILE_STATE = "_state/files"
FILE_STATE_SCHEMA = pa.schema([
    pa.field("path", pa.string(), nullable=False),
    pa.field("size", pa.int64(), nullable=False),
    pa.field("mtime_ns", pa.int64(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
])
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.I)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """'5s', '10m', '2h', '1.5h', '250ms' or a bare number of seconds -> seconds."""
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 10m, 2h)")
    seconds = float(m.group(1)) * _UNITS[(m.group(2) or "s").lower()]
    if seconds <= 0:
        raise ValueError(f"a duration must be positive: {text!r}")
    return seconds


def is_temporary(name: str) -> bool:
    """A name a writer uses while the file is not complete yet."""
    lower = name.lower()
    return name.startswith((".", "~")) or lower.endswith(TEMP_SUFFIXES)


@dataclass
class Watcher:
    """Lists folders and says which files are new and complete. Pure apart from the listing
    (``stat`` and ``walk`` are injectable for tests)."""

    folders: list[str]
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    settle: float = 2.0
    clock: Callable[[], float] = time.time
    # files found but not settled yet: path -> (size, mtime_ns)
    pending: dict[str, tuple[int, int]] = field(default_factory=dict)

    def _files(self) -> list[str]:
        found = []
        for folder in self.folders:
            for root, dirs, names in os.walk(folder):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(os.path.join(root, n) for n in names if not is_temporary(n))
        return sorted(found)

    def scan(self) -> list[str]:
        """Files that became ready since the last scan (each reported once)."""
        now = self.clock()
        ready = []
        for path in self._files():
            try:
                st = os.stat(path)
            except OSError:
                continue  # vanished between listing and stat
            sig = (st.st_size, st.st_mtime_ns)
            if self.seen.get(path) == sig:
                continue
            self.pending[path] = sig
            # complete once untouched for `settle` seconds (any write moves the mtime)
            if now - st.st_mtime_ns / 1e9 >= self.settle:
                ready.append(path)
        for path in ready:
            self.seen[path] = self.pending.pop(path)
        return ready

    def next_settle_in(self) -> float | None:
        """Seconds until the first pending file may be ready (None when none is pending)."""
        if not self.pending:
            return None
        now = self.clock()
        return max(0.0, min(m / 1e9 + self.settle - now for _s, m in self.pending.values()))


def load_file_state(output_dir: str) -> dict[str, tuple[int, int]]:
    folder = os.path.join(output_dir, *FILE_STATE.split("/"))
    seen: dict[str, tuple[int, int]] = {}
    if not os.path.isdir(folder):
        return seen
    for name in sorted(os.listdir(folder)):
        if name.endswith(".parquet") and not name.startswith("."):
            table = pq.read_table(os.path.join(folder, name))
            for row in table.to_pylist():
                seen[row["path"]] = (row["size"], row["mtime_ns"])
    return seen


def write_file_state(output_dir: str, run_id: str, files: dict[str, tuple[int, int]]) -> None:
    """The files a window read, written whole (temp name, then rename)."""
    if not files:
        return
    folder = os.path.join(output_dir, *FILE_STATE.split("/"))
    os.makedirs(folder, exist_ok=True)
    rows = [{"path": p, "size": s, "mtime_ns": m, "run_id": run_id}
            for p, (s, m) in sorted(files.items())]
    temp = os.path.join(folder, f".part-{run_id}.parquet.inprogress")
    pq.write_table(pa.Table.from_pylist(rows, schema=FILE_STATE_SCHEMA), temp)
    os.replace(temp, os.path.join(folder, f"part-{run_id}.parquet"))


@dataclass
class Totals:
    windows: int = 0
    articles: int = 0
    duplicates: int = 0
    rejects: int = 0
    files: int = 0
    feed_polls: int = 0
    last_window: str = "-"
    run_ids: list[str] = field(default_factory=list)


class StopFlag:
    """SIGINT/SIGTERM: the first asks for a clean stop, a second SIGINT aborts at once."""

    def __init__(self, on_abort: Callable[[], None]) -> None:
        self.event = threading.Event()
        self.reason = ""
        self._on_abort = on_abort

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.event.is_set() and signum == signal.SIGINT:
            sys.stderr.write("newsbeam: second interrupt: aborting now\n")
            self._on_abort()
            os._exit(130)
        self.reason = name
        sys.stderr.write(f"newsbeam: {name}: finishing the open window, then stopping "
                         "(interrupt again to abort)\n")
        self.event.set()


def run_stream(config: Config, folders: list[str], window: float, poll: float,
               stop_after: float | None, settle: float,
               execute: Callable[[Config], tuple[int, dict[str, Any]]],
               stop: StopFlag, out: Any = sys.stdout) -> tuple[int, dict[str, Any]]:
    """The stream loop; returns (exit code, the stream's manifest)."""
    started = time.monotonic()
    started_at = datetime.now(timezone.utc).replace(microsecond=0)
    deadline = started + stop_after if stop_after else None
    watcher = Watcher(folders, load_file_state(config.output_dir), settle)
    totals = Totals()
    ready: list[str] = []
    feeds_due = bool(config.feeds)
    next_poll = started
    window_end = started + window
    code = 0
    while True:
        now = time.monotonic()
        stopping = stop.event.is_set() or (deadline is not None and now >= deadline)
        if now >= next_poll or stopping:
            ready.extend(watcher.scan())
            if config.feeds and now >= next_poll:
                feeds_due = True
            next_poll = now + poll
        if now >= window_end or stopping:
            if ready or feeds_due:
                code = max(code, _run_window(config, ready, feeds_due, watcher, totals,
                                             execute))
                ready, feeds_due = [], False
            _progress(totals, started, out)
            window_end = time.monotonic() + window
        if stopping:
            break
        wake = min(next_poll, window_end, deadline or window_end)
        settle_in = watcher.next_settle_in()
        if settle_in is not None:
            wake = min(wake, time.monotonic() + settle_in + 0.05)
        stop.event.wait(max(0.0, wake - time.monotonic()))
    reason = stop.reason or ("stop-after" if deadline else "end")
    manifest = {
        "stream_id": f"{started_at:%Y%m%dT%H%M%SZ}-stream",
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "stopped_by": reason,
        "sources": {"folders": folders, "feeds": [redact(u) for u in config.feeds]},
        "window_s": window, "poll_s": poll,
        **dataclasses.asdict(totals),
    }
    _write_stream_manifest(config.output_dir, manifest)
    return code, manifest


def _run_window(config: Config, ready: list[str], feeds_due: bool, watcher: Watcher,
                totals: Totals, execute: Callable[[Config], tuple[int, dict[str, Any]]]) -> int:
    files = []
    for path in sorted(ready):
        # written again since it was found ready: back to the watcher, for a later window
        try:
            st = os.stat(path)
        except OSError:
            watcher.seen.pop(path, None)
            continue
        if (st.st_size, st.st_mtime_ns) != watcher.seen.get(path):
            watcher.seen.pop(path, None)
            continue
        files.append(path)
    if not files and not feeds_due:
        return 0
    now = datetime.now(timezone.utc).replace(microsecond=0)
    totals.windows += 1
    run_id = f"{now:%Y%m%dT%H%M%SZ}-w{totals.windows:05d}"
    window_config = dataclasses.replace(
        config, inputs=tuple(files), feeds=config.feeds if feeds_due else (),
        run_id=run_id, ingested_at=now, requested_inputs=tuple(files), progress="off",
    )
    code, manifest = execute(window_config)
    write_file_state(config.output_dir, run_id,
                     {p: watcher.seen[p] for p in files if p in watcher.seen})
    counts = manifest["counts"]
    totals.articles += counts["articles"]
    totals.duplicates += counts["duplicates"]
    totals.rejects += counts["rejects"]
    totals.files += len(files)
    totals.feed_polls += 1 if feeds_due else 0
    totals.last_window = f"{run_id} (+{counts['articles']} articles, +{counts['duplicates']} " \
                         f"duplicates, +{counts['rejects']} rejects)"
    totals.run_ids.append(run_id)
    return code


def _progress(totals: Totals, started: float, out: Any) -> None:
    elapsed = time.monotonic() - started
    out.write(f"stream {elapsed:7.0f}s: {totals.articles} articles, {totals.duplicates} "
              f"duplicates, {totals.rejects} rejects from {totals.files} files and "
              f"{totals.feed_polls} feed polls; last window: {totals.last_window}\n")
    out.flush()


def _write_stream_manifest(output_dir: str, manifest: dict[str, Any]) -> None:
    folder = os.path.join(output_dir, "_runs")
    os.makedirs(folder, exist_ok=True)
    final = os.path.join(folder, f"{manifest['stream_id']}.json")
    temp = os.path.join(folder, f".{manifest['stream_id']}.json.inprogress")
    with open(temp, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, default=str)
    os.replace(temp, final)


def stream_sources(specs: list[str]) -> tuple[list[str], list[str]]:
    """SOURCE arguments -> (folders, feed URLs); a plain file is a usage error."""
    from pipeline.options import is_url

    folders, urls = [], []
    for spec in specs:
        if is_url(spec):
            urls.append(spec)
        elif os.path.isdir(spec):
            folders.append(os.path.abspath(spec))
        elif os.path.exists(spec):
            raise UsageError(f"a stream SOURCE must be a folder to watch or a feed URL: {spec}")
        else:
            raise UsageError(f"SOURCE folder does not exist: {spec}")
    return folders, urls
