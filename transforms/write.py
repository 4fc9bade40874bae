"""WritePartitionedParquet: rows -> hive-partitioned Parquet files under OUT/<dataset>/.

Rows are grouped by partition and each group is written as one zstd Parquet file through
Beam's FileSystems (so the same code writes to gs:// or s3://): first to a hidden temporary
name in the target directory, then renamed into place. ``fileio.WriteToFiles`` is not used:
with hive sub-directories on the local filesystem it loses files silently (see STYLE.md).

With ``split_large`` (a batch run on a runner whose workers receive each group over the wire:
Flink, Spark, Prism, Dataflow), a partition given more rows than ``MAX_ROWS_PER_FILE`` is split
into several files by a hash of each row's identity, so no worker has to hold a whole large
partition (the index of a 16,000-page run is about 70 MB of shingle sets) as one grouped
element. The DirectRunner holds every stage in its one process anyway; there the split only
cost time (3-4% of a 1,000-page run), so it is not made.

Guarantees: the in-file schema is the dataset schema minus the partition columns; rows are
sorted by their identity and the file name is a hash of those identities, so a rerun of the
same input rewrites the same file instead of adding one; no empty file is ever written;
partition values are sanitized so data can never steer a path outside OUT.
Output: one record per written file: {"dataset", "path", "rows", "partition"}.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from schemas.arrow import PARTITION_COLUMNS, file_schema
from transforms.common import METRICS_NAMESPACE

_SAFE_VALUE = re.compile(r"[^A-Za-z0-9_.\-]")
TEMP_SUFFIX = ".inprogress"
# Row groups of at most this many rows: a reader (and newsbeam's own index read, which filters
# one row group at a time) never has to hold more than this in memory at once.
ROW_GROUP_ROWS = 5000
# A file's rows reach the worker that writes it as one grouped element (a cluster's
# GroupByKey hands over the whole group, and the file is sorted and built in memory), so with
# ``split_large`` a partition holding more rows than this in one batch run is split into files
# of about this many, by a hash of each row's identity. The index rows carry their shingle
# sets (about 4 KiB each), hence the smaller figure for them (docs/benchmarks.md, "Rows per
# file").
MAX_ROWS_PER_FILE: dict[str, int | None] = {"_index": 2000, "_state/feeds": None,
                                             "_state/links": None}
DEFAULT_MAX_ROWS_PER_FILE = 5000


def _newsbeam_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("newsbeam")
    except metadata.PackageNotFoundError:
        return "dev"


# written into every file's metadata beside the schema version (newsbeam.schema_version)
NEWSBEAM_VERSION = _newsbeam_version()


def partition_value(value: object) -> str:
    """A partition value that is safe as one path component."""
    text = _SAFE_VALUE.sub("_", str(value))[:64].strip(".") or "_"
    return text


def partition_dir(dataset: str, row: dict[str, Any]) -> str:
    """'date=2024-01-02' for articles; '' for unpartitioned datasets."""
    return "/".join(
        f"{col}={partition_value(row[col])}" for col in PARTITION_COLUMNS[dataset]
    )


# datasets whose rows the writer stamps with the run that wrote them
RUN_STAMPED = ("duplicates", "rejects", "_state/links")


def row_identity(dataset: str, row: dict[str, Any]) -> str:
    """What makes a row itself, for sorting and for the content-derived file name."""
    if dataset in ("articles", "_index"):
        # a revision may keep the body (a corrected headline): its number tells it apart, so
        # its file never takes the name, and the place, of the version before it
        revision = row.get("revision") or 1
        return f"{row['article_id']}|{row['content_hash']}" + (
            f"|{revision}" if revision != 1 else "")
    if dataset == "_state/feeds":
        return f"{row['feed_key']}|{row['run_id']}"
    if dataset == "_state/links":
        return f"{row['link']}|{row['url']}|{row['run_id']}"
    # the run id too: two runs that reject the same input write two files, never one twice
    if dataset == "duplicates":
        return (f"{row['article_id']}|{row['duplicate_of']}|{row['input_path']}|{row['url']}"
                f"|{row.get('run_id')}")
    return (f"{row['input_path']}|{row['stage']}|{row['reason']}|{row['excerpt']}"
            f"|{row.get('run_id')}")


def _join(base: str, *parts: str) -> str:
    path = base
    for part in parts:
        if part:
            path = FileSystems.join(path, part)
    return path


def is_dataset(folder: str) -> bool:
    """Whether a local folder is a newsbeam output (it holds run manifests, ``_runs/``)."""
    return os.path.isdir(os.path.join(folder, "_runs"))


def inside(path: str, root: str) -> bool:
    """True when ``path`` lies under ``root`` (no '..' escape, no absolute jump)."""
    if "://" in root:
        return path.startswith(root.rstrip("/") + "/") and "/../" not in path
    real_root = os.path.realpath(root)
    return os.path.commonpath([os.path.realpath(path), real_root]) == real_root


def stamped_schema(dataset: str, metadata: dict[str, str] | None = None) -> pa.Schema:
    """A dataset's file schema with what every file newsbeam writes carries in its metadata
    (its schema version, newsbeam's version) and ``metadata`` besides."""
    schema = file_schema(dataset)
    return schema.with_metadata({**(schema.metadata or {}),
                                 b"newsbeam.version": NEWSBEAM_VERSION.encode(),
                                 **{k.encode(): v.encode() for k, v in (metadata or {}).items()}})


def write_partition(
    output_dir: str, dataset: str, part: str, rows: Iterable[dict[str, Any]],
    staging_dir: str | None = None, tag: str = "", run_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Write one partition's rows as one Parquet file; yield what was written.

    With ``staging_dir`` the file is written there and only named for its final place: the
    driver moves it into OUT when the whole run succeeded (pipeline/commit.py). ``run_id``
    fills the ``run_id`` column of rows that have none (duplicates, rejects, a stream's
    remembered links)."""
    if run_id is not None and dataset in RUN_STAMPED:
        rows = [r if r.get("run_id") else {**r, "run_id": run_id} for r in rows]
    ordered = sorted(rows, key=lambda r: row_identity(dataset, r))
    if not ordered:
        return
    digest = hashlib.sha256(
        "\n".join(row_identity(dataset, r) for r in ordered).encode("utf-8")
    ).hexdigest()[:20]
    # a stream's files also carry their window and pane: the same rows written by two windows
    # (a file rewritten with the same content) must not share a name
    name = f"part-{digest}-{tag}.parquet" if tag else f"part-{digest}.parquet"
    final = _join(output_dir, dataset, part, name)
    target = _join(staging_dir, dataset, part, name) if staging_dir else final
    for path in (final, target):
        if not inside(path, output_dir):
            raise ValueError(f"refusing to write outside the output folder: {path}")
    temp = _join(staging_dir or output_dir, dataset, part,
                 f".part-{digest}-{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}")
    schema = stamped_schema(dataset, metadata)
    table = pa.Table.from_arrays(
        [_column([r.get(f.name) for r in ordered], f) for f in schema], schema=schema
    )
    with FileSystems.create(temp, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        pq.write_table(table, fh, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    if FileSystems.exists(target):
        FileSystems.delete([target])
    FileSystems.rename([temp], [target])
    yield {"dataset": dataset, "path": final, "staged": target if staging_dir else None,
           "rows": len(ordered), "partition": part}


def _column(values: list[Any], field: pa.Field) -> pa.Array:
    """One column of a file. A list column given as numpy arrays (the index's shingle sets)
    is built from their concatenation and offsets, without a Python int per value."""
    if pa.types.is_list(field.type) and any(isinstance(v, np.ndarray) for v in values):
        value_type = field.type.value_type
        # the numpy dtype of the values (to_pandas_dtype() would import pandas, which a
        # plain install does not have)
        dtype = pa.array([], type=value_type).to_numpy(zero_copy_only=False).dtype
        arrays = [np.asarray(v if v is not None else (), dtype=dtype) for v in values]
        offsets = np.zeros(len(arrays) + 1, dtype=np.int32)
        np.cumsum([a.size for a in arrays], out=offsets[1:])
        flat = pa.array(np.concatenate(arrays), type=value_type)
        return pa.ListArray.from_arrays(pa.array(offsets), flat, type=field.type)
    return pa.array(values, type=field.type)


def max_rows_per_file(dataset: str) -> int | None:
    """None: never split (a feed's state rows are one per feed a run)."""
    return MAX_ROWS_PER_FILE.get(dataset, DEFAULT_MAX_ROWS_PER_FILE)


def shard_of(dataset: str, row: dict[str, Any], shards: int) -> int:
    """Which of ``shards`` files of its partition a row goes to: from its identity only, so
    the same rows make the same files whatever their order or the worker."""
    if shards <= 1:
        return 0
    digest = hashlib.sha256(row_identity(dataset, row).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def shards_for(rows: int, max_rows: int) -> int:
    return max(1, -(-rows // max_rows))


def _key_by_partition(row: dict[str, Any], dataset: str) -> tuple[tuple[str, int], dict[str, Any]]:
    return ((partition_dir(dataset, row), 0), row)


def _shard(element: tuple[tuple[str, int], dict[str, Any]], counts: dict[str, int],
           dataset: str, max_rows: int) -> tuple[tuple[str, int], dict[str, Any]]:
    (part, _), row = element
    return ((part, shard_of(dataset, row, shards_for(counts[part], max_rows))), row)


def _partition_of(element: tuple[tuple[str, int], dict[str, Any]]) -> str:
    return element[0][0]


class _WriteGroups(beam.DoFn):
    """((partition, shard), rows) -> one file. ``staging_for`` ((window, pane) -> staging folder)
    stages each window and pane of a stream apart, to be committed by its own commit step;
    ``run_id_for`` ((window, pane) -> run id) names the run that writes them."""

    def __init__(self, output_dir: str, dataset: str, staging_dir: str | None,
                 staging_for: Callable[[Any, Any], str] | None, run_id: str | None = None,
                 run_id_for: Callable[[Any, Any], str] | None = None,
                 metadata: dict[str, str] | None = None) -> None:
        self._metadata = metadata
        self._output_dir = output_dir
        self._dataset = dataset
        self._staging_dir = staging_dir
        self._staging_for = staging_for
        self._run_id = run_id
        self._run_id_for = run_id_for
        self._micros = Metrics.counter(METRICS_NAMESPACE, "write.us")

    def process(self, element: tuple[tuple[str, int], Iterable[dict[str, Any]]],
                window: Any = beam.DoFn.WindowParam,
                pane: Any = beam.DoFn.PaneInfoParam) -> Iterator[dict[str, Any]]:
        t0 = time.perf_counter()
        staging, tag, run_id = self._staging_dir, "", self._run_id
        if self._staging_for:
            staging = self._staging_for(window, pane)
            tag = f"w{window.end.micros // 1000}-p{pane.index}"
        if self._run_id_for:
            run_id = self._run_id_for(window, pane)
        written = list(write_partition(self._output_dir, self._dataset, element[0][0],
                                       element[1], staging, tag, run_id, self._metadata))
        self._micros.inc(int((time.perf_counter() - t0) * 1e6))
        yield from written


class WritePartitionedParquet(beam.PTransform):
    """Rows (dicts, partition columns included) -> Parquet files; emits one record per file."""

    def __init__(
        self,
        output_dir: str,
        dataset: str,
        to_row: Callable[[Any], dict[str, Any]],
        staging_dir: str | None = None,
        staging_for: Callable[[Any, Any], str] | None = None,
        run_id: str | None = None,
        run_id_for: Callable[[Any, Any], str] | None = None,
        split_large: bool = False,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """``metadata``: more key-value pairs for every file's Parquet metadata."""
        super().__init__()
        self._metadata = metadata
        self._split_large = split_large
        self._staging_dir = staging_dir
        self._staging_for = staging_for
        self._run_id = run_id
        self._run_id_for = run_id_for
        if dataset not in PARTITION_COLUMNS:
            raise ValueError(f"unknown dataset {dataset!r}")
        self._output_dir = output_dir
        self._dataset = dataset
        self._to_row = to_row

    def expand(self, records: beam.PCollection[Any]) -> beam.PCollection[dict[str, Any]]:
        keyed = (records
                 | "ToRow" >> beam.Map(self._to_row)
                 | "KeyByPartition" >> beam.Map(_key_by_partition, self._dataset))
        max_rows = max_rows_per_file(self._dataset)
        if self._split_large and max_rows is not None:
            # a batch run on workers that receive groups over the wire (streams do not ask for
            # it: their windows bound their files, and a side input per window and pane would
            # only delay them)
            counts = (keyed
                      | "PartitionOf" >> beam.Map(_partition_of)
                      | "RowsPerPartition" >> beam.combiners.Count.PerElement())
            keyed = keyed | "ShardLarge" >> beam.Map(
                _shard, beam.pvalue.AsDict(counts), self._dataset, max_rows)
        return (
            keyed
            | "GroupByPartition" >> beam.GroupByKey()
            | "WriteFiles" >> beam.ParDo(_WriteGroups(
                self._output_dir, self._dataset, self._staging_dir, self._staging_for,
                self._run_id, self._run_id_for, self._metadata))
        )


def join_path(base: str, *parts: str) -> str:
    """Public path join through Beam's FileSystems (local, gs://, s3://)."""
    return _join(base, *parts)


