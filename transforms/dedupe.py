"""DedupeArticles: Article -> Article, keeping one copy of each exact duplicate group.

Three keys, applied in order: the canonical URL (method ``url``), the feed id/guid within its
source (``id``), and the normalized-content hash (``exact``). In each group the kept article is
the first by a total order (``rank_key``): earliest ``published_at``, then the most complete,
then the smallest URL, article id and input path. Input order therefore never changes the
result. Every dropped copy becomes a ``Duplicate`` row sent to the duplicates sink; when a kept
article is itself dropped at a later key, the earlier rows are re-pointed to the final kept
article, so ``duplicate_of`` always names an article that is in the dataset.

Everything is keyed grouping (GroupByKey, CoGroupByKey) or a combine of fixed-size digests:
no index of the articles is held by one worker. The one global structure of the near stage,
the label merge (``LabelRoots``), holds labels, not texts, and only for the components that
label propagation's rounds left unfinished.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics
from apache_beam.transforms.error_handling import ErrorHandler

from schemas.records import Article, Duplicate
from transforms.common import METRICS_NAMESPACE
from transforms.neardup import (
    MIN_SHINGLES,
    BodyHashes,
    NearConfig,
    NearDoc,
    Sketch,
    band_keys,
    body_hashes,
    candidate_pairs,
    core_shingles,
    label_roots,
    long_paragraphs,
    minhash,
    mostly_common,
    shingle_set,
    similarity,
    sketch_bytes,
    sketch_of,
    sorted_unique,
    tokens_by_paragraph,
    unpack_hashes,
    verify_pair,
)
from transforms.text import content_key

_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=timezone.utc)
DUP_TAG = "duplicates"
CANDIDATE_TAG = "candidates"
INDEX_TAG = "index"
PENDING_TAG = "pending"
FRONTIER_TAG = "frontier"


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
    """Total order for choosing the kept copy: smaller is better. Between copies alike up to
    their text's length, the one updated last wins (the same story in two files, one with a
    corrected headline and a later updated_at: the file names decided before)."""
    return (
        not article.stored,
        article.published_at is None,
        article.published_at or _FAR_FUTURE,
        -completeness(article),
        -len(article.text),
        -article.updated_at.timestamp() if article.updated_at else math.inf,
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


# A body this short is no evidence of a copy by itself: feeds give many stories one teaser
# ("Read more on our website."). Its exact key adds the title, so stories that share a
# teaser under titles of their own stay apart, and a short brief copied whole, title and
# all, is still one story.
SHORT_BODY_WORDS = 15


def exact_hash_key(content_hash: str | None, word_count: int | None,
                   title: str | None) -> str | None:
    """The exact stage's key of a body: its content hash, with the title for a short body."""
    if not content_hash:
        return None
    key = content_key(title) if (word_count or 0) < SHORT_BODY_WORDS and title else ""
    if key:  # the title as the body is normalized: case, spacing and punctuation aside
        return f"{content_hash}|{key}"
    return content_hash


def hash_key(article: Article) -> str | None:
    return exact_hash_key(article.content_hash, article.word_count, article.title)


KEYS: tuple[tuple[str, Callable[[Article], str | None]], ...] = (
    ("url", url_key),
    ("id", id_key),
    ("exact", hash_key),
)


# ------------------------------------------------------- history: a semi-join, not a full load
# Every run compares its articles with everything OUT holds, through the same joins as within
# the run. Before a stored record enters a join it must share at least one key with this run:
# the run's keys (URLs, feed ids, content hashes, band keys) are gathered into a sorted array
# of 64-bit digests (8 bytes a key, so it grows with the run, never with the history) and
# handed to the filter that sits right behind the index read. A stored record that shares no
# key with the run cannot change any decision, so the joins, and a worker's memory, only ever
# hold the few stored records that matter. (A semi-join reduction, as a Bloom-filter join
# does it; here the filter is exact up to 64-bit digest collisions, which only let a record
# through.)
EXACT_COLUMNS = ["article_id", "url", "source_domain", "guid", "content_hash", "published_at",
                 "revision", "word_count", "updated_at", "title"]
NEAR_COLUMNS = ["article_id", "content_hash", "shingles", "bands", "paragraphs"]
PARAGRAPH_COLUMNS = ["article_id", "paragraphs"]


