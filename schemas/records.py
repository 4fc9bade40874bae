"""Record types that flow through the pipeline, in the order data flows.

raw document -> unit (one feed entry, page, text, JSONL line) -> article -> Parquet row.
Rejects and duplicates are flat records written to their own datasets.

These are plain frozen dataclasses with no Beam import, so pure functions and tests can use them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

EXCERPT_CHARS = 300


def bounded_excerpt(value: bytes | str | None, limit: int = EXCERPT_CHARS) -> str:
    """A printable, bounded excerpt of raw input for a reject row."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        head = value[: limit * 4]
        value = head.decode("utf-8", errors="replace")
        sample = value[:limit]
        unreadable = sum(1 for ch in sample if ch == "\ufffd" or not (ch.isprintable()
                                                                      or ch in "\n\t\r"))
        if b"\x00" in head[:1024] or unreadable * 10 > len(sample):
            # binary: its first bytes in hex say what it is (7f454c46 an ELF file, 89504e47
            # a PNG, 504b0304 a zip) where decoded characters would be noise
            return "binary: " + head[: (limit - 8) * 4 // 9].hex(" ", -4)
    cleaned = "".join(ch if ch.isprintable() or ch in "\n\t" else "\ufffd" for ch in value[:limit])
    return cleaned


@dataclass(frozen=True)
class RawDocument:
    """The bytes of one input file, already decompressed."""

    input_path: str
    data: bytes
    # HTTP response headers (lower-case keys) of a fetched document: content-type carries
    # the charset, content-location the base for relative links. None for files.
    headers: dict[str, str] | None = None
    # a piece of a large JSONL file read in chunks (transforms/read.py): whole lines, the first
    # of them line ``first_line`` of the file (0-based), so each line keeps the unit index it
    # has when the file is read whole. None for a whole document.
    first_line: int | None = None

    def excerpt(self) -> str:
        return bounded_excerpt(self.data)


@dataclass(frozen=True)
class Unit:
    """One input unit: a feed entry, an HTML page, a text document or a JSONL line.

    ``fields`` holds what the parser found, before extraction: keys such as ``title``,
    ``link``, ``guid``, ``authors``, ``published``, ``updated``, ``summary``, ``html``,
    ``text``, ``categories``, ``source``, ``language``. ``raw`` keeps the unparsed payload
    when extraction still has to parse it (a JSONL line, a page, a text document).
    """

    input_path: str
    input_kind: str
    index: int
    fields: dict[str, Any] = field(default_factory=dict)
    raw: str = ""

    @property
    def unit_key(self) -> str:
        return f"{self.input_path}#{self.index}"

    def excerpt(self) -> str:
        if self.raw:
            return bounded_excerpt(self.raw)
        return bounded_excerpt(str(self.fields.get("title") or self.fields.get("summary") or ""))


@dataclass(frozen=True)
class Article:
    """One article. Its fields are the columns of the ``articles`` dataset (see arrow.py),
    plus ``unit_key`` and ``guid`` which only live inside the pipeline."""

    article_id: str
    url: str | None
    source: str | None
    source_domain: str | None
    title: str | None
    authors: tuple[str, ...]
    published_at: datetime | None
    updated_at: datetime | None
    language: str | None
    text: str
    summary: str | None
    categories: tuple[str, ...]
    word_count: int
    countries: tuple[str, ...]
    quotes: tuple[tuple[str | None, str], ...]
    content_hash: str
    input_path: str
    input_kind: str
    ingested_at: datetime
    date: str
    date_source: str
    dateline: str | None = None
    rights: dict[str, Any] | None = None
    revision: int = 1
    changes: tuple[str, ...] = ()
    unit_key: str = ""
    guid: str | None = None
    # id keys of copies this article absorbed (dedupe); lets a later key still find them.
    id_aliases: tuple[str, ...] = ()
    # a date string the source gave that could not be parsed (counted, never guessed)
    date_unparsed: str | None = None
    # feed entry + linked page: which side gave each field ("feed" / "page")
    field_sources: dict[str, str] | None = None
    # the body's near-duplicate hashes (transforms/neardup.pack_hashes), taken where its tokens
    # were taken for the content hash, so the near stage does not tokenize it again
    near_hashes: bytes | None = None
    # its near-duplicate signature (transforms.neardup.NearDoc), taken once the run's
    # boilerplate paragraphs are known and carried through the last exact shuffle, so the near
    # stage needs no shuffle of its own before it splits off the articles without candidates
    near_doc: Any = None
    # an article already stored in OUT by an earlier run (read from OUT/_index); it takes part
    # in duplicate detection and always wins, but is never written again
    stored: bool = False
    # the feed entry's link whose page gave this article (--follow-links), when it is not the
    # article's own URL (the page names another canonical URL): remembered in OUT/_state/links
    # so the next run does not fetch that page again
    followed_link: str | None = None

    def replace(self, **changes: Any) -> Article:
        return dataclasses.replace(self, **changes)

    def excerpt(self) -> str:
        return bounded_excerpt(f"{self.title or ''}\n{self.text}")


@dataclass(frozen=True)
class Reject:
    """An input unit that could not become an article, with a stable reason code."""

    input_path: str
    stage: str
    reason: str
    error_type: str
    detail: str
    excerpt: str
    unit_key: str = ""


@dataclass(frozen=True)
class Duplicate:
    """A dropped copy of an article that was kept."""

    article_id: str
    duplicate_of: str
    method: str
    similarity: float
    input_path: str
    url: str | None
    title: str | None
    unit_key: str = ""
    kept_unit_key: str = ""
