"""One schema: its text is pinned by a golden copy, so every change shows up as a diff."""

from __future__ import annotations

import pytest

from schemas import PARTITION_COLUMNS, SCHEMAS, file_schema, schema_text
from tests.conftest import GOLDEN, check_golden


@pytest.mark.parametrize("dataset", sorted(SCHEMAS))
def test_schema_matches_golden(dataset: str, update_golden: bool) -> None:
    name = dataset.replace("/", "_")
    check_golden(GOLDEN / f"schema_{name}.txt", schema_text(dataset), update_golden)


def test_file_schema_drops_partition_columns() -> None:
    for dataset, schema in SCHEMAS.items():
        names = file_schema(dataset).names
        for col in PARTITION_COLUMNS[dataset]:
            assert col in schema.names and col not in names


def test_every_column_is_documented() -> None:
    for schema in SCHEMAS.values():
        for field in schema:
            assert field.metadata and field.metadata.get(b"doc"), field.name


def test_reject_reasons_doc_is_generated(update_golden: bool) -> None:
    from tests.conftest import REPO
    from transforms.errors import reasons_markdown

    check_golden(REPO / "docs" / "rejects.md", reasons_markdown(), update_golden)


def test_schema_doc_is_generated_and_covers_every_column(update_golden: bool) -> None:
    from schemas.docs import ARTICLE_COLUMNS, schema_markdown
    from tests.conftest import REPO

    assert set(ARTICLE_COLUMNS) == set(SCHEMAS["articles"].names)
    check_golden(REPO / "docs" / "schema.md", schema_markdown(), update_golden)
