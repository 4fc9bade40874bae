"""build(p, config): wires the stages, nothing else. Read it top to bottom to follow the data.

paths -----------------------------> RawDocument (ReadSources)
feed URLs (+ OUT/_state/feeds) ----> RawDocument (FetchFeeds)     -> new OUT/_state/feeds
RawDocument -> Unit (-> with its linked page: FollowLinks) -> Article -> clean Article
      -> Article with fields
      -> deduplicated Article (against this run and OUT/_index)   -> OUT/articles
every failure on the way                                          -> OUT/rejects
every dropped copy                                                -> OUT/duplicates
what the kept articles look like to later runs                    -> OUT/_index
the list of files written                                         -> the run report
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline.commit import staging_dir
from pipeline.options import Config
from pipeline.progress import ShowPieceProgress, ShowProgress, progress_total
from pipeline.runners import runner_name
from schemas import article_row, duplicate_row, reject_row
from transforms.clean import CleanArticles
from transforms.common import Sink
from transforms.dedupe import DedupeArticles
from transforms.extract import ExtractArticles
from transforms.fetch import FetchFeeds, FollowLinks, forget_validators
from transforms.fields import ExtractFields
from transforms.parse import ParseDocuments
from transforms.read import ReadSources, display_path, dump_pieces, may_hold_dumps
from transforms.write import WritePartitionedParquet, join_path


def report_path(config: Config) -> str:
    """Where the pipeline leaves the list of files it wrote, for the driver's manifest."""
    return join_path(staging_dir(config.output_dir, config.run_id), "files.json")


def write_report(files: list[dict[str, Any]], path: str) -> None:
    ordered = sorted(files, key=lambda f: (f["dataset"], f["path"]))
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        fh.write(json.dumps(ordered, indent=1).encode("utf-8"))


def index_pattern(config: Config, dataset: str = "_index") -> str | None:
    """The files earlier runs left in OUT/<dataset> (the index, the feed state), or None."""
    pattern = join_path(config.output_dir, dataset, "*.parquet")
    # a missing folder matches nothing; any other failure (permissions, an object store's
    # credentials) stops the run: read as "no history", it would store every copy again
    found = FileSystems.match([pattern])[0].metadata_list
    return pattern if found else None


def _identity(row: dict[str, Any]) -> dict[str, Any]:
    return row


def _size(path: str) -> int:
    if "://" in path:  # an object store's: its listing's size is not kept; all rank alike
        return 0
    try:
        return os.path.getsize(path)
    except OSError:  # gone since it was listed: its read says so
        return 0


def ranked_inputs(inputs: tuple[str, ...]) -> list[tuple[int, str]]:
    """(rank, display path), largest file first (a file's size stands for its cost); ties
    by path, so the same inputs give the same ranks."""
    ordered = sorted(inputs, key=lambda path: (-_size(path), path))
    return [(rank, display_path(path)) for rank, path in enumerate(ordered)]


def _grouped_values(key_values: tuple[Any, Any]) -> Any:
    return key_values[1]


def link_state_row(article: Any, run_id: str | None) -> Iterator[dict[str, Any]]:
    """An OUT/_state/links row for an article whose followed link is not its own URL
    (``run_id`` None: the write step stamps it, a stream's window's run id)."""
    if article.followed_link and article.url:
        yield {"link": article.followed_link, "url": article.url, "run_id": run_id}


def article_stages(units: beam.PCollection[Any], config: Config, rejects: Sink,
                   ingested_at: Any) -> beam.PCollection[Any]:
    """Unit -> Article with its fields: the stages `run` and `stream` share. ``ingested_at``
    None: each article's is its event time (its arrival, in a stream)."""
    return (
        units
        | "ExtractArticles" >> ExtractArticles(rejects, ingested_at=ingested_at)
        | "CleanArticles" >> CleanArticles(config.steps["clean"], rejects)
        | "ExtractFields" >> ExtractFields(config.steps["fields"], rejects, config.near)
    )


