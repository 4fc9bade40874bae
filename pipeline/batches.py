"""``--batch-files N``: one command's input files run as several runs into OUT, one after
another, each of at most N files; ``--batch-lines M``: each JSONL dump read in pieces cut
into runs of at most M lines.

The DirectRunner holds every stage of a run in memory (docs/benchmarks.md), so a run's peak
grows with its input. Run in batches, each in a process of its own (``run_batch``), the peak is
that of N files whatever the input's size. Without ``--batch-files``, ``plan_memory`` sets N
when one run of the input would need more memory than the machine (or ``--max-memory``) can
give it (``pipeline.memory.planned_batch_files``). Each batch is an ordinary run: its own run id and
manifest (with a ``batch`` block), its own commit, and the across-runs dedupe of a scheduled
job (a copy of an article an earlier batch stored becomes a duplicate of it; a rerun of the
command adds no article). The command's exit code judges all its batches together (accounting,
--max-reject-ratio); a batch that fails stops it, and the batches before it stay committed.

Batches are formed by content: the files are ordered by the SHA-256 of their bytes (then by
path, for files with the same bytes), so the same files make the same batches, and the same
duplicate decisions, whatever their names or the order they were listed in. Within a batch the
kept copy of a story is chosen by the total order of a run (earliest ``published_at``, ...);
across batches the stored one is kept, as across scheduled runs (and an article's version
older than the stored one is a duplicate of it, not a later revision). Feed URLs, and the
pages --follow-links finds through them, are fetched by the first batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import signal
import sys
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from pipeline.logs import counted
from pipeline.options import Config, free_run_id
from transforms.errors import error_line

CHUNK = 1 << 20


# after every SHA-256 (32 bytes): an unreadable file is ordered after the readable ones, so it
# does not change their order among themselves (it still counts in the batch sizes)
UNREADABLE = b"\xff" * 33


def _digest(path: str) -> bytes:
    """SHA-256 of a file's bytes; UNREADABLE for a file that cannot be read (its run rejects
    it)."""
    from apache_beam.io.filesystems import FileSystems

    sha = hashlib.sha256()
    try:
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            while chunk := handle.read(CHUNK):
                sha.update(chunk)
    except Exception:  # noqa: BLE001 (vanished, unreadable: the run's reader says why)
        return UNREADABLE
    return sha.digest()


def content_order(paths: Iterable[str]) -> list[str]:
    """``paths`` ordered by the SHA-256 of their bytes, then by path."""
    return [path for _, path in sorted((_digest(path), path) for path in paths)]


def split(config: Config) -> list[Config]:
    """The runs of one command: ``config`` itself, or, with ``batch_files`` set and more input
    files than that, or ``batch_lines`` set and a JSONL dump of more lines than that, one run
    per batch. A dump read in pieces is cut into slices of at most ``batch_lines`` lines (each a
    batch, the dumps ordered by content); the other files make batches as even as they can be
    (2,001 files in batches of 2,000 run as 1,001 and 1,000), after the dumps'."""
    from transforms.read import DumpSlice, dump_pieces, slice_dump

    size, lines = config.batch_files, config.batch_lines
    log = logging.getLogger("newsbeam")
    slices: list[tuple[str, DumpSlice]] = []
    if lines:
        dumps = content_order(dump_pieces(config.inputs, config.max_bytes))
        for path in dumps:
            cut = slice_dump(path, lines)
            if len(cut) > 1:
                log.info("%s: %s slices of at most %s lines", path, len(cut), f"{lines:,}")
                slices += [(path, part) for part in cut]
        if not slices:
            # said, not silently ignored: only a dump read in pieces (uncompressed, over 8 MB)
            # is cut into slices
            log.warning("--batch-lines %s: no input is an uncompressed JSONL dump of more "
                        "than 8 MB and %s lines (%s read in pieces): one run as usual",
                        f"{lines:,}", f"{lines:,}", counted(len(dumps), "dump"))
    sliced = {path for path, _ in slices}
    rest = [path for path in config.inputs if path not in sliced]
    if not slices and (not size or len(rest) <= size):
        return [config]
    groups: list[tuple[tuple[str, ...], dict[str, DumpSlice] | None]] = [
        ((path,), {path: part}) for path, part in slices]
    if size and len(rest) > size:
        log.info("ordering %s input files by content, into batches of at most %s",
                 f"{len(rest):,}", f"{size:,}")
        ordered = content_order(rest)
        count = math.ceil(len(ordered) / size)
        base, longer = divmod(len(ordered), count)  # the first `longer` batches hold one more
        start = 0
        for number in range(1, count + 1):
            end = start + base + (number <= longer)
            groups.append((tuple(sorted(ordered[start:end])), None))
            start = end
    elif rest:
        groups.append((tuple(sorted(rest)), None))
    runs = []
    for number, (inputs, part) in enumerate(groups, 1):
        feeds = config.feeds if number == 1 else ()
        # the batch's place is in its id, so no plain run of the same files has the same
        label = f"batch {number}/{len(groups)}"
        where = [f"{path}:{s.start}-{s.end}" for path, s in (part or {}).items()]
        digest = hashlib.sha256("\n".join([label, *inputs, *feeds, *where]).encode("utf-8")
                                ).hexdigest()[:8]
        runs.append(dataclasses.replace(
            config, inputs=inputs, feeds=feeds, batch=(number, len(groups)), dump_slices=part,
            run_id=free_run_id(config.output_dir,
                               f"{config.ingested_at:%Y%m%dT%H%M%SZ}-{digest}")))
    return runs


