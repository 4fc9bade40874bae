"""``--batch-files N``: one command's input files run as several runs into OUT, one after
another, each of at most N files.

The DirectRunner holds every stage of a run in memory (docs/benchmarks.md), so a run's peak
grows with its input. Run in batches, the peak is that of N files whatever the input's size,
and each batch is an ordinary run: its own run id and manifest, its own commit, and the
across-runs dedupe of a scheduled job (a copy of an article an earlier batch stored becomes a
duplicate of it; a rerun of the command adds nothing).

Batches are formed by content: the files are ordered by the SHA-256 of their bytes (then by
path, for files with the same bytes), so the same files make the same batches, and the same
duplicate decisions, whatever their names or the order they were listed in. Within a batch the
kept copy of a story is chosen by the total order of a run (earliest ``published_at``, ...);
across batches the stored one is kept, as across scheduled runs. Feed URLs are fetched by the
first batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from collections.abc import Iterable

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
        digest = hashlib.sha256("\n".join([*inputs, *feeds]).encode("utf-8")).hexdigest()[:8]
        runs.append(dataclasses.replace(
            config, inputs=inputs, feeds=feeds, batch=(number, count),
            run_id=f"{config.ingested_at:%Y%m%dT%H%M%SZ}-{digest}"))
    return runs
