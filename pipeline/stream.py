"""newsbeam stream: watch folders and poll feeds, and ingest what arrives, window by window.

Two drivers:

- ``run_stream_graph`` (the default): runs the unbounded graph of pipeline/stream_graph.py on
  Prism (started here, in its own session; ``PrismServer``), Dataflow or Flink, prints
  progress from the windows' manifests, and stops it by the stop file (docs/streaming.md).
- ``run_stream`` (``--runner DirectRunner``): successive bounded runs of the batch graph
  (micro-batches), one per window of arrival time in which something arrived, for a machine
  without Prism:

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
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pipeline import logs
from pipeline.manifest import warn_failed_feeds
from pipeline.options import Config, UsageError
from transforms.http import redact
from transforms.streaming import (  # noqa: F401 (the file watching, shared with the graph)
    FILE_STATE,
    TEMP_SUFFIXES,
    AheadOfClock,
    file_signature,
    is_temporary,
    list_files,
    load_file_state,
    scan_folders,
    write_file_state,
)

LOG = logging.getLogger("newsbeam")

_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.I)
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


@dataclass
class Watcher:
    """Lists folders and says which files are new and complete (the micro-batch driver's;
    the Beam graph polls with ``PollSources``, on the same ``scan_folders``)."""

    folders: list[str]
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    settle: float = 2.0
    clock: Callable[[], float] = time.time
    # files found but not settled yet: path -> (size, mtime_ns)
    pending: dict[str, tuple[int, int]] = field(default_factory=dict)
    # files dated ahead of the clock: when each was first seen as it is (scan_folders)
    future: AheadOfClock = field(default_factory=dict)

    def scan(self) -> list[str]:
        """Files that became ready since the last scan (each reported once)."""
        ready, unsettled = scan_folders(self.folders, self.seen, self.settle, self.clock(),
                                        self.future)
        for path, size, mtime in unsettled:
            self.pending[path] = (size, mtime)
        for path, size, mtime in ready:
            self.pending.pop(path, None)
            self.seen[path] = (size, mtime)
        return [path for path, _size, _mtime in ready]

    def next_settle_in(self) -> float | None:
        """Seconds until the first pending file may be ready (None when none is pending)."""
        if not self.pending:
            return None
        def since(path: str, mtime_ns: int) -> float:  # when its quiet time started
            return self.future[path][1] if path in self.future else mtime_ns / 1e9

        now = self.clock()
        return max(0.0, min(since(p, m) + self.settle - now
                            for p, (_s, m) in self.pending.items()))


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
    """SIGINT/SIGTERM: the first asks for a clean stop, a second SIGINT aborts at once.

    The handler does only async-signal-safe work: it sets a flag and writes one byte to a
    pipe the stream loop sleeps on (``wait``). It never takes a lock. A signal runs its
    handler in the main thread between two bytecodes, possibly inside the very code that
    holds a lock, and then a ``threading.Event.set()`` (or a buffered ``sys.stderr`` write)
    in the handler waits for that lock forever: a stream that hung on SIGTERM, once, on CI."""

    def __init__(self, on_abort: Callable[[], None]) -> None:
        self.reason = ""
        self._requested = False
        self._on_abort = on_abort
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def is_set(self) -> bool:
        return self._requested

    def request(self, reason: str) -> None:
        """Ask for a stop (what a signal does), from the main thread or a handler."""
        self.reason = reason
        self._requested = True
        try:
            os.write(self._write, b"\0")
        except OSError:  # the pipe is full: a wake-up is pending already
            pass

    def wait(self, timeout: float) -> bool:
        """Sleep until a stop is requested or ``timeout`` seconds have passed; True when a
        stop was requested. A request that comes before the sleep wakes it at once."""
        if not self._requested:
            select.select([self._read], [], [], max(0.0, timeout))
        try:
            while os.read(self._read, 64):
                pass
        except OSError:  # drained (EAGAIN)
            pass
        return self._requested

    def abort(self) -> None:
        """What a second interrupt does before it exits: the caller's clean-up (the Prism
        server killed, the lock on OUT released)."""
        self._on_abort()

    def _handle(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if self._requested and signum == signal.SIGINT:
            os.write(2, b"newsbeam: second interrupt: aborting now\n")
            self._on_abort()
            os._exit(130)
        # the flag before the message: a second signal may run this handler again between
        # any two bytecodes of this one, and must then find the first one counted
        self.request(name)
        os.write(2, f"newsbeam: {name}: finishing the open window, then stopping "
                    "(interrupt again to abort)\n".encode())


def run_stream(config: Config, folders: list[str], window: float, poll: float,
               stop_after: float | None, settle: float,
               execute: Callable[[Config], tuple[int, dict[str, Any]]],
               stop: StopFlag, out: Any = sys.stdout, drain_timeout: float = 600.0
               ) -> tuple[int, dict[str, Any]]:
    """The stream loop; returns (exit code, the stream's manifest). A window still running
    ``drain_timeout`` seconds after the stop (--stop-after or a signal) is abandoned: the
    command ends at once (``watch_the_drain``)."""
    started = time.monotonic()
    deadline = started + stop_after if stop_after else None
    done = threading.Event()
    watch_the_drain(stop, deadline, drain_timeout, done)
    try:
        return _stream_loop(config, folders, window, poll, deadline, settle, execute, stop, out)
    finally:
        done.set()


def _stream_loop(config: Config, folders: list[str], window: float, poll: float,
                 deadline: float | None, settle: float,
                 execute: Callable[[Config], tuple[int, dict[str, Any]]],
                 stop: StopFlag, out: Any) -> tuple[int, dict[str, Any]]:
    started = time.monotonic()
    started_at = datetime.now(timezone.utc).replace(microsecond=0)
    watcher = Watcher(folders, load_file_state(config.output_dir), settle)
    totals = Totals()
    ready: list[str] = []
    feeds_due = bool(config.feeds)
    next_poll = started
    window_end = started + window
    code = 0
    while True:
        now = time.monotonic()
        stopping = stop.is_set() or (deadline is not None and now >= deadline)
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
        stop.wait(max(0.0, wake - time.monotonic()))
    reason = stop.reason or ("stop-after" if deadline else "end")
    manifest = {
        "stream_id": config.run_id,  # main_stream's, from the stream's start
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "stopped_by": reason,
        "sources": {"folders": folders, "feeds": [redact(u) for u in config.feeds]},
        "window_s": window, "poll_s": poll,
        **dataclasses.asdict(totals),
    }
    _write_stream_manifest(config.output_dir, manifest)
    return code, manifest


def watch_the_drain(stop: StopFlag, deadline: float | None, drain_timeout: float,
                    done: threading.Event) -> None:
    """Micro-batches run each window in the main thread, so a stop is only seen between
    windows. A thread watches for the stop (--stop-after's deadline or a signal); when the
    loop has not ended ``drain_timeout`` seconds after it (a window stuck in a step), the
    command aborts as a second Ctrl-C does: one line, OUT released, exit 1; the next start
    reads again what no committed window held."""
    def watch() -> None:
        stopped_at = None
        while not done.wait(0.5):
            now = time.monotonic()
            if stopped_at is None and (stop.is_set() or (deadline is not None
                                                         and now >= deadline)):
                stopped_at = now
            if stopped_at is not None and now - stopped_at >= drain_timeout:
                os.write(2, f"newsbeam: error: the window did not finish within "
                            f"--drain-timeout {drain_timeout:g}s of the stop: aborted; the "
                            "next start reads again what no committed window held\n".encode())
                stop.abort()
                os._exit(1)

    threading.Thread(target=watch, name="newsbeam-drain-watch", daemon=True).start()


def _run_window(config: Config, ready: list[str], feeds_due: bool, watcher: Watcher,
                totals: Totals, execute: Callable[[Config], tuple[int, dict[str, Any]]]) -> int:
    files = []
    for path in sorted(ready):
        # written again since it was found ready: back to the watcher, for a later window
        if file_signature(path) != watcher.seen.get(path):  # changed, or gone
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
    warn_failed_feeds(manifest)  # each poll of a dead feed: a scheduler's log shows it
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


def _progress(totals: Totals, started: float, out: Any, polls: bool = True) -> None:
    """One progress line; ``polls=False`` while the count of feed polls is not known yet (the
    Beam graph reports it at the end)."""
    elapsed = time.monotonic() - started
    sources = logs.counted(totals.files, "file") + (
        f" and {logs.counted(totals.feed_polls, 'feed poll')}" if polls else "")
    try:
        out.write(f"stream {elapsed:7.0f}s: {totals.articles} articles, {totals.duplicates} "
                  f"duplicates, {totals.rejects} rejects from {sources}; last window: "
                  f"{totals.last_window}\n")
        out.flush()
    except BrokenPipeError:  # the reader of stdout left; the stream goes on
        logs.drop_closed(out)


def _cancel(result: Any) -> None:
    """Cancel the job; a runner that cannot (or whose job is already gone) is let be: the
    caller stops its job server."""
    try:
        result.cancel()
    except Exception as exc:  # noqa: BLE001 (any runner's refusal; the stream fails anyway)
        LOG.debug("cancelling the job: %s", exc)


def _write_stream_manifest(output_dir: str, manifest: dict[str, Any]) -> None:
    """OUT/_runs/<stream id>.json, atomically, through FileSystems (OUT may be gs://)."""
    from pipeline.manifest import write_manifest_at

    write_manifest_at(output_dir, manifest["stream_id"], manifest)


def stream_sources(specs: list[str]) -> tuple[list[str], list[str]]:
    """SOURCE arguments -> (folders, feed URLs); a plain file is a usage error."""
    from pipeline.options import check_filesystem, is_url

    folders, urls = [], []
    for spec in specs:
        if is_url(spec):
            urls.append(spec)
        elif "://" in spec:  # a prefix on gs:// or s3://, listed through Beam's FileSystems
            check_filesystem(spec, "SOURCE")  # reached once the options are known
            folders.append(spec.rstrip("/"))
        elif os.path.isdir(spec):
            folders.append(os.path.abspath(spec))
        elif os.path.exists(spec):
            raise UsageError(f"a stream SOURCE must be a folder to watch or a feed URL: {spec}")
        else:
            raise UsageError(f"SOURCE folder does not exist: {spec}")
    return folders, urls


# --------------------------------------------------------------------------- the Beam graph
PRISM_START_TIMEOUT_S = 30.0


class PrismServer:
    """A Prism job server of our own, in its own session: a SIGTERM or Ctrl-C sent to the
    terminal's process group reaches newsbeam, which drains the job, and not Prism, which
    would lose it. It shuts itself down when idle, should newsbeam die first; started
    through ``tied_launcher`` (pipeline/runners.py), it is killed with newsbeam."""

    def __init__(self, binary: str, log_path: str) -> None:
        import socket
        import subprocess

        from apache_beam.utils.subprocess_server import pick_port

        self.port = pick_port(None)[0]
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 (closed in stop())
        try:
            self.process = subprocess.Popen(
                [binary, "--job_port", str(self.port), "--serve_http=false", "--log_level",
                 "warn", "--idle_shutdown_timeout", "120s"],
                stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError:
            self._log.close()
            raise
        deadline = time.monotonic() + PRISM_START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("localhost", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"the Prism runner did not start (see {log_path})") from None
                time.sleep(0.05)

    @property
    def endpoint(self) -> str:
        return f"localhost:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except Exception:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


def window_manifests(output_dir: str, stream_id: str,
                     cache: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The manifests the stream's windows wrote so far, oldest first, through Beam's
    FileSystems (OUT may be gs://). With ``cache`` each is read once: a stream that runs for
    days does not read every window's manifest again at every progress line."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    from transforms.write import join_path

    cache = {} if cache is None else cache
    try:
        matched = FileSystems.match([join_path(output_dir, "_runs", f"{stream_id}-*.json")])
        paths = sorted(m.path for m in matched[0].metadata_list)
    except Exception:  # no _runs yet
        paths = []
    for path in paths:
        if path not in cache:
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
                cache[path] = json.loads(fh.read().decode("utf-8"))
    return [cache[p] for p in paths]


def totals_of(manifests: list[dict[str, Any]]) -> Totals:
    totals = Totals()
    for m in manifests:
        c = m["counts"]
        totals.windows += 1
        totals.articles += c["articles"]
        totals.duplicates += c["duplicates"]
        totals.rejects += c["rejects"]
        totals.files += m["inputs"]["files"]
        totals.last_window = f"{m['run_id']} (+{c['articles']} articles, " \
                             f"+{c['duplicates']} duplicates, +{c['rejects']} rejects)"
        totals.run_ids.append(m["run_id"])
    return totals


def _counter(result: Any, name: str) -> int:
    from apache_beam.metrics.metric import MetricsFilter

    try:
        found = result.metrics().query(MetricsFilter().with_name(name))["counters"]
    except Exception:  # a runner without metrics: the count is unknown, not an error
        return 0
    return sum(int(c.committed or c.attempted or 0) for c in found)


class DrainTimeout(RuntimeError):
    """The job did not finish within --drain-timeout of the stop: it was cancelled."""


def run_stream_graph(config: Config, spec: Any, stop_after: float | None, stop: StopFlag,
                     out: Any = sys.stdout, drain_timeout: float = 600.0
                     ) -> tuple[int, dict[str, Any]]:
    """Run the unbounded graph (pipeline/stream_graph.py) until --stop-after or a signal,
    then drain it: the stop file makes every poll say "complete", every open window fires
    and is committed, and the job finishes. Returns (exit code, the stream's manifest).

    A job that has not finished ``drain_timeout`` seconds after the stop (a step that hangs,
    a runner that fails and restarts the job again and again) is cancelled and DrainTimeout
    raised: an unattended stream with --stop-after always ends, and releases OUT."""
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.runners.runner import PipelineState

    from pipeline.stream_graph import build_stream

    started = time.monotonic()
    started_at = datetime.now(timezone.utc).replace(microsecond=0)
    deadline = started + stop_after if stop_after else None
    from pipeline.beam_options import pipeline_options

    pipeline = beam.Pipeline(options=pipeline_options(config.beam_args))
    build_stream(pipeline, config, spec)
    result = pipeline.run()
    LOG.info("stream %s: %s job running", spec.stream_id, spec.runner)
    finished = threading.Event()
    failure: list[BaseException] = []

    def wait() -> None:
        try:
            result.wait_until_finish()
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)
        finished.set()

    threading.Thread(target=wait, name="newsbeam-stream-wait", daemon=True).start()
    next_progress = started + spec.window
    seen: dict[str, dict[str, Any]] = {}  # window manifests read so far
    stop_requested = False
    drain_deadline = 0.0
    reason = ""
    while not finished.is_set():
        now = time.monotonic()
        if not stop_requested and (stop.is_set()
                                   or (deadline is not None and now >= deadline)):
            reason = stop.reason or "stop-after"
            LOG.info("stream %s: stopping (%s): flushing the open windows", spec.stream_id,
                     reason)
            with FileSystems.create(spec.stop_file) as fh:  # local, or where workers see it
                fh.write(reason.encode() + b"\n")
            stop_requested = True
            drain_deadline = now + drain_timeout
        if stop_requested and now >= drain_deadline:
            _cancel(result)
            if FileSystems.exists(spec.stop_file):
                FileSystems.delete([spec.stop_file])
            raise DrainTimeout(
                f"the {spec.runner} job did not finish within --drain-timeout "
                f"{drain_timeout:g}s of the stop ({reason}) and was cancelled; the next start "
                "reads again what no committed window held")
        if now >= next_progress:
            _progress(totals_of(window_manifests(config.output_dir, spec.stream_id, seen)),
                      started, out, polls=False)
            next_progress = now + spec.window
        wake = min(next_progress, deadline if deadline and not stop_requested else next_progress,
                   drain_deadline if stop_requested else next_progress)
        # a signal wakes stop.wait at once
        pause = max(0.05, min(1.0, wake - time.monotonic()))
        if stop_requested:
            finished.wait(pause)
        else:
            stop.wait(pause)
    if FileSystems.exists(spec.stop_file):
        FileSystems.delete([spec.stop_file])
    from pipeline.commit import remove_empty_staging

    remove_empty_staging(config.output_dir)
    if failure:
        raise failure[0]
    state = result.state
    # DRAINED: a runner that drains a streaming job (Dataflow) ends it there, every open
    # window committed, as DONE is on Prism and Flink
    if state not in (PipelineState.DONE, PipelineState.DRAINED):
        raise RuntimeError(f"the streaming job ended in state {state}")
    manifests = window_manifests(config.output_dir, spec.stream_id, seen)
    totals = totals_of(manifests)
    totals.feed_polls = _counter(result, "stream.feed_polls")
    _progress(totals, started, out)
    code = 0 if all(m["accounting"]["balanced"] for m in manifests) else 3
    manifest = {
        "stream_id": spec.stream_id,
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "stopped_by": reason or "end",
        "runner": spec.runner,
        "sources": {"folders": list(spec.folders),
                    "feeds": [redact(u) for u in spec.feeds]},
        "window_s": spec.window, "poll_s": spec.poll, "dedupe_horizon_s": spec.horizon,
        **dataclasses.asdict(totals),
    }
    _write_stream_manifest(config.output_dir, manifest)
    return code, manifest