def plan_memory(config: Config) -> tuple[Config, str | None]:
    """``config`` with batches planned when one DirectRunner run of its input files would need
    more than ``PLAN_SHARE`` of the machine's memory (``total_bytes``: not what is free at the
    moment, so one machine plans an input the same way every time) or of ``--max-memory``:
    batches as large as that allows (``pipeline.memory.planned_batch_files``). With it, the
    warning to give (batches can keep another copy of a story than one run would). Unchanged
    when ``--batch-files`` is given (0: one run whatever it needs), for other runners, and
    when the machine's memory cannot be read (not Linux) and no --max-memory is given."""
    from pipeline.memory import PLAN_SHARE, planned_batch_files, run_need, total_bytes
    from pipeline.prewarm import workers_in
    from pipeline.runners import runner_name

    if config.batch_files is not None or runner_name(list(config.beam_args)) not in (
            None, "direct"):
        return config, None
    machine = total_bytes()
    limits = [n for n in (machine, config.max_memory) if n]
    if not limits:
        return config, None
    usable = min(limits)
    processes = 1 + workers_in(config.beam_args)  # multi_processing: each worker holds as much
    files = len(config.inputs)
    size = planned_batch_files(files, processes, usable)
    if size is None:
        return config, None
    whose = "--max-memory" if usable == config.max_memory else "this machine's memory"
    warning = (f"{files:,} input files would need about {run_need(files, processes) / 2**30:.2f} "
               f"GiB in one DirectRunner run, more than {PLAN_SHARE:.0%} of {whose} "
               f"({usable / 2**30:.2f} GiB): running them in batches of at most {size:,}, each "
               "a run of its own into OUT (a copy of a story an earlier batch stored is a "
               "duplicate of it; --batch-files 0 runs them as one run, --max-memory sets the "
               "limit)")
    if run_need(size, processes) > PLAN_SHARE * usable:
        warning += (f"; even a batch of {size:,} files needs about "
                    f"{run_need(size, processes) / 2**30:.2f} GiB: "
                    + ("fewer --direct_num_workers, or " if processes > 1 else "")
                    + "a cluster runner (docs/runners.md) would fit better")
    return dataclasses.replace(config, batch_files=size, batch_auto=True), warning


def describe(run: Config) -> str:
    """What a batch reads, for the log: its files, or its slice of a dump."""
    if run.dump_slices:
        (path, part), = run.dump_slices.items()
        return (f"lines from {part.lines_before + 1:,} (bytes {part.start:,}-{part.end:,}) "
                f"of {path}")
    return f"{len(run.inputs):,} files"


class BatchFailed(Exception):
    """A batch's run failed in its own process; ``kind`` names the exception it raised."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


SIGNALS = {signal.SIGINT, signal.SIGTERM}
GRACE_S = 60  # for a batch's process to unwind after Ctrl-C or SIGTERM
PR_SET_PDEATHSIG = 1  # prctl(2)


def _die_with_parent() -> None:
    """SIGTERM to this process when the process that started it dies, even by SIGKILL (Linux;
    elsewhere nothing): a batch never writes into OUT after the command that holds the lock
    is gone."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return


def _once(exc: type[BaseException], then: Callable[[], None] = lambda: None
          ) -> Callable[[int, Any], None]:
    """A signal handler that raises ``exc`` the first time (after calling ``then``) and
    ignores the signal after: the run unwinds once, its clean-up not cut short by a second
    signal (a SIGTERM sent to the process group and again by the launching process)."""
    fired: list[int] = []

    def handler(signum: int, _frame: Any) -> None:
        if fired:
            return
        fired.append(signum)
        then()
        raise exc()

    return handler


