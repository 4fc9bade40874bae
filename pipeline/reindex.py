"""Upgrading OUT/_index to the current near-duplicate signature format and columns.

Schema version 6 changed how shingles and LSH band keys are hashed (signature format 2, see
transforms/neardup.py): format 1 took a CRC-32 per shingle and keyed each band by a BLAKE2 hex
string. Index rows written by an older newsbeam would never share a band key with a new run,
so their articles could no longer catch near copies. Before a run or a stream builds its
pipeline (under the OUT lock), ``upgrade_index`` finds the index files of format 1 (their
``bands`` column holds strings) and rewrites their rows with the signature recomputed from the
article text stored in OUT/articles. Schema version 7 added the ``paragraphs`` column (the
digests of each article's long paragraphs, so later runs count boilerplate over OUT): files
without it are upgraded the same way. Schema version 8 added ``title`` (so a later revision
says whether its title changed): files without it get the stored articles' titles, read from
their ``title`` column alone.

1. It reads ``article_id``, ``revision`` and ``text`` of every article file, hashes the text of
   each stored version the old files name, and counts its long paragraphs across them, so a
   paragraph found in ``boilerplate_df`` stored articles is left out of the core, as a run
   does with its own articles.
2. For each old file it writes a new one (the same rows; new ``shingles`` and ``bands``) under
   a distinct name, then deletes the old one. A crash in between leaves both; the next start
   rewrites the old one again, to the same name, and deletes it, so no row is ever lost.

A row whose article text is not found (its file was removed by hand) keeps empty lists: its
URL, feed id and content hash still catch exact copies (a row of format 2 keeps its
signature and only lacks ``paragraphs``). Memory: for format 1, the new shingle sets of the
articles being upgraded (about 8 bytes a word); for the ``paragraphs`` column alone, about 8
bytes a paragraph. It runs once per OUT.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from transforms.dedupe import OwnedDigestCounts, key_digest, prepared, without_boilerplate
from transforms.neardup import (
    SIGNATURE_KEY,
    NearConfig,
    long_paragraphs,
    paragraphs_in_order,
)
from transforms.write import join_path, write_partition

LOG = logging.getLogger("newsbeam.reindex")
UPGRADE_TAG = "v8"  # new files get their own names (older upgrades tagged theirs sig2, v7)


def _files(output_dir: str, pattern: str) -> list[str]:
    try:
        found = FileSystems.match([join_path(output_dir, pattern)])[0].metadata_list
    except Exception:  # noqa: BLE001 - no such folder (yet)
        return []
    return sorted(m.path for m in found)


def _parquet(path: str) -> pq.ParquetFile:
    with FileSystems.open(path) as fh:
        return pq.ParquetFile(pa.BufferReader(fh.read()))


def old_index_files(output_dir: str) -> list[str]:
    """The index files written with signature format 1 (string band keys) or before schema
    version 7 (no ``paragraphs``) or 8 (no ``title``). A file that cannot be read is left
    alone (and logged): the run's own index read reports it."""
    return [path for path, _format1 in _old_files(output_dir)]


def _old_files(output_dir: str) -> list[tuple[str, bool]]:
    """(path, whether its signatures are format 1) of the index files to upgrade."""
    old = []
    for path in _files(output_dir, "_index/*.parquet"):
        try:
            schema = _parquet(path).schema_arrow
        except Exception as exc:  # noqa: BLE001 - a damaged file must not stop the run
            LOG.warning("OUT/_index: cannot read %s (%s: %s); not upgraded", path,
                        type(exc).__name__, exc)
            continue
        if "bands" not in schema.names:
            continue
        bands = schema.field("bands").type
        format1 = pa.types.is_list(bands) and pa.types.is_string(bands.value_type)
        if format1 or "paragraphs" not in schema.names or "title" not in schema.names:
            old.append((path, format1))
    return old


def _stored_values(output_dir: str, wanted: set[tuple[str, int]], column: str
                   ) -> Iterator[tuple[tuple[str, int], Any]]:
    """((article_id, revision), value of ``column``) of the stored versions in ``wanted``,
    read one article file at a time, that column only."""
    files = _files(output_dir, "articles/*/*.parquet")
    started = time.monotonic()
    for i, path in enumerate(files, 1):
        try:
            table = _parquet(path)
            names = table.schema_arrow.names
            if "article_id" not in names or column not in names:
                raise ValueError(f"no article_id or {column} column")
            columns = [c for c in ("article_id", "revision", column) if c in names]
            data = table.read(columns=columns).to_pydict()
        except Exception as exc:  # noqa: BLE001 - its articles keep what their rows hold
            LOG.warning("upgrading OUT/_index: cannot read %s (%s: %s); its articles get no "
                        "%s", path, type(exc).__name__, exc, column)
            continue
        revisions = data.get("revision") or [1] * len(data["article_id"])
        for article_id, revision, value in zip(data["article_id"], revisions, data[column],
                                               strict=True):
            key = (article_id, int(revision or 1))
            if key in wanted:
                yield key, value
        if time.monotonic() - started > 10 and i % 100 == 0:
            LOG.info("upgrading OUT/_index: %d of %d article files read", i, len(files))


