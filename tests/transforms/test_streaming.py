"""Window, trigger and cross-window dedupe semantics under TestStream (deterministic time).

TestStream needs the BundleBasedDirectRunner with --streaming (without --streaming a late
element is merged into the on-time pane)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import trigger, window
from apache_beam.transforms.window import TimestampedValue

from transforms.streaming import DUPLICATE_TAG, FirstSeen


def streaming_pipeline() -> TestPipeline:
    options = PipelineOptions(["--runner=BundleBasedDirectRunner"])
    options.view_as(StandardOptions).streaming = True
    return TestPipeline(options=options)


def story(key: str, copy: int) -> tuple[str, dict[str, Any]]:
    return (key, {"id": f"{key}-{copy}", "key": key})


def _id(item: dict[str, Any]) -> str:
    return str(item["id"])


def _dup_pair(element: tuple[dict[str, Any], str]) -> tuple[str, str]:
    return (element[0]["id"], element[1])


def test_a_story_arriving_again_in_a_later_window_is_a_duplicate_until_the_horizon() -> None:
    events = (
        TestStream()
        .advance_watermark_to(0)
        .add_elements([TimestampedValue(story("a", 1), 10), TimestampedValue(story("b", 1), 20)])
        .advance_watermark_to(70)  # the first 60 s window closes
        .add_elements([TimestampedValue(story("a", 2), 80)])  # a copy, one window later
        .advance_watermark_to(4000)  # past the 3600 s horizon: a's state expired
        .add_elements([TimestampedValue(story("a", 3), 4000)])
        .advance_watermark_to_infinity()
    )
    with streaming_pipeline() as p:
        result = (
            p
            | events
            | beam.ParDo(FirstSeen(horizon=3600, label_of=_id)).with_outputs(DUPLICATE_TAG,
                                                                            main="kept")
        )
        kept_ids = result["kept"] | "KeptIds" >> beam.Map(_id)
        dups = result[DUPLICATE_TAG] | "DupPairs" >> beam.Map(_dup_pair)
        assert_that(kept_ids, equal_to(["a-1", "b-1", "a-3"]), label="Kept")
        assert_that(dups, equal_to([("a-2", "a-1")]), label="Dups")



def test_panes_of_one_window_are_written_to_distinct_files(tmp_path) -> None:
    """The stream's writer names files by rows, window and pane: a late pane of a window never
    overwrites its on-time pane (Beam reuses a window's file names; 51 of 61 rows were lost
    that way in a trial)."""
    from schemas import Reject, reject_row
    from transforms.write import WritePartitionedParquet

    def reject(name: str) -> dict[str, Any]:
        return reject_row(Reject(f"/in/{name}", "parse", "not_a_document", "X", "", name))

    events = (
        TestStream()
        .advance_watermark_to(0)
        .add_elements([TimestampedValue(reject("x1"), 5), TimestampedValue(reject("x2"), 6)])
        .advance_watermark_to(61)  # on-time pane of [0, 60)
        .add_elements([TimestampedValue(reject("x3"), 30)])  # late, within allowed lateness
        .advance_watermark_to_infinity()
    )
    stage = str(tmp_path / "out" / "_staging" / "w")
    with streaming_pipeline() as p:
        written = (
            p
            | events
            | beam.WindowInto(window.FixedWindows(60),
                              trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
                              accumulation_mode=trigger.AccumulationMode.DISCARDING,
                              allowed_lateness=600)
            | WritePartitionedParquet(str(tmp_path / "out"), "rejects", dict,
                                      staging_for=lambda _w, _p: stage)  # noqa: E731
            | beam.Map(lambda f: (f["rows"], f["path"].rsplit("-", 2)[-1]))  # noqa: E731
        )
        assert_that(written, equal_to([(2, "p0.parquet"), (1, "p1.parquet")]))
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "out" / "_staging" / "w" / "rejects").num_rows == 3


def test_a_poll_stamps_what_it_finds_with_the_arrival_time(tmp_path) -> None:
    """Event time is when newsbeam saw a file, not when it was written or published: an old
    file (a back-filled archive) is never late."""
    import os

    from transforms.streaming import PollSources

    (tmp_path / "in").mkdir()
    old = tmp_path / "in" / "archive-2009.jsonl"
    old.write_text("{}\n")
    os.utime(old, (1_230_000_000, 1_230_000_000))
    poll = PollSources(str(tmp_path / "out"), str(tmp_path / "stop"), 1.0,
                       clock=lambda: 1_700_000_000.0)
    result = poll(("folder", str(tmp_path / "in")))
    assert [(v.value.path, float(v.timestamp)) for v in result.outputs] == [
        (str(old), 1_700_000_000.0)]
    assert float(result.watermark) == 1_700_000_000.0
    (tmp_path / "stop").write_text("stop\n")
    assert poll(("folder", str(tmp_path / "in"))).is_complete


def test_a_copy_in_the_same_window_is_left_to_the_window_dedupe() -> None:
    events = (
        TestStream()
        .advance_watermark_to(0)
        .add_elements([TimestampedValue(story("a", 1), 10)])
        .add_elements([TimestampedValue(story("a", 2), 30)])  # same 60 s window: passes
        .advance_watermark_to(70)
        .add_elements([TimestampedValue(story("a", 3), 80)])  # next window: a duplicate
        .advance_watermark_to_infinity()
    )
    with streaming_pipeline() as p:
        result = (
            p
            | events
            | beam.ParDo(FirstSeen(horizon=3600, label_of=_id, window=60)).with_outputs(
                DUPLICATE_TAG, main="kept")
        )
        assert_that(result["kept"] | "KeptIds" >> beam.Map(_id), equal_to(["a-1", "a-2"]),
                    label="kept")
        assert_that(result[DUPLICATE_TAG] | "DupPairs" >> beam.Map(_dup_pair),
                    equal_to([("a-3", "a-1")]), label="dups")


def test_a_file_written_again_after_the_poll_is_left_for_a_later_poll(tmp_path) -> None:
    import os

    from transforms.streaming import INPUTS_TAG, Arrival, SplitArrivals

    path = tmp_path / "a.jsonl"
    path.write_text("one\n")
    st = os.stat(path)
    arrival = Arrival("file", str(path), st.st_size, st.st_mtime_ns)
    out = list(SplitArrivals().process(arrival))
    assert out[0] == str(path) and out[1].tag == INPUTS_TAG
    path.write_text("one\ntwo\n")  # appended between the poll and the read
    assert list(SplitArrivals().process(arrival)) == []
    path.unlink()
    assert list(SplitArrivals().process(arrival)) == []


def test_a_feed_poll_run_again_after_a_304_still_reports_the_body(tmp_path) -> None:
    from tests.httpserver import Reply, ServerGroup, conditional
    from tests.pipeline.test_fetch import RSS_TYPE, rss
    from transforms.http import FetchPolicy
    from transforms.streaming import PollSources, arrival_key

    policy = FetchPolicy(allow_networks=("127.0.0.1/32",))
    poll = PollSources(str(tmp_path), str(tmp_path / "stop"), 1.0, policy)
    with ServerGroup() as servers:
        server = servers.start({"/feed.xml": conditional(
            Reply(body=rss([("A story", "https://example.org/a", "Some text.")]),
                  headers=RSS_TYPE), etag='"v1"')})
        first = poll(("feed", server.url("/feed.xml")))
        # Watch dropped that round (a retried bundle) and polls again: the server says 304
        again = poll(("feed", server.url("/feed.xml")))
        statuses = [r.headers.get("if-none-match") for r in server.requests_for("/feed.xml")]
    assert statuses == [None, '"v1"']
    assert len(first.outputs) == len(again.outputs) == 1
    # the same body, so the same key: Watch emits it once however often it is reported
    assert arrival_key(first.outputs[0].value) == arrival_key(again.outputs[0].value)
    assert not first.is_complete


def test_folders_and_file_state_on_another_filesystem() -> None:
    """Folder watching and OUT/_state/files go through Beam's FileSystems, so a stream on
    Dataflow can watch gs:// (an in-memory object store stands in for it: tests/objectstore)."""
    import uuid

    from apache_beam.io.filesystems import FileSystems

    import tests.objectstore  # noqa: F401 (registers nbmem://)
    from transforms.streaming import (
        Arrival,
        SplitArrivals,
        load_file_state,
        ready_files,
        write_file_state,
    )

    root = f"nbmem://newsbeam-{uuid.uuid4().hex[:8]}"
    for name in ("in/a.jsonl", "in/sub/b.jsonl", "in/c.jsonl.part", "in/.hidden/d.jsonl"):
        with FileSystems.create(f"{root}/{name}") as fh:
            fh.write(b'{"title": "x"}\n')
    found = ready_files([f"{root}/in"], {}, settle=0.0, now=4e9)
    assert [p for p, _s, _m in found] == [f"{root}/in/a.jsonl", f"{root}/in/sub/b.jsonl"]
    path, size, mtime = found[0]
    assert list(SplitArrivals().process(Arrival("file", path, size, mtime)))[0] == path
    write_file_state(f"{root}/out", "w1", {path: (size, mtime)})
    assert load_file_state(f"{root}/out") == {path: (size, mtime)}
    seen = load_file_state(f"{root}/out")
    assert [p for p, _s, _m in ready_files([f"{root}/in"], seen, 0.0, 4e9)] == [
        f"{root}/in/sub/b.jsonl"]


