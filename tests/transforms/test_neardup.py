"""Near duplicates: shingles, signatures, similarity, and the Beam stage with shuffled input."""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timedelta, timezone

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import Article, Duplicate, Unit
from tests.conftest import FIXED_NOW
from transforms.common import Sink
from transforms.dedupe import DedupeArticles, LabelRoots, near_doc, rank_label
from transforms.extract import build_article, unit_fields
from transforms.neardup import (
    NearConfig,
    NearDoc,
    band_keys,
    body_hashes,
    candidate_pairs,
    is_near_duplicate,
    label_roots,
    minhash,
    paragraph_digests,
    plausible,
    shingle_set,
    similarity,
    sketch_of,
    verify_pair,
)
from transforms.text import content_tokens

T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
STORY = [
    "The town council voted 21 to 6 on Tuesday to build a 1.2 kilometre sea wall in front of "
    "the old harbour, ending three years of debate about protecting the warehouses.",
    "The wall will be raised 1.4 metres above the current quay and is expected to cost 310 "
    "million. Work starts in June and should be finished before the storm season of 2026.",
    "Opponents said the design would block the view from the market square, and the council "
    "promised glass sections along the promenade to keep the view of the fjord open.",
    "The harbour office said boats would keep using the inner basin during construction, "
    "with a temporary pontoon for the ferry to the islands on the north side.",
]
FOOTER = ("This article is provided for information only and does not constitute advice. "
          "Copyright the Coastal Press Association, all rights reserved, republication without "
          "written permission is prohibited under the terms of our syndication agreement.")
CFG = NearConfig()


def text(*paragraphs: str) -> str:
    return "\n\n".join(paragraphs)


def test_shingles_ignore_case_punctuation_quotes_and_wrapping() -> None:
    a = shingle_set(text(*STORY), 5)
    rewrapped = " ".join(STORY).replace("the", "The").replace(",", " ,")
    assert np.array_equal(a, shingle_set(rewrapped, 5))
    assert shingle_set("“Quoted” words here now", 5).tolist() == \
        shingle_set('"Quoted" words here now', 5).tolist()


M64 = (1 << 64) - 1


def reference_hash(data: bytes) -> int:
    """The oracle for signature format 2, written plainly: the polynomial hash
    sum(b[j] * P**j) modulo 2**64 of the bytes, then the splitmix64 finalizer."""
    h = 0
    for b in reversed(data):
        h = (h * 0x100000001B3 + b) & M64
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & M64
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & M64
    return h ^ (h >> 31)


def reference_digest(tokens: list[str]) -> int:
    """A paragraph's digest: 0 when it is too short to be boilerplate (under 8 words)."""
    if len(tokens) < 8:
        return 0
    return (reference_hash(" ".join(tokens).encode("utf-8")) ^ 0x9E3779B97F4A7C15) or 1


@pytest.mark.parametrize("sample", [
    text(*STORY),
    "Straße in München: die Bürger sagen „nein“ zum Projekt, 東京 und 日本 auch nicht",
    "один два три четыре пять шесть",
    "one two three four five",
    "one two",
    "",
])
def test_shingles_are_the_stored_hash_of_each_joined_gram(sample: str) -> None:
    """The stored index holds these values (signature format 2): each shingle is the top 32
    bits of reference_hash of the space-joined 5-gram (of the whole text when shorter),
    however they are computed."""
    from transforms.text import content_key

    tokens = content_key(sample).split()
    grams = ([" ".join(tokens[i:i + 5]) for i in range(len(tokens) - 4)] if len(tokens) > 5
             else ([" ".join(tokens)] if tokens else []))
    want = sorted({reference_hash(g.encode("utf-8")) >> 32 for g in grams})
    assert shingle_set(sample, 5).tolist() == want
    paragraphs = [content_tokens(p) for p in sample.split("\n\n")]
    digests = sorted({d for t in paragraphs if (d := reference_digest(t))})
    assert paragraph_digests(sample).tolist() == digests


def reference_core(body: str, size: int, common: set[int]) -> tuple[np.ndarray, np.ndarray,
                                                                    bool]:
    """The test's oracle for an article's signature sets, written from the text and nothing
    prepared: (core, full, all_common). The core keeps the grams that touch no paragraph whose
    digest is in ``common``; all_common says every long paragraph is common."""
    tokens = [content_tokens(p) for p in body.split("\n\n")]
    digests = [reference_digest(t) for t in tokens]
    flat = [(w, d in common and d != 0) for t, d in zip(tokens, digests, strict=True)
            for w in t]
    words = [w for w, _dropped in flat]
    full = np.unique(body_hashes([words], size).ordered)
    mine = {d for d in digests if d}
    shared = mine & common
    if not shared:
        return full, full, False
    if len(flat) <= size:
        grams = [flat] if flat else []
    else:
        grams = [flat[i:i + size] for i in range(len(flat) - size + 1)]
    core = sorted({reference_hash(" ".join(w for w, _d in g).encode("utf-8")) >> 32
                   for g in grams if not any(d for _w, d in g)})
    return np.array(core, dtype=np.uint32), full, shared == mine


