"""build_stream(p, config, spec): the unbounded graph of `newsbeam stream`.

The same stages as the batch graph (pipeline/graph.py), on Beam's streaming model:

("folder", path) / ("feed", url) --Watch(PollSources, every --poll)--> Arrival, stamped with
    its arrival time (event time = when newsbeam saw it)
  -> FixedWindows(--window): every later stage works window by window
  -> files: ReadSources; feeds: the fetched body           -> RawDocument
  -> ParseDocuments -> ExtractArticles (ingested_at = arrival) -> CleanArticles -> ExtractFields
  -> FirstSeen (global window, keyed by content hash, state expires after --dedupe-horizon):
     an exact copy of an article of an earlier window of this stream is a duplicate at once
  -> DedupeArticles per window, against the window and OUT/_index, exactly as in batch
  -> one file per window and partition, staged under OUT/_staging/<window run id>/
  -> CommitWindow (one GroupByKey per window, so it runs after all the window's files are
     written): data, then OUT/_index and OUT/_state/files, then the window's manifest in
     OUT/_runs. A window becomes visible whole, like a batch run.

The watermark follows the polls, so a window fires about one poll after it ends. Windows
follow arrival time, so an old story (a feed back-filling its archive) is never late; its
partition still comes from published_at. Nothing here is local to one process: the same graph
runs on Prism, Dataflow or Flink (docs/streaming.md).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import apache_beam as beam
from apache_beam.coders import StrUtf8Coder
from apache_beam.io.watch import Watch
from apache_beam.transforms import window as beam_window

from pipeline.commit import commit_journaled, staging_dir
from pipeline.graph import article_stages, link_state_row
from pipeline.manifest import build_manifest, tally_files
from pipeline.options import Config
from schemas import article_row, duplicate_row, reject_row
from transforms.common import Sink
from transforms.dedupe import DedupeArticles, label_article_id, rank_label
from transforms.fetch import FollowLinks
from transforms.parse import ParseDocuments
from transforms.read import ReadSources
from transforms.streaming import (
    DOCS_TAG,
    DUPLICATE_TAG,
    FEED_REJECTS_TAG,
    INPUTS_TAG,
    FirstSeen,
    PollSources,
    SplitArrivals,
    arrival_key,
    content_key,
    repeat_of,
)
from transforms.write import WritePartitionedParquet, join_path

LOG = logging.getLogger("newsbeam")
# rejects of these stages stand for a whole input (a file or a feed), not for one unit
WHOLE_INPUT_STAGES = ("read", "parse", "fetch_feed")


@dataclass(frozen=True)
class StreamSpec:
    """What the stream watches and how often; fixed before the graph is built."""

    stream_id: str
    folders: tuple[str, ...]
    feeds: tuple[str, ...]
    window: float
    poll: float
    settle: float
    horizon: float
    stop_file: str
    runner: str = "PrismRunner"

    def sources(self) -> list[tuple[str, str]]:
        return [("folder", f) for f in self.folders] + [("feed", u) for u in self.feeds]


def window_run_id(stream_id: str, window: Any, pane_index: int = 0) -> str:
    """The run id of one window of a stream: its manifest's name, its staging folder."""
    end = window.end.to_utc_datetime(has_tz=True)
    run_id = f"{stream_id}-{end:%Y%m%dT%H%M%S}{end.microsecond // 1000:03d}Z"
    return run_id if pane_index == 0 else f"{run_id}-p{pane_index}"


class WindowRunId:
    """(window, pane) -> that window's run id (picklable, for the write steps)."""

    def __init__(self, stream_id: str) -> None:
        self._stream_id = stream_id

    def __call__(self, window: Any, pane: Any) -> str:
        return window_run_id(self._stream_id, window, pane.index)


class WindowStaging:
    """(window, pane) -> its staging folder (picklable, for the write steps)."""

    def __init__(self, output_dir: str, stream_id: str) -> None:
        self._output_dir = output_dir
        self._run_id = WindowRunId(stream_id)

    def __call__(self, window: Any, pane: Any) -> str:
        return staging_dir(self._output_dir, self._run_id(window, pane))


def _one(_element: Any) -> int:
    return 1


def _units_record(count: int) -> dict[str, Any]:
    return {"dataset": "_units", "rows": count}