def key_digest(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")


class KeyDigestSet(beam.CombineFn):
    """str keys -> a sorted, unique uint64 array of their digests (membership: ``in_digests``)."""

    def create_accumulator(self) -> list[np.ndarray]:
        return []

    def add_input(self, acc: list[np.ndarray], key: str) -> list[np.ndarray]:
        acc.append(np.array([key_digest(key)], dtype=np.uint64))
        if len(acc) >= 4096:
            acc[:] = [np.unique(np.concatenate(acc))]
        return acc

    def merge_accumulators(self, accs: Iterable[list[np.ndarray]]) -> list[np.ndarray]:
        arrays = [a for acc in accs for a in acc]
        return [np.unique(np.concatenate(arrays))] if arrays else []

    def extract_output(self, acc: list[np.ndarray]) -> np.ndarray:
        if not acc:
            return np.zeros(0, dtype=np.uint64)
        return np.unique(np.concatenate(acc))


def in_digests(digests: np.ndarray, keys: Sequence[str | None]) -> np.ndarray:
    """A boolean array: which of ``keys`` are in the sorted digest set (None never is)."""
    present = np.array([k is not None and k != "" for k in keys], dtype=bool)
    if digests.size == 0 or not present.any():
        return np.zeros(len(keys), dtype=bool)
    wanted = np.array([key_digest(k) if k else 0 for k in keys], dtype=np.uint64)
    return present & in_sorted(digests, wanted)


def in_sorted(digests: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A boolean array: which of ``values`` (uint64) are in the sorted array ``digests``. A
    binary search per value: np.isin would sort ``digests`` again on every call."""
    if digests.size == 0 or values.size == 0:
        return np.zeros(values.size, dtype=bool)
    pos = np.searchsorted(digests, values)
    pos[pos >= digests.size] = 0
    return digests[pos] == values


class DigestCounts(beam.CombineFn):
    """Arrays of uint64 digests (each distinct within its array) -> the sorted digests found
    in at least ``min_count`` arrays. Vectorized: an element costs one small array, so a run
    of n articles with k keys each holds at most 16 bytes per distinct key."""

    def __init__(self, min_count: int) -> None:
        self._min = min_count

    def create_accumulator(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return []

    @staticmethod
    def _compact(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        values = np.concatenate([v for v, _c in parts])
        counts = np.concatenate([c for _v, c in parts])
        uniq, inverse = np.unique(values, return_inverse=True)
        return uniq, np.bincount(inverse, weights=counts, minlength=uniq.size).astype(np.int64)

    def add_input(self, acc: list[tuple[np.ndarray, np.ndarray]], digests: np.ndarray
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
        if digests.size:
            acc.append((digests, np.ones(digests.size, dtype=np.int64)))
        if len(acc) >= 4096:
            acc[:] = [self._compact(acc)]
        return acc

    def merge_accumulators(self, accs: Iterable[list[tuple[np.ndarray, np.ndarray]]]
                           ) -> list[tuple[np.ndarray, np.ndarray]]:
        parts = [part for acc in accs for part in acc]
        return [self._compact(parts)] if parts else []

    def extract_output(self, acc: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        if not acc:
            return np.zeros(0, dtype=np.uint64)
        values, counts = self._compact(acc)
        return values[counts >= self._min]


class OwnedDigestCounts(beam.CombineFn):
    """(owner, digests) pairs -> the sorted digests found under at least ``min_count``
    distinct owners. The near stage counts paragraphs with their article id as owner, before
    exact duplicates are dropped: a page fetched three times (the same URL, so the same id,
    with or without small changes) and the revisions of one article are one owner, so their
    paragraphs do not become boilerplate. 16 bytes per distinct pair."""

    def __init__(self, min_count: int) -> None:
        self._min = min_count

    def create_accumulator(self) -> list[np.ndarray]:
        return []

    @staticmethod
    def _compact(parts: list[np.ndarray]) -> np.ndarray:
        pairs = np.concatenate(parts)
        order = np.lexsort((pairs[:, 0], pairs[:, 1]))
        pairs = pairs[order]
        keep = np.ones(len(pairs), dtype=bool)
        keep[1:] = (pairs[1:] != pairs[:-1]).any(axis=1)
        return pairs[keep]

    def add_input(self, acc: list[np.ndarray], element: tuple[int, np.ndarray]
                  ) -> list[np.ndarray]:
        owner, digests = element
        if digests.size:
            pairs = np.empty((digests.size, 2), dtype=np.uint64)
            pairs[:, 0] = owner
            pairs[:, 1] = digests
            acc.append(pairs)
        if len(acc) >= 4096:
            acc[:] = [self._compact(acc)]
        return acc

    def merge_accumulators(self, accs: Iterable[list[np.ndarray]]) -> list[np.ndarray]:
        parts = [part for acc in accs for part in acc]
        return [self._compact(parts)] if parts else []

    def extract_output(self, acc: list[np.ndarray]) -> np.ndarray:
        if not acc:
            return np.zeros(0, dtype=np.uint64)
        digests = self._compact(acc)[:, 1]  # sorted by digest
        values, counts = np.unique(digests, return_counts=True)
        return values[counts >= self._min]


def digests_of(keys: Iterable[str]) -> np.ndarray:
    """Distinct digests of ``keys``, sorted."""
    return np.unique(np.array([key_digest(k) for k in keys], dtype=np.uint64))


def exact_keys(article: Article) -> Iterator[str]:
    """The keys a stored record can share with this article at the exact stages."""
    for key in (url_key(article), own_id_key(article), hash_key(article)):
        if key:
            yield key


def stored_sharing_keys(table: pa.Table, digests: np.ndarray) -> Iterator[dict[str, Any]]:
    """Index rows (one row group, EXACT_COLUMNS) -> those sharing a URL, feed id or content
    hash with this run. Only those become Python objects."""
    cols = table.to_pydict()
    ids = [f"{d or ''}|{g}" if g else None
           for d, g in zip(cols["source_domain"], cols["guid"], strict=True)]
    hashes = [exact_hash_key(h, n, t) for h, n, t in
              zip(cols["content_hash"], cols["word_count"], cols["title"], strict=True)]
    hit = (in_digests(digests, cols["url"]) | in_digests(digests, ids)
           | in_digests(digests, hashes))
    rows = np.flatnonzero(hit)
    if rows.size:
        yield from table.take(pa.array(rows)).to_pylist()


def stored_sharing_bands(table: pa.Table, digests: np.ndarray) -> Iterator[dict[str, Any]]:
    """Index rows (one row group, NEAR_COLUMNS) -> those sharing an LSH band key with this
    run (``digests``: the run's sorted band keys). The shingle lists of the others are never
    turned into Python objects."""
    bands = table.column("bands").combine_chunks()
    # signature format 1 (string keys), never upgraded: no band can match
    if not pa.types.is_integer(bands.type.value_type):
        return
    flat = pc.list_flatten(bands).to_numpy(zero_copy_only=False)
    parents = pc.list_parent_indices(bands).to_numpy()
    rows = np.unique(parents[in_sorted(digests, flat)])
    if rows.size:
        yield from rows_with_arrays(table.take(pa.array(rows)))


def rows_with_arrays(table: pa.Table) -> Iterator[dict[str, Any]]:
    """The rows of ``table`` as dicts, a list column's value as a numpy array (a view into
    the column's values; a null list is empty). A shingle list never becomes Python ints:
    as Python lists, the few hundred stored rows a run shares bands with took tens of MiB of
    small objects, and their churn stayed in the process's heap."""
    if table.num_rows == 0:
        return
    columns: dict[str, list[Any]] = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy()
            values = pc.list_flatten(column).to_numpy(zero_copy_only=False)
            columns[name] = np.split(values, np.cumsum(lengths)[:-1])
        else:
            columns[name] = column.to_pylist()
    names = list(columns)
    for values in zip(*columns.values(), strict=True):
        yield dict(zip(names, values, strict=True))


def _pattern(_digests: np.ndarray, pattern: str) -> str:
    return pattern


def read_stored(digests: beam.PCollection[np.ndarray], pattern: str, columns: list[str],
                matcher: Callable[..., Iterator[Any]],
                name: str, *extra: Any) -> beam.PCollection[Any]:
    """The index rows under ``pattern`` that ``matcher`` finds in ``digests`` (this run's key
    digest set). The read hangs off the digest set itself, so a runner cannot start it (and
    buffer the whole history) before the filter can run: each row group is read, filtered and
    dropped in one fused step."""
    return (
        digests
        | f"IndexPattern{name}" >> beam.Map(_pattern, pattern)
        | f"ReadIndex{name}" >> beam.io.ReadAllFromParquetBatched(columns=columns)
        | f"StoredSharing{name}" >> beam.FlatMap(matcher, beam.pvalue.AsSingleton(digests),
                                                 *extra)
    )


def _duplicate(a: Article, kept: Article, method: str, similarity: float = 1.0) -> Duplicate:
    return Duplicate(
        article_id=a.article_id, duplicate_of=kept.article_id, method=method,
        similarity=similarity, input_path=a.input_path, url=a.url, title=a.title,
        unit_key=a.unit_key, kept_unit_key=kept.unit_key,
    )


def resolve_group(articles: Iterable[Article], method: str
                  ) -> tuple[list[Article], list[Duplicate]]:
    """Keep the first article by rank_key; the others become Duplicate rows. Revisions of the
    kept article (same id, another revision number) are kept too: they are not copies."""
    ordered = sorted(articles, key=rank_key)
    kept = ordered[0]
    aliases = {k for a in ordered[1:] for k in (own_id_key(a), *a.id_aliases) if k}
    aliases.discard(own_id_key(kept) or "")
    if aliases - set(kept.id_aliases):
        kept = kept.replace(id_aliases=tuple(sorted(aliases | set(kept.id_aliases))))
    keep = [kept]
    dups = []
    for a in ordered[1:]:
        if a.article_id == kept.article_id and a.revision != kept.revision:
            keep.append(a)
        elif not a.stored:  # a stored article is never reported again
            dups.append(_duplicate(a, kept, method))
    return keep, dups


def _revision_time(article: Article) -> datetime:
    return article.updated_at or article.published_at or article.ingested_at


# A copy with the same URL is a new revision only if it says it was updated (a newer
# updated_at) or if its body changed materially: as long as the last version (90% or more) and
# sharing less than 90% of its 5-word shingles with it. A shorter, poorer copy (a feed summary
# of a page already stored) stays a duplicate, and so does a dated copy with less than half
# the last version's words (a partner's stub, "Syndicated from ...": not the story's latest
# version, whatever date it carries).
REVISION_MIN_LENGTH = 0.9
REVISION_MAX_SIMILARITY = 0.9
UPDATE_MIN_LENGTH = 0.5


def _is_revision(new: Article, last: Article) -> bool:
    if new.content_hash == last.content_hash:
        return False
    if last.stored and _revision_time(new) < _revision_time(last) \
            and last.word_count >= UPDATE_MIN_LENGTH * new.word_count:
        # an older version than the one stored (a later batch or run brought it): not an
        # update of it, so not the article's latest revision either. Compared as one run
        # orders versions (updated_at, else published_at), so the split of the inputs into
        # runs does not change which version is the latest. Unless the stored one is a stub
        # of it (under half its words): one run would have kept the fuller one, so it goes on
        # as the next revision rather than into duplicates
        return False
    if new.updated_at and (last.updated_at is None or new.updated_at > last.updated_at):
        return new.word_count >= UPDATE_MIN_LENGTH * last.word_count
    if last.stored and not last.text:
        # a stored version is known by its hash only: a longer body that differs is an update
        return new.word_count >= REVISION_MIN_LENGTH * max(last.word_count, 1)
    if len(new.text) < REVISION_MIN_LENGTH * len(last.text):
        return False
    a = shingle_set(new.text, 5)
    b = shingle_set(last.text, 5)
    jaccard, _containment = similarity(a, b)
    return jaccard < REVISION_MAX_SIMILARITY


def _retitled(new: Article, last: Article) -> bool:
    """The same body under a new headline, and said to be updated since: a correction, kept
    as the next revision (as a duplicate, the latest version kept the old headline)."""
    return (new.content_hash == last.content_hash and last.title is not None
            and bool(new.title) and new.title != last.title and new.updated_at is not None
            and (last.updated_at is None or new.updated_at > last.updated_at))


def _changes(new: Article, last: Article) -> tuple[str, ...]:
    changed = []
    if last.title is not None and (new.title or "") != (last.title or ""):
        changed.append("title")
    if new.content_hash != last.content_hash:
        changed.append("text")
    if new.updated_at != last.updated_at and new.updated_at is not None:
        changed.append("updated_at")
    return tuple(changed)


def resolve_revisions(articles: Iterable[Article]) -> tuple[list[Article], list[Duplicate]]:
    """All the copies of one canonical URL (stored ones included) -> the versions to keep,
    numbered, and the duplicates. Copies of one version keep the best by rank_key."""
    members = list(articles)
    stored = sorted((a for a in members if a.stored), key=lambda a: a.revision)
    by_hash: dict[str, list[Article]] = {}
    for a in members:
        if not a.stored:
            by_hash.setdefault(a.content_hash, []).append(a)
    dups: list[Duplicate] = []
    candidates = []
    for group in by_hash.values():
        best, *rest = sorted(group, key=rank_key)
        dups.extend(_duplicate(a, best, "url") for a in rest)
        candidates.append(best)
    versions = list(stored)
    kept: list[Article] = []
    for a in sorted(candidates, key=lambda a: (_revision_time(a), rank_key(a))):
        same = next((v for v in versions if v.content_hash == a.content_hash), None)
        if same is not None and not _retitled(a, versions[-1]):
            dups.append(_duplicate(a, same, "url"))
            continue
        if not versions:
            versions.append(a)
            kept.append(a)
            continue
        last = versions[-1]
        if _retitled(a, last) or _is_revision(a, last):
            revised = a.replace(revision=last.revision + 1, changes=_changes(a, last))
            versions.append(revised)
            kept.append(revised)
        else:
            dups.append(_duplicate(a, max(versions, key=lambda v: v.revision), "url"))
    # every version learns the feed ids of all the copies of its URL (see id_key)
    aliases = {k for a in members for k in (own_id_key(a), *a.id_aliases) if k}
    kept = [a.replace(id_aliases=tuple(sorted(aliases - {own_id_key(a) or ""}))) for a in kept]
    # a stored version stays in the flow so later keys still see it (it is never written)
    return stored + kept, dups


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
        if self._method == "url" and element[0].startswith("k:"):
            kept, dups = resolve_revisions(element[1])
        else:
            kept, dups = resolve_group(element[1], self._method)
        yield from kept
        for dup in dups:
            self._dropped.inc()
            yield beam.pvalue.TaggedOutput(DUP_TAG, dup)


def _by_unit(dup: Duplicate) -> tuple[str, Duplicate]:
    return (dup.unit_key, dup)


def _by_kept(dup: Duplicate) -> tuple[str, Duplicate]:
    return (dup.kept_unit_key, dup)


def _apply_repoint(element: tuple[str, dict[str, Iterable[Duplicate]]]) -> Iterator[Duplicate]:
    yield from repoint(element[1]["earlier"], element[1]["later"])


def rank_label(article: Article) -> str:
    """rank_key as one sortable string, ending in the article id (after \x1f)."""
    published = article.published_at.isoformat() if article.published_at else "9"
    return "|".join((
        "0" if article.stored else "1",
        ("0" + published) if article.published_at else "1",
        f"{99 - completeness(article):02d}",
        f"{10**9 - len(article.text):010d}",
        article.url or "",
        article.input_path,
        article.unit_key,
    )) + "\x1f" + article.article_id


def label_article_id(label: str) -> str:
    return label.rsplit("\x1f", 1)[1]


def ghost_article(record: dict[str, Any]) -> Article:
    """An article stored by an earlier run, as the exact stages need it."""
    return Article(
        article_id=record["article_id"], url=record.get("url"), source=None,
        source_domain=record.get("source_domain"), title=record.get("title"), authors=(),
        published_at=record.get("published_at"), updated_at=record.get("updated_at"),
        language=None, text="",
        summary=None, categories=(), word_count=int(record.get("word_count") or 0),
        countries=(), quotes=(),
        content_hash=record["content_hash"], input_path="", input_kind="stored",
        revision=int(record.get("revision") or 1),
        ingested_at=record.get("published_at") or _FAR_FUTURE, date="", date_source="none",
        unit_key=f"stored:{record['article_id']}", guid=record.get("guid"), stored=True,
    )


def _array(values: Any, dtype: Any) -> np.ndarray:
    """A stored list value (a numpy array, a list, or None) as an array of ``dtype``."""
    return np.asarray(() if values is None else values, dtype=dtype)


def stored_near_doc(record: dict[str, Any], common: np.ndarray) -> NearDoc:
    """A stored article's NearDoc: its whole shingle set (the index keeps no core), and
    all_common when its long paragraphs are mostly boilerplate (``mostly_common``) by this
    run's count (which
    takes OUT's stored paragraphs into account): then it is one of several copies of a
    syndicated story, compared on its full text, as a run's own article would be. Otherwise a
    run's core is compared with its whole set, which can only add the shingles of its own
    boilerplate, shingles the run's core lacks."""
    paragraphs = _array(record.get("paragraphs"), np.uint64)
    return NearDoc(
        node=f"stored:{record['article_id']}",
        rank="0|" + record["article_id"] + "\x1f" + record["article_id"],
        article_id=record["article_id"],
        shingles=_array(record.get("shingles"), np.uint32),
        bands=_array(record.get("bands"), np.uint64),
        stored=True,
        all_common=mostly_common(in_sorted(common, paragraphs)),
        paragraphs=paragraphs,
    )


def light_record(record: dict[str, Any]) -> dict[str, Any]:
    """A stored row sharing a band with the run, as the pairing needs it: its shingle set
    replaced by its size and its ``Sketch`` bytes (512 bytes instead of tens of KB for a page).
    The sets of the few stored articles some pair needs are read again (``stored_needed``)."""
    light = {k: v for k, v in record.items() if k != "shingles"}
    shingles = _array(record.get("shingles"), np.uint32)
    light["shingle_count"] = int(shingles.size)
    light["sketch"] = sketch_bytes(shingles)
    return light


def stored_member_doc(record: dict[str, Any], common: np.ndarray) -> tuple[NearDoc, Sketch]:
    """A light stored row (``light_record``) -> its NearDoc without a shingle set (node, rank,
    bands: what the pairing needs) and its Sketch; all_common by this run's count, as in
    ``stored_near_doc``."""
    doc = stored_near_doc(record, common)
    size = int(record["shingle_count"])
    return doc, Sketch(doc.all_common, size, size, record["sketch"], record["sketch"])


def stored_needed(table: pa.Table, needed: np.ndarray, bands: np.ndarray
                  ) -> Iterator[dict[str, Any]]:
    """Index rows (one row group, NEAR_COLUMNS) -> those of the stored articles some plausible
    pair needs (``needed``: their ids' digests) that share a band key with the run
    (``bands``), as ``stored_sharing_bands`` found them the first time."""
    ids = table.column("article_id").to_pylist()
    hit = np.flatnonzero(in_digests(needed, ids))
    if hit.size:
        yield from stored_sharing_bands(table.take(pa.array(hit)), bands)


def stored_paragraph_owners(table: pa.Table, digests: np.ndarray, cap: int = 3
                            ) -> Iterator[tuple[int, np.ndarray]]:
    """Index rows (one row group: article_id, paragraphs) -> (owner, the paragraph digests it
    shares with this run, ``digests``) for the rows sharing any: what the boilerplate count
    takes of OUT. A digest is passed on for its first ``cap`` rows of the group only (the
    count needs no more than ``boilerplate_df`` owners; the revisions of one article are one
    owner), so a site footer held by every stored article adds ``cap`` owners per row group,
    not one per article. The other rows never
    become Python objects. An index file without the column (one an upgrade could not
    convert) adds nothing."""
    if "paragraphs" not in table.schema.names or digests.size == 0:
        return
    paragraphs = table.column("paragraphs").combine_chunks()
    flat = pc.list_flatten(paragraphs).to_numpy(zero_copy_only=False)
    if flat.size == 0:
        return
    hit = in_sorted(digests, flat)
    if not hit.any():
        return
    rows = pc.list_parent_indices(paragraphs).to_numpy()[hit]
    values = flat[hit]
    ids = table.column("article_id")
    row_ids = np.unique(rows)
    owner_of = dict(zip(row_ids.tolist(), (key_digest(ids[r].as_py()) for r in row_ids.tolist()),
                        strict=True))
    owners = np.array([owner_of[r] for r in rows.tolist()], dtype=np.uint64)
    # distinct (digest, owner) pairs: the revisions of one article are one owner
    order = np.lexsort((owners, values))
    values, owners = values[order], owners[order]
    distinct = np.r_[True, (values[1:] != values[:-1]) | (owners[1:] != owners[:-1])]
    values, owners = values[distinct], owners[distinct]
    first = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    rank = np.arange(values.size) - np.repeat(first, np.diff(np.r_[first, values.size]))
    keep = rank < cap
    values, owners = values[keep], owners[keep]
    order = np.argsort(owners, kind="stable")
    values, owners = values[order], owners[order]
    found, starts = np.unique(owners, return_index=True)
    for owner, part in zip(found.tolist(), np.split(values, starts[1:]), strict=True):
        yield (int(owner), sorted_unique(part))


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What the near stage computes of an article before the run's boilerplate is known: its
    hashes (shingles in text order, paragraph sizes and digests), and its shingle set and
    band keys over the whole body. Most articles hold no boilerplate paragraph, and these are
    then their signature; the others cut their core from the same hashes. The body is
    tokenized and hashed once. (Taken and used in one fused step: never pickled.)"""

    hashes: BodyHashes
    full: np.ndarray  # shingles of the whole body
    bands: np.ndarray  # band keys of ``full`` (none below MIN_SHINGLES)


_NO_BANDS = np.zeros(0, dtype=np.uint64)


def _bands(shingles: np.ndarray, config: NearConfig) -> np.ndarray:
    """The distinct LSH band keys of a shingle set (none below MIN_SHINGLES), sorted."""
    if shingles.size < MIN_SHINGLES:
        return _NO_BANDS
    return band_keys(minhash(shingles, config.num_perm), config.bands)


def hashes_of(text: str, config: NearConfig, packed: bytes | None = None) -> BodyHashes:
    """A body's hashes: unpacked from ``packed`` (``Article.near_hashes``, taken by finalize
    with the same shingle size), else tokenized and hashed here."""
    hashes = unpack_hashes(packed, config.shingle_size) if packed is not None else None
    return hashes if hashes is not None else body_hashes(tokens_by_paragraph(text),
                                                         config.shingle_size)


def prepared(text: str, config: NearConfig, packed: bytes | None = None,
             hashes: BodyHashes | None = None) -> Prepared:
    """A body's hashes (``hashes_of``, unless given), with its shingle set and band keys."""
    if hashes is None:
        hashes = hashes_of(text, config, packed)
    full = sorted_unique(hashes.ordered)
    return Prepared(hashes, full, _bands(full, config))


def without_boilerplate(prep: Prepared, common: np.ndarray, config: NearConfig
                        ) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """(core, band keys of core and full text, all_common) of a body given ``common``, the
    sorted digests of the boilerplate paragraphs; None when it holds none of them. The core
    leaves out the shingles that touch those paragraphs; all_common says the article is
    mostly made of them (``mostly_common``): a copy of a syndicated story."""
    digests = prep.hashes.digests
    long = digests != 0
    hit = in_sorted(common, digests) & long
    if not hit.any():
        return None
    core = core_shingles(prep.hashes, hit, config.shingle_size)
    bands = sorted_unique(np.concatenate((_bands(core, config), prep.bands)))
    return core, bands, mostly_common(hit[long])


def near_doc(article: Article, common: np.ndarray, config: NearConfig,
             prep: Prepared | None = None) -> NearDoc:
    """The article's NearDoc, given ``common``, the sorted digests of the run's boilerplate
    paragraphs, compared on its core (``without_boilerplate``). An article whose long
    paragraphs are mostly common (``all_common``, see ``mostly_common``) is one of several
    copies of a syndicated story, not a story wrapped in boilerplate: it is compared on its
    full text. ``prep``: the article's prepared signature, when the caller has it; otherwise
    taken from its packed hashes (``near_hashes``) or its text."""
    if prep is None:
        prep = prepared(article.text, config, article.near_hashes)
    paragraphs = long_paragraphs(prep.hashes.digests)
    cut = without_boilerplate(prep, common, config)
    if cut is None:
        return NearDoc(article.unit_key, rank_label(article), article.article_id, prep.full,
                       prep.bands, paragraphs=paragraphs)
    core, bands, all_common = cut
    return NearDoc(article.unit_key, rank_label(article), article.article_id, core, bands,
                   full=prep.full, all_common=all_common, paragraphs=paragraphs)


def index_row(article: Article, doc: NearDoc | None, run_id: str) -> dict[str, Any]:
    return {
        "article_id": article.article_id, "url": article.url,
        "source_domain": article.source_domain, "guid": article.guid,
        "content_hash": article.content_hash, "published_at": article.published_at,
        # a numpy array: the writer builds the list column from it without Python ints
        "shingles": doc.full_set() if doc is not None else np.zeros(0, dtype=np.uint32),
        "bands": doc.bands if doc is not None else _NO_BANDS,
        "paragraphs": doc.paragraphs if doc is not None else _NO_BANDS,
        "revision": article.revision,
        "word_count": article.word_count,
        "updated_at": article.updated_at,
        "title": article.title,
        "run_id": run_id,
    }


# ------------------------------------------------------------------ Beam wiring, near stage
def paragraph_owner(article: Article, config: NearConfig) -> tuple[int, np.ndarray]:
    """(its article id as a uint64, the digests of its long paragraphs): what the run's
    boilerplate count takes of an article. (One story copied verbatim to three URLs has three
    ids: its paragraphs become boilerplate, and the copy the exact stage keeps is then
    compared on its full text, as all_common.)"""
    hashes = hashes_of(article.text, config, article.near_hashes)
    return key_digest(article.article_id), sorted_unique(hashes.digests[hashes.digests != 0])


def _attach_doc(article: Article, common: np.ndarray, config: NearConfig) -> Article:
    """The article carrying its NearDoc (``near_doc``), given the run's boilerplate paragraphs
    (``common``); its packed hashes are spent. A stored article has no text to sign."""
    if article.stored:
        return article
    return article.replace(near_doc=near_doc(article, common, config), near_hashes=None)


def _owned_bands(article: Article) -> Iterator[tuple[int, np.ndarray]]:
    """(its content hash as a uint64, its band keys): what the count of colliding band keys
    takes of an article. It is taken before the last exact stage drops exact copies, so copies
    of one text count as one owner and do not make each other candidates. (Two articles with
    one content hash that both survive that stage are revisions of one article, which are
    never paired.)"""
    doc = article.near_doc
    if doc is not None:
        # even without band keys (a body under MIN_SHINGLES): the count must have an input
        # whenever the run has an article, or its side input would be empty
        yield (key_digest(article.content_hash), doc.bands)


def _stored_owned_bands(record: dict[str, Any]) -> Iterator[tuple[int, np.ndarray]]:
    bands = _array(record.get("bands"), np.uint64)
    if bands.size:
        yield (key_digest(record["content_hash"]), bands)


def _split_candidates(article: Article, colliding: np.ndarray,
                      run_id: str | None) -> Iterator[Any]:
    """An article none of whose band keys any other article (of the run, or stored) has
    cannot be a near copy, nor have one: it is kept as it is (with its index row), and only
    the others, usually a small share, go through the candidate joins, as (article, NearDoc)."""
    doc = article.near_doc
    article = article.replace(near_doc=None)
    if doc is not None and in_sorted(colliding, doc.bands).any():
        yield beam.pvalue.TaggedOutput(CANDIDATE_TAG, (article, doc))
        return
    yield article
    if run_id is not None:
        yield beam.pvalue.TaggedOutput(INDEX_TAG, index_row(article, doc, run_id))


class _SplitCandidates(beam.DoFn):
    def process(self, article: Article, colliding: np.ndarray,
                run_id: str | None) -> Iterator[Any]:
        yield from _split_candidates(article, colliding, run_id)


def _by_unit_key(article: Article) -> tuple[str, Article]:
    return (article.unit_key, article)


def _owned_digests(owned: tuple[int, np.ndarray]) -> np.ndarray:
    """(owner, digests) -> digests."""
    return owned[1]


def _candidate_article(element: tuple[Article, NearDoc]) -> Article:
    return element[0]


def _candidate_doc(element: tuple[Article, NearDoc]) -> NearDoc:
    return element[1]


def _band_members(doc: NearDoc, colliding: np.ndarray, sketch: Sketch | None = None
                  ) -> Iterator[tuple[int, tuple[str, str, bool, Sketch]]]:
    """(band key, member) for each of the doc's band keys another article holds (a band key
    no other article has pairs with nobody). The member carries the doc's Sketch (``sketch``,
    or taken from the doc's sets), 0.5 or 1 KiB: the pairing checks the pair is ``plausible``
    before a shingle set travels."""
    bands = doc.bands[in_sorted(colliding, doc.bands)].tolist()
    if not bands:
        return
    member = (doc.node, doc.rank, doc.stored, sketch if sketch is not None else sketch_of(doc))
    for band in bands:
        yield (band, member)


def _stored_band_members(element: tuple[NearDoc, Sketch], colliding: np.ndarray
                         ) -> Iterator[tuple[int, tuple[str, str, bool, Sketch]]]:
    """``_band_members`` of a stored article, from its light row's Sketch."""
    return _band_members(element[0], colliding, element[1])


def _stored_ids(pair: tuple[str, str]) -> Iterator[str]:
    """The stored article ids of a pair (stored nodes are ``stored:<article id>``)."""
    for node in pair:
        if node.startswith("stored:"):
            yield node[len("stored:"):]


def _bucket_pairs(element: tuple[int, Iterable[tuple[str, str, bool, Sketch]]],
                  config: NearConfig) -> Iterator[tuple[str, str]]:
    """A bucket's candidate pairs (``candidate_pairs``). A pair that shares several bands
    comes from each of their buckets; the join on its nodes gathers its copies, and
    _attach_first keeps one."""
    yield from candidate_pairs(element[1], config.max_bucket, config)


def _by_first(pair: tuple[str, str]) -> tuple[str, tuple[str, str]]:
    return (pair[0], pair)


def _by_second(pair: tuple[str, str]) -> tuple[str, tuple[str, str]]:
    return (pair[1], pair)


def _doc_by_node(doc: NearDoc) -> tuple[str, NearDoc]:
    return (doc.node, doc)


def _attach_first(element: tuple[str, dict[str, list[Any]]]) -> Iterator[tuple[str, Any]]:
    """(a, {pairs (a, b), pairs (x, a), docs of a}) -> (b, ("pair", ((a, b), docs of a))) for
    each pair a is first in, and (a, ("doc", docs of a)) when a is second in one: a doc no
    pair needs goes no further. A node has one doc, or, for a stored article with several
    revisions in the index, one per revision: each is compared."""
    docs = tuple(element[1]["doc"]) + tuple(element[1].get("stored") or ())
    if not docs:
        return
    for pair in sorted(set(element[1]["pair"])):
        yield (pair[1], ("pair", (pair, docs)))
    if element[1]["second"]:
        yield (element[0], ("doc", docs))


def _verify(element: tuple[str, Iterable[tuple[str, Any]]], config: NearConfig
            ) -> Iterator[tuple[str, str, float, str, str]]:
    """(b, [("doc", docs of b), ("pair", ((a, b), docs of a)), ...]) -> the verified edges (a,
    b, similarity, rank a, rank b): a pair is an edge when any doc of a is a near copy of any
    doc of b (the revisions of a stored article), with the best similarity among them."""
    values = list(element[1])
    seconds = next((value for tag, value in values if tag == "doc"), None)
    if not seconds:
        return
    for tag, value in values:
        if tag != "pair":
            continue
        _pair, firsts = value
        best = None
        for first in firsts:
            for second in seconds:
                if first.article_id == second.article_id:
                    continue  # revisions of one article are not copies of each other
                dup, sim = verify_pair(first, second, config)
                if dup and (best is None or sim > best):
                    best = sim
        if best is not None:
            first, second = firsts[0], seconds[0]
            yield (first.node, second.node, round(best, 4), first.rank, second.rank)


def _edge_key(edge: tuple[str, str, float, str, str]) -> tuple[tuple[str, str], float]:
    return ((edge[0], edge[1]), edge[2])


def _edge_ranks(edge: tuple[str, str, float, str, str]) -> Iterator[tuple[str, str]]:
    yield (edge[0], edge[3])
    yield (edge[1], edge[4])


def _directed(edge: tuple[tuple[str, str], float]) -> Iterator[tuple[str, tuple[str, float]]]:
    (a, b), sim = edge
    yield (a, (b, sim))
    yield (b, (a, sim))


def _send_labels(element: tuple[str, dict[str, list[Any]]]) -> Iterator[tuple[str, str]]:
    labels = element[1]["label"]
    if not labels:
        return
    # the smallest of the labels the node was sent (taking it here, not in a CombinePerKey
    # after each round, spares the runner a shuffle per round)
    label = min(labels)
    yield (element[0], label)
    for neighbour, _sim in element[1]["edge"]:
        yield (neighbour, label)


def _resolve_near(element: tuple[str, dict[str, list[Any]]], run_id: str | None
                  ) -> Iterator[Any]:
    """A node after the last round, with its labels: its own smallest label and those of its
    neighbours. Labels that differ across an edge mean the rounds did not reach across the
    component: each such pair goes to FRONTIER_TAG, where ``label_roots`` merges them. A
    candidate with no verified edge is kept at once, with its index row (to INDEX_TAG, when
    ``run_id`` is given); one with an edge waits (to PENDING_TAG) for the merged labels."""
    labels = element[1]["label"]
    low = min(labels, default=None)
    if low is not None:
        for other in sorted(set(labels)):
            if other != low:
                yield beam.pvalue.TaggedOutput(FRONTIER_TAG, (low, other))
    articles = element[1]["article"]
    if not articles:  # a stored node: it needs no decision or index row
        return
    article = articles[0]
    docs = element[1].get("doc") or []
    doc = docs[0] if docs else None
    if low is None:
        yield article
        if run_id is not None:
            yield beam.pvalue.TaggedOutput(INDEX_TAG, index_row(article, doc, run_id))
        return
    # its directed edges are joined beside it: the similarity to its closest copy
    similarity = max((sim for _node, sim in element[1]["edge"]), default=0.0)
    # the index row it needs if kept, not its NearDoc: the core set stays behind
    row = index_row(article, doc, run_id) if run_id is not None else None
    yield beam.pvalue.TaggedOutput(PENDING_TAG, (article, low, similarity, row))


class LabelRoots(beam.CombineFn):
    """Pairs of labels that met across an edge -> ``label_roots``: the component's best label
    for each label that is not it. Only components wider than the rounds reach leave pairs;
    the accumulator is compacted to at most one entry per label of those components (fewer
    than their nodes), and is empty for a run whose copy groups are stars or cliques."""

    def create_accumulator(self) -> list[tuple[str, str]]:
        return []

    def add_input(self, acc: list[tuple[str, str]], pair: tuple[str, str]
                  ) -> list[tuple[str, str]]:
        acc.append(pair)
        return acc

    def merge_accumulators(self, accs: Iterable[list[tuple[str, str]]]
                           ) -> list[tuple[str, str]]:
        return sorted(label_roots(pair for acc in accs for pair in acc).items())

    def extract_output(self, acc: list[tuple[str, str]]) -> dict[str, str]:
        return label_roots(acc)


# the manifest's stages.dedupe.near, as dedupe.url / id / exact count theirs (_ResolveGroups)
_NEAR_DROPPED = Metrics.counter(METRICS_NAMESPACE, "dedupe.near")


def _finalize_near(element: tuple[Article, str, float, dict[str, Any] | None],
                   roots: dict[str, str]) -> Iterator[Any]:
    """A candidate with a verified edge, once the labels are merged: a near copy of its
    component's best article (to DUP_TAG), or that article, kept with its index row (to
    INDEX_TAG, when the run keeps an index)."""
    article, label, similarity, row = element
    label = roots.get(label, label)
    # a revision of the component's best article (the same id, another body, linked to it
    # through a copy of both) is that article's later version, not a copy of it
    if label < rank_label(article) and label_article_id(label) != article.article_id:
        _NEAR_DROPPED.inc()
        yield beam.pvalue.TaggedOutput(DUP_TAG, Duplicate(
            article_id=article.article_id, duplicate_of=label_article_id(label),
            method="near", similarity=float(similarity),
            input_path=article.input_path, url=article.url, title=article.title,
            unit_key=article.unit_key, kept_unit_key="",
        ))
        return
    yield article
    if row is not None:
        yield beam.pvalue.TaggedOutput(INDEX_TAG, row)


class NearDedupe(beam.PTransform):
    """Article (carrying its NearDoc, ``near_doc``) -> Article with near-duplicates removed
    (method ``near``). ``owned``: (owner, band keys) of this run's articles (``_owned_bands``),
    taken before the last exact stage. ``history`` is the file pattern of the index of
    articles stored by earlier runs, which always win; only those sharing a band key with this
    run's articles are read (see ``read_stored``), first without their shingle sets (a sketch
    each, for the pairing: ``light_record``), then, for the few in a plausible pair, whole
    (``stored_needed``), for the verification."""

    def __init__(self, config: NearConfig, owned: beam.PCollection[tuple[int, np.ndarray]],
                 common: beam.PCollection[np.ndarray], duplicates_sink: ErrorHandler,
                 history: str | None = None,
                 earlier: beam.PCollection[Duplicate] | None = None,
                 index_sink: ErrorHandler | None = None, run_id: str = "") -> None:
        super().__init__()
        config.validate()
        self._config = config
        self._owned = owned
        self._common = common
        self._sink = duplicates_sink
        self._history = history
        self._earlier = earlier
        self._index = index_sink
        self._run_id = run_id

    def expand(self, articles: beam.PCollection[Article]) -> beam.PCollection[Article]:
        cfg = self._config
        # the articles were signed before the last exact shuffle (DedupeArticles), and the
        # band keys counted from there: the split below runs in the stage that reads that
        # shuffle, so the articles are not held back, and copied, once more for the count
        owned = self._owned
        if self._history is not None:
            run_bands = (
                owned
                | "RunBandKeys" >> beam.Map(_owned_digests)
                | "RunBandDigests" >> beam.CombineGlobally(DigestCounts(1)).without_defaults()
            )
            # the stored rows sharing a band key, without their shingle sets: a sketch each
            # (light_record), taken as the row group is read; the sets of the few that a
            # plausible pair needs are read again below
            records = read_stored(run_bands, self._history, NEAR_COLUMNS,
                                  stored_sharing_bands, "Signatures") \
                | "LightStored" >> beam.Map(light_record)
            stored_members = records | "StoredMembers" >> beam.Map(
                stored_member_doc, beam.pvalue.AsSingleton(self._common))
            owned = (owned, records | "StoredBands" >> beam.FlatMap(_stored_owned_bands)) \
                | "WithHistory" >> beam.Flatten()
        # band keys held by two owners or more: only their holders can be near copies
        colliding = beam.pvalue.AsSingleton(
            owned
            | "CollidingBands" >> beam.CombineGlobally(OwnedDigestCounts(2)).without_defaults()
        )
        split = articles | "SplitCandidates" >> beam.ParDo(
            _SplitCandidates(), colliding,
            self._run_id if self._index is not None else None,
        ).with_outputs(CANDIDATE_TAG, INDEX_TAG, main="alone")
        candidates = split[CANDIDATE_TAG]
        by_unit = (candidates | "CandidateArticles" >> beam.Map(_candidate_article)
                   | "ByUnit" >> beam.Map(_by_unit_key))
        run_docs = candidates | "CandidateDocs" >> beam.Map(_candidate_doc)
        members = run_docs | "BandMembers" >> beam.FlatMap(_band_members, colliding)
        if self._history is not None:
            members = (members, stored_members | "StoredBandMembers" >> beam.FlatMap(
                _stored_band_members, colliding)) | "MembersWithHistory" >> beam.Flatten()
        pairs = (
            members
            | "GroupBands" >> beam.GroupByKey()
            | "CandidatePairs" >> beam.FlatMap(_bucket_pairs, cfg)
        )
        if self._history is not None:
            # the stored articles in a plausible pair (most often none): their rows again,
            # now with their shingle sets, for the verification
            needed = (
                pairs
                | "NeededStoredIds" >> beam.FlatMap(_stored_ids)
                | "NeededStored" >> beam.CombineGlobally(KeyDigestSet()).without_defaults()
            )
            stored = (
                read_stored(needed, self._history, NEAR_COLUMNS, stored_needed, "Needed",
                            beam.pvalue.AsSingleton(run_bands))
                | "StoredNearDocs" >> beam.Map(
                    stored_near_doc, beam.pvalue.AsSingleton(self._common))
            )
        # each pair goes to its first node, to carry that node's doc to the second, and to its
        # second node, so that the second's doc goes on only when a pair needs it: a candidate
        # (a stored one, most often) none of whose pairs was plausible stops at the first join
        first: dict[str, beam.PCollection[Any]] = {
            "pair": pairs | "ByFirst" >> beam.Map(_by_first),
            "second": pairs | "BySecond" >> beam.Map(_by_second),
            "doc": run_docs | "DocByNode" >> beam.Map(_doc_by_node)}
        if self._history is not None:
            # its own input of the join, not flattened with the run's docs: Flink's streaming
            # translation failed on that Flatten ("consumed but never produced")
            first["stored"] = stored | "StoredDocByNode" >> beam.Map(_doc_by_node)
        edges = (
            first
            | "JoinFirst" >> beam.CoGroupByKey()
            | "CarryFirst" >> beam.FlatMap(_attach_first)
        )
        verified = (
            edges
            | "JoinSecond" >> beam.GroupByKey()
            | "Verify" >> beam.FlatMap(_verify, cfg)
        )
        edges = (
            verified
            | "EdgeKey" >> beam.Map(_edge_key)
            | "DirectedEdges" >> beam.FlatMap(_directed)
        )
        # only articles with a verified edge take part in label propagation; a node may hold
        # several labels between rounds, and each round (and Resolve) takes their minimum
        labels = verified | "EdgeRanks" >> beam.FlatMap(_edge_ranks)
        for i in range(cfg.rounds):
            labels = (
                {"label": labels, "edge": edges}
                | f"Round{i}Join" >> beam.CoGroupByKey()
                | f"Round{i}Send" >> beam.FlatMap(_send_labels)
            )
        joined: dict[str, beam.PCollection[Any]] = {"article": by_unit, "label": labels,
                                                    "edge": edges}
        if self._index is not None:
            # the kept candidates' index rows need their NearDoc (a stored one needs no row)
            joined["doc"] = run_docs | "RunDocByNode" >> beam.Map(_doc_by_node)
        run_id = self._run_id if self._index is not None else None
        resolved = (
            joined
            | "JoinLabels" >> beam.CoGroupByKey()
            | "Resolve" >> beam.FlatMap(_resolve_near, run_id).with_outputs(
                PENDING_TAG, FRONTIER_TAG, INDEX_TAG, main="kept")
        )
        # a component wider than the rounds reach leaves labels that differ across an edge:
        # merged here, so the groups are whole connected components whatever their shape
        roots = beam.pvalue.AsSingleton(
            resolved[FRONTIER_TAG]
            | "MergeLabels" >> beam.CombineGlobally(LabelRoots()).without_defaults(),
            default_value={},
        )
        result = resolved[PENDING_TAG] | "Finalize" >> beam.FlatMap(
            _finalize_near, roots).with_outputs(DUP_TAG, INDEX_TAG, main="kept")
        near_dups = result[DUP_TAG]
        if self._earlier is not None:
            # an exact copy of an article that turned out to be a near copy points to the keeper
            repointed = (
                {
                    "earlier": self._earlier | "EarlierByKept" >> beam.Map(_by_kept),
                    "later": near_dups | "NearByUnit" >> beam.Map(_by_unit),
                }
                | "JoinNear" >> beam.CoGroupByKey()
                | "RepointNear" >> beam.FlatMap(_apply_repoint)
            )
            self._sink.add_error_pcollection(repointed)
        self._sink.add_error_pcollection(near_dups)
        if self._index is not None:
            self._index.add_error_pcollection(resolved[INDEX_TAG])
            self._index.add_error_pcollection(result[INDEX_TAG])
            self._index.add_error_pcollection(split[INDEX_TAG])
        return (split["alone"], resolved["kept"], result["kept"]) | "AllKept" >> beam.Flatten()


_NO_COMMON = np.zeros(0, dtype=np.uint64)


def _plain_index_row(article: Article, run_id: str, signature: NearConfig | None
                     ) -> dict[str, Any]:
    """An index row without near-duplicate detection (--no-dedupe): it still carries the
    article's signature, taken over its whole text, so later runs find their near copies of
    it (an index row without one never matches a band key again)."""
    doc = near_doc(article, _NO_COMMON, signature) if signature is not None else None
    return index_row(article, doc, run_id)


def _not_stored(article: Article) -> bool:
    return not article.stored


class DedupeArticles(beam.PTransform):
    """Article -> Article with duplicates removed: exact ones (url, id, content hash) then, unless
    ``near`` is None, near ones. Every removed copy goes to ``duplicates_sink`` as a Duplicate
    row. ``history`` (index records of earlier runs) takes part in every key and always wins,
    so a rerun of the same input adds nothing.

    ``history`` is the file pattern of OUT/_index (None for a new OUT). Its key columns and
    its signature columns are read separately, each only once this run's keys are known and
    filtered right behind its read (``read_stored``): memory follows the run, not the size of
    OUT."""

    def __init__(self, duplicates_sink: ErrorHandler, near: NearConfig | None = None,
                 history: str | None = None,
                 index_sink: ErrorHandler | None = None, run_id: str = "",
                 signature: NearConfig | None = None) -> None:
        """``signature``: the settings of the index rows' signatures when ``near`` is None
        (--no-dedupe); with near detection on, ``near``'s."""
        super().__init__()
        self._sink = duplicates_sink
        self._near = near
        self._signature = near if near is not None else signature
        self._history = history
        self._index = index_sink
        self._run_id = run_id

    def expand(self, articles: beam.PCollection[Article]) -> beam.PCollection[Article]:
        survivors = articles
        if self._near is not None:
            # boilerplate: paragraphs found in at least boilerplate_df distinct articles of the
            # run (or of OUT, below), counted here, before the exact stages, so the count is
            # known by the time their survivors reach the near stage (see NearDedupe)
            owners = articles | "ParagraphOwners" >> beam.Map(paragraph_owner, self._near)
            if self._history is not None:
                # ... and in the articles OUT holds: a footer that one site's feed carries
                # once an hour is boilerplate by its second article, whichever run brings it.
                # Only the stored rows sharing a paragraph with the run are read (read_stored).
                run_paragraphs = (
                    owners
                    | "RunParagraphs" >> beam.Map(_owned_digests)
                    | "RunParagraphDigests" >> beam.CombineGlobally(
                        DigestCounts(1)).without_defaults()
                )
                stored_owners = read_stored(
                    run_paragraphs, self._history, PARAGRAPH_COLUMNS, stored_paragraph_owners,
                    "Paragraphs", self._near.boilerplate_df)
                owners = (owners, stored_owners) | "OwnersWithStored" >> beam.Flatten()
            common = owners | "CommonParagraphs" >> beam.CombineGlobally(
                OwnedDigestCounts(self._near.boilerplate_df)).without_defaults()
        if self._history is not None:
            run_keys = (
                articles
                | "RunKeys" >> beam.FlatMap(exact_keys)
                | "RunKeyDigests" >> beam.CombineGlobally(KeyDigestSet()).without_defaults()
            )
            ghosts = (
                read_stored(run_keys, self._history, EXACT_COLUMNS, stored_sharing_keys, "Keys")
                | "StoredArticles" >> beam.Map(ghost_article)
            )
            survivors = (articles, ghosts) | "WithStored" >> beam.Flatten()
        dropped: beam.PCollection[Duplicate] | None = None
        owned = None
        for method, key_fn in KEYS:
            name = method.capitalize()
            if self._near is not None and method == "exact":
                # sign the articles here, in the stage that feeds the last exact shuffle, and
                # count their band keys from here: the near stage's split then runs in the
                # stage that reads that shuffle (see NearDedupe)
                survivors = survivors | "Signatures" >> beam.Map(
                    _attach_doc, beam.pvalue.AsSingleton(common), self._near)
                owned = survivors | "OwnedBands" >> beam.FlatMap(_owned_bands)
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
        survivors = survivors | "DropStored" >> beam.Filter(_not_stored)
        if self._near is None:
            self._sink.add_error_pcollection(dropped)
            if self._index is not None:
                self._index.add_error_pcollection(
                    survivors | "IndexRows" >> beam.Map(
                        _plain_index_row, run_id=self._run_id, signature=self._signature))
            return survivors
        assert owned is not None
        return survivors | "Near" >> NearDedupe(
            self._near, owned, common, self._sink, self._history, dropped, self._index,
            self._run_id)