def _stored_texts(output_dir: str, wanted: set[tuple[str, int]]
                  ) -> Iterator[tuple[tuple[str, int], str]]:
    """((article_id, revision), text) of the stored versions in ``wanted``."""
    for key, text in _stored_values(output_dir, wanted, "text"):
        yield key, text or ""


Signature = tuple[np.ndarray, np.ndarray, np.ndarray]


def _signatures(output_dir: str, wanted: set[tuple[str, int]], config: NearConfig
                ) -> dict[tuple[str, int], Signature]:
    """(full shingles, band keys of core and full, long paragraphs' digests) for each stored
    version found, with the boilerplate counted over them as a run counts its own (per article
    id)."""
    prepared_texts = {key: prepared(text, config)
                      for key, text in _stored_texts(output_dir, wanted)}
    counts = OwnedDigestCounts(config.boilerplate_df)
    acc = counts.create_accumulator()
    for (article_id, _revision), prep in prepared_texts.items():
        digests = prep.hashes.digests
        acc = counts.add_input(acc, (key_digest(article_id), np.unique(digests[digests != 0])))
    common = counts.extract_output(acc)
    signatures = {}
    for key, prep in prepared_texts.items():
        cut = without_boilerplate(prep, common, config)
        digests = prep.hashes.digests
        signatures[key] = (prep.full, prep.bands if cut is None else cut[1],
                           long_paragraphs(digests))
    return signatures


def _paragraphs(output_dir: str, wanted: set[tuple[str, int]]
                ) -> dict[tuple[str, int], np.ndarray]:
    """The long paragraphs' digests of each stored version found (about 8 bytes a paragraph:
    the texts are read and dropped one file at a time)."""
    return {key: paragraphs_in_order(text) for key, text in _stored_texts(output_dir, wanted)}


_NOTHING: Signature = (np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.uint64),
                       np.zeros(0, dtype=np.uint64))


def _upgraded_rows(path: str, format1: bool, signatures: dict[tuple[str, int], Signature],
                   paragraphs: dict[tuple[str, int], np.ndarray],
                   titles: dict[tuple[str, int], str | None]) -> list[dict[str, Any]]:
    """The rows of ``path`` with what they lacked: new signatures from ``signatures`` for a
    file of format 1 (none when the text is gone: a format-1 signature matches nothing);
    otherwise the signatures are kept and ``paragraphs`` added when missing (none when the
    text is gone); ``title`` when missing (none when the article is gone)."""
    rows = _parquet(path).read().to_pylist()
    for row in rows:
        key = (row["article_id"], int(row.get("revision") or 1))
        if format1:
            full, bands, digests = signatures.get(key, _NOTHING)
            row["shingles"], row["bands"], row["paragraphs"] = full, bands, digests
        elif "paragraphs" not in row:
            row["paragraphs"] = paragraphs.get(key, _NOTHING[2])
        if "title" not in row:
            row["title"] = titles.get(key)
        row["revision"] = int(row.get("revision") or 1)  # files from before revisions
        row["run_id"] = row.get("run_id") or "unknown"
    return rows