def _child(payload: bytes, log: tuple[str, bool, str], conn: Connection, parent: int,
           ignore_sigint: bool = False) -> None:
    """A batch's process: the run, as the CLI's process runs one; its outcome to ``conn``.
    ``payload``: the Config, pickled as Beam pickles (user steps may be lambdas). ``parent``:
    the command's process id."""
    _die_with_parent()
    if os.getppid() != parent:  # the command died while this process started
        return
    from apache_beam.internal import pickler

    from pipeline import logs, main

    def interrupted() -> None:  # Beam may wrap the exception (raised inside a DoFn)
        main._interrupted = True

    if ignore_sigint:  # the command ignores it (nohup, a background job): so does its batch
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGINT, _once(KeyboardInterrupt, interrupted))
    def terminated() -> None:  # Beam may wrap the exception (raised inside a DoFn)
        main._terminated = True

    signal.signal(signal.SIGTERM, _once(main._Terminated, terminated))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # blocked while it started
    logs.setup(*log)
    outcome: tuple[Any, ...]
    try:
        code, manifest = main.execute(pickler.loads(payload))
        outcome = ("ok", code, manifest)
    except KeyboardInterrupt:
        outcome = ("interrupted",)
    except main._Terminated:
        outcome = ("terminated",)
    except Exception as exc:
        logging.getLogger("newsbeam").debug("batch failure", exc_info=True)
        if main._terminated:
            outcome = ("terminated",)
        elif main._interrupted:
            outcome = ("interrupted",)
        else:
            outcome = ("error", type(exc).__name__, error_line(exc))
    finally:
        logs.end_open_line()
    try:
        conn.send(outcome)
    except OSError:  # the launching process is gone
        pass
    conn.close()


def run_batch(config: Config, log: tuple[str, bool, str]) -> tuple[int, dict[str, Any]]:
    """Run one batch in a process of its own (``multiprocessing``'s spawn: a fresh
    interpreter), so each batch starts from the memory of a new process and gives it all
    back when it ends. In one process the resident set kept growing from batch to batch (657
    to 1,065 MiB over five batches of 2,000 pages, docs/benchmarks.md): what a run touched is
    not returned to the system. ``log``: the CLI's (level, quiet, format). Returns the run's
    (exit code, manifest); raises BatchFailed when it failed, KeyboardInterrupt when it was
    interrupted.

    Signals: the batch's process starts with SIGINT and SIGTERM blocked, and unblocks them once
    its handlers are set, so a Ctrl-C during its start-up waits for them. Ctrl-C reaches both
    processes (a SIGINT sent to this one alone is passed on); SIGTERM to this one (a
    ``_Terminated`` raised here) is passed on. Either way the batch unwinds as a run does, for
    up to GRACE_S seconds, then is killed. It also gets SIGTERM if this process dies."""
    import multiprocessing

    from apache_beam.internal import pickler

    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    number, count = config.batch or (1, 1)
    ignore_sigint = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    proc = context.Process(target=_child, args=(pickler.dumps(config), log, send, os.getpid(),
                                                ignore_sigint),
                           name=f"newsbeam-batch-{number}-of-{count}")
    outcome = None
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            proc.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
            send.close()
        try:
            outcome = receive.recv()
        except EOFError:  # it died without a word (killed, out of memory)
            pass
        proc.join(GRACE_S)
    except BaseException as exc:
        try:
            pid = proc.pid
            if isinstance(exc, KeyboardInterrupt) and pid is not None and proc.is_alive():
                os.kill(pid, signal.SIGINT)  # in case it was sent to this process alone
                proc.join(GRACE_S)
        finally:
            _stop(proc)
        raise
    finally:
        receive.close()
    _stop(proc)
    if outcome is None:
        if config.progress == "tty":  # its progress line may have been left open
            sys.stderr.write("\n")
        raise BatchFailed("BatchProcessDied",
                          f"batch {number}'s process ended with exit code {proc.exitcode}")
    if outcome[0] == "ok":
        return outcome[1], outcome[2]
    if outcome[0] == "interrupted":
        raise KeyboardInterrupt
    if outcome[0] == "terminated":
        raise BatchFailed("Terminated", f"batch {number}'s process was terminated")
    raise BatchFailed(outcome[1], outcome[2])


def _stop(proc: BaseProcess) -> None:
    """End a batch's process: SIGTERM (it unwinds as a run does), then SIGKILL after
    GRACE_S seconds, or at once when a second signal cuts the wait short."""
    if proc.pid is None:  # never started
        return
    try:
        if proc.is_alive():
            proc.terminate()
            proc.join(GRACE_S)
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
