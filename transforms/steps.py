"""Composable steps: small, named, pure functions over articles, applied as ordered chains.

A step takes an Article and returns either a new Article, a mapping of the fields it sets,
or None to drop the article (it then becomes a ``dropped_by_step`` reject, never a silent
loss). Built-in steps register themselves with ``@step(name, chain)``; ``chain`` is ``clean``
(CleanArticles) or ``fields`` (ExtractFields). A user's step is any importable function given
as ``module:function`` (``clean:module:function`` puts it in the cleaning chain).

Chain specifications (``--steps`` or ``steps = [...]`` in a ``--config`` file):
  * a full list, e.g. ``normalize_unicode,remove_boilerplate,language``: exactly these, in this
    order within each chain;
  * modifiers only, e.g. ``-quotes,+mypkg.tags:tag_paywall``: the default chains without
    ``quotes``, plus ``tag_paywall`` at the end of its chain.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas.records import Article
from transforms.common import METRICS_NAMESPACE, REJECTS_TAG, to_reject
from transforms.errors import RejectError, StepDropped, StepFailed

StepResult = Article | Mapping[str, Any] | None
StepFn = Callable[[Article], StepResult]
CHAINS = ("clean", "fields")


@dataclass(frozen=True)
class Step:
    name: str
    chain: str
    fn: StepFn
    # per-worker preparation (loading a model), run once before the worker's first article
    setup: Callable[[], None] | None = None


REGISTRY: dict[str, Step] = {}


def step(name: str, chain: str, setup: Callable[[], None] | None = None
         ) -> Callable[[StepFn], StepFn]:
    """Register a built-in step under a stable name; ``setup`` prepares a worker for it."""
    if chain not in CHAINS:
        raise ValueError(f"unknown chain {chain!r}")

    def register(fn: StepFn) -> StepFn:
        REGISTRY[name] = Step(name, chain, fn, setup)
        return fn

    return register


DEFAULT_STEPS: tuple[str, ...] = (
    # CleanArticles
    "normalize_unicode",
    "strip_markup",
    "remove_boilerplate",
    "drop_repeated_paragraphs",
    "drop_title_byline",
    # ExtractFields
    "title",
    "authors",
    "dates",
    "dateline",
    "language",
    "countries",
    "quotes",
)


class StepSpecError(ValueError):
    """A step name or module:function that cannot be resolved (a usage error)."""


def _import_step_module(name: str) -> Any:
    """``name`` imported; a module of the current folder too, as ``python -m pipeline``
    finds it (the ``newsbeam`` command's own folder is on the path instead): the folder is
    appended to the path, after everything installed, only when the import fails without
    it. Worker processes Beam starts (``python -m ...``) have it on their path already."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        here = os.getcwd()
        top = name.partition(".")[0]
        if exc.name != top or here in sys.path or "" in sys.path:
            raise
        sys.path.append(here)
        return importlib.import_module(name)


def _load_custom(spec: str) -> Step:
    chain = "fields"
    target = spec
    if spec.startswith(("clean:", "fields:")):
        chain, target = spec.split(":", 1)
    module_name, _, func_name = target.partition(":")
    if not module_name or not func_name:
        raise StepSpecError(f"unknown step {spec!r} (use a built-in name or module:function)")
    try:
        module = _import_step_module(module_name)
    except ImportError as exc:
        raise StepSpecError(f"cannot import step module {module_name!r}: {exc}") from exc
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise StepSpecError(f"{module_name} has no function {func_name!r}")
    return Step(target, chain, fn)


def _resolve_one(spec: str) -> Step:
    spec = spec.strip()
    if spec in REGISTRY:
        return REGISTRY[spec]
    if ":" in spec:
        return _load_custom(spec)
    known = ", ".join(sorted(REGISTRY))
    raise StepSpecError(f"unknown step {spec!r} (built-in steps: {known})")


def resolve_steps(specs: Sequence[str] | None) -> dict[str, tuple[Step, ...]]:
    """Step specs -> {"clean": steps, "fields": steps}, validated now (when the pipeline is
    built), so a typo fails before any work starts."""
    _ensure_builtins()
    items = [s.strip() for s in specs or [] if s and s.strip()]
    if items and all(s[0] in "+-" for s in items):
        names: list[str] = list(DEFAULT_STEPS)
        for item in items:
            target = item[1:].strip()
            if item[0] == "-":
                if target not in names:
                    raise StepSpecError(f"cannot remove {target!r}: not in the default steps")
                names.remove(target)
            else:
                names.append(target)
    elif any(s[0] in "+-" for s in items):
        raise StepSpecError("mix of a step list and +/- modifiers; use one or the other")
    else:
        names = items or list(DEFAULT_STEPS)
    steps = [_resolve_one(n) for n in names]
    seen: set[str] = set()
    for s in steps:
        if s.name in seen:
            raise StepSpecError(f"step {s.name!r} is listed twice")
        seen.add(s.name)
    return {chain: tuple(s for s in steps if s.chain == chain) for chain in CHAINS}


def _ensure_builtins() -> None:
    # The modules that hold the built-in steps register them on import.
    importlib.import_module("transforms.clean")
    importlib.import_module("transforms.fields")


def apply_step(article: Article, s: Step) -> Article:
    """Run one step and merge its result."""
    result = s.fn(article)
    if result is None:
        raise StepDropped(f"step {s.name} dropped the article")
    if isinstance(result, Article):
        return result
    if isinstance(result, Mapping):
        return article.replace(**dict(result))
    raise StepFailed(f"step {s.name} returned {type(result).__name__}, not an Article, a "
                     "mapping of fields or None")


class _ChainFn(beam.DoFn):
    """Applies a chain; a step that fails sends the article to rejects under its own name."""

    def __init__(self, chain: str, steps: tuple[Step, ...],
                 finalize: Callable[[Article], Article] | None) -> None:
        self._chain = chain
        self._steps = steps
        self._finalize = finalize
        self._timers = {s.name: Metrics.distribution(METRICS_NAMESPACE, f"step.{s.name}.usec")
                        for s in steps}
        self._rejected = Metrics.counter(METRICS_NAMESPACE, f"{chain}.rejected")
        self._unparsed = Metrics.counter(METRICS_NAMESPACE, "dates.unparsed")
        self._micros = Metrics.counter(METRICS_NAMESPACE, f"{chain}.us")
        self._setup_micros = Metrics.counter(METRICS_NAMESPACE, "setup.us")
        self._prepared = False

    def start_bundle(self) -> None:
        # the steps' per-worker preparation (a model load), once per DoFn instance and before
        # its first article: timed as its own stage ("setup"), not as the first article's
        # step. In start_bundle rather than setup: metrics are only recorded in a bundle.
        if self._prepared:
            return
        t0 = time.perf_counter()
        for s in self._steps:
            if s.setup is not None:
                s.setup()
        self._setup_micros.inc(int((time.perf_counter() - t0) * 1e6))
        self._prepared = True

    def process(self, article: Article) -> Iterator[Any]:
        # materialized before yielding: a fused downstream stage runs inside the yield, and
        # its time must not count as this chain's
        started = time.perf_counter()
        results = list(self._apply(article))
        self._micros.inc(int((time.perf_counter() - started) * 1e6))
        yield from results

    def _apply(self, article: Article) -> Iterator[Any]:
        current = article
        name = "start"
        try:
            for s in self._steps:
                name = s.name
                t0 = time.perf_counter()
                current = apply_step(current, s)
                self._timers[s.name].update(int((time.perf_counter() - t0) * 1e6))
            if self._finalize is not None:
                name = "finalize"
                current = self._finalize(current)
        except Exception as exc:  # routed: the step's name is the reject's stage
            if not isinstance(exc, RejectError):
                exc = StepFailed(f"{type(exc).__name__}: {exc}")
            self._rejected.inc()
            yield beam.pvalue.TaggedOutput(
                REJECTS_TAG, to_reject(article, f"{self._chain}:{name}", exc)
            )
            return
        if self._finalize is not None and current.date_unparsed:
            self._unparsed.inc()
        yield current


class ApplySteps(beam.PTransform):
    """Article -> Article through an ordered chain of steps; failures go to ``rejects``."""

    def __init__(self, chain: str, steps: Iterable[Step], error_handler: Any,
                 finalize: Callable[[Article], Article] | None = None) -> None:
        super().__init__()
        self._chain = chain
        self._steps = tuple(steps)
        self._errors = error_handler
        self._finalize = finalize

    def expand(self, articles: beam.PCollection[Article]) -> beam.PCollection[Article]:
        result = articles | "Apply" >> beam.ParDo(
            _ChainFn(self._chain, self._steps, self._finalize)
        ).with_outputs(REJECTS_TAG, main="good")
        self._errors.add_error_pcollection(result[REJECTS_TAG])
        return result["good"]