def upgrade_index(output_dir: str, config: NearConfig | None) -> int:
    """Rewrite the format-1 index files of OUT (see the module docstring). Returns how many
    index rows were upgraded; 0 when there was nothing to do. It never fails a run: a file it
    cannot upgrade stays as it is (logged), and its rows then catch exact copies only."""
    try:
        return _upgrade(output_dir, config)
    except Exception as exc:  # noqa: BLE001 - the run goes on with the index as it is
        LOG.warning("OUT/_index could not be upgraded (%s: %s): its older rows catch exact "
                    "copies only until an upgrade succeeds", type(exc).__name__, exc)
        return 0


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _upgrade(output_dir: str, config: NearConfig | None) -> int:
    old = _old_files(output_dir)
    if not old:
        return 0
    config = config or NearConfig()
    started = time.monotonic()
    wanted: dict[bool, set[tuple[str, int]]] = {True: set(), False: set()}
    untitled: set[tuple[str, int]] = set()
    for path, format1 in list(old):
        try:
            table = _parquet(path)
            names = table.schema_arrow.names
            columns = [c for c in ("article_id", "revision") if c in names]
            data = table.read(columns=columns).to_pydict()
            revisions = data.get("revision") or [1] * len(data["article_id"])
        except Exception as exc:  # noqa: BLE001 - left as it is, logged
            LOG.warning("OUT/_index: cannot read %s (%s: %s); not upgraded", path,
                        type(exc).__name__, exc)
            old.remove((path, format1))
            continue
        keys = {(a, int(r or 1)) for a, r in zip(data["article_id"], revisions, strict=True)}
        if format1 or "paragraphs" not in names:
            wanted[format1].update(keys)
        if "title" not in names:
            untitled.update(keys)
    LOG.warning("OUT/_index holds %d articles from an older newsbeam (before schema version "
                "8): upgrading them from the stored articles, once",
                len(wanted[True] | wanted[False] | untitled))
    # format 1: new signatures, which need the texts of all of them at once (boilerplate is
    # counted over them); otherwise only the paragraph digests, text by text
    signatures = _signatures(output_dir, wanted[True], config) if wanted[True] else {}
    paragraphs = _paragraphs(output_dir, wanted[False]) if wanted[False] else {}
    titles = dict(_stored_values(output_dir, untitled, "title")) if untitled else {}
    upgraded = 0
    for path, format1 in old:
        try:
            rows = _upgraded_rows(path, format1, signatures, paragraphs, titles)
        except Exception as exc:  # noqa: BLE001 - left as it is, logged
            LOG.warning("OUT/_index: cannot upgrade %s (%s: %s)", path, type(exc).__name__,
                        exc)
            continue
        # a distinct name: the new file never replaces the old one before it is complete
        written = {_name(f["path"]) for f in write_partition(
            output_dir, "_index", "", rows, tag=UPGRADE_TAG,
            metadata=config.index_metadata())}
        if _name(path) not in written:  # never delete the file just written
            FileSystems.delete([path])
        upgraded += len(rows)
    found = len(signatures) + len(paragraphs)
    LOG.warning("OUT/_index upgraded: %d rows (%d without stored text) in %.1fs", upgraded,
                len(wanted[True]) + len(wanted[False]) - found, time.monotonic() - started)
    # (a row without stored text keeps empty lists; one whose article is gone, no title)
    return upgraded


def _signature_of(path: str) -> str | None:
    """The signature settings an index file records (its footer only), None when it records
    none (written before they were recorded) or cannot be read."""
    try:
        with FileSystems.open(path) as fh:
            metadata = pq.read_schema(fh).metadata or {}
    except Exception:  # noqa: BLE001 - the run's own index read reports a damaged file
        return None
    value = metadata.get(SIGNATURE_KEY.encode())
    return value.decode() if value else None


# OUT/_index files from which a run suggests `newsbeam compact` (a run opens every one at its
# start: about 3 ms a file on a local disk here, 1,200 files 3.5 s; far more on object stores)
COMPACT_HINT_FILES = 200


def suggest_compaction(output_dir: str) -> int:
    """Say so when OUT/_index holds so many files that opening them slows every run (an
    hourly job adds 8,760 a year); the number of files."""
    count = len(_files(output_dir, "_index/*.parquet"))
    if count >= COMPACT_HINT_FILES:
        LOG.warning("OUT/_index holds %d files (one for each run that stored articles) and "
                    "every run opens them all: `newsbeam compact %s` merges them", count,
                    output_dir)
    return count


def check_signature_settings(output_dir: str, config: NearConfig) -> None:
    """Refuse (UsageError) a run whose signature settings differ from those OUT/_index was
    built with: its articles and the stored ones would share no band key and no shingle, so
    no near copy across the two would ever be found, and nothing would say so. Index files
    that record no settings (written before they were recorded) are not judged."""
    from pipeline.options import UsageError

    wanted = config.signature_tag()
    found = {tag for tag in (_signature_of(p) for p in _files(output_dir, "_index/*.parquet"))
             if tag is not None}
    other = sorted(found - {wanted})
    if other:
        raise UsageError(
            f"OUT/_index holds signatures taken with {other[0]}; this run asks for {wanted}: "
            "near copies across the two would never be found. Run with the settings OUT was "
            "built with, or into a new OUT")
