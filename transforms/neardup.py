"""Near-duplicate detection: shingles, MinHash signatures, LSH band keys and the verified
similarity, as pure functions; NearDedupe wires them into Beam.

Method (keyed grouping and digest counts; no index of the texts is held by one worker):
1. Paragraph frequency. A paragraph of 8 words or more that appears in at least
   ``boilerplate_df`` different articles (of the run, or of the run and OUT: the index keeps
   each stored article's paragraph digests) is boilerplate (a footer, a disclaimer) and is left
   out of the shingles, unless leaving it out would leave an article almost nothing: copies of one
   syndicated story share every paragraph, and must still be compared on them. Paragraphs are
   counted as 64-bit digests in one vectorized combine (16 bytes per distinct paragraph).
2. Shingles: word ``shingle_size``-grams of the normalized body (case, punctuation, quote style
   and paragraph breaks do not matter), hashed to 32 bits. The body is tokenized once and all
   its spans (shingles, paragraphs) are hashed from one prefix sum over its bytes.
3. MinHash of ``num_perm`` values by one permutation hashing (one hash per shingle, not
   ``num_perm``); ``bands`` bands of num_perm/bands rows, each hashed to a uint64 key. Band
   keys held by two texts or more (distinct content hashes: exact copies are one owner) are
   found by a second digest count, taken before the last exact shuffle; an article with none
   of them is kept at once, in the stage that reads that shuffle. The others are candidates:
   GroupByKey on their shared band keys. Within a band, a pair is kept only when the estimate
   of its similarity from a finer sketch (512 bins of one byte: b-bit MinHash), raised by 4
   standard deviations, could reach a threshold (``plausible``): texts alike in part but
   below both thresholds (stories written from one template, which OUT holds more of with
   every run) never carry their shingle sets through the verification joins.
4. Candidates are verified on their exact shingle sets: Jaccard >= ``jaccard`` or containment
   (the share of the shorter article found in the longer one) >= ``containment``. Containment
   catches a copy cut to 80% plus a "Read the full story" line and the original plus an update
   paragraph; plain Jaccard fails one side or the other at any single threshold.
5. Verified pairs form a graph; its connected components are found by min-label propagation
   (``rounds`` rounds, each a CoGroupByKey), the label being the rank of the best article by
   the spine's total order, so the kept article is the same whatever the input order. A
   component wider than the rounds reach (a chain of copies, each like the next only) still
   holds different labels across some edge after them: those pairs of labels are merged by a
   union-find (``label_roots``) in one global combine, and the pending decisions take the
   merged label. That combine holds labels, not texts, and only those of the components the
   rounds left unfinished, so the groups are whole connected components whatever their
   diameter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from transforms.text import content_tokens

MIN_PARAGRAPH_WORDS = 8
MIN_SHINGLES = 5
# common paragraphs that make a story: an article whose long paragraphs are common, all of
# them, or at least this many and half of them before its trailing block of common ones, is a
# copy of a syndicated story, not a story with boilerplate around it, and is compared on its
# full text
STORY_PARAGRAPHS = 3


def mostly_common(common: np.ndarray) -> bool:
    """Given, in text order, whether each long paragraph of an article is common (boilerplate
    by the count): is the article a copy of a syndicated story? Yes when all its long
    paragraphs are common (copies sharing every paragraph), or, leaving out the common
    paragraphs that end it (a site's footer block, at the end where footers are), at least
    STORY_PARAGRAPHS and half of the rest are common (copies that each end in a footer of
    their own: three or more of them make the story's paragraphs common). A short story under
    a shared footer, even one of several paragraphs, keeps its core."""
    n = int(common.size)
    if n == 0:
        return False
    unique = np.flatnonzero(~common)
    if unique.size == 0:
        return True
    before = common[:int(unique[-1]) + 1]  # up to its last paragraph of its own
    k = int(np.count_nonzero(before))
    return k >= STORY_PARAGRAPHS and 2 * k >= before.size


def long_paragraphs(digests: np.ndarray) -> np.ndarray:
    """The distinct digests of a body's long paragraphs (``BodyHashes.digests`` not 0), in
    text order (``mostly_common`` needs the order)."""
    found = digests[digests != 0]
    _values, first = np.unique(found, return_index=True)
    return found[np.sort(first)]


SIGNATURE_KEY = "newsbeam.signature"  # Parquet metadata of OUT/_index files


@dataclass(frozen=True)
class NearConfig:
    """Settings of near-duplicate detection (see the module docstring)."""

    shingle_size: int = 5
    num_perm: int = 128
    bands: int = 32
    jaccard: float = 0.6
    containment: float = 0.8
    boilerplate_df: int = 3
    rounds: int = 3
    max_bucket: int = 200

    def signature_tag(self) -> str:
        """The settings a stored signature depends on, as OUT/_index files record them
        (``SIGNATURE_KEY`` in their Parquet metadata): signatures taken with other settings
        share no band key and no shingle with them."""
        return (f"--shingle-size {self.shingle_size} --num-perm {self.num_perm} "
                f"--bands {self.bands}")

    def index_metadata(self) -> dict[str, str]:
        """What every OUT/_index file written with these settings records."""
        return {SIGNATURE_KEY: self.signature_tag()}

    def validate(self) -> None:
        if self.shingle_size < 1:
            raise ValueError("--shingle-size must be at least 1")
        if self.num_perm < 8 or self.num_perm & (self.num_perm - 1) or self.bands < 1 \
                or self.num_perm % self.bands:
            raise ValueError("--num-perm must be a power of two, at least 8, and a multiple "
                             "of --bands")
        if not (0 < self.jaccard <= 1 and 0 < self.containment <= 1):
            raise ValueError("--near-threshold and --containment must be in (0, 1]")
        if self.rounds < 1:
            raise ValueError("label propagation needs at least one round")
        if self.boilerplate_df < 2:  # 1: every paragraph would be boilerplate
            raise ValueError("--boilerplate-df must be at least 2 (a paragraph found in that "
                             "many articles is boilerplate)")


def tokens_by_paragraph(text: str) -> list[list[str]]:
    """The content tokens (``content_tokens``: NFKC, case-folded words) of each paragraph of a
    normalized body (paragraphs are separated by a blank line)."""
    return [content_tokens(p) for p in text.split("\n\n")]


# ------------------------------------------------------------- hashing (signature format 2)
# Format 2 (schema version 6) hashes every span of the body's bytes in one vectorized pass;
# format 1 took a CRC-32 per shingle in a Python loop and keyed bands by a BLAKE2 hex string.
# What the index stores (shingles, bands) depends on it: pipeline/reindex.py upgrades an
# older OUT/_index.
_U64 = np.uint64
_P = 0x100000001B3  # odd, so invertible modulo 2**64
_P_INV = pow(_P, -1, 1 << 64)
# (P**j, P**-j) modulo 2**64 for j below their length; one tuple, replaced whole (threads)
_POWERS: list[tuple[np.ndarray, np.ndarray]] = [(np.ones(1, dtype=_U64),
                                                 np.ones(1, dtype=_U64))]
_M1, _M2 = _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB)
_S30, _S27, _S31 = _U64(30), _U64(27), _U64(31)
_PARAGRAPH_SALT = _U64(0x9E3779B97F4A7C15)


_CACHED_POWERS = 1 << 20  # tables kept for the process: 16 MiB; longer bodies build their own


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """P**j and P**-j modulo 2**64 for j < n. Tables up to _CACHED_POWERS long are kept for the
    process (grown on demand); a longer body gets tables for its call only."""
    cached = _POWERS[0]  # read once: another thread may replace it meanwhile
    if cached[0].size >= n:
        return cached
    size = max(1 << 14, 1 << (n - 1).bit_length())
    tables = []
    for base in (_P, _P_INV):
        row = np.full(size, base, dtype=_U64)
        row[0] = 1
        tables.append(np.cumprod(row, dtype=_U64))  # wraps modulo 2**64 on purpose
    if size <= _CACHED_POWERS and size > _POWERS[0][0].size:
        _POWERS[0] = (tables[0], tables[1])
    return tables[0], tables[1]


def mix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer, a strong 64-bit mixer (uint64 arithmetic wraps on purpose)."""
    z = z ^ (z >> _S30)
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


def span_hashes(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """64-bit hashes of the byte spans ``data[s:e]``: the polynomial hash sum(b[j] * P**(j-s))
    modulo 2**64, mixed. One prefix sum serves every span, so a span costs O(1) whatever its
    length, and a span's hash depends on its bytes only, not on where it sits. Not
    collision-resistant against a crafted input (Thue-Morse strings collide modulo 2**64):
    such a collision only adds a candidate or a shared shingle, as CRC-32 collisions did."""
    power, inverse = _powers(data.size + 1)
    prefix = np.zeros(data.size + 1, dtype=_U64)
    np.cumsum(data * power[:data.size], out=prefix[1:])
    return mix64((prefix[ends] - prefix[starts]) * inverse[starts])


@dataclass(frozen=True)
class BodyHashes:
    """What a body's tokens hash to, computed once: the shingles in text order (a shingle is
    the 32-bit hash of ``size`` space-joined tokens; of the whole body when it is shorter),
    and per paragraph its number of tokens and its 64-bit digest (0 below
    MIN_PARAGRAPH_WORDS, too short to be boilerplate)."""

    ordered: np.ndarray  # uint32, one per window of ``size`` tokens
    sizes: np.ndarray  # int64, tokens per paragraph
    digests: np.ndarray  # uint64, per paragraph


def body_hashes(per: list[list[str]], size: int, joined: str | None = None) -> BodyHashes:
    """The hashes of a body given its tokens by paragraph; ``joined``: all its tokens joined
    by single spaces (``content_key``), when the caller has it already."""
    sizes = np.array([len(t) for t in per], dtype=np.int64)
    n = int(sizes.sum())
    if not n:
        return BodyHashes(np.zeros(0, dtype=np.uint32), sizes,
                          np.zeros(len(per), dtype=_U64))
    if joined is None:
        joined = " ".join([w for t in per for w in t])
    data = np.frombuffer(joined.encode("utf-8"), dtype=np.uint8)
    # a token holds no space, so the spaces are the token boundaries
    spaces = np.flatnonzero(data == 32)
    starts = np.concatenate(([0], spaces + 1))
    ends = np.concatenate((spaces, [data.size]))
    if n <= size:
        spans = span_hashes(data, starts[:1], ends[-1:])
    else:
        spans = span_hashes(data, starts[:n - size + 1], ends[size - 1:])
    ordered = (spans >> _U64(32)).astype(np.uint32)
    last = np.cumsum(sizes)
    first = last - sizes
    long = sizes >= MIN_PARAGRAPH_WORDS
    digests = np.zeros(len(per), dtype=_U64)
    if long.any():
        digests[long] = span_hashes(data, starts[first[long]], ends[last[long] - 1]) \
            ^ _PARAGRAPH_SALT
        digests[long & (digests == 0)] = 1  # 0 means "too short"
    return BodyHashes(ordered, sizes, digests)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique for the small arrays of one article, without its general-case overhead."""
    if values.size < 2:
        return values.copy()
    ordered = np.sort(values)
    keep = np.empty(ordered.size, dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def pack_hashes(hashes: BodyHashes, size: int) -> bytes:
    """A body's hashes as one bytes object, with the shingle size they were taken with."""
    return pack_arrays(np.array([size], dtype=np.int64), hashes.ordered, hashes.sizes,
                       hashes.digests)


_HASHES_TYPES = (np.int64, np.uint32, np.int64, np.uint64)


def unpack_hashes(data: bytes, size: int) -> BodyHashes | None:
    """The hashes ``pack_hashes`` packed, or None if they were taken with another size."""
    taken, ordered, sizes, digests = unpack_arrays(data, _HASHES_TYPES)
    return BodyHashes(ordered, sizes, digests) if int(taken[0]) == size else None


def core_shingles(hashes: BodyHashes, drop: np.ndarray, size: int) -> np.ndarray:
    """Sorted unique shingles of the windows that lie wholly outside the paragraphs marked in
    ``drop`` (a boolean per paragraph)."""
    n = int(hashes.sizes.sum())
    if n <= size:
        return np.zeros(0, dtype=np.uint32) if drop[hashes.sizes > 0].any() \
            else sorted_unique(hashes.ordered)
    dropped = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.repeat(drop, hashes.sizes), out=dropped[1:])
    clean = dropped[size:] == dropped[:n - size + 1]
    return sorted_unique(hashes.ordered[clean])


def paragraphs_in_order(text: str) -> np.ndarray:
    """``long_paragraphs`` of ``text``: what the index keeps of it (``paragraphs``)."""
    return long_paragraphs(body_hashes(tokens_by_paragraph(text), 1).digests)


def paragraph_digests(text: str) -> np.ndarray:
    """The same digests, sorted (the form of the run's boilerplate set)."""
    return np.sort(paragraphs_in_order(text))


def shingle_set(text: str, size: int) -> np.ndarray:
    """Sorted unique shingles of ``text``."""
    return sorted_unique(body_hashes(tokens_by_paragraph(text), size).ordered)


_EMPTY = np.iinfo(np.uint64).max
_SEED = _U64(0x2545F4914F6CDD1D)
_BAND_SALT = _U64(0xD6E8FEB86659FD93)


_PROBES: dict[int, np.ndarray] = {}


def _probes(num_perm: int) -> np.ndarray:
    """Per bin, a fixed pseudo-random order of all bins: where an empty bin looks for a value
    (the same order in every process and run)."""
    if num_perm not in _PROBES:
        rng = np.random.default_rng(20261127)
        _PROBES[num_perm] = np.stack([rng.permutation(num_perm) for _ in range(num_perm)])
    return _PROBES[num_perm]


def minhash(shingles: np.ndarray, num_perm: int) -> np.ndarray:
    """MinHash signature of a shingle set, as ``num_perm`` uint64 values, by one permutation
    hashing: each shingle is mixed once to 64 bits, its top bits pick one of ``num_perm``
    bins (a power of two), and a bin keeps its smallest value. An empty bin takes the value
    of the first non-empty bin in its own fixed random order of bins (optimal densification,
    Shrivastava, ICML 2017), so two sets agree in a bin with probability about their Jaccard
    similarity, as with ``num_perm`` permutations, at the cost of one hash per shingle instead
    of ``num_perm``. (Borrowing from the next bin to the right, the 2014 rotation scheme, made
    whole bands of a short text copies of one bin: two 5-shingle texts sharing one shingle
    shared a band 73% of the time.)"""
    if num_perm & (num_perm - 1):
        raise ValueError("num_perm must be a power of two")
    if shingles.size == 0:
        return np.full(num_perm, _EMPTY, dtype=_U64)
    shift = _U64(64 - (num_perm.bit_length() - 1))
    h = np.sort(mix64(shingles.astype(_U64) ^ _SEED))
    bins = h >> shift
    index = np.arange(num_perm, dtype=_U64)
    first = np.searchsorted(bins, index)
    full = first < h.size
    full[full] = bins[first[full]] == index[full]
    values = np.where(full, h[np.minimum(first, h.size - 1)], _U64(0))
    if full.all():
        return values
    empty = np.flatnonzero(~full)
    values[empty] = values[_densified_sources(full, empty, num_perm)]
    return values


def _densified_sources(full: np.ndarray, empty: np.ndarray, num_perm: int) -> np.ndarray:
    """For each empty bin, the first full bin in its probe order. With a quarter of the bins
    full or more, the probe orders are walked a column at a time (a few columns settle all);
    with fewer, each empty bin takes the full bin of lowest position in its order (a matrix
    of empty by full bins, small then). Both give the same bins; the 512-bin sketch of a short
    text took 0.2-0.3 ms as one gather of every empty bin's whole order, now 0.05-0.1 ms."""
    if empty.size * 4 <= num_perm * 3:
        probes = _probes(num_perm)
        source = np.empty(empty.size, dtype=np.int64)
        todo = np.arange(empty.size)
        for column in range(num_perm):
            candidate = probes[empty[todo], column]
            hit = full[candidate]
            source[todo[hit]] = candidate[hit]
            todo = todo[~hit]
            if todo.size == 0:
                break
        return source
    filled = np.flatnonzero(full)
    return filled[_probe_positions(num_perm)[empty][:, filled].argmin(axis=1)]


_POSITIONS: dict[int, np.ndarray] = {}


def _probe_positions(num_perm: int) -> np.ndarray:
    """Per bin, the position of every bin in its probe order (the inverse of ``_probes``)."""
    if num_perm not in _POSITIONS:
        probes = _probes(num_perm)
        positions = np.empty(probes.shape, dtype=np.int32)
        positions[np.arange(num_perm)[:, None], probes] = np.arange(num_perm, dtype=np.int32)
        _POSITIONS[num_perm] = positions
    return _POSITIONS[num_perm]


_ROW_WEIGHTS: dict[int, np.ndarray] = {}


def _row_weights(rows: int) -> np.ndarray:
    """Odd multipliers, one per row of a band."""
    if rows not in _ROW_WEIGHTS:
        _ROW_WEIGHTS[rows] = mix64(np.arange(1, rows + 1, dtype=_U64)) | _U64(1)
    return _ROW_WEIGHTS[rows]


def band_keys(signature: np.ndarray, bands: int) -> np.ndarray:
    """The LSH band keys of a signature: ``bands`` bands of len/bands rows, each hashed with
    its band number to one uint64 (a weighted sum of its rows, modulo 2**64, mixed). Sorted;
    distinct but for a 64-bit collision."""
    rows = signature.reshape(bands, -1)
    weighted = rows * _row_weights(rows.shape[1])
    key = weighted.sum(axis=1, dtype=_U64) + np.arange(bands, dtype=_U64) * _BAND_SALT
    return np.sort(mix64(key))


def similarity(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(Jaccard, containment of the smaller set in the larger) of two shingle sets."""
    if a.size == 0 or b.size == 0:
        return 0.0, 0.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    union = a.size + b.size - inter
    return inter / union, inter / min(a.size, b.size)


def is_near_duplicate(a: np.ndarray, b: np.ndarray, config: NearConfig) -> tuple[bool, float]:
    jac, cont = similarity(a, b)
    return (jac >= config.jaccard or cont >= config.containment), max(jac, cont)


_NO_DIGESTS: np.ndarray = np.zeros(0, dtype=np.uint64)


@dataclass(frozen=True)
class NearDoc:
    """What near-duplicate detection needs of an article (or of a stored one)."""

    node: str  # unit key, or "stored:<article_id>" for an article already in OUT
    rank: str  # sortable rank label; the smallest in a group is kept
    article_id: str
    shingles: np.ndarray  # core: without boilerplate paragraphs
    bands: np.ndarray  # sorted distinct uint64 band keys
    stored: bool = False
    full: np.ndarray | None = None  # with them, when they differ
    all_common: bool = False
    # distinct digests of its paragraphs of MIN_PARAGRAPH_WORDS or more, in text order
    # (stored in the index, so later runs count boilerplate over OUT too)
    paragraphs: np.ndarray = dataclasses.field(default_factory=lambda: _NO_DIGESTS)

    def full_set(self) -> np.ndarray:
        return self.shingles if self.full is None else self.full

    def __reduce__(self) -> tuple[Any, ...]:
        # the arrays as one bytes object: the runner's coder copies it instead of pickling each
        full = self.full if self.full is not None else _NONE
        return (_unpack_doc, (self.node, self.rank, self.article_id, self.stored,
                              self.all_common, self.full is not None,
                              pack_arrays(*(np.asarray(a, dtype) for a, dtype in zip(
                                  (self.shingles, self.bands, full, self.paragraphs),
                                  _DOC_TYPES, strict=True)))))


_NONE = np.zeros(0, dtype=np.uint32)
_DOC_TYPES = (np.uint32, np.uint64, np.uint32, np.uint64)


def _unpack_doc(node: str, rank: str, article_id: str, stored: bool, all_common: bool,
                has_full: bool, data: bytes) -> NearDoc:
    shingles, bands, full, paragraphs = unpack_arrays(data, _DOC_TYPES)
    return NearDoc(node, rank, article_id, shingles, bands, stored,
                   full if has_full else None, all_common, paragraphs)


def pack_arrays(*arrays: np.ndarray) -> bytes:
    """Arrays as one bytes object: their lengths, then their data (``unpack_arrays``)."""
    sizes = np.array([a.size for a in arrays], dtype=np.int64)
    return b"".join([sizes.tobytes(), *(a.tobytes() for a in arrays)])


def unpack_arrays(data: bytes, dtypes: tuple[Any, ...]) -> list[np.ndarray]:
    """The arrays ``pack_arrays`` packed, given their dtypes (read-only views of ``data``)."""
    sizes = np.frombuffer(data, dtype=np.int64, count=len(dtypes)).tolist()
    offset = 8 * len(dtypes)
    arrays = []
    for size, dtype in zip(sizes, dtypes, strict=True):
        arrays.append(np.frombuffer(data, dtype=dtype, count=size, offset=offset))
        offset += size * np.dtype(dtype).itemsize
    return arrays


def verify_pair(a: NearDoc, b: NearDoc, config: NearConfig) -> tuple[bool, float]:
    """Core against core; full text against full text when either is all common."""
    if a.all_common or b.all_common:
        return is_near_duplicate(a.full_set(), b.full_set(), config)
    return is_near_duplicate(a.shingles, b.shingles, config)


def _article_of(rank: str) -> str | None:
    """The article id at the end of a rank label (after \\x1f), if it carries one."""
    _head, sep, article_id = rank.rpartition("\x1f")
    return article_id if sep else None


# How far below a threshold the MinHash estimate of a candidate pair may fall and the pair
# still be verified: Z standard deviations of the estimate at its widest (J = 0.5), over the
# bins the pair can fill (SKETCH_BINS, or fewer for short texts, whose bins are densified)
PLAUSIBLE_Z = 4.0
# The pre-check's own signature: more bins than the banding's num_perm, each cut to its low
# SKETCH_BITS bits (b-bit MinHash, Li and König, WWW 2010), so a set's sketch takes as many
# bytes as 128 values of 32 bits but estimates a long text's Jaccard about twice as tightly
SKETCH_BINS = 512
SKETCH_BITS = 8
_CHANCE = 2.0 ** -SKETCH_BITS  # two different values agree in their low bits by chance


@dataclass(frozen=True)
class Sketch:
    """What the candidate step knows of a band member for ``plausible``: the sizes and b-bit
    MinHash sketches (SKETCH_BINS bins, one byte each) of the sets ``verify_pair`` would
    compare, the core and the full text (the same set when nothing was cut), and whether it
    is compared on its full text."""

    all_common: bool
    core_size: int
    full_size: int
    core: bytes
    full: bytes


def sketch_bytes(shingles: np.ndarray) -> bytes:
    """The b-bit MinHash sketch of a shingle set: SKETCH_BINS bins, the low byte of each."""
    return (minhash(shingles, SKETCH_BINS) & _U64(0xFF)).astype(np.uint8).tobytes()


def sketch_of(doc: NearDoc) -> Sketch:
    core = sketch_bytes(doc.shingles)
    if doc.full is None:
        return Sketch(doc.all_common, int(doc.shingles.size), int(doc.shingles.size), core, core)
    return Sketch(doc.all_common, int(doc.shingles.size), int(doc.full.size), core,
                  sketch_bytes(doc.full))


def _own_bins(bins: int, union: int) -> float:
    """The expected number of bins of a one permutation hashing signature that hold a value of
    their own, for a union of ``union`` shingles thrown into ``bins`` bins (the others are
    densified copies, no new evidence). ``union`` is a lower bound (the larger set), so the
    count, and the margin's confidence, err on the safe side: 165 of 512 bins for 200
    shingles, 439 for 1,000."""
    return bins * -np.expm1(-union / bins)


def plausible(a: Sketch, b: Sketch, config: NearConfig) -> bool:
    """Can the pair pass ``verify_pair``? False only when the MinHash estimate of its Jaccard
    similarity, raised by PLAUSIBLE_Z standard deviations, stays under ``jaccard`` and the
    containment that Jaccard would give with the two exact sizes (|A n B| = J (|A| + |B|) /
    (1 + J)) stays under ``containment``. Texts alike in part but below both thresholds (a
    story and its many kin in OUT, written from one template) then never travel to the
    verification joins with their shingle sets; a pair at the Jaccard threshold is dropped
    with a probability of about 3 in 100,000 (the banding itself misses 1.2% of them)."""
    whole = a.all_common or b.all_common
    na, nb = (a.full_size, b.full_size) if whole else (a.core_size, b.core_size)
    if na == 0 or nb == 0:
        return False  # verify_pair finds no similarity in an empty set
    sa = np.frombuffer(a.full if whole else a.core, dtype=np.uint8)
    sb = np.frombuffer(b.full if whole else b.core, dtype=np.uint8)
    agree = np.count_nonzero(sa == sb) / sa.size
    # a bin agrees when the two minima are one value (probability J) or by chance in their
    # low bits; both the estimate and its spread are scaled back by 1 / (1 - chance)
    estimate = (agree - _CHANCE) / (1 - _CHANCE)
    spread = 0.5 / _own_bins(sa.size, max(na, nb)) ** 0.5 / (1 - _CHANCE)
    high = min(1.0, estimate + PLAUSIBLE_Z * spread)
    if high >= config.jaccard:
        return True
    return high * (na + nb) / ((1 + high) * min(na, nb)) >= config.containment


def _member_order(member: tuple[Any, ...]) -> tuple[Any, ...]:
    sketch = member[3] if len(member) > 3 else None
    return (member[1], member[0], member[2],
            (sketch.core, sketch.full) if sketch is not None else ())


def candidate_pairs(members: Iterable[tuple[Any, ...]], max_bucket: int,
                    config: NearConfig | None = None) -> Iterator[tuple[str, str]]:
    """Pairs of nodes that share a band; stored-stored pairs are settled already, and two
    revisions of one article (the same id at the end of their rank labels) are never copies
    of each other, so neither is paired. A bucket larger than ``max_bucket`` (degenerate
    texts) only pairs each member with the best ranked ``max_bucket`` ones, so its cost stays
    bounded. Members are (node, rank, stored), or with ``config`` (node, rank, stored,
    Sketch): then two members are paired only when ``plausible``."""
    # by rank, then by the whole member: revisions of one stored article share node and rank
    # but not their sketch, and their order must not hang on the set's
    ordered = sorted(set(members), key=_member_order)
    head = ordered[:max_bucket]
    for i, member_a in enumerate(ordered):
        node_a, rank_a, stored_a = member_a[:3]
        article_a = _article_of(rank_a)
        for member_b in head[: min(i, max_bucket)]:
            node_b, rank_b, stored_b = member_b[:3]
            if stored_a and stored_b:
                continue
            if article_a is not None and _article_of(rank_b) == article_a:
                continue
            if config is not None and not plausible(member_a[3], member_b[3], config):
                continue
            yield (node_b, node_a) if node_b < node_a else (node_a, node_b)


# ------------------------------------------------------------- components left after the rounds


def label_roots(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Union-find over pairs of labels that met across a verified edge after the last round
    of label propagation (a component wider than the rounds reach): each label -> the smallest
    label of its merged class, for the labels whose class holds a smaller one. Components
    are disjoint and their labels are their members' ranks, so the smallest label of a class
    is the best article of the whole component."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while x != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: r for x in list(parent) if (r := find(x)) != x}