def test_boilerplate_is_left_out_but_syndicated_copies_keep_their_text() -> None:
    short = make("s.xml", text("A short story about the regatta results on Sunday afternoon.",
                               FOOTER), "https://s.example/1", T0)
    doc = near_doc(short, paragraph_digests(FOOTER), CFG)
    assert doc.shingles.size < doc.full_set().size and not doc.all_common
    story = make("t.xml", text(*STORY), "https://t.example/1", T0)
    doc = near_doc(story, paragraph_digests(text(*STORY)), CFG)
    assert doc.all_common and doc.full_set().size > doc.shingles.size


@pytest.mark.parametrize("body", [
    text(*STORY),  # no boilerplate: the prepared signature is used as it is
    text(*STORY[:2], FOOTER),  # holds a common paragraph: its core leaves it out
    text(FOOTER, *STORY[:1], FOOTER),  # the common paragraph twice, around the story
    text(FOOTER),  # only common paragraphs: compared on its full text
    text(*STORY[:1], "Short line.", FOOTER),  # a short paragraph is never boilerplate
    "Too short.",
])
def test_prepared_signature_equals_the_text_reference(body: str) -> None:
    """The near stage's signature (from the tokens prepared once) equals the oracle's, which
    tokenizes the text again, with and without boilerplate."""
    from transforms.dedupe import _bands

    article = make("in/a.xml", body, "https://news.example/a", T0)
    for common in (paragraph_digests(FOOTER), np.zeros(0, dtype=np.uint64)):
        got = near_doc(article, common, CFG)
        core, full, all_common = reference_core(body, CFG.shingle_size, set(common.tolist()))
        assert np.array_equal(got.shingles, core)
        assert np.array_equal(got.full_set(), full)
        assert got.all_common == all_common
        assert set(got.bands.tolist()) == {*_bands(core, CFG).tolist(),
                                           *_bands(full, CFG).tolist()}
        assert got.rank == rank_label(article)
    # the footer is left out of the story's core, not out of its full text
    if body == text(*STORY[:2], FOOTER):
        doc = near_doc(article, paragraph_digests(FOOTER), CFG)
        assert 0 < doc.shingles.size < doc.full_set().size


def test_stored_hash_values_do_not_move() -> None:
    """Shingle hashes, MinHash values and band keys are stored in OUT/_index and compared
    with those of later runs: a change to any of them (a salt, a row weight, the mixer)
    would quietly stop every later run from matching what is stored. Pinned to the values
    of index format 2 (schema version 6 onward); the oracles elsewhere in this file check
    what the functions compute, this test that it never moves without a new format."""
    shingles = shingle_set("the quick brown fox jumps over the lazy dog and runs far away "
                           "into the woods", 5)
    assert shingles.dtype == np.uint32 and len(shingles) == 12
    assert [int(x) for x in shingles[:3]] == [39956829, 134188271, 692505195]
    signature = minhash(shingles, 128)
    assert [int(x) for x in signature[:3]] == [
        12918184999122470982, 1882953013052969126, 325469826192738878]
    assert int(np.bitwise_xor.reduce(signature)) == 8312272440810235237
    fixed = np.arange(128, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    keys = band_keys(fixed, 32)
    assert [int(x) for x in keys[:3]] == [
        57170817384770719, 1138180759963987929, 2082299897804480761]
    assert int(np.bitwise_xor.reduce(keys)) == 6592063652778417856


def test_minhash_estimates_jaccard_and_bands_agree() -> None:
    a, b = shingle_set(text(*STORY), 5), shingle_set(text(*STORY[:3]), 5)
    jac, cont = similarity(a, b)
    sa, sb = minhash(a, 128), minhash(b, 128)
    assert abs(float(np.mean(sa == sb)) - jac) < 0.15  # 128 permutations: std about 0.04
    assert cont == 1.0
    assert np.array_equal(minhash(a, 128), minhash(a.copy(), 128))  # deterministic
    assert band_keys(sa, 32).size == 32 and band_keys(sa, 32).dtype == np.uint64
    assert np.intersect1d(band_keys(sa, 32), band_keys(sb, 32)).size


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        (text(*STORY[:3]) + "\n\nRead the full story at Harbour Times.", True),  # truncated
        (text(*STORY, "Update: the council published the tender documents on Friday, "
                      "and the first bids are due at the end of April."), True),  # appended
        (text(*[p.replace("council", "town board") for p in STORY]), True),  # words changed
        (text("A different story about a sailing regatta and its 164 entries this year.",
              STORY[2]), False),  # shares one paragraph
    ],
)
def test_verification(variant: str, expected: bool) -> None:
    dup, _sim = is_near_duplicate(shingle_set(text(*STORY), 5), shingle_set(variant, 5), CFG)
    assert dup is expected


