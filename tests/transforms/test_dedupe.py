"""Exact duplicates: the total order, group resolution and the Beam composite."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import Article, Duplicate, Unit
from tests.conftest import FIXED_NOW
from transforms.common import Sink
from transforms.dedupe import DedupeArticles, rank_key, resolve_group, resolve_revisions
from transforms.extract import build_article, unit_fields

T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)


def make(path: str, title: str, text: str, link: str = "", guid: str = "",
         published: datetime | None = None) -> Article:
    fields = {"title": title, "text": text, "link": link, "guid": guid, "published": published,
              "feed_link": "https://feed.example/"}
    unit = Unit(path, "rss", 0, fields=fields)
    return build_article(unit, unit_fields(unit), FIXED_NOW)


# a body long enough to be evidence of a copy by itself (SHORT_BODY_WORDS)
STORM = ("The storm hit the coast on Monday night, flooding the harbour road and cutting "
         "power to three villages.")
ORIGINAL = make("a.xml", "Storm", STORM, "https://a.example/storm", published=T0)
SAME_URL_LATER = make("b.xml", "Storm (updated)", STORM,
                      "https://a.example/storm?utm_source=rss", published=T0 + timedelta(hours=2))
SAME_TEXT = make("c.xml", "Storm!", STORM.replace("The storm", "The  storm"),
                 "https://b.example/copy", published=T0 + timedelta(hours=1))
SAME_GUID = make("d.xml", "Storm", "Different words entirely here.", "https://a.example/amp/s",
                 guid="g-1", published=T0 + timedelta(hours=3))
GUID_OWNER = make("e.xml", "Storm", STORM, "https://a.example/storm",
                  guid="g-1", published=T0)
OTHER = make("f.xml", "Calm", "A calm day.", "https://a.example/calm", published=T0)


def test_earliest_published_wins_then_completeness() -> None:
    undated = make("z.xml", "Storm", "The storm hit the coast.", "https://a.example/storm")
    assert min([undated, SAME_URL_LATER, ORIGINAL], key=rank_key) is ORIGINAL
    richer = ORIGINAL.replace(authors=("Ann",), input_path="zzz.xml")
    assert min([ORIGINAL, richer], key=rank_key) is richer


def test_resolve_group_is_independent_of_order() -> None:
    group = [ORIGINAL, SAME_URL_LATER, SAME_TEXT]
    results = {
        (kept[0].unit_key, tuple(sorted(d.unit_key for d in dups)))
        for kept, dups in (resolve_group(p, "exact") for p in itertools.permutations(group))
    }
    assert len(results) == 1


def _dup_tuple(d: Duplicate) -> tuple[str, str, str]:
    return (d.input_path, d.duplicate_of, d.method)


def _input(a: Article) -> str:
    return a.input_path


def run_dedupe(articles: list[Article], kept: list[str], dups: list[tuple[str, str, str]]) -> None:
    with TestPipeline() as p:
        with Sink("CollectDuplicates", beam.Map(_dup_tuple)) as sink:
            survivors = p | beam.Create(articles) | DedupeArticles(sink)
        assert_that(survivors | "Paths" >> beam.Map(_input), equal_to(kept), label="Kept")
        assert_that(sink.output(), equal_to(dups), label="Dups")


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_dedupe_composite_url_id_exact(order: int) -> None:
    articles = list(itertools.permutations(
        [ORIGINAL, SAME_URL_LATER, SAME_TEXT, SAME_GUID, GUID_OWNER, OTHER]))[order * 173]
    # ORIGINAL ties GUID_OWNER on date, completeness and URL, and wins on the path; the guid
    # of the dropped GUID_OWNER still catches SAME_GUID at the id key.
    keeper = ORIGINAL.article_id
    run_dedupe(
        articles,
        kept=["a.xml", "f.xml"],
        dups=[("b.xml", keeper, "url"), ("e.xml", keeper, "url"), ("d.xml", keeper, "id"),
              ("c.xml", keeper, "exact")],
    )


def test_every_duplicate_points_at_a_kept_article() -> None:
    # chain: x is a url copy of y; y is a content copy of z -> x must point at z.
    z = make("z.xml", "Z", STORM, "https://z.example/1", published=T0)
    y = make("y.xml", "Y", STORM, "https://y.example/1", published=T0 + timedelta(days=1))
    x = make("x.xml", "X", "Other text.", "https://y.example/1", published=T0 + timedelta(days=2))
    run_dedupe([x, y, z], kept=["z.xml"],
               dups=[("x.xml", z.article_id, "url"), ("y.xml", z.article_id, "exact")])


def test_stories_sharing_a_short_teaser_are_not_copies() -> None:
    """Feeds give many stories one teaser: a body under SHORT_BODY_WORDS is no evidence of a
    copy by itself, so stories with their own titles stay; the same brief copied whole,
    title and all (another URL), is still one story."""
    teaser = "Read more on our website."
    a = make("a.xml", "Ferry strike ends", teaser, "https://n.example/1", published=T0)
    b = make("b.xml", "School reopens", teaser, "https://n.example/2", published=T0)
    c = make("c.xml", "Bridge closed", teaser, "https://n.example/3", published=T0)
    copy = make("d.xml", "Ferry  strike ends", teaser, "https://m.example/9",
                published=T0 + timedelta(hours=1))
    run_dedupe([copy, c, b, a], kept=["a.xml", "b.xml", "c.xml"],
               dups=[("d.xml", a.article_id, "exact")])


def test_the_exact_key_of_a_short_body_holds_its_title() -> None:
    from transforms.dedupe import SHORT_BODY_WORDS, exact_hash_key, hash_key

    assert exact_hash_key("h", SHORT_BODY_WORDS, "A title") == "h"
    assert exact_hash_key("h", SHORT_BODY_WORDS - 1, " A  Title ") == "h|a title"
    assert exact_hash_key("h", 3, None) == "h" and exact_hash_key("h", 3, " ") == "h"
    assert exact_hash_key(None, 3, "A title") is None
    assert hash_key(ORIGINAL) == ORIGINAL.content_hash  # 18 words


def test_updated_versions_are_revisions_not_duplicates() -> None:
    body = ("The storm hit the coast on Monday night and closed the harbour for the ferries and "
            "the fishing boats until the wind eased on Tuesday morning.")
    first = make("r1.xml", "Storm closes harbour", body, "https://a.example/storm",
                 published=T0)
    feed_copy = make("r0.xml", "Storm closes harbour", "Storm closes harbour.",
                     "https://a.example/storm", published=T0 + timedelta(minutes=5))
    update = make("r2.xml", "Storm closes harbour for two days", body + " On Wednesday the "
                  "harbour master said the harbour would stay closed for another day while "
                  "divers checked the quay.", "https://a.example/storm?utm_source=x",
                  published=T0).replace(updated_at=T0 + timedelta(days=1))
    for order in itertools.permutations([first, feed_copy, update]):
        kept, dups = resolve_revisions(order)
        assert [(a.input_path, a.revision, a.changes) for a in kept] == [
            ("r1.xml", 1, ()), ("r2.xml", 2, ("title", "text", "updated_at"))]
        assert [(d.input_path, d.method) for d in dups] == [("r0.xml", "url")]


def test_a_version_older_than_the_stored_one_is_not_a_revision() -> None:
    """A run (or a later batch) that brings an article's older version after OUT stored a
    newer one: the older one is a duplicate of the stored version, not revision 2 (the
    "latest version" line would return it); a newer one is a revision."""
    body = ("The storm hit the coast on Monday night and closed the harbour for the ferries and "
            "the fishing boats until the wind eased on Tuesday morning. " * 3)
    stored = make("s.xml", "Storm", body[:-60], "https://a.example/storm", published=T0) \
        .replace(updated_at=T0 + timedelta(days=4))  # not a stub of the older version
    stored = stored.replace(stored=True, text="", revision=1)
    older = make("o.xml", "Storm", body, "https://a.example/storm", published=T0) \
        .replace(updated_at=T0)
    kept, dups = resolve_revisions([older, stored])
    assert [a.stored for a in kept] == [True]
    assert [(d.input_path, d.method, d.duplicate_of) for d in dups] == [
        ("o.xml", "url", stored.article_id)]
    newer = older.replace(updated_at=T0 + timedelta(days=5))
    kept, dups = resolve_revisions([newer, stored])
    assert [(a.input_path, a.revision) for a in kept if not a.stored] == [("o.xml", 2)]
    assert dups == []


def test_the_latest_version_does_not_depend_on_how_inputs_were_split_into_runs() -> None:
    """A full story with a publication time and no updated_at, and a partner's 4-word stub of
    it dated two hours later at the same URL (samples' harbour-times and coastwatch feeds).
    In one run the full story is revision 1 and the stub a duplicate (it was revision 2, so
    the "latest version" line returned the stub). Stored first, the stub is followed by the
    full story as revision 2: the latest version is the full story either way. An older
    version of about the stored one's length stays a duplicate of it."""
    body = ("The ferry operator will add two winter crossings a day after a record autumn, the "
            "company said, as bookings from the islands rose by a third. " * 3)
    url = "https://harbourtimes.example/news/ferry"
    full = make("harbour.xml", "Ferry", body, url, published=T0)
    stub = make("coast.xml", "Ferry", "Syndicated from Harbour Times.", url,
                published=T0 + timedelta(hours=2)).replace(updated_at=T0 + timedelta(hours=2))
    for order in itertools.permutations([full, stub]):
        kept, dups = resolve_revisions(order)
        assert [(a.input_path, a.revision) for a in kept] == [("harbour.xml", 1)]
        assert [(d.input_path, d.method) for d in dups] == [("coast.xml", "url")]
    stored = stub.replace(stored=True, text="", revision=1)
    kept, dups = resolve_revisions([full, stored])
    assert [(a.input_path, a.revision) for a in kept if not a.stored] == [("harbour.xml", 2)]
    assert dups == []
    # stored full, a stub later: a duplicate, as in one run
    stored_full = full.replace(stored=True, text="", revision=1)
    kept, dups = resolve_revisions([stub, stored_full])
    assert [a.stored for a in kept] == [True]
    assert [(d.input_path, d.method) for d in dups] == [("coast.xml", "url")]
    # an older version about as long as the stored one: a duplicate of it, not revision 2
    newer = full.replace(updated_at=T0 + timedelta(days=1), content_hash="later",
                         stored=True, text="", revision=1)
    kept, dups = resolve_revisions([full, newer])
    assert [a.stored for a in kept] == [True]
    assert [(d.input_path, d.duplicate_of) for d in dups] == [("harbour.xml", full.article_id)]


def test_stored_rows_are_filtered_by_the_run_keys_before_any_join() -> None:
    import numpy as np
    import pyarrow as pa

    from transforms.dedupe import (
        KeyDigestSet,
        digests_of,
        in_digests,
        key_digest,
        stored_sharing_bands,
        stored_sharing_keys,
    )

    combine = KeyDigestSet()
    acc = combine.create_accumulator()
    for key in ["https://a.example/x", "0:abc", "a.example|g-1", "0:abc"]:
        acc = combine.add_input(acc, key)
    digests = combine.extract_output(combine.merge_accumulators([acc, []]))
    assert digests.dtype == np.uint64 and list(digests) == sorted(set(digests))
    assert len(digests) == 3
    assert in_digests(digests, ["0:abc", "0:abd", None, ""]).tolist() == [True, False, False,
                                                                          False]
    assert key_digest("0:abc") in digests
    keys = pa.table({
        "article_id": ["s1", "s2", "s3", "s4", "s5", "s6"],
        "url": ["https://a.example/x", "https://z.example/", None, None, None, None],
        "source_domain": [None, None, "a.example", "b.example", None, None],
        "guid": [None, None, "g-1", "g-1", None, None],
        "content_hash": ["h1", "h2", "h3", "h4", "0:abc", "0:abc"],
        "word_count": [300, 300, 300, 300, 4, 300],
        "title": ["A", "B", "C", "D", "Ferry", "Ferry"],
    })
    # s5's body is short: its exact key holds its title, which the run does not have; s6 has
    # the same body, long enough to be its key alone
    assert [r["article_id"] for r in stored_sharing_keys(keys, digests)] == ["s1", "s3", "s6"]
    short = digests_of(["0:abc|ferry"])
    assert [r["article_id"] for r in stored_sharing_keys(keys, short)] == ["s5"]
    # band keys are uint64 (signature format 2): the run's own sorted keys are the filter
    bands = pa.table({
        "article_id": ["s1", "s2", "s3"],
        "bands": pa.array([[5, 2**63 + 9], [77], []], type=pa.list_(pa.uint64())),
        "shingles": pa.array([[1, 2], [3, 4], []], type=pa.list_(pa.uint32())),
    })
    run_bands = np.array([7, 77, 2**63 + 8], dtype=np.uint64)
    rows = list(stored_sharing_bands(bands, run_bands))
    assert [r["article_id"] for r in rows] == ["s2"]
    # list columns come as numpy arrays of the column's type, never as Python ints
    assert rows[0]["shingles"].dtype == np.uint32 and rows[0]["shingles"].tolist() == [3, 4]
    assert [r["article_id"] for r in stored_sharing_bands(
        bands, np.array([2**63 + 9], dtype=np.uint64))] == ["s1"]
    # several rows, one of them with a null list: each row gets its own slice
    several = pa.table({
        "article_id": ["s1", "s2", "s3", "s4"],
        "bands": pa.array([[5], [6, 7], [8], [7]], type=pa.list_(pa.uint64())),
        "shingles": pa.array([[1, 2, 3], None, [9], [4, 5]], type=pa.list_(pa.uint32())),
    })
    rows = list(stored_sharing_bands(several, np.array([5, 7], dtype=np.uint64)))
    assert [(r["article_id"], r["shingles"].tolist(), r["bands"].tolist()) for r in rows] == [
        ("s1", [1, 2, 3], [5]), ("s2", [], [6, 7]), ("s4", [4, 5], [7])]
    assert list(stored_sharing_bands(bands, np.zeros(0, dtype=np.uint64))) == []


def test_stored_rows_travel_light_until_a_pair_needs_their_shingles() -> None:
    """A stored row sharing a band is first read without its shingle set (a sketch of it, and
    its size); the rows some plausible pair needs are read again, whole, only if they share a
    band with the run."""
    import numpy as np
    import pyarrow as pa

    from transforms.dedupe import (
        KeyDigestSet,
        light_record,
        stored_member_doc,
        stored_needed,
        stored_sharing_bands,
    )
    from transforms.neardup import sketch_bytes

    rng = np.random.default_rng(3)
    sets = [np.sort(rng.choice(2**32, size=n, replace=False)).astype(np.uint32)
            for n in (900, 40, 300)]
    table = pa.table({
        "article_id": ["s1", "s2", "s3"],
        "content_hash": ["h1", "h2", "h3"],
        "shingles": pa.array([x.tolist() for x in sets], type=pa.list_(pa.uint32())),
        "bands": pa.array([[5], [6, 7], [8]], type=pa.list_(pa.uint64())),
        "paragraphs": pa.array([[11, 12], [], [13]], type=pa.list_(pa.uint64())),
    })
    run_bands = np.array([5, 7, 8], dtype=np.uint64)
    light = [light_record(r) for r in stored_sharing_bands(table, run_bands)]
    assert [r["article_id"] for r in light] == ["s1", "s2", "s3"]
    assert all("shingles" not in r for r in light)
    assert [r["shingle_count"] for r in light] == [900, 40, 300]
    assert [r["sketch"] for r in light] == [sketch_bytes(x) for x in sets]
    doc, sketch = stored_member_doc(light[0], np.array([11, 12], dtype=np.uint64))
    assert doc.node == "stored:s1" and doc.stored and doc.shingles.size == 0
    assert doc.all_common and sketch.all_common  # both its paragraphs are common
    assert (sketch.core_size, sketch.full_size, sketch.core) == (900, 900, light[0]["sketch"])
    combine = KeyDigestSet()
    needed = combine.extract_output(combine.add_input(combine.add_input(
        combine.create_accumulator(), "s3"), "s2"))
    whole = list(stored_needed(table, needed, run_bands))
    assert [(r["article_id"], r["shingles"].tolist()) for r in whole] == [
        ("s2", sets[1].tolist()), ("s3", sets[2].tolist())]
    # a needed row that shares no band with this run is not read
    assert [r["article_id"] for r in stored_needed(
        table, needed, np.array([8], dtype=np.uint64))] == ["s3"]


def test_membership_in_a_sorted_digest_set_agrees_with_numpy() -> None:
    import numpy as np

    from transforms.dedupe import in_sorted

    rng = np.random.default_rng(7)
    digests = np.unique(rng.integers(0, 2**64 - 1, size=500, dtype=np.uint64))
    values = np.concatenate([digests[::7], rng.integers(0, 2**64 - 1, size=300, dtype=np.uint64),
                             np.array([0, 2**64 - 1], dtype=np.uint64)])
    assert in_sorted(digests, values).tolist() == np.isin(values, digests).tolist()
    assert in_sorted(digests, values).sum() == len(digests[::7])
    empty = np.zeros(0, dtype=np.uint64)
    assert in_sorted(empty, values).tolist() == [False] * len(values)
    assert in_sorted(digests, empty).tolist() == []


def test_stored_paragraph_owners_keep_only_what_the_run_shares() -> None:
    """Index rows -> (owner, the paragraph digests shared with the run), for the rows that
    share any; a row group sharing none gives nothing."""
    import numpy as np
    import pyarrow as pa

    from transforms.dedupe import key_digest, stored_paragraph_owners

    table = pa.table({"article_id": ["a", "b", "c", "d"],
                      "paragraphs": pa.array([[1, 5, 9], [], [2, 9], [3]],
                                             type=pa.list_(pa.uint64()))})
    got = {(owner, tuple(digests.tolist())) for owner, digests in
           stored_paragraph_owners(table, np.array([2, 3, 9], dtype=np.uint64))}
    assert got == {(key_digest("a"), (9,)), (key_digest("c"), (2, 9)), (key_digest("d"), (3,))}
    assert list(stored_paragraph_owners(table, np.array([4], dtype=np.uint64))) == []
    assert list(stored_paragraph_owners(table, np.zeros(0, dtype=np.uint64))) == []


def test_stored_paragraph_owners_are_capped_per_digest_and_tolerate_old_files() -> None:
    import numpy as np
    import pyarrow as pa

    from transforms.dedupe import key_digest, stored_paragraph_owners

    footer = 7
    table = pa.table({"article_id": [f"a{i}" for i in range(10)],
                      "paragraphs": pa.array([[i + 100, footer] for i in range(10)],
                                             type=pa.list_(pa.uint64()))})
    run = np.array([footer, 105], dtype=np.uint64)
    got = [(owner, d.tolist()) for owner, d in stored_paragraph_owners(table, run, cap=3)]
    holders = [owner for owner, digests in got if footer in digests]
    assert len(holders) == 3  # of the ten that hold it
    assert set(holders) <= {key_digest(f"a{i}") for i in range(10)}
    assert (key_digest("a5"), [105]) in [(o, [d for d in ds if d != footer]) for o, ds in got]
    old = table.drop_columns(["paragraphs"])  # an index file from before schema version 7
    assert list(stored_paragraph_owners(old, run)) == []
    # three revisions of one article are one owner: the cap counts articles, not rows
    revisions = pa.table({"article_id": ["a", "a", "a", "b", "c"],
                          "paragraphs": pa.array([[footer]] * 5, type=pa.list_(pa.uint64()))})
    owners = {owner for owner, _d in stored_paragraph_owners(revisions, run, cap=3)}
    assert owners == {key_digest("a"), key_digest("b"), key_digest("c")}
