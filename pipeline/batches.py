"""``--batch-files N``: one command's input files run as several runs into OUT, one after
another, each of at most N files.

The DirectRunner holds every stage of a run in memory (docs/benchmarks.md), so a run's peak
grows with its input. Run in batches, each in a process of its own (``run_batch``), the peak is
that of N files whatever the input's size. Each batch is an ordinary run: its own run id and
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
from collections.abc import Iterable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from pipeline.options import Config

CHUNK = 1 << 20


def _digest(path: str) -> bytes:
    """SHA-256 of a file's bytes; an unreadable file sorts first (its run rejects it)."""
    from apache_beam.io.filesystems import FileSystems

    sha = hashlib.sha256()
    try:
        with FileSystems.open(path, compression_type="uncompressed") as handle:
            while chunk := handle.read(CHUNK):
                sha.update(chunk)
    except Exception:  # noqa: BLE001 (vanished, unreadable: the run's reader says why)
        return b""
    return sha.digest()


def content_order(paths: Iterable[str]) -> list[str]:
    """``paths`` ordered by the SHA-256 of their bytes, then by path."""
    return [path for _, path in sorted((_digest(path), path) for path in paths)]


def split(config: Config) -> list[Config]:
    """The runs of one command: ``config`` itself, or with ``batch_files`` set and more input
    files than that, one run per batch. The batches are as even as they can be (2,001 files in
    batches of 2,000 run as 1,001 and 1,000)."""
    size = config.batch_files
    if not size or len(config.inputs) <= size:
        return [config]
    logging.getLogger("newsbeam").info("ordering %s input files by content, into batches of "
                                       "at most %s", f"{len(config.inputs):,}", f"{size:,}")
    ordered = content_order(config.inputs)
    count = math.ceil(len(ordered) / size)
    base, longer = divmod(len(ordered), count)  # the first `longer` batches hold one more
    runs = []
    start = 0
    for number in range(1, count + 1):
        end = start + base + (number <= longer)
        inputs = tuple(sorted(ordered[start:end]))
        start = end
        feeds = config.feeds if number == 1 else ()
        # the batch's place is in its id, so no plain run of the same files has the same
        label = f"batch {number}/{count}"
        digest = hashlib.sha256("\n".join([label, *inputs, *feeds]).encode("utf-8")
                                ).hexdigest()[:8]
        runs.append(dataclasses.replace(
            config, inputs=inputs, feeds=feeds, batch=(number, count),
            run_id=f"{config.ingested_at:%Y%m%dT%H%M%SZ}-{digest}"))
    return runs


class BatchFailed(Exception):
    """A batch's run failed in its own process; ``kind`` names the exception it raised."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _child(config: Config, log: tuple[str, bool, str], conn: Connection) -> None:
    """A batch's process: the run, as the CLI's process runs one; its outcome to ``conn``."""
    from pipeline import logs, main

    logs.setup(*log)
    main._terminate_cleanly()
    outcome: tuple[Any, ...]
    try:
        code, manifest = main.execute(config)
        outcome = ("ok", code, manifest)
    except KeyboardInterrupt:
        outcome = ("interrupted",)
    except (main._Terminated, Exception) as exc:
        if isinstance(exc, Exception) and not main._terminated:
            logging.getLogger("newsbeam").debug("batch failure", exc_info=True)
            first = str(exc).splitlines()[0] if str(exc) else ""
            outcome = ("error", type(exc).__name__, first)
        else:
            outcome = ("terminated",)
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
    interrupted. Ctrl-C reaches both processes; SIGTERM to this one (a ``_Terminated`` raised
    here) is passed on, and the batch unwinds as a run does."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    number, count = config.batch or (1, 1)
    proc = context.Process(target=_child, args=(config, log, send),
                           name=f"newsbeam-batch-{number}-of-{count}")
    proc.start()
    send.close()
    try:
        try:
            outcome = receive.recv()
        except EOFError:  # it died without a word (killed, out of memory)
            outcome = None
        proc.join()
    except KeyboardInterrupt:
        proc.join(GRACE_S)  # it was interrupted too, and is unwinding
        _stop(proc)
        raise
    except BaseException:
        _stop(proc)
        raise
    finally:
        receive.close()
    if outcome is None:
        raise BatchFailed("BatchProcessDied",
                          f"batch {number}'s process ended with exit code {proc.exitcode}")
    if outcome[0] == "ok":
        return outcome[1], outcome[2]
    if outcome[0] == "interrupted":
        raise KeyboardInterrupt
    if outcome[0] == "terminated":
        raise BatchFailed("Terminated", f"batch {number}'s process was terminated")
    raise BatchFailed(outcome[1], outcome[2])


GRACE_S = 60  # for a batch's process to unwind after Ctrl-C or SIGTERM


def _stop(proc: BaseProcess) -> None:
    if proc.is_alive():
        proc.terminate()  # SIGTERM: it unwinds as a run does (lock files, job servers)
        proc.join(GRACE_S)
    if proc.is_alive():
        proc.kill()
        proc.join()