def test_candidate_pairs_are_bounded_and_skip_stored_pairs() -> None:
    members = [(f"n{i}", f"r{i:03d}", i < 2) for i in range(6)]
    pairs = set(candidate_pairs(members, max_bucket=3))
    assert ("n0", "n1") not in pairs  # both stored
    assert all(a < b for a, b in pairs)
    # n1..n5 each pair with the better ranked of the top 3 (n0, n1, n2): 1 + 2 + 3 + 3 + 3,
    # less the stored pair (n0, n1)
    assert len(pairs) == 11


def test_revisions_of_one_article_are_not_paired() -> None:
    """Many revisions of one URL share their band keys: pairing them would cost a number of
    pairs quadratic in the revisions, for pairs the verification would skip anyway."""
    members = [(f"rev{i}", f"1|2024|{i:02d}\x1fsame-id", False) for i in range(50)]
    members.append(("other", "1|2024|99\x1fother-id", False))
    pairs = set(candidate_pairs(members, max_bucket=200))
    assert pairs == {tuple(sorted(("other", f"rev{i}"))) for i in range(50)}


def make(path: str, body: str, link: str, published: datetime, title: str = "T") -> Article:
    fields = {"title": title, "text": body, "link": link, "published": published,
              "feed_link": "https://feed.example/", "date_source": "feed"}
    unit = Unit(path, "rss", 0, fields=fields)
    return build_article(unit, unit_fields(unit), FIXED_NOW)


ORIGINAL = make("a.xml", text(*STORY), "https://a.example/wall", T0, "Sea wall approved")
TRUNCATED = make("b.xml", text(*STORY[:3], "Read the full story at Harbour Times."),
                 "https://b.example/wall", T0 + timedelta(hours=1), "Wall gets go-ahead")
UPDATED = make("c.xml", text(*STORY, "Update: bids are due at the end of April, the council "
               "said on Friday in a statement to the press."),
               "https://c.example/wall", T0 + timedelta(hours=2), "Sea wall: update")
NEWS = [make(f"n{i}.xml", text(f"Story number {i} is about a different event entirely, with "
             f"its own {i} words and facts and people and places in the valley.", FOOTER),
             f"https://n.example/{i}", T0 + timedelta(days=i)) for i in range(4)]


def _dup(d: Duplicate) -> tuple[str, str, str]:
    return (d.input_path, d.duplicate_of, d.method)


def _path(a: Article) -> str:
    return a.input_path


def check_dedupe(articles: list[Article], kept: list[str], dups: list[tuple[str, str, str]],
                 seeds: tuple[int, ...] = (0, 1), config: NearConfig = CFG) -> None:
    """DedupeArticles on ``articles``, shuffled by each seed, keeps the input paths ``kept``
    and reports exactly ``dups`` ((input path, duplicate_of, method))."""
    for seed in seeds:
        shuffled = list(articles)
        random.Random(seed).shuffle(shuffled)
        with TestPipeline() as p:
            with Sink("Dups", beam.Map(_dup)) as sink:
                out = p | beam.Create(shuffled) | DedupeArticles(sink, config)
            assert_that(out | beam.Map(_path), equal_to(kept), label="Kept")
            assert_that(sink.output(), equal_to(dups), label="Dups")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_near_stage_keeps_the_earliest_whatever_the_order(seed: int) -> None:
    check_dedupe([ORIGINAL, TRUNCATED, UPDATED, *NEWS],
                 ["a.xml", "n0.xml", "n1.xml", "n2.xml", "n3.xml"],
                 [("b.xml", ORIGINAL.article_id, "near"), ("c.xml", ORIGINAL.article_id, "near")],
                 seeds=(seed,))


def test_rank_label_orders_like_rank_key() -> None:
    assert rank_label(ORIGINAL) < rank_label(TRUNCATED) < rank_label(UPDATED)
    assert rank_label(ORIGINAL.replace(stored=True)) < rank_label(ORIGINAL)