def build(p: beam.Pipeline, config: Config) -> None:
    out = config.output_dir
    stage = staging_dir(out, config.run_id)
    stored = index_pattern(config)
    run_id = config.run_id
    # files of a bounded size where workers receive each partition's rows over the wire
    # (transforms/write.py); the DirectRunner holds them all in its process anyway
    split = not (runner_name(list(config.beam_args)) or "direct").endswith("direct")
    with Sink("WriteRejects", WritePartitionedParquet(out, "rejects", reject_row, stage,
                                                      run_id=run_id, split_large=split)) \
            as rejects, \
            Sink("WriteDuplicates", WritePartitionedParquet(
                out, "duplicates", duplicate_row, stage, run_id=run_id,
                split_large=split)) as dups, \
            Sink("WriteIndex", WritePartitionedParquet(
                out, "_index", _identity, stage, split_large=split,
                metadata=config.signature.index_metadata())) \
            as index, \
            Sink("WriteFeedState",
                 WritePartitionedParquet(out, "_state/feeds", _identity, stage), p) as state, \
            ExitStack() as optional:
        # links whose page named another URL (--follow-links): OUT/_state/links
        links = optional.enter_context(Sink(
            "WriteLinkState", WritePartitionedParquet(out, "_state/links", _identity, stage),
            p)) if config.follow_links else None
        # a name that is not UTF-8 travels as its display form (the read finds the file)
        if config.spread_inputs:
            # a runner splits work at stage boundaries: without this one, every file would
            # be read, parsed and extracted by the one worker that ran Create (2 workers:
            # 1.08x faster than one without it, 1.64x with it; docs/benchmarks.md). Keyed
            # by rank of size, largest first: the FnApiRunner deals a grouped stage's keys
            # to its workers in turn, in the order they arrived, so each worker gets every
            # other file of that order and the halves' work is even (a random reshuffle
            # left one worker ~1.5 s behind on 2,000 pages); other runners hash the keys
            paths = (p | "ListInputs" >> beam.Create(ranked_inputs(config.inputs),
                                                      reshuffle=False)
                     | "SpreadInputs" >> beam.GroupByKey()
                     | "Unrank" >> beam.FlatMap(_grouped_values))
        else:
            paths = p | "ListInputs" >> beam.Create([display_path(i) for i in config.inputs],
                                                    reshuffle=False)
        pieces = config.dump_pieces
        if pieces is None:
            pieces = dump_pieces(config.inputs, config.max_bytes, slices=config.dump_slices)
        total, unit = progress_total(config.inputs, pieces)
        # the key of this graph's progress line in a worker process (its ShowProgress
        # instances share it): new for each graph, so a run built twice in one process
        # does not add to the count of the first
        key = f"{run_id}:{uuid.uuid4().hex}"
        progress = (total, config.progress, config.progress_tally, key, unit)
        docs = (
            paths
            | "Progress" >> beam.ParDo(ShowProgress(*progress))
            | "ReadSources" >> ReadSources(
                rejects, max_bytes=config.max_bytes,
                chunked=may_hold_dumps(config.inputs, config.max_bytes, pieces=pieces),
                progress=ShowPieceProgress(*progress, planned=pieces) if pieces else None,
                slices={display_path(k): v for k, v in (config.dump_slices or {}).items()})
        )
        fetch_feeds = None
        if config.feeds:
            # with --follow-links the feeds' state rows wait for the pages (forget_validators)
            fetch_feeds = FetchFeeds(rejects, None if config.follow_links else state,
                                     config.fetch, index_pattern(config, "_state/feeds"),
                                     config.ingested_at, config.run_id)
            fetched = (
                p
                | "ListFeeds" >> beam.Create(list(config.feeds))
                | "FetchFeeds" >> fetch_feeds
            )
            docs = (docs, fetched) | "AllDocuments" >> beam.Flatten()
        units = docs | "ParseDocuments" >> ParseDocuments(rejects)
        if config.follow_links:
            # only stored articles' URLs: a page whose article was a near, id or exact copy
            # of another is fetched again when its entry comes back (not fetched, the entry
            # would fall back to its feed teaser, at a URL nothing stored holds, and be
            # stored as a new article)
            seen = [stored] if stored else []
            follow = FollowLinks(rejects, config.fetch, seen,
                                 check_robots=not config.fetch.ignore_robots,
                                 links=index_pattern(config, "_state/links"))
            units = units | "FollowLinks" >> follow
            if fetch_feeds is not None:
                assert fetch_feeds.state_rows is not None and follow.page_rejects is not None
                state.add_error_pcollection(
                    forget_validators(fetch_feeds.state_rows, follow.page_rejects))
        extracted = article_stages(units, config, rejects, config.ingested_at)
        if links is not None:
            links.add_error_pcollection(
                extracted | "LinkState" >> beam.FlatMap(link_state_row, config.run_id))
        articles = extracted | "DedupeArticles" >> DedupeArticles(
            dups, config.near, stored, index, config.run_id, signature=config.signature)
        article_files = articles | "WriteArticles" >> WritePartitionedParquet(
            out, "articles", article_row, stage, split_large=split
        )
    outputs = [article_files, dups.output(), rejects.output(), index.output(), state.output()]
    if links is not None:
        outputs.append(links.output())
    (
        tuple(outputs)
        | "AllFiles" >> beam.Flatten()
        | "CollectFiles" >> beam.combiners.ToList()
        | "WriteReport" >> beam.Map(write_report, report_path(config))
    )
