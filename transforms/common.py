"""The stage boundary: run a pure function per element and route every failure to rejects.

Beam's ``with_exception_handling`` hands the dead-letter branch only the exception's type and
repr, not the instance, so a typed reject could not keep its reason and detail. ``_StageFn``
is the same pattern with the instance kept: it turns the exception into one flat ``Reject``
row (stage, reason, error type, detail, input path, bounded excerpt) and counts it. The
function's outputs are materialized before they are emitted, so a failing element emits
nothing but its reject (as ``partial=False`` does in Beam).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.error_handling import ErrorHandler

from schemas.records import Reject, bounded_excerpt
from transforms.errors import INTERNAL_ERROR, RejectError

METRICS_NAMESPACE = "newsbeam"
REJECTS_TAG = "rejects"


def input_path_of(element: Any) -> str:
    if isinstance(element, str):
        return element
    return str(getattr(element, "input_path", "") or "")


def excerpt_of(element: Any) -> str:
    if hasattr(element, "excerpt") and callable(element.excerpt):
        return str(element.excerpt())
    return bounded_excerpt(str(element))


def to_reject(element: Any, stage: str, exc: BaseException) -> Reject:
    """Convert an exception raised on ``element`` into a reject row (class -> name here)."""
    if isinstance(exc, RejectError):
        reason, detail = exc.reason, exc.detail
    else:
        reason, detail = INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:1000]
    entry = _feed_entry(element)
    if entry is not None and not detail.startswith("entry "):
        detail = f"entry {entry}: {detail}"  # which of the feed's entries (JSONL names lines)
    return Reject(
        input_path=input_path_of(element),
        stage=stage,
        reason=reason,
        error_type=type(exc).__name__,
        detail=detail,
        excerpt=excerpt_of(element),
        unit_key=str(getattr(element, "unit_key", "") or ""),
    )


FEED_KINDS = frozenset({"rss", "atom", "rdf", "jsonfeed"})


def _feed_entry(element: Any) -> int | None:
    """The 1-based number of a feed entry (a Unit, or the Article made of it), else None."""
    if getattr(element, "input_kind", None) not in FEED_KINDS:
        return None
    key = str(getattr(element, "unit_key", "") or "")
    number = key.rsplit("#", 1)[-1] if "#" in key else ""
    return int(number) + 1 if number.isdigit() else None


class Rejected:
    """What a stage's function yields, beside its good outputs, for a part of its element
    that is lost (the cut tail of a truncated file): it becomes one reject row, counted as
    one unit, with ``exc``'s stage, reason and detail and ``excerpt``."""

    def __init__(self, exc: RejectError, excerpt: str) -> None:
        self.exc = exc
        self.excerpt = excerpt


def _partial_reject(element: Any, stage: str, part: Rejected) -> Reject:
    row = to_reject(element, part.exc.stage or stage, part.exc)
    return dataclasses.replace(row, excerpt=part.excerpt, unit_key="")


def stage_counters(stage: str) -> tuple[Any, Any, Any]:
    """The in/out/rejected counters of a stage (the manifest's accounting reads them)."""
    made = [Metrics.counter(METRICS_NAMESPACE, f"{stage}.{name}")
            for name in ("in", "out", "rejected")]
    return made[0], made[1], made[2]


class _StageFn(beam.DoFn):
    def __init__(self, fn: Callable[..., Iterable[Any]], stage: str, kwargs: dict[str, Any],
                 timestamp_as: str | None = None):
        self._fn = fn
        self._stage = stage
        self._kwargs = kwargs
        # the name of a keyword argument that receives the element's event time (a UTC
        # datetime): in the streaming graph, an article's ingested_at is its arrival time
        self._timestamp_as = timestamp_as
        self._in, self._out, self._rejected = stage_counters(stage)
        # time spent in the stage's own function (the run summary's time per stage)
        self._micros = Metrics.counter(METRICS_NAMESPACE, f"{stage}.us")

    def process(self, element: Any, ts: Any = beam.DoFn.TimestampParam) -> Iterable[Any]:
        self._in.inc()
        t0 = time.perf_counter()
        kwargs = self._kwargs
        if self._timestamp_as:
            kwargs = {**kwargs, self._timestamp_as: ts.to_utc_datetime(has_tz=True)}
        try:
            results = list(self._fn(element, **kwargs))
        except Exception as exc:  # routed, never dropped: every failure becomes a reject row
            self._micros.inc(int((time.perf_counter() - t0) * 1e6))
            self._rejected.inc()
            yield beam.pvalue.TaggedOutput(REJECTS_TAG, to_reject(element, self._stage, exc))
            return
        self._micros.inc(int((time.perf_counter() - t0) * 1e6))
        for result in results:
            if isinstance(result, Rejected):
                self._rejected.inc()
                yield beam.pvalue.TaggedOutput(
                    REJECTS_TAG, _partial_reject(element, self._stage, result))
            else:
                self._out.inc()
                yield result


def apply_stage(
    pcoll: beam.PCollection,
    label: str,
    stage: str,
    fn: Callable[..., Iterable[Any]],
    error_handler: ErrorHandler,
    timestamp_as: str | None = None,
    **kwargs: Any,
) -> beam.PCollection:
    """Apply ``fn`` (element -> iterable of outputs) as a FlatMap named ``label``; failures go
    to ``error_handler`` as Reject rows of stage ``stage``. Returns the good outputs."""
    result = pcoll | label >> beam.ParDo(_StageFn(fn, stage, kwargs, timestamp_as)).with_outputs(
        REJECTS_TAG, main="good"
    )
    error_handler.add_error_pcollection(result[REJECTS_TAG])
    return result["good"]


class Sink(ErrorHandler):
    """An ErrorHandler with a stable label, so several (rejects, duplicates) can live in one
    pipeline: stages add PCollections to it, and on close they are flattened and handed to
    the consumer transform under ``label``."""

    def __init__(self, label: str, consumer: beam.PTransform,
                 pipeline: beam.Pipeline | None = None, windowfn: Any = None) -> None:
        super().__init__(consumer)
        self._label = label
        self._pipeline = pipeline
        self._windowfn = windowfn  # the streaming graph's windows, for the empty input

    def close(self) -> None:
        if not self._error_pcolls and self._pipeline is not None:
            # nothing was routed here in this graph (no feed fetched): an empty input
            pcoll = self._pipeline | f"Empty{self._label}" >> beam.Create([])
            if self._windowfn is not None:
                pcoll = pcoll | f"Window{self._label}" >> beam.WindowInto(self._windowfn)
        else:
            pcoll = tuple(self._error_pcolls) | f"Flatten{self._label}" >> beam.Flatten()
        self._output = pcoll | self._label >> self._consumer
        self._closed = True