def chain_of(length: int, first: int = 0) -> list[Article]:
    """``length`` versions of a text, each shifted two paragraphs from the last: each is a
    near copy of its neighbours only (Jaccard about 0.65 for a shift of two, about 0.45 and
    containment 0.6 for a shift of four). The earliest (``first``) is ``length - 1 - first``
    hops from the last; each version is a day later than the one before it."""
    # paragraphs of seven words: too short to count as boilerplate, however often they recur
    paragraphs = [" ".join(f"w{i}x{j}" for j in range(7)) for i in range(2 * length + 8)]
    days = [abs(k - first) for k in range(length)]
    return [make(f"chain{k}.xml", text(*paragraphs[2 * k:2 * k + 10]),
                 f"https://chain.example/{k}", T0 + timedelta(days=days[k]))
            for k in range(length)]


def test_a_chain_of_near_copies_resolves_to_its_earliest_member_over_several_hops() -> None:
    """The earliest of six versions, at one end, is five hops from the last. Label
    propagation must carry it the whole way, whatever the input order."""
    chain = chain_of(6)
    first, second, far = (near_doc(a, np.zeros(0, dtype=np.uint64), CFG)
                          for a in (chain[0], chain[1], chain[2]))
    assert verify_pair(first, second, CFG)[0]
    assert not verify_pair(first, far, CFG)[0]  # a shift of four is not a copy
    check_dedupe(chain, ["chain0.xml"],
                 [(f"chain{k}.xml", chain[0].article_id, "near") for k in range(1, 6)])


@pytest.mark.parametrize(("length", "first", "rounds"), [
    (16, 0, CFG.rounds),  # 15 hops: more than the rounds reach
    (16, 9, CFG.rounds),  # the best in the middle, nine hops from one end
    (9, 0, 1),            # one round: almost every label is merged after the rounds
    (9, 4, 2),
])
def test_a_chain_wider_than_the_rounds_reach_is_still_one_group(length: int, first: int,
                                                                rounds: int) -> None:
    """Groups are whole connected components: the labels the rounds leave different across
    an edge are merged afterwards (``label_roots``), whatever the input order."""
    chain = chain_of(length, first)
    best = chain[first]
    check_dedupe(chain, [f"chain{first}.xml"],
                 [(f"chain{k}.xml", best.article_id, "near") for k in range(length)
                  if k != first],
                 seeds=(0, 1), config=dataclasses.replace(CFG, rounds=rounds))


@pytest.mark.parametrize("rounds", [1, CFG.rounds])
def test_a_revision_linked_to_its_first_version_through_a_copy_is_kept(rounds: int) -> None:
    """Two versions of one article (one URL, the second a revision with a changed body) and a
    copy of a version between them, like both: the copy is a near duplicate of the first
    version, and the revision stays, as that article's revision 2 (it was dropped as a near
    copy of its own article)."""
    paragraphs = [" ".join(f"w{i}x{j}" for j in range(7)) for i in range(20)]
    first = make("a1.xml", text(*paragraphs[0:10]), "https://a.example/story", T0)
    revision = make("a2.xml", text(*paragraphs[4:14]), "https://a.example/story",
                    T0 + timedelta(days=2))
    copy = make("x.xml", text(*paragraphs[2:12]), "https://x.example/copy",
                T0 + timedelta(days=1))
    assert first.article_id == revision.article_id
    check_dedupe([first, revision, copy], ["a1.xml", "a2.xml"],
                 [("x.xml", first.article_id, "near")], seeds=(0, 1),
                 config=dataclasses.replace(CFG, rounds=rounds))


def test_the_near_stage_refuses_a_config_without_rounds() -> None:
    with pytest.raises(ValueError, match="round"), TestPipeline() as p:
        with Sink("Dups", beam.Map(_dup)) as sink:
            _ = p | beam.Create([ORIGINAL]) | DedupeArticles(
                sink, dataclasses.replace(CFG, rounds=0))


