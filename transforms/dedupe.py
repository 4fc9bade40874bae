"""DedupeArticles: Article -> Article, keeping one copy of each exact duplicate group.

Three keys, applied in order: the canonical URL (method ``url``), the feed id/guid within its
source (``id``), and the normalized-content hash (``exact``). In each group the kept article is
the first by a total order (``rank_key``): earliest ``published_at``, then the most complete,
then the smallest URL, article id and input path. Input order therefore never changes the
result. Every dropped copy becomes a ``Duplicate`` row sent to the duplicates sink; when a kept
article is itself dropped at a later key, the earlier rows are re-pointed to the final kept
article, so ``duplicate_of`` always names an article that is in the dataset.

Everything is keyed grouping (GroupByKey, CoGroupByKey): no global index on one worker.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.error_handling import ErrorHandler

from schemas.records import Article, Duplicate
from transforms.common import METRICS_NAMESPACE

_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=timezone.utc)
DUP_TAG = "duplicates"


def completeness(article: Article) -> int:
    """How many optional fields an article fills."""
    return sum(
        1
        for value in (
            article.url, article.title, article.authors, article.published_at,
            article.updated_at, article.language, article.summary, article.categories,
            article.text,
        )
        if value
    )


def rank_key(article: Article) -> tuple[Any, ...]:
    """Total order for choosing the kept copy: smaller is better."""
    return (
        article.published_at is None,
        article.published_at or _FAR_FUTURE,
        -completeness(article),
        -len(article.text),
        article.url or "",
        article.article_id,
        article.input_path,
        article.unit_key,
    )


def url_key(article: Article) -> str | None:
    return article.url


def own_id_key(article: Article) -> str | None:
    if not article.guid:
        return None
    return f"{article.source_domain or article.source or ''}|{article.guid}"


def id_key(article: Article) -> str | None:
    """The feed id within its source; an article without one uses the smallest id of the
    copies it absorbed at the URL key, so an id copy of a dropped URL copy is still found."""
    return own_id_key(article) or (min(article.id_aliases) if article.id_aliases else None)


def hash_key(article: Article) -> str | None:
    return article.content_hash


KEYS: tuple[tuple[str, Callable[[Article], str | None]], ...] = (
    ("url", url_key),
    ("id", id_key),
    ("exact", hash_key),
)


def resolve_group(articles: Iterable[Article], method: str) -> tuple[Article, list[Duplicate]]:
    """Keep the first article by rank_key; the others become Duplicate rows."""
    ordered = sorted(articles, key=rank_key)
    kept = ordered[0]
    aliases = {k for a in ordered[1:] for k in (own_id_key(a), *a.id_aliases) if k}
    aliases.discard(own_id_key(kept) or "")
    if aliases - set(kept.id_aliases):
        kept = kept.replace(id_aliases=tuple(sorted(aliases | set(kept.id_aliases))))
    dups = [
        Duplicate(
            article_id=a.article_id,
            duplicate_of=kept.article_id,
            method=method,
            similarity=1.0,
            input_path=a.input_path,
            url=a.url,
            title=a.title,
            unit_key=a.unit_key,
            kept_unit_key=kept.unit_key,
        )
        for a in ordered[1:]
    ]
    return kept, dups


def repoint(earlier: Iterable[Duplicate], later: Iterable[Duplicate]) -> Iterator[Duplicate]:
    """Earlier duplicates whose kept article was dropped later now point to its keeper."""
    later = list(later)
    for dup in earlier:
        if later:
            yield dataclasses.replace(
                dup, duplicate_of=later[0].duplicate_of, kept_unit_key=later[0].kept_unit_key
            )
        else:
            yield dup


def _key_by(article: Article, key_fn: Callable[[Article], str | None]) -> tuple[str, Article]:
    key = key_fn(article)
    return (f"k:{key}" if key else f"u:{article.unit_key}", article)


class _ResolveGroups(beam.DoFn):
    def __init__(self, method: str) -> None:
        self._method = method
        self._dropped = Metrics.counter(METRICS_NAMESPACE, f"dedupe.{method}")

    def process(self, element: tuple[str, Iterable[Article]]) -> Iterator[Any]:
        kept, dups = resolve_group(element[1], self._method)
        yield kept
        for dup in dups:
            self._dropped.inc()
            yield beam.pvalue.TaggedOutput(DUP_TAG, dup)


def _by_unit(dup: Duplicate) -> tuple[str, Duplicate]:
    return (dup.unit_key, dup)


def _by_kept(dup: Duplicate) -> tuple[str, Duplicate]:
    return (dup.kept_unit_key, dup)


def _apply_repoint(element: tuple[str, dict[str, Iterable[Duplicate]]]) -> Iterator[Duplicate]:
    yield from repoint(element[1]["earlier"], element[1]["later"])


class DedupeArticles(beam.PTransform):
    """Article -> Article with exact duplicates (url, id, content hash) removed; every
    removed copy goes to ``duplicates_sink`` as a Duplicate row."""

    def __init__(self, duplicates_sink: ErrorHandler) -> None:
        super().__init__()
        self._sink = duplicates_sink

    def expand(self, articles: beam.PCollection[Article]) -> beam.PCollection[Article]:
        survivors = articles
        dropped: beam.PCollection[Duplicate] | None = None
        for method, key_fn in KEYS:
            name = method.capitalize()
            result = (
                survivors
                | f"KeyBy{name}" >> beam.Map(_key_by, key_fn)
                | f"GroupBy{name}" >> beam.GroupByKey()
                | f"Resolve{name}" >> beam.ParDo(_ResolveGroups(method)).with_outputs(
                    DUP_TAG, main="kept"
                )
            )
            survivors, new = result["kept"], result[DUP_TAG]
            if dropped is None:
                dropped = new
            else:
                repointed = (
                    {
                        "earlier": dropped | f"EarlierByKept{name}" >> beam.Map(_by_kept),
                        "later": new | f"LaterByUnit{name}" >> beam.Map(_by_unit),
                    }
                    | f"Join{name}" >> beam.CoGroupByKey()
                    | f"Repoint{name}" >> beam.FlatMap(_apply_repoint)
                )
                dropped = (repointed, new) | f"All{name}" >> beam.Flatten()
        assert dropped is not None
        self._sink.add_error_pcollection(dropped)
        return survivors