def _keyed(record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ("", record)


class CommitWindow(beam.DoFn):
    """All of one window's records -> its files in place, its file state, its manifest."""

    def __init__(self, config: Config, spec: StreamSpec) -> None:
        self._config = config
        self._spec = spec

    def process(self, element: tuple[str, Iterable[dict[str, Any]]],
                window: Any = beam.DoFn.WindowParam,
                pane: Any = beam.DoFn.PaneInfoParam) -> Iterator[dict[str, Any]]:
        records = list(element[1])
        files = [r for r in records if r["dataset"] not in ("_units", "_inputs")]
        inputs = {r["path"]: (r["size"], r["mtime_ns"]) for r in records
                  if r["dataset"] == "_inputs"}
        units = sum(r["rows"] for r in records if r["dataset"] == "_units")
        run_id = window_run_id(self._spec.stream_id, window, pane.index)
        started = window.start.to_utc_datetime(has_tz=True)
        config = dataclasses.replace(
            self._config, run_id=run_id, inputs=tuple(sorted(inputs)),
            requested_inputs=tuple(sorted(inputs)), ingested_at=started,
            feeds=self._spec.feeds)
        tally = tally_files(files)  # from the staged files, before anything moves
        whole_inputs = sum(tally.reject_stages.get(s, 0) for s in WHOLE_INPUT_STAGES)
        manifest = build_manifest(config, datetime.now(timezone.utc), units + whole_inputs,
                                  {}, files, tally, self._spec.runner, started)
        manifest["stream_id"] = self._spec.stream_id
        manifest["window"] = {"start": started.isoformat(),
                              "end": window.end.to_utc_datetime(has_tz=True).isoformat(),
                              "pane": pane.index}
        # data, then index and file state, then the manifest; journaled, so a crash in the
        # middle is finished by the next start (pipeline/commit.py)
        commit_journaled(config.output_dir, run_id, files, inputs, manifest)
        yield {"run_id": run_id, "counts": manifest["counts"]}


def build_stream(p: beam.Pipeline, config: Config, spec: StreamSpec) -> None:
    out = config.output_dir
    fixed = beam_window.FixedWindows(spec.window)
    staging = WindowStaging(out, spec.stream_id)
    stored = join_path(out, "_index", "*.parquet")  # matched again in every window

    def sink(label: str, dataset: str, to_row: Any) -> Sink:
        # index files record the settings of their signatures (pipeline/reindex.py)
        metadata = config.signature.index_metadata() if dataset == "_index" else None
        return Sink(label, WritePartitionedParquet(out, dataset, to_row, staging_for=staging,
                                                   run_id_for=WindowRunId(spec.stream_id),
                                                   metadata=metadata),
                    p, fixed)

    with sink("WriteRejects", "rejects", reject_row) as rejects, \
            sink("WriteDuplicates", "duplicates", duplicate_row) as dups, \
            sink("WriteIndex", "_index", dict) as index, ExitStack() as optional:
        # links whose page named another URL (--follow-links): OUT/_state/links, as in batch
        links = optional.enter_context(sink("WriteLinkState", "_state/links", dict)) \
            if config.follow_links else None
        arrivals = (
            p
            | "Sources" >> beam.Create(spec.sources())
            | "Watch" >> Watch(PollSources(out, spec.stop_file, spec.settle, config.fetch),
                               poll_interval=spec.poll, output_key_fn=arrival_key,
                               output_key_coder=StrUtf8Coder())
            | "Arrivals" >> beam.Values()
            | "Windows" >> beam.WindowInto(fixed)
            | "SplitArrivals" >> beam.ParDo(SplitArrivals()).with_outputs(
                INPUTS_TAG, DOCS_TAG, FEED_REJECTS_TAG, main="paths")
        )
        rejects.add_error_pcollection(arrivals[FEED_REJECTS_TAG])
        docs = (
            (arrivals["paths"] | "ReadSources" >> ReadSources(rejects,
                                                               max_bytes=config.max_bytes),
             arrivals[DOCS_TAG])
            | "AllDocuments" >> beam.Flatten()
        )
        units = docs | "ParseDocuments" >> ParseDocuments(rejects)
        # the input units, counted before FollowLinks (a failed page fetch is the reject of a
        # unit counted here, as in batch, where parse.out counts them)
        unit_count = (
            units
            | "One" >> beam.Map(_one)
            | "CountUnits" >> beam.CombineGlobally(sum).without_defaults()
            | "UnitsRecord" >> beam.Map(_units_record)
        )
        if config.follow_links:
            units = units | "FollowLinks" >> FollowLinks(
                rejects, config.fetch, [stored],  # stored URLs only (see pipeline/graph.py)
                check_robots=not config.fetch.ignore_robots,
                # the links remembered by batch runs and by this stream's earlier windows
                links=join_path(out, "_state/links", "*.parquet"))
        extracted = article_stages(units, config, rejects, ingested_at=None)  # at arrival
        if links is not None:
            links.add_error_pcollection(
                extracted | "LinkState" >> beam.FlatMap(link_state_row, None))
        first = (
            extracted
            | "ByContent" >> beam.Map(content_key)
            | "AcrossWindows" >> beam.WindowInto(beam_window.GlobalWindows())
            | "FirstSeen" >> beam.ParDo(FirstSeen(spec.horizon, rank_label, spec.window,
                                                  label_article_id))
            .with_outputs(DUPLICATE_TAG, main="first")
        )
        dups.add_error_pcollection(
            first[DUPLICATE_TAG]
            | "Repeats" >> beam.Map(repeat_of)
            | "RepeatWindows" >> beam.WindowInto(fixed))
        articles = (
            first["first"]
            | "BackToWindows" >> beam.WindowInto(fixed)
            | "DedupeArticles" >> DedupeArticles(dups, config.near, stored, index,
                                                 spec.stream_id, signature=config.signature)
        )
        article_files = articles | "WriteArticles" >> WritePartitionedParquet(
            out, "articles", article_row, staging_for=staging)
    records = [article_files, dups.output(), rejects.output(), index.output(), unit_count,
               arrivals[INPUTS_TAG]]
    if links is not None:
        records.append(links.output())
    (
        tuple(records)
        | "WindowRecords" >> beam.Flatten()
        | "Keyed" >> beam.Map(_keyed)
        | "PerWindow" >> beam.GroupByKey()
        | "CommitWindow" >> beam.ParDo(CommitWindow(config, spec))
        | "LogWindow" >> beam.Map(_log_window)
    )


def _log_window(summary: dict[str, Any]) -> None:
    LOG.info("window %s committed: %s", summary["run_id"], summary["counts"])