def test_a_copy_of_any_revision_of_a_stored_article_is_verified() -> None:
    """A stored article with two revisions in the index is one node with two docs; a run's
    copy of its first revision is an edge whatever order the docs arrive in (only the first
    one to arrive was compared)."""
    from transforms.dedupe import _attach_first, _verify, stored_near_doc

    paragraphs = [" ".join(f"w{i}x{j}" for j in range(7)) for i in range(20)]
    none = np.zeros(0, dtype=np.uint64)

    def stored(body: str) -> NearDoc:
        return stored_near_doc({"article_id": "s", "shingles": shingle_set(body, 5),
                                "bands": none, "paragraphs": none}, none)

    first_rev, second_rev = stored(text(*paragraphs[0:10])), stored(text(*paragraphs[6:16]))
    copy = near_doc(make("x.xml", text(*paragraphs[0:10], "One more paragraph of its own, "
                                       "added by the site that took the copy."),
                         "https://x.example/1", T0), none, CFG)
    assert verify_pair(copy, first_rev, CFG)[0] and not verify_pair(copy, second_rev, CFG)[0]
    for revisions in ([first_rev, second_rev], [second_rev, first_rev]):
        pair = tuple(sorted((copy.node, "stored:s")))
        joined = {copy.node: {"doc": [copy], "pair": [], "second": []},
                  "stored:s": {"doc": [], "stored": revisions, "pair": [], "second": []}}
        joined[pair[0]]["pair"].append(pair)
        joined[pair[1]]["second"].append(pair)
        carried = [out for node, groups in joined.items()
                   for out in _attach_first((node, groups))]
        edges = list(_verify((pair[1], [v for k, v in carried if k == pair[1]]), CFG))
        assert [(e[0], e[1]) for e in edges] == [pair], revisions[0] is first_rev


def test_label_roots_merge_labels_to_the_smallest_of_their_class() -> None:
    pairs = [("c", "d"), ("b", "c"), ("x", "y"), ("e", "f"), ("a", "e"), ("d", "f")]
    expected = {"b": "a", "c": "a", "d": "a", "e": "a", "f": "a", "y": "x"}
    for seed in range(5):
        random.Random(seed).shuffle(pairs)
        assert label_roots(pairs) == expected
    assert label_roots([]) == {}
    assert label_roots([("a", "a")]) == {}
    combine = LabelRoots()
    parts = [combine.add_input(combine.create_accumulator(), pair) for pair in pairs]
    merged = combine.merge_accumulators([combine.merge_accumulators(parts[:3]),
                                         combine.merge_accumulators(parts[3:])])
    assert combine.extract_output(merged) == expected


def test_near_config_needs_a_round() -> None:
    with pytest.raises(ValueError, match="round"):
        dataclasses.replace(CFG, rounds=0).validate()


def test_boilerplate_counts_distinct_articles_not_verbatim_copies() -> None:
    from transforms.dedupe import OwnedDigestCounts

    counts = OwnedDigestCounts(3)
    footer, story = paragraph_digests(FOOTER), paragraph_digests(text(*STORY))
    first = counts.create_accumulator()
    for owner in (1, 1, 1, 2):  # one story three times verbatim, and another story
        first = counts.add_input(first, (owner, np.union1d(footer, story)))
    assert counts.extract_output(first).size == 0  # two owners only
    second = counts.add_input(counts.create_accumulator(), (3, footer))
    common = counts.extract_output(counts.merge_accumulators([first, second, []]))
    assert common.tolist() == footer.tolist()


def test_finalize_takes_the_near_hashes_from_the_content_hash_tokens() -> None:
    """With near-dup detection on, finalize tokenizes once for both; the content hash is the
    same as without, and the hashes equal the near stage's own."""
    import pickle

    from transforms.dedupe import prepared
    from transforms.fields import finalize

    article = make("in/a.xml", text("“Quoted” words, here.", *STORY, FOOTER),
                   "https://news.example/a", T0)
    plain, signed = finalize(article), finalize(article, CFG)
    assert plain.near_hashes is None and signed.near_hashes is not None
    assert signed.content_hash == plain.content_hash
    assert signed.replace(near_hashes=None) == plain
    own, taken = prepared(article.text, CFG), prepared(article.text, CFG, signed.near_hashes)
    assert np.array_equal(own.full, taken.full) and np.array_equal(own.bands, taken.bands)
    assert np.array_equal(own.hashes.digests, taken.hashes.digests)
    # another shingle size: the packed hashes are not used
    other = NearConfig(shingle_size=3)
    assert np.array_equal(prepared(article.text, other, signed.near_hashes).full,
                          prepared(article.text, other).full)
    doc = near_doc(signed, paragraph_digests(FOOTER), CFG, taken)
    again = pickle.loads(pickle.dumps(doc))  # one bytes object for its arrays
    assert (again.node, again.article_id, again.stored) == (doc.node, doc.article_id, False)
    assert np.array_equal(again.shingles, doc.shingles) and np.array_equal(again.bands,
                                                                             doc.bands)
    assert np.array_equal(again.full_set(), doc.full_set()) and again.full is not None
    assert again.all_common == doc.all_common and again.rank == doc.rank


