"""Building blocks of the unbounded graph (Beam's streaming model; pipeline/stream_graph.py).

Their semantics are pinned by tests/transforms/test_streaming.py (TestStream on the
BundleBasedDirectRunner, deterministic time) and by the end-to-end stream tests on Prism.

- ``PollSources``: the poll function of a ``Watch`` over the stream's sources. A folder poll
  lists the files that are ready (no temporary name, size and mtime unchanged for ``settle``
  seconds, not read by an earlier run: OUT/_state/files); a feed poll fetches the feed with
  its last validators (If-None-Match / If-Modified-Since) and reports the body when it
  changed. Each output is keyed (``arrival_key``) so Watch emits it once. Once the stop file
  exists the poll says ``complete``: the watermark jumps to the end of time, every open window
  fires, and the job drains to DONE (``cancel()`` would lose the open windows).

- ``FirstSeen``: cross-window dedupe in the global window, keyed by a dedupe key. The first
  arrival is kept, later arrivals within ``horizon`` seconds (event time) are duplicates;
  state expires by an event-time timer (processing-time timers keep a streaming job from
  ever finishing on Prism), and OUT/_index covers what is older.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.coders import StrUtf8Coder
from apache_beam.io.watch import PollFn, PollResult
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Duration

from schemas.records import Article, Duplicate, RawDocument, Reject
from transforms.common import METRICS_NAMESPACE
from transforms.errors import error_line
from transforms.read import display_path, local_path
from transforms.write import is_dataset

LOG = logging.getLogger("newsbeam")

TEMP_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download",
                 ".inprogress", ".swp", "~")
FILE_STATE = "_state/files"

DUPLICATE_TAG = "duplicates"
# Beam reads state and timers from these parameter defaults (module-level singletons)
_FIRST = ReadModifyWriteStateSpec("first", StrUtf8Coder())
_EXPIRE = TimerSpec("expire", TimeDomain.WATERMARK)
_FIRST_PARAM = beam.DoFn.StateParam(_FIRST)
_EXPIRE_PARAM = beam.DoFn.TimerParam(_EXPIRE)


def is_temporary(name: str) -> bool:
    """A name a writer uses while the file is not complete yet."""
    lower = name.lower()
    return name.startswith((".", "~")) or lower.endswith(TEMP_SUFFIXES)


def list_files(folders: Iterable[str]) -> list[str]:
    """The files under ``folders`` (recursively, through linked folders), temporary names,
    hidden folders and newsbeam output folders (they hold ``_runs/``) left out."""
    found: list[str] = []
    for folder in folders:
        visited = {os.path.realpath(folder)}  # linked folders once each, as `run` reads them
        for root, dirs, names in os.walk(folder, followlinks=True):
            dirs[:] = [d for d in sorted(dirs) if not d.startswith(".")
                       and not is_dataset(os.path.join(root, d))
                       and os.path.realpath(os.path.join(root, d)) not in visited]
            visited.update(os.path.realpath(os.path.join(root, d)) for d in dirs)
            found.extend(os.path.join(root, n) for n in names if not is_temporary(n))
    return sorted(found)


def _state_pattern(output_dir: str) -> str:
    from transforms.write import join_path

    return join_path(output_dir, *FILE_STATE.split("/"), "*.parquet")


def load_file_state(output_dir: str) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime_ns) of every file a stream has read into OUT (local or gs://)."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    seen: dict[str, tuple[int, int]] = {}
    # no state folder yet matches nothing; another failure stops the stream (read as "no
    # state", it would read every file of the watched folders again)
    found = FileSystems.match([_state_pattern(output_dir)])[0].metadata_list
    rows: list[dict[str, Any]] = []
    for meta in sorted(found, key=lambda m: m.path):
        if os.path.basename(meta.path).startswith("."):
            continue
        with FileSystems.open(meta.path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            rows.extend(pq.read_table(pa.BufferReader(fh.read())).to_pylist())
    # a path read again (rewritten in place) keeps its latest read: by run id (they start with
    # the time), not by file name, since `newsbeam compact` merges files under other names
    for row in sorted(rows, key=lambda r: r["run_id"]):
        seen[row["path"]] = (row["size"], row["mtime_ns"])
    return seen


def write_file_state(output_dir: str, run_id: str, files: dict[str, tuple[int, int]]) -> None:
    """The files a window read, written whole (temp name, then rename), local or gs://."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    from transforms.write import join_path, stamped_schema

    if not files:
        return
    folder = join_path(output_dir, *FILE_STATE.split("/"))
    rows = [{"path": p, "size": s, "mtime_ns": m, "run_id": run_id}
            for p, (s, m) in sorted(files.items())]
    temp = join_path(folder, f".part-{run_id}.parquet.inprogress")
    final = join_path(folder, f"part-{run_id}.parquet")
    with FileSystems.create(temp, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        pq.write_table(pa.Table.from_pylist(rows, schema=stamped_schema(FILE_STATE)), fh)
    if FileSystems.exists(final):
        FileSystems.delete([final])
    FileSystems.rename([temp], [final])


def file_signature(path: str) -> tuple[int, int] | None:
    """(size, mtime_ns) of a file, local or on an object store; None when it is gone. A
    local path may be a display path (a name that is not UTF-8, escaped): the file it names."""
    if "://" not in path:
        try:
            st = os.stat(local_path(path))
        except OSError:
            return None
        return (st.st_size, st.st_mtime_ns)
    from apache_beam.io.filesystems import FileSystems

    try:
        found = FileSystems.match([path])[0].metadata_list
    except Exception:
        return None
    if not found:
        return None
    return (found[0].size_in_bytes, int((found[0].last_updated_in_seconds or 0) * 1e9))


def _listing(folder: str) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of the files under a folder; on gs:// or s3:// through Beam's
    FileSystems (object stores list recursively by prefix)."""
    if "://" not in folder:
        found = []
        for path in list_files([folder]):
            sig = file_signature(path)
            if sig is not None:  # a name that is not UTF-8 as text the read resolves
                found.append((display_path(path), *sig))
        return found
    from apache_beam.io.filesystems import FileSystems

    from transforms.write import join_path

    # an empty or missing prefix matches nothing; another failure (a store's hiccup) is said
    # and the folder is listed again at the next poll, as a folder that is empty now would be
    try:
        metas = FileSystems.match([join_path(folder, "**")])[0].metadata_list
    except Exception as exc:  # noqa: BLE001 - whatever the store's client raises
        LOG.warning("cannot list %s (%s): listed again at the next poll", folder,
                    error_line(exc) or type(exc).__name__)
        return []
    found = []
    for meta in sorted(metas, key=lambda m: m.path):
        parts = meta.path[len(folder):].strip("/").split("/")
        if any(p.startswith(".") for p in parts[:-1]) or is_temporary(parts[-1]):
            continue
        found.append((meta.path, meta.size_in_bytes,
                      int((meta.last_updated_in_seconds or 0) * 1e9)))
    return found


Found = list[tuple[str, int, int]]  # (path, size, mtime_ns)


AheadOfClock = dict[str, tuple[tuple[int, int], float]]  # path -> ((size, mtime_ns), when seen)


def scan_folders(folders: Iterable[str], seen: dict[str, tuple[int, int]], settle: float,
                 now: float, future: AheadOfClock | None = None) -> tuple[Found, Found]:
    """(ready, unsettled): the files not already read with this size and mtime, split into
    those complete (untouched for ``settle`` seconds: any write moves the mtime) and those
    maybe still being written. A file whose mtime is ahead of ``now`` (another machine's
    clock, an archive's dates) cannot show its age that way: it is complete once scans
    ``settle`` seconds apart found it unchanged (``future`` keeps when each was first seen
    so; without it, such a file waits for the clock to pass its mtime)."""
    ready: Found = []
    unsettled: Found = []
    for folder in folders:
        for path, size, mtime in _listing(folder):
            if seen.get(path) == (size, mtime):
                continue
            if mtime / 1e9 > now + settle and future is not None:
                settled = _unchanged_for(future, path, (size, mtime), now, settle)
            else:
                settled = now - mtime / 1e9 >= settle
            (ready if settled else unsettled).append((path, size, mtime))
    return ready, unsettled


def _unchanged_for(future: AheadOfClock, path: str, signature: tuple[int, int], now: float,
                   settle: float) -> bool:
    """Whether a file dated ahead of the clock has kept ``signature`` for ``settle``
    seconds of scans; records when it was first seen as it is."""
    first = future.get(path)
    if first is None:
        LOG.warning("%s is dated %.0f s in the future (a clock ahead?): read once it stays "
                    "unchanged for --settle", path, signature[1] / 1e9 - now)
    if first is None or first[0] != signature:
        first = future[path] = (signature, now)
    if now - first[1] < settle:
        return False
    del future[path]
    return True


def ready_files(folders: Iterable[str], seen: dict[str, tuple[int, int]], settle: float,
                now: float, future: AheadOfClock | None = None) -> Found:
    """The complete files of ``scan_folders``."""
    return scan_folders(folders, seen, settle, now, future)[0]


@dataclass(frozen=True)
class Arrival:
    """One thing a poll found: a ready file, a changed feed body, or a failed feed fetch."""

    kind: str  # "file", "feed" or "feed_failed"
    path: str
    size: int = 0
    mtime_ns: int = 0
    doc: RawDocument | None = None
    reject: Reject | None = None


def arrival_key(arrival: Arrival) -> str:
    """What makes an arrival new: a file's path, size and mtime (a file rewritten in place is
    read again); a feed body's digest (an unchanged feed is not parsed again); a feed failure
    once per stream and reason (a dead feed is one reject row, not one per poll)."""
    if arrival.kind == "file":
        return f"file|{arrival.path}|{arrival.size}|{arrival.mtime_ns}"
    if arrival.kind == "feed" and arrival.doc is not None:
        return f"feed|{arrival.path}|{hashlib.sha256(arrival.doc.data).hexdigest()}"
    reason = arrival.reject.reason if arrival.reject else ""
    return f"failed|{arrival.path}|{reason}"


class PollSources(PollFn):
    """Watch poll function over ("folder", path) and ("feed", url) sources; see above."""

    def __init__(self, output_dir: str, stop_file: str, settle: float,
                 policy: Any = None, clock: Callable[[], float] = time.time) -> None:
        self._output_dir = output_dir
        self._stop_file = stop_file
        self._settle = settle
        self._policy = policy
        self._clock = clock
        self._seen: dict[str, tuple[int, int]] | None = None
        self._future: AheadOfClock = {}  # files dated ahead of the clock (scan_folders)
        self._validators: dict[str, tuple[str | None, str | None]] = {}
        # each feed's last body: a poll that Watch runs again (a retried or checkpointed round)
        # gets a 304 and must still report it; Watch's digest dedupe emits it once
        self._last_body: dict[str, Arrival] = {}
        self._last_stamp = 0.0

    def __call__(self, source: tuple[str, str]) -> PollResult:
        from apache_beam.io.filesystems import FileSystems

        stopping = FileSystems.exists(self._stop_file)  # OUT may be gs://: workers see it
        # never behind an earlier stamp (a clock stepped back would make outputs late)
        now = self._last_stamp = max(self._clock(), self._last_stamp)
        kind, where = source
        if kind == "folder":
            if self._seen is None:  # read once per worker; Watch remembers the rest
                self._seen = load_file_state(self._output_dir)
            outputs = [Arrival("file", p, size, mtime)
                       for p, size, mtime in ready_files([where], self._seen, self._settle, now,
                                                         self._future)]
        elif stopping:
            outputs = []  # a last feed fetch would only delay the stop
        else:
            outputs = self._fetch(where, now)
            # stamped when the answer has come: other sources' polls move the watermark on
            # while it is on its way, and the time the fetch began may be behind it by then
            # (its entries were dropped as late, with no trace: a 20 s answer beside a folder)
            now = self._last_stamp = max(self._clock(), self._last_stamp)
        stamped = [TimestampedValue(a, now) for a in outputs]
        if stopping:
            return PollResult.complete(stamped)
        return PollResult.incomplete(stamped).with_watermark(now)

    def _fetch(self, url: str, now: float) -> list[Arrival]:
        from transforms.common import REJECTS_TAG
        from transforms.fetch import FeedRequest, fetch_feed, shared_client

        Metrics.counter(METRICS_NAMESPACE, "stream.feed_polls").inc()
        etag, modified = self._validators.get(url, (None, None))
        fetched_at = datetime.fromtimestamp(now, timezone.utc).replace(microsecond=0)
        found: list[Arrival] = []
        answered = False
        for out in fetch_feed(shared_client(self._policy), FeedRequest(url, etag, modified),
                              fetched_at, "stream"):
            if isinstance(out, RawDocument):
                self._last_body[url] = Arrival("feed", url, doc=out)
                found.append(self._last_body[url])
            elif out.tag == REJECTS_TAG:
                found.append(Arrival("feed_failed", url, reject=out.value))
            else:  # the feed's state row: its validators for the next poll
                self._validators[url] = (out.value["etag"], out.value["last_modified"])
                answered = True
        if answered and not found and url in self._last_body:
            found.append(self._last_body[url])  # 304: the body as last seen (emitted once)
        return found

    def default_output_coder(self) -> Any:
        return beam.coders.PickleCoder()


INPUTS_TAG = "inputs"
FEED_REJECTS_TAG = "feed_rejects"
DOCS_TAG = "docs"


class SplitArrivals(beam.DoFn):
    """Arrival -> a file path (main output), a feed document, a feed reject, and a record of
    each file read (for OUT/_state/files, committed with its window)."""

    def process(self, arrival: Arrival) -> Iterator[Any]:
        if arrival.kind == "file":
            sig = file_signature(arrival.path)
            if sig is None:
                # gone since the poll: nothing arrived (a comment after the return, on its
                # line, makes Beam warn of a generator that returns a value)
                return
            if sig != (arrival.size, arrival.mtime_ns):
                # written again since the poll: a later poll reports it (with the signature
                # it will be recorded under) once it has settled
                return
            yield arrival.path
            yield beam.pvalue.TaggedOutput(INPUTS_TAG, {
                "dataset": "_inputs", "path": arrival.path, "size": arrival.size,
                "mtime_ns": arrival.mtime_ns})
        elif arrival.doc is not None:
            yield beam.pvalue.TaggedOutput(DOCS_TAG, arrival.doc)
        elif arrival.reject is not None:
            yield beam.pvalue.TaggedOutput(FEED_REJECTS_TAG, arrival.reject)


def repeat_of(element: tuple[Article, str]) -> Duplicate:
    """A FirstSeen duplicate -> its row: an exact copy of the article first seen."""
    article, first_id = element
    return Duplicate(article_id=article.article_id, duplicate_of=first_id, method="exact",
                     similarity=1.0, input_path=article.input_path, url=article.url,
                     title=article.title, unit_key=article.unit_key)


@beam.typehints.with_output_types(tuple[str, Any])
def content_key(article: Article) -> tuple[str, Article]:
    return (article.content_hash, article)


class FirstSeen(beam.DoFn):
    """(key, item) in the global window -> the first item of each key (main output); a later
    item of that key within ``horizon`` seconds of event time -> ``(item, kept_id)`` on the
    ``duplicates`` output.

    ``label_of`` gives an item's sortable label (the spine's rank label: the smallest is the
    article a dedupe keeps) and ``id_of_label`` the article id in a label. With ``window``
    (seconds), a copy that falls in the same fixed window as the first one passes through:
    the window's own dedupe then chooses between them by the batch rules (the total order),
    whatever order they arrived in, and the state remembers the smallest label of that window,
    so a later copy points at the copy the window kept."""

    def __init__(self, horizon: float, label_of: Callable[[Any], str],
                 window: float | None = None,
                 id_of_label: Callable[[str], str] | None = None) -> None:
        self._horizon = horizon
        self._label_of = label_of
        self._window = window
        self._id_of_label = id_of_label

    def _window_of(self, ts: Any) -> int:
        return int(float(ts) // self._window) if self._window else -1

    def process(self, element: tuple[str, Any], ts: Any = beam.DoFn.TimestampParam,
                first: Any = _FIRST_PARAM, expire: Any = _EXPIRE_PARAM) -> Iterator[Any]:
        _key, item = element
        label, window = self._label_of(item), self._window_of(ts)
        kept = first.read()
        if kept is None:
            first.write(f"{window}|{label}")
            expire.set(ts + Duration(seconds=self._horizon))
            yield item
            return
        first_window, _, first_label = kept.partition("|")
        if self._window and int(first_window) == window:
            if label < first_label:
                first.write(f"{window}|{label}")
            yield item
            return
        kept_id = self._id_of_label(first_label) if self._id_of_label else first_label
        yield beam.pvalue.TaggedOutput(DUPLICATE_TAG, (item, kept_id))

    @on_timer(_EXPIRE)
    def expire(self, first: Any = _FIRST_PARAM) -> Iterable[Any]:
        first.clear()
        return ()
