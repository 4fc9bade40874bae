"""Arrow schemas of the three output datasets: the single source of column names and types.

The Parquet writer derives the in-file schema by removing the partition columns: a column that
is both in the file and in the directory name breaks hive-partitioned reads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pyarrow as pa

from schemas.records import Article, Duplicate, Reject

SCHEMA_VERSION = "8"

UTC_TS = pa.timestamp("us", tz="UTC")
RIGHTS = pa.struct([
    pa.field("tdm_reservation", pa.bool_()),
    pa.field("tdm_policy", pa.string()),
    pa.field("noai", pa.bool_()),
    pa.field("noimageai", pa.bool_()),
])
# Which side gave each field of an article built from a feed entry and its linked page
# (--follow-links): "feed" or "page"; null for other articles.
FIELD_SOURCES = pa.struct([
    pa.field(name, pa.string())
    for name in ("title", "authors", "published_at", "updated_at", "text", "summary",
                 "categories", "source")
])
QUOTE = pa.struct([pa.field("speaker", pa.string()), pa.field("text", pa.string())])


def _f(name: str, typ: pa.DataType, doc: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, typ, nullable=nullable, metadata={"doc": doc})


ARTICLE_PARTITION_COLUMNS: tuple[str, ...] = ("date",)

ARTICLE_SCHEMA = pa.schema(
    [
        _f("article_id", pa.string(), "Stable id: hash of the canonical URL, else of the "
           "normalized content. Never derived from paths, order or run time.", False),
        _f("url", pa.string(), "Canonical URL of the article, when known."),
        _f("source", pa.string(), "Site or feed name."),
        _f("source_domain", pa.string(), "Host of the article URL (or of the feed link)."),
        _f("title", pa.string(), "Headline."),
        _f("authors", pa.list_(pa.string()), "Author names, cleaned.", False),
        _f("published_at", UTC_TS, "Publication time in UTC."),
        _f("updated_at", UTC_TS, "Last update time in UTC."),
        _f("language", pa.string(), "ISO 639-1 language code, when declared or detected."),
        _f("text", pa.string(), "The clean article body.", False),
        _f("summary", pa.string(), "Teaser or description given by the source."),
        _f("categories", pa.list_(pa.string()), "Categories or tags given by the source.", False),
        _f("word_count", pa.int32(), "Number of words in text (each Chinese character or "
           "Japanese kana counts as one).", False),
        _f("countries", pa.list_(pa.string()), "ISO 3166-1 alpha-2 codes of countries "
           "mentioned (filled by field extraction).", False),
        _f("quotes", pa.list_(QUOTE), "Quotes with their speakers (filled by field "
           "extraction).", False),
        _f("content_hash", pa.string(), "SHA-256 of the normalized body (or title when the "
           "body is empty); equal hashes are exact duplicates.", False),
        _f("input_path", pa.string(), "File the article was read from.", False),
        _f("input_kind", pa.string(), "rss, atom, rdf, jsonfeed, html, text, jsonl, or "
           "linked (a feed entry with its linked page fetched).", False),
        _f("ingested_at", UTC_TS, "When this run started, in UTC.", False),
        _f("date_source", pa.string(), "Where published_at came from: feed (the feed or "
           "record), jsonld, meta (meta tags), url (a date in the URL path), text (the text or "
           "htmldate's search of the page) or none. With none, published_at is null and the "
           "date partition is the ingestion date.", False),
        _f("dateline", pa.string(), "Place line the article opens with ('ASTANA —'), "
           "without the dash."),
        _f("rights", RIGHTS, "Text-and-data-mining reservation of the page: TDMRep "
           "tdm-reservation/tdm-policy, robots noai/noimageai. Null when the page states none."),
        _f("revision", pa.int32(), "1 for the first version of an article; an updated version "
           "(same URL, and a changed body with a newer updated_at, a materially changed body, "
           "or a new headline with a newer updated_at) has the next number and the same "
           "article_id. The same headline and body with only a newer updated_at is a "
           "duplicate.", False),
        _f("changes", pa.list_(pa.string()), "What changed from the previous revision: title, "
           "text, updated_at. Empty for revision 1.", False),
        _f("field_sources", FIELD_SOURCES, "For an article built from a feed entry and the "
           "page it links to (--follow-links): which of them gave each field, 'feed' or "
           "'page' (the richer one wins, field by field). Null for other articles."),
        _f("date", pa.string(), "Partition column (directory date=YYYY-MM-DD): the UTC date of "
           "published_at, else of ingested_at.", False),
    ],
    metadata={"newsbeam.dataset": "articles", "newsbeam.schema_version": SCHEMA_VERSION},
)

DUPLICATE_SCHEMA = pa.schema(
    [
        _f("article_id", pa.string(), "Id of the dropped copy.", False),
        _f("duplicate_of", pa.string(), "Id of the kept article.", False),
        _f("method", pa.string(), "url, id, exact or near.", False),
        _f("similarity", pa.float64(), "1.0 for exact methods; for near duplicates, the "
           "measured similarity (Jaccard or containment, the higher) to the closest copy in "
           "its group: in a chain of copies, a neighbour, not always the kept article.",
           False),
        _f("input_path", pa.string(), "File the dropped copy was read from.", False),
        _f("url", pa.string(), "URL of the dropped copy."),
        _f("title", pa.string(), "Title of the dropped copy."),
        _f("run_id", pa.string(), "The run that wrote this row: its manifest is "
           "_runs/<run_id>.json (in a stream, the window's run id). Null in files written "
           "before schema version 5."),
    ],
    metadata={"newsbeam.dataset": "duplicates", "newsbeam.schema_version": SCHEMA_VERSION},
)

REJECT_SCHEMA = pa.schema(
    [
        _f("input_path", pa.string(), "File the unit came from.", False),
        _f("stage", pa.string(), "Pipeline stage that rejected it.", False),
        _f("reason", pa.string(), "Stable reason code (see docs/rejects.md).", False),
        _f("error_type", pa.string(), "Exception class name.", False),
        _f("detail", pa.string(), "A human sentence.", False),
        _f("excerpt", pa.string(), "Bounded excerpt of the input (at most 300 characters).",
           False),
        _f("run_id", pa.string(), "The run that wrote this row: its manifest is "
           "_runs/<run_id>.json (in a stream, the window's run id). Null in files written "
           "before schema version 5."),
    ],
    metadata={"newsbeam.dataset": "rejects", "newsbeam.schema_version": SCHEMA_VERSION},
)

INDEX_SCHEMA = pa.schema(
    [
        _f("article_id", pa.string(), "Id of a stored article.", False),
        _f("url", pa.string(), "Its canonical URL."),
        _f("source_domain", pa.string(), "Its source domain (scopes the feed id)."),
        _f("guid", pa.string(), "Its feed id/guid."),
        _f("content_hash", pa.string(), "Its normalized-content hash.", False),
        _f("published_at", UTC_TS, "Its publication time."),
        _f("shingles", pa.list_(pa.uint32()), "Hashes of its word shingles (near-dup "
           "verification; signature format 2 since schema version 6).", False),
        _f("bands", pa.list_(pa.uint64()), "Its MinHash LSH band keys (uint64 since schema "
           "version 6; strings before, which newsbeam upgrades on the next run).", False),
        _f("paragraphs", pa.list_(pa.uint64()), "Digests of its paragraphs of 8 words or more "
           "(distinct, in text order): "
           "later runs count boilerplate paragraphs over OUT, not only over themselves (since "
           "schema version 7; newsbeam adds it to an older index on the next run).", False),
        _f("revision", pa.int32(), "Its revision number.", False),
        _f("word_count", pa.int32(), "Its number of words: a later copy at its URL is a new "
           "revision only if about as long (a teaser is not)."),
        _f("updated_at", UTC_TS, "Its last update time: a later copy whose body or title "
           "changed is a new revision if it says it was updated after that."),
        _f("title", pa.string(), "Its title: a later revision says in `changes` whether the "
           "title changed (since schema version 8; newsbeam adds it to an older index on the "
           "next run)."),
        _f("run_id", pa.string(), "The run that stored it.", False),
    ],
    metadata={"newsbeam.dataset": "_index", "newsbeam.schema_version": SCHEMA_VERSION},
)

FEED_STATE_SCHEMA = pa.schema(
    [
        _f("feed_key", pa.string(), "SHA-256 of the feed URL as given (credentials "
           "included, so they are never stored in clear).", False),
        _f("feed_url", pa.string(), "The feed URL, credentials removed.", False),
        _f("final_url", pa.string(), "The URL answered after redirects."),
        _f("etag", pa.string(), "The ETag the server sent, sent back as If-None-Match."),
        _f("last_modified", pa.string(), "The Last-Modified the server sent, sent back as "
           "If-Modified-Since."),
        _f("status", pa.int32(), "HTTP status of the fetch: 200 or 304.", False),
        _f("fetched_at", UTC_TS, "When the run that fetched it started.", False),
        _f("run_id", pa.string(), "That run.", False),
    ],
    metadata={"newsbeam.dataset": "_state/feeds", "newsbeam.schema_version": SCHEMA_VERSION},
)

LINK_STATE_SCHEMA = pa.schema(
    [
        _f("link", pa.string(), "A feed entry's link (canonicalized) whose page --follow-links "
           "fetched, when that page names another URL as its own.", False),
        _f("url", pa.string(), "The URL of the article that page gave: a later entry with the "
           "same link is a duplicate of it, and the page is not fetched again.", False),
        _f("run_id", pa.string(), "The run that fetched it.", False),
    ],
    metadata={"newsbeam.dataset": "_state/links", "newsbeam.schema_version": SCHEMA_VERSION},
)

FILE_STATE_SCHEMA = pa.schema(
    [
        _f("path", pa.string(), "A file a stream (newsbeam stream) read from a watched folder.",
           False),
        _f("size", pa.int64(), "Its size in bytes when it was read.", False),
        _f("mtime_ns", pa.int64(), "Its modification time when it was read (ns since the epoch): "
           "a file rewritten in place has another size or time and is read again.", False),
        _f("run_id", pa.string(), "The window (run) that read it.", False),
    ],
    metadata={"newsbeam.dataset": "_state/files", "newsbeam.schema_version": SCHEMA_VERSION},
)

SCHEMAS: dict[str, pa.Schema] = {
    "articles": ARTICLE_SCHEMA,
    "duplicates": DUPLICATE_SCHEMA,
    "rejects": REJECT_SCHEMA,
    "_index": INDEX_SCHEMA,
    "_state/feeds": FEED_STATE_SCHEMA,
    "_state/links": LINK_STATE_SCHEMA,
    "_state/files": FILE_STATE_SCHEMA,
}
PARTITION_COLUMNS: dict[str, tuple[str, ...]] = {
    "articles": ARTICLE_PARTITION_COLUMNS,
    "duplicates": (),
    "rejects": (),
    "_index": (),
    "_state/feeds": (),
    "_state/links": (),
    "_state/files": (),
}


def file_schema(dataset: str) -> pa.Schema:
    """The schema stored inside each Parquet file: the dataset schema minus partition columns."""
    schema = SCHEMAS[dataset]
    for name in PARTITION_COLUMNS[dataset]:
        schema = schema.remove(schema.get_field_index(name))
    return schema


def schema_text(dataset: str) -> str:
    """Human-readable schema text, compared with a golden copy in the tests."""
    lines = [f"# dataset: {dataset} (schema version {SCHEMA_VERSION})"]
    partitions = PARTITION_COLUMNS[dataset]
    for f in SCHEMAS[dataset]:
        where = "partition" if f.name in partitions else "file"
        null = "nullable" if f.nullable else "required"
        doc = (f.metadata or {}).get(b"doc", b"").decode()
        lines.append(f"{f.name}: {f.type} [{null}, {where}] -- {doc}")
    return "\n".join(lines) + "\n"


def article_row(article: Article) -> dict[str, Any]:
    """Article -> dict with exactly the article columns (partition column included)."""
    row = {name: getattr(article, name) for name in ARTICLE_SCHEMA.names}
    row["authors"] = list(article.authors)
    row["categories"] = list(article.categories)
    row["countries"] = list(article.countries)
    row["quotes"] = [{"speaker": s, "text": t} for s, t in article.quotes]
    row["changes"] = list(article.changes)
    return row


def duplicate_row(dup: Duplicate) -> dict[str, Any]:
    """The row of a dropped copy; ``run_id`` is filled in by the writer."""
    d = dataclasses.asdict(dup)
    return {name: d.get(name) for name in DUPLICATE_SCHEMA.names}


def reject_row(rej: Reject) -> dict[str, Any]:
    """The row of a reject; ``run_id`` is filled in by the writer."""
    d = dataclasses.asdict(rej)
    return {name: d.get(name) for name in REJECT_SCHEMA.names}