@pytest.mark.parametrize("bins", [128, 512])
def test_minhash_matches_a_plain_one_permutation_oracle(bins: int) -> None:
    """Every bin against its definition, written plainly: the smallest mixed value of the
    shingles whose top bits pick it, or, for an empty bin, the value of the first full bin in
    its probe order. The sizes cover both densification paths (few bins full, and most)."""
    from transforms.neardup import _SEED, _probes, mix64

    rng = np.random.default_rng(5)
    shift = 64 - (bins.bit_length() - 1)
    for size in (1, 3, 40, 100, 300, 700, 3000):
        shingles = np.sort(rng.choice(2**32, size=size, replace=False).astype(np.uint32))
        mixed = mix64(shingles.astype(np.uint64) ^ _SEED).tolist()
        lowest: dict[int, int] = {}
        for value in mixed:
            lowest[value >> shift] = min(value, lowest.get(value >> shift, value))
        expected = [lowest[b] if b in lowest else
                    lowest[next(int(p) for p in _probes(bins)[b] if int(p) in lowest)]
                    for b in range(bins)]
        assert minhash(shingles, bins).tolist() == expected, size


def test_one_permutation_minhash_is_unbiased_over_many_pairs() -> None:
    """Pairs of sets with a known Jaccard similarity (a shared part and distinct parts): the
    share of agreeing values estimates it without bias, as 128 permutations would."""
    rng = np.random.default_rng(11)
    errors = []
    for _ in range(300):
        shared = rng.integers(0, 2**32, size=int(rng.integers(100, 400)), dtype=np.uint64)
        a = np.unique(np.concatenate((shared, rng.integers(0, 2**32, 60, dtype=np.uint64))))
        b = np.unique(np.concatenate((shared, rng.integers(0, 2**32, 90, dtype=np.uint64))))
        a, b = a.astype(np.uint32), b.astype(np.uint32)
        jac, _cont = similarity(a, b)
        errors.append(float(np.mean(minhash(a, 128) == minhash(b, 128))) - jac)
    assert abs(np.mean(errors)) < 0.01
    assert 0.02 < np.std(errors) < 0.06  # about sqrt(J(1-J)/128)
    assert minhash(np.zeros(0, dtype=np.uint32), 128).tolist() == [2**64 - 1] * 128
    with pytest.raises(ValueError):
        minhash(np.arange(10, dtype=np.uint32), 100)


def test_a_page_fetched_twice_does_not_make_its_story_boilerplate() -> None:
    """A page at one URL seen twice (the second time with a share line) and a partner's copy
    with another lede: the story's paragraphs are in three articles but under two ids, so they
    are not boilerplate, and the copy is caught as near. (Counted by content hash, as first
    written this session, they made three owners and the copy was kept.)"""
    lede_a = "Reporting from the waterfront by our own local staff writer Anna Berg today."
    lede_b = "This syndicated wire story was filed late on Tuesday evening from the capital."
    page = make("a.xml", text(lede_a, *STORY[:3]), "https://a.example/wall", T0)
    again = make("a2.xml", text(lede_a, *STORY[:3], "Share this story."),
                 "https://a.example/wall", T0 + timedelta(hours=1))
    copy = make("b.xml", text(lede_b, *STORY[:3]), "https://b.example/wall",
                T0 + timedelta(hours=2))
    from transforms.fields import finalize

    check_dedupe([finalize(a, CFG) for a in (copy, again, page)], ["a.xml"],
                 [("a2.xml", page.article_id, "url"), ("b.xml", page.article_id, "near")],
                 seeds=(0,))


def test_exact_copies_are_one_owner_of_their_band_keys() -> None:
    """The band keys that make candidates are counted by content hash, before the last exact
    stage: a verbatim copy at another URL does not make its original a candidate, a near copy
    does, and the pipeline reports the first as exact and the second as near."""
    from transforms.dedupe import OwnedDigestCounts, _attach_doc, _owned_bands
    from transforms.fields import finalize

    copy = make("copy.xml", ORIGINAL.text, "https://copy.example/wall",
                T0 + timedelta(hours=1))
    originals = [finalize(a, CFG) for a in (ORIGINAL, copy, TRUNCATED)]
    none = np.zeros(0, dtype=np.uint64)
    owned = [pair for a in originals for pair in _owned_bands(_attach_doc(a, none, CFG))]
    assert owned[0][0] == owned[1][0] != owned[2][0]  # the copy shares the original's owner
    counts = OwnedDigestCounts(2)
    exact_only = counts.extract_output(counts.add_input(counts.add_input(
        counts.create_accumulator(), owned[0]), owned[1]))
    assert exact_only.size == 0
    acc = counts.create_accumulator()
    for pair in owned:
        acc = counts.add_input(acc, pair)
    assert counts.extract_output(acc).size > 0
    check_dedupe(originals, ["a.xml"], [("copy.xml", ORIGINAL.article_id, "exact"),
                                         ("b.xml", ORIGINAL.article_id, "near")])


