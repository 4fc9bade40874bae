"""Reading the dataset back: one call that every schema version of OUT/articles agrees with.

Files written by an older schema version lack the columns added since; read through the
current schema, those come back as nulls. The ``date`` partition comes back as a real date.

    from schemas.read import read_articles, read_dataset
    df = read_articles("OUT")                  # pandas DataFrame
    rejects = read_dataset("OUT", "rejects")   # also "duplicates"; empty before a first row
    table = articles_dataset("OUT").to_table() # or a pyarrow Dataset, to filter and project

The same, in the other tools (see README, "Reading it"):

    pd.read_parquet("OUT/articles", schema=ARTICLE_SCHEMA_WITH_DATE, partitioning=...)
    duckdb: read_parquet('OUT/articles/*/*.parquet', hive_partitioning=true, union_by_name=true)
    polars: pl.scan_parquet("OUT/articles/*/*.parquet", hive_partitioning=True,
                            schema=polars_schema(), missing_columns="insert")
"""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from schemas.arrow import ARTICLE_PARTITION_COLUMNS, SCHEMAS

DATE_PARTITIONING = ds.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")


def dataset_schema(dataset: str = "articles") -> pa.Schema:
    """The current schema of ``dataset`` with its partition column typed as it reads back."""
    schema = SCHEMAS[dataset]
    if dataset == "articles":
        for name in ARTICLE_PARTITION_COLUMNS:
            index = schema.get_field_index(name)
            schema = schema.set(index, schema.field(index).with_type(pa.date32()))
    return schema


def open_dataset(out_dir: str | os.PathLike[str], dataset: str = "articles") -> ds.Dataset:
    """OUT/``dataset`` (articles, duplicates, rejects) as a pyarrow Dataset under the current
    schema (older files: nulls). A dataset's folder appears with its first row: before that
    (a run with no reject, or whose only input was refused) the Dataset of a local OUT is
    empty, with the schema."""
    schema = dataset_schema(dataset)
    path = os.path.join(os.fspath(out_dir), dataset)
    if "://" not in path and not os.path.isdir(path):  # an object store: pyarrow opens it
        if not os.path.isdir(os.path.join(os.fspath(out_dir), "_runs")):
            raise FileNotFoundError(f"{out_dir} is not a newsbeam output (it has no _runs)")
        return ds.dataset(schema.empty_table())
    return ds.dataset(path, format="parquet", schema=schema,
                      partitioning=DATE_PARTITIONING if dataset == "articles" else None)


def articles_dataset(out_dir: str | os.PathLike[str]) -> ds.Dataset:
    """OUT/articles as a pyarrow Dataset (``open_dataset``)."""
    return open_dataset(out_dir, "articles")


def read_dataset(out_dir: str | os.PathLike[str], dataset: str, **to_pandas: Any) -> Any:
    """OUT/``dataset`` as a pandas DataFrame (``open_dataset``): empty, with the columns,
    when the dataset has no row yet."""
    return open_dataset(out_dir, dataset).to_table().to_pandas(**to_pandas)


def read_articles(out_dir: str | os.PathLike[str], **to_pandas: Any) -> Any:
    """OUT/articles as a pandas DataFrame: UTC timestamps, lists and structs, ``date`` a date."""
    return read_dataset(out_dir, "articles", **to_pandas)


def polars_schema(dataset: str = "articles") -> Any:
    """The in-file schema as a polars Schema, for ``pl.scan_parquet(..., schema=...)``: polars
    otherwise takes the first file's schema, and an older first file hides newer columns."""
    import polars as pl

    from schemas.arrow import file_schema

    frame = pl.from_arrow(file_schema(dataset).empty_table())
    assert isinstance(frame, pl.DataFrame)  # a table (not an array) gives a DataFrame
    return frame.schema
