"""Building blocks of the unbounded graph (Beam's streaming model), tested under TestStream.

`newsbeam stream` runs locally as micro-batches (pipeline/stream.py); these are the pieces an
unbounded graph on Prism, Dataflow or Flink is made of, with their semantics pinned by
tests/transforms/test_streaming.py (TestStream on the BundleBasedDirectRunner, deterministic
time). See docs/streaming.md for what is still missing to wire them.

- ``StampArrival``: event time = arrival time, so windows follow when newsbeam saw an item and
  a story published years ago is never late (its partition still comes from published_at).
- ``FirstSeen``: cross-window dedupe in the global window, keyed by a dedupe key. The first
  arrival is kept, later arrivals within ``horizon`` seconds (event time) are duplicates;
  state expires by an event-time timer (processing-time timers keep a streaming job from
  ever finishing on Prism), and OUT/_index covers what is older.
- ``pane_file_name``: one name per window, pane and partition. Beam reuses a window's file
  names across panes when names come from the window alone, and a later pane overwrote an
  earlier one in a trial (51 of 61 rows lost); the pane index and a digest of the rows keep
  them apart.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.coders import StrUtf8Coder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Duration

DUPLICATE_TAG = "duplicates"
# Beam reads state and timers from these parameter defaults (module-level singletons)
_FIRST = ReadModifyWriteStateSpec("first", StrUtf8Coder())
_EXPIRE = TimerSpec("expire", TimeDomain.WATERMARK)
_FIRST_PARAM = beam.DoFn.StateParam(_FIRST)
_EXPIRE_PARAM = beam.DoFn.TimerParam(_EXPIRE)


class StampArrival(beam.DoFn):
    """element -> the same element with event time = now (``clock``, seconds since epoch)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def process(self, element: Any) -> Iterator[TimestampedValue]:
        yield TimestampedValue(element, self._clock())


class FirstSeen(beam.DoFn):
    """(key, item) in the global window -> the first item of each key (main output); a later
    item of that key within ``horizon`` seconds of event time -> ``(item, first_id)`` on the
    ``duplicates`` output. ``id_of`` names an item (the article id)."""

    def __init__(self, horizon: float, id_of: Callable[[Any], str]) -> None:
        self._horizon = horizon
        self._id_of = id_of

    def process(self, element: tuple[str, Any], ts: Any = beam.DoFn.TimestampParam,
                first: Any = _FIRST_PARAM, expire: Any = _EXPIRE_PARAM) -> Iterator[Any]:
        _key, item = element
        kept = first.read()
        if kept is not None:
            yield beam.pvalue.TaggedOutput(DUPLICATE_TAG, (item, kept))
            return
        first.write(self._id_of(item))
        expire.set(ts + Duration(seconds=self._horizon))
        yield item

    @on_timer(_EXPIRE)
    def expire(self, first: Any = _FIRST_PARAM) -> Iterable[Any]:
        first.clear()
        return ()


def pane_file_name(partition: str, window_start: float, window_end: float, pane_index: int,
                   row_ids: Iterable[str]) -> str:
    """A file name that no other window, pane or set of rows shares."""
    digest = hashlib.sha256("\n".join(sorted(row_ids)).encode("utf-8")).hexdigest()[:12]
    part = partition.replace("/", "_").replace("=", "-") or "all"
    return (f"part-{part}-w{int(window_start * 1000)}-{int(window_end * 1000)}"
            f"-p{pane_index}-{digest}.parquet")