def test_a_run_whose_bodies_are_all_too_short_for_band_keys() -> None:
    """No article has a band key (bodies under MIN_SHINGLES shingles): the count of colliding
    keys still has an input, and every article is kept."""
    short = [make(f"s{i}.xml", f"Brief {i} only.", f"https://s.example/{i}", T0)
             for i in range(2)]
    check_dedupe(short, ["s0.xml", "s1.xml"], [], seeds=(0,))


SITE_FOOTERS = [
    f"Published by the {site} under licence from the wire service; all rights reserved by the "
    f"{site} and its partners, and no part may be reproduced without permission."
    for site in ("Harbour Times", "Valley Courier", "Coast Daily", "Island Post")]


def test_copies_of_a_story_that_each_end_in_their_own_footer_are_copies() -> None:
    """Three or more sites carry one story, each with its own footer: the story's paragraphs
    are then in three articles, common by the count, but they are most of each article, which
    is compared on its full text. (Before, each article's core was its footer alone, and no
    copy was found.) One short story under one shared footer still keeps its core."""
    copies = [make(f"site{i}.xml", text(*STORY, SITE_FOOTERS[i]), f"https://site{i}.example/w",
                   T0 + timedelta(hours=i)) for i in range(4)]
    check_dedupe([*copies, *NEWS], ["site0.xml", "n0.xml", "n1.xml", "n2.xml", "n3.xml"],
                 [(f"site{i}.xml", copies[0].article_id, "near") for i in (1, 2, 3)])


def test_mostly_common() -> None:
    from transforms.neardup import mostly_common

    def of(flags: str) -> bool:  # c: a common long paragraph, u: one of its own
        return mostly_common(np.array([f == "c" for f in flags], dtype=bool))

    assert of("cc")  # a verbatim copy
    assert of("cccu")  # a story and a footer of its own
    assert of("ccccuccc")  # ... and the site's footer block after it
    assert of("ucccu")  # its own byline, the story, its own footer
    assert not of("uc")  # a story under a shared footer
    assert not of("uccc") and not of("uuccc")  # briefs under a footer block of 3
    assert not of("ccu")  # two common paragraphs: not yet a story
    assert not of("cccuuuu")
    assert not of("")


def test_short_stories_under_a_footer_block_of_several_paragraphs_are_kept() -> None:
    """Five briefs under one footer of three long paragraphs: the footer is common, and it is
    most of each brief, but it ends them: each brief is compared on its own text, and all are
    kept. (A first version of mostly_common, without the position, merged them.)"""
    block = ["The Valley Press Association distributes this report to its members for "
             "publication in print and online under the terms of its licence.",
             "Views expressed in this report are those of the authors and not of the "
             "association, its members, its board or any of its funders.",
             "Corrections, complaints and syndication requests go to the association's desk, "
             "which answers every message within ten working days of receipt."]
    briefs = [make(f"brief{i}.xml", text(f"Brief {i}: {line}", *block),
                   f"https://valley.example/{i}", T0 + timedelta(hours=i))
              for i, line in enumerate([
                  "the morning ferry was delayed by two hours after an engine fault today.",
                  "the harbour board raised mooring fees by four percent for summer.",
                  "a new bakery opened on the market square to a queue round the church.",
                  "the school choir won the regional contest with songs from the coast.",
                  "the library extended its opening hours on Thursdays until nine."])]
    check_dedupe(briefs, [f"brief{i}.xml" for i in range(5)], [], seeds=(0,))


