"""The dataset in the tools people use: pandas, pyarrow, DuckDB and polars read OUT/articles
with UTC timestamps, lists and structs, the date partition as a date, the manifest's row
count, and a partition written by an older schema version beside the current one."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas import SCHEMA_VERSION, file_schema
from schemas.read import articles_dataset, polars_schema, read_articles
from tests.conftest import SAMPLES
from tests.pipeline.test_cli import run_samples

OLD_DATE = "2001-01-01"


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A real run on samples/, plus one partition written by schema version 3 (before
    field_sources existed), made from one of the run's own files."""
    base = tmp_path_factory.mktemp("readers")
    manifest = run_samples(base / "out", SAMPLES)
    out = base / "out"
    current = next((out / "articles").rglob("*.parquet"))
    old = pq.read_table(current).drop_columns(["field_sources"]).slice(0, 1)
    old = old.replace_schema_metadata({b"newsbeam.dataset": b"articles",
                                       b"newsbeam.schema_version": b"3"})
    (out / "articles" / f"date={OLD_DATE}").mkdir()
    pq.write_table(old, out / "articles" / f"date={OLD_DATE}" / "part-old.parquet")
    return out, manifest["counts"]["articles"] + 1


def test_file_metadata_names_schema_and_newsbeam_versions(out: tuple[Path, int]) -> None:
    path = next(p for p in (out[0] / "articles").rglob("*.parquet") if OLD_DATE not in str(p))
    meta = pq.read_schema(path).metadata
    assert meta[b"newsbeam.schema_version"] == SCHEMA_VERSION.encode()
    assert meta[b"newsbeam.version"]
    assert "date" not in file_schema("articles").names  # partition column only in the path


def test_pandas(out: tuple[Path, int]) -> None:
    folder, rows = out
    df = read_articles(folder)
    assert len(df) == rows
    assert str(df.published_at.dt.tz) == "UTC"
    seals = df[df.title == "Seal colony counted from the air for the first time"].iloc[0]
    assert [str(a) for a in seals.authors] == ["Ida Lund", "Petter Vik"]
    assert isinstance(df.date.iloc[0], dt.date)
    old = df[df.date == dt.date(2001, 1, 1)]
    assert len(old) == 1 and old.field_sources.isna().all()  # missing column -> null
    quotes = df[df.quotes.map(len) > 0].quotes.iloc[0]
    assert set(quotes[0]) == {"speaker", "text"}
    # plain pandas with the partitioning argument gives the same frame
    plain = pd.read_parquet(folder / "articles", schema=articles_dataset(folder).schema,
                            partitioning=articles_dataset(folder).partitioning)
    assert len(plain) == rows and isinstance(plain.date.iloc[0], dt.date)


def test_pyarrow_dataset(out: tuple[Path, int]) -> None:
    table = articles_dataset(out[0]).to_table()
    assert table.num_rows == out[1]
    assert table.schema.field("date").type == pa.date32()
    assert table.schema.field("published_at").type == pa.timestamp("us", tz="UTC")
    assert pa.types.is_struct(table.schema.field("field_sources").type)


def test_duckdb(out: tuple[Path, int]) -> None:
    folder, rows = out
    con = duckdb.connect()
    rel = con.sql(f"select * from read_parquet('{folder}/articles/*/*.parquet', "
                  "hive_partitioning=true, union_by_name=true)")
    assert con.sql(f"select count(*) from read_parquet('{folder}/articles/*/*.parquet', "
                   "hive_partitioning=true, union_by_name=true)").fetchall()[0][0] == rows
    types = dict(zip(rel.columns, [str(t) for t in rel.types], strict=True))
    assert types["date"] == "DATE"
    assert types["published_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["authors"] == "VARCHAR[]"
    assert types["quotes"].startswith("STRUCT(speaker VARCHAR, ")
    nulls = con.sql(f"select count(*) from read_parquet('{folder}/articles/*/*.parquet', "
                    "hive_partitioning=true, union_by_name=true) "
                    f"where date = DATE '{OLD_DATE}' and field_sources is null").fetchall()
    assert nulls[0][0] == 1


def test_polars(out: tuple[Path, int]) -> None:
    folder, rows = out
    df = pl.scan_parquet(f"{folder}/articles/*/*.parquet", hive_partitioning=True,
                         schema=polars_schema(), missing_columns="insert").collect()
    assert df.height == rows
    assert df.schema["date"] == pl.Date
    assert df.schema["published_at"] == pl.Datetime("us", "UTC")
    assert df.schema["authors"] == pl.List(pl.String)
    assert isinstance(df.schema["quotes"], pl.List)
    old = df.filter(pl.col("date") == dt.date(2001, 1, 1))
    assert old.height == 1 and old["field_sources"].null_count() == 1


def test_manifest_counts_match_what_readers_see(out: tuple[Path, int]) -> None:
    folder, rows = out
    manifest = json.loads(next((folder / "_runs").glob("*.json")).read_text())
    assert manifest["counts"]["articles"] == rows - 1
    assert len(pd.read_parquet(folder / "rejects")) == manifest["counts"]["rejects"]
    assert len(pd.read_parquet(folder / "duplicates")) == manifest["counts"]["duplicates"]
    shutil.rmtree(folder / "articles" / f"date={OLD_DATE}")  # leave the module's OUT as run
    assert len(read_articles(folder)) == manifest["counts"]["articles"]


def test_a_dataset_with_no_row_yet_reads_as_an_empty_table(tmp_path: Path) -> None:
    """A run whose inputs all fail writes rejects only: OUT/articles and OUT/duplicates do
    not exist yet. The readers give empty tables with the columns (read_articles raised
    FileNotFoundError); a folder that is no newsbeam output is still an error."""
    from schemas.arrow import SCHEMAS
    from schemas.read import read_dataset

    out = tmp_path / "out"
    manifest = run_samples(out, SAMPLES / "junk" / "note.xml")
    assert manifest["counts"] == {"in": 1, "articles": 0, "duplicates": 0, "rejects": 1}
    assert not (out / "articles").exists() and not (out / "duplicates").exists()
    articles = read_articles(out)
    assert len(articles) == 0 and "article_id" in articles.columns and "date" in articles
    duplicates = read_dataset(out, "duplicates")
    assert len(duplicates) == 0 and list(duplicates.columns) == SCHEMAS["duplicates"].names
    rejects = read_dataset(out, "rejects")
    assert list(rejects.reason) == ["not_a_feed"]
    assert len(rejects[rejects.run_id == manifest["run_id"]]) == 1
    with pytest.raises(FileNotFoundError, match="not a newsbeam output"):
        read_articles(tmp_path)
