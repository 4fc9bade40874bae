"""The partitioned Parquet writer: layout, in-file schema, naming, no temporary leftovers."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import apache_beam as beam
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas import ARTICLE_SCHEMA, article_row, file_schema
from schemas.records import Article
from transforms.write import WritePartitionedParquet, partition_value, write_partition

NOW = datetime(2026, 1, 15, tzinfo=timezone.utc)


def article(i: int, day: str) -> Article:
    return Article(
        article_id=f"id{i:02d}", url=f"https://x.example/{i}", source="X",
        source_domain="x.example",
        title=f"T{i}", authors=("A",), published_at=datetime.fromisoformat(f"{day}T10:00:00+00:00"),
        updated_at=None, language="en", text="body", summary=None, categories=(), word_count=1,
        countries=("NO",), quotes=(("Ann", "Hi"),), content_hash=f"h{i}", input_path="in.xml",
        input_kind="rss", ingested_at=NOW, date=day, date_source="published",
    )


def _rows(record: dict) -> tuple[str, int]:
    return (record["partition"], record["rows"])


def test_writes_one_file_per_partition_without_partition_column(tmp_path: Path) -> None:
    items = [article(1, "2024-03-01"), article(2, "2024-03-01"), article(3, "2024-03-02")]
    with TestPipeline() as p:
        written = (p | beam.Create(items)
                   | WritePartitionedParquet(str(tmp_path), "articles", article_row))
        assert_that(written | beam.Map(_rows),
                    equal_to([("date=2024-03-01", 2), ("date=2024-03-02", 1)]))
    files = sorted(tmp_path.rglob("*"))
    parquet = [f for f in files if f.is_file()]
    assert all(f.suffix == ".parquet" and f.name.startswith("part-") for f in parquet)
    assert len(parquet) == 2
    assert pq.read_schema(parquet[0]).names == file_schema("articles").names
    assert "date" not in pq.read_schema(parquet[0]).names
    table = ds.dataset(tmp_path / "articles", format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 3
    assert set(table.column("date").to_pylist()) == {"2024-03-01", "2024-03-02"}
    assert table.schema.field("quotes").type == ARTICLE_SCHEMA.field("quotes").type
    assert pq.ParquetFile(parquet[0]).metadata.row_group(0).column(0).compression == "ZSTD"


def test_file_names_derive_from_content_and_rewrites_replace(tmp_path: Path) -> None:
    rows = [article_row(article(i, "2024-03-01")) for i in (1, 2)]
    first = list(write_partition(str(tmp_path), "articles", "date=2024-03-01", rows))
    again = list(write_partition(str(tmp_path), "articles", "date=2024-03-01", rows[::-1]))
    assert first[0]["path"] == again[0]["path"]
    assert len(list((tmp_path / "articles").rglob("*"))) == 2  # the directory and one file
    assert not list(tmp_path.rglob(".*"))  # no temporary file left behind
    assert list(write_partition(str(tmp_path), "articles", "date=2024-03-02", [])) == []


def test_partition_values_cannot_escape_the_output() -> None:
    assert partition_value("../../etc") == "_.._etc"
    assert "/" not in partition_value("/abs/path")
    assert partition_value("") == "_"


def _write_all(out: Path, items: list[Article], split_large: bool = True) -> None:
    with TestPipeline() as p:
        _ = (p | beam.Create(items)
             | WritePartitionedParquet(str(out), "articles", article_row,
                                       split_large=split_large))


def test_a_large_partition_is_split_into_files_by_row_identity(tmp_path: Path,
                                                                monkeypatch) -> None:
    """More rows than a file holds: the partition is split into ceil(rows / max) shards by a
    hash of each row's identity (a shard may stay empty, so at most that many files), each row
    in exactly one, and the same rows in another order make the same files."""
    import random

    import transforms.write as write

    monkeypatch.setattr(write, "DEFAULT_MAX_ROWS_PER_FILE", 5)
    items = [article(i, "2024-03-01") for i in range(23)] + \
        [article(i, "2024-03-02") for i in range(30, 33)]
    _write_all(tmp_path / "a", items)
    shuffled = items[:]
    random.Random(7).shuffle(shuffled)
    _write_all(tmp_path / "b", shuffled)

    def files(root: Path) -> dict[str, int]:
        return {f"{f.parent.name}/{f.name}": pq.ParquetFile(f).metadata.num_rows
                for f in (root / "articles").rglob("*.parquet")}

    first = files(tmp_path / "a")
    assert first == files(tmp_path / "b")
    big = {name: rows for name, rows in first.items() if name.startswith("date=2024-03-01")}
    assert 3 <= len(big) <= 5 and sum(big.values()) == 23
    assert max(big.values()) < 23
    assert [rows for name, rows in first.items() if name.startswith("date=2024-03-02")] == [3]
    table = ds.dataset(tmp_path / "a" / "articles", format="parquet",
                       partitioning="hive").to_table()
    ids = table.column("article_id").to_pylist()
    assert sorted(ids) == sorted(a.article_id for a in items) and len(set(ids)) == len(ids)
    _write_all(tmp_path / "c", items, split_large=False)  # the DirectRunner's runs
    assert sorted(files(tmp_path / "c").values()) == [3, 23]
