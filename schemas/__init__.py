"""newsbeam's record types and the Arrow schemas derived from them."""

from schemas.arrow import (
    ARTICLE_SCHEMA,
    DUPLICATE_SCHEMA,
    PARTITION_COLUMNS,
    REJECT_SCHEMA,
    SCHEMA_VERSION,
    SCHEMAS,
    article_row,
    duplicate_row,
    file_schema,
    reject_row,
    schema_text,
)
from schemas.records import Article, Duplicate, RawDocument, Reject, Unit, bounded_excerpt

__all__ = [
    "ARTICLE_SCHEMA",
    "DUPLICATE_SCHEMA",
    "PARTITION_COLUMNS",
    "REJECT_SCHEMA",
    "SCHEMAS",
    "SCHEMA_VERSION",
    "Article",
    "Duplicate",
    "RawDocument",
    "Reject",
    "Unit",
    "article_row",
    "bounded_excerpt",
    "duplicate_row",
    "file_schema",
    "reject_row",
    "schema_text",
]