def _pair_of_sets(rng: np.random.Generator, size_a: int, size_b: int, shared: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Two sorted shingle sets of the given sizes with ``shared`` shingles in common."""
    values = rng.choice(2**32, size=size_a + size_b - shared, replace=False).astype(np.uint32)
    a = values[:size_a]
    b = np.concatenate((values[:shared], values[size_a:]))
    return np.sort(a), np.sort(b)


def _doc(node: str, shingles: np.ndarray, full: np.ndarray | None = None,
         all_common: bool = False) -> NearDoc:
    return NearDoc(node, node, node, shingles, np.zeros(0, dtype=np.uint64), full=full,
                   all_common=all_common)


def test_every_pair_the_verification_accepts_is_plausible() -> None:
    """The MinHash pre-check may only rule out pairs the verification would reject: pairs at
    the Jaccard threshold, at the containment threshold with sizes far apart, short texts and
    texts of about as many shingles as bins (whose signatures are densified) all pass it."""
    rng = np.random.default_rng(7)
    cases = []
    for _ in range(150):  # Jaccard exactly 0.6, equal sizes: shared = 0.75 n
        cases.append(_pair_of_sets(rng, 2000, 2000, 1500))
    for _ in range(150):  # a 600-shingle text 80% inside a 3,000-shingle one (Jaccard 0.15)
        cases.append(_pair_of_sets(rng, 600, 3000, 480))
    for _ in range(150):  # short texts: 12 shingles, 9 shared (Jaccard 0.6)
        cases.append(_pair_of_sets(rng, 12, 12, 9))
    for _ in range(150):  # a union of about 190 in 128 bins: many bins densified copies
        cases.append(_pair_of_sets(rng, 150, 150, 113))
    for _ in range(150):  # a union of about 625 in the sketch's 512 bins (Jaccard 0.6)
        cases.append(_pair_of_sets(rng, 500, 500, 375))
    for a, b in cases:
        assert verify_pair(_doc("a", a), _doc("b", b), CFG)[0]
        assert plausible(sketch_of(_doc("a", a)),
                         sketch_of(_doc("b", b)), CFG)


def test_kin_below_both_thresholds_are_mostly_ruled_out() -> None:
    """Texts written from one template (Jaccard 0.41, containment 0.58: below 0.6 and 0.8)
    are verified only when their estimate comes close: with the 512-bin sketch, almost never
    (with 128 values of 32 bits, about one pair in five went on)."""
    rng = np.random.default_rng(11)
    passed = 0
    for _ in range(200):
        a, b = _pair_of_sets(rng, 2000, 2000, 1160)
        assert not verify_pair(_doc("a", a), _doc("b", b), CFG)[0]
        passed += plausible(sketch_of(_doc("a", a)),
                            sketch_of(_doc("b", b)), CFG)
    assert passed <= 2
    # unrelated texts never pass; an empty set never does
    a, b = _pair_of_sets(rng, 2000, 2000, 0)
    empty = np.zeros(0, dtype=np.uint32)
    assert not plausible(sketch_of(_doc("a", a)), sketch_of(_doc("b", b)), CFG)
    assert not plausible(sketch_of(_doc("a", a)), sketch_of(_doc("e", empty)), CFG)


def test_plausible_compares_full_texts_when_either_is_all_common() -> None:
    """Cores that differ but full texts that match (copies of a syndicated story, compared on
    their full text) stay plausible, as verify_pair compares them."""
    rng = np.random.default_rng(3)
    full, _ = _pair_of_sets(rng, 1000, 10, 0)
    core_a, core_b = full[:500], full[500:]
    a = _doc("a", core_a, full=full, all_common=True)
    b = _doc("b", core_b, full=full)
    assert verify_pair(a, b, CFG)[0]
    assert plausible(sketch_of(a), sketch_of(b), CFG)
    # on their cores alone they are unrelated
    assert not plausible(sketch_of(_doc("a", core_a)), sketch_of(_doc("b", core_b)),
                         CFG)


def test_candidate_pairs_skip_pairs_that_are_not_plausible() -> None:
    rng = np.random.default_rng(5)
    x, y = _pair_of_sets(rng, 800, 800, 790)  # near copies
    _, z = _pair_of_sets(rng, 800, 800, 100)  # unrelated to both
    members = [(node, f"r-{node}", False, sketch_of(_doc(node, s)))
               for node, s in (("x", x), ("y", y), ("z", z))]
    assert set(candidate_pairs(members, 200, CFG)) == {("x", "y")}
    # without a config every pair is a candidate, as before
    assert len(set(candidate_pairs(members, 200))) == 3



_REVISIONS = """
import numpy as np
from transforms.neardup import NearConfig, NearDoc, candidate_pairs, sketch_of
rng = np.random.default_rng(9)
def doc(node, values):
    return NearDoc(node, node, node, np.sort(values.astype(np.uint32)),
                   np.zeros(0, dtype=np.uint64))
texts = [rng.choice(2**32, 400, replace=False) for _ in range(5)]
members = [("stored:x", "0|x\x1fx", True, sketch_of(doc("stored:x", t)))
           for t in texts]
members.append(("new", "1|new", False, sketch_of(doc("new", texts[0]))))
print(list(candidate_pairs(members, 2, NearConfig())))
"""


def test_candidate_pairs_do_not_depend_on_hash_order() -> None:
    """Five revisions of one stored article share node and rank but not their text, and only
    the first is a copy of the new article. With max_bucket 2 the head of the bucket holds two
    of them: which two must not hang on the order a set gives them, which changes with the
    interpreter's hash seed (each Beam worker has its own)."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    outputs = set()
    for seed in range(6):
        env = {**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(REPO)}
        proc = subprocess.run([sys.executable, "-c", _REVISIONS], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        outputs.add(proc.stdout)
    assert len(outputs) == 1, outputs