def test_a_watched_folder_skips_newsbeam_outputs(tmp_path: Path) -> None:
    from transforms.streaming import list_files

    (tmp_path / "story.txt").write_text("news")
    old = tmp_path / "archive"  # an earlier newsbeam output kept beside the news
    (old / "_runs").mkdir(parents=True)
    (old / "_runs" / "run.json").write_text("{}")
    (old / "articles").mkdir()
    (old / "articles" / "part.parquet").write_bytes(b"PAR1")
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "b.txt").write_text("news")
    assert list_files([str(tmp_path)]) == [str(tmp_path / "more" / "b.txt"),
                                           str(tmp_path / "story.txt")]


def test_a_watched_file_whose_name_is_not_utf8_is_listed_as_text_and_read(
        tmp_path: Path) -> None:
    """A stream lists such a file by its display form (Beam's coders refuse the raw name),
    remembers it under that form, and the read finds the file from it."""
    import os

    from transforms.read import read_document
    from transforms.streaming import scan_folders

    raw = tmp_path / os.fsdecode(b"d\xe9p\xeache.txt")
    raw.write_text("Title\n\nA body of a few words for the test.\n")
    ready, _ = scan_folders([str(tmp_path)], {}, settle=0.0, now=time_now() + 10)
    [(path, size, mtime)] = ready
    assert path == f"{tmp_path}/d\\xe9p\\xeache.txt" and size == raw.stat().st_size
    [doc] = list(read_document(path))
    assert doc.input_path == path and b"A body of a few words" in doc.data
    assert scan_folders([str(tmp_path)], {path: (size, mtime)}, 0.0, time_now() + 10)[0] == []


def time_now() -> float:
    import time

    return time.time()


def test_a_watched_folder_follows_links_once_each(tmp_path: Path) -> None:
    from transforms.streaming import list_files

    inbox, elsewhere = tmp_path / "inbox", tmp_path / "elsewhere"
    (inbox / "a").mkdir(parents=True)
    elsewhere.mkdir()
    (inbox / "a" / "one.txt").write_text("x")
    (elsewhere / "two.txt").write_text("y")
    (inbox / "linked").symlink_to(elsewhere)
    (inbox / "a" / "up").symlink_to(inbox)  # a loop, were links followed blindly
    assert list_files([str(inbox)]) == [str(inbox / "a" / "one.txt"),
                                        str(inbox / "linked" / "two.txt")]
