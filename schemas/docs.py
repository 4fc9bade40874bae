"""docs/schema.md, generated from the Arrow schemas so it cannot drift (a test compares).

Each column of the user-facing datasets gets its type, its meaning (the field's ``doc``
metadata in arrow.py), an example value and the step that fills it.
"""

from __future__ import annotations

from schemas.arrow import PARTITION_COLUMNS, SCHEMA_VERSION, SCHEMAS

# column -> (example, what fills it)
ARTICLE_COLUMNS: dict[str, tuple[str, str]] = {
    "article_id": ("`9f2c41d0a7b35e6f8c1d2e3f4a5b6c7d`", "extract (hash of url or content)"),
    "url": ("`https://example.org/2024/03/strike-ends`", "extract; canonicalized (urls.py)"),
    "source": ("`The Port Gazette`", "extract: og:site_name, JSON-LD publisher, feed title"),
    "source_domain": ("`example.org`", "extract"),
    "title": ("`Strike ends at the port`", "fields: `title` step"),
    "authors": ('`["Maria Lopez"]`', "fields: `authors` step (feed, JSON-LD, meta, byline)"),
    "published_at": ("`2024-03-04 08:30:00+00:00`", "fields: `dates` step"),
    "updated_at": ("`2024-04-16 01:19:00+00:00`", "fields: `dates` step; clean: update stamps"),
    "language": ("`en`", "fields: `language` step (declared, else fastText lid.176)"),
    "text": ("`Harbour workers agreed on Monday...`", "extract (trafilatura) + clean chain"),
    "summary": ("`Workers agreed to end the strike.`", "extract (feed summary, description)"),
    "categories": ('`["Business"]`', "extract (feed tags, article:section)"),
    "word_count": ("`412`", "fields: finalize"),
    "countries": ('`["KZ", "US"]`', "fields: `countries` step"),
    "quotes": ('`[{"speaker": "Nazarbayev", "text": "..."}]`', "fields: `quotes` step"),
    "content_hash": ("`5d41402abc4b2a76b9719d911017c592...`", "extract (normalized body)"),
    "input_path": ("`/data/feeds/world.xml`", "read / fetch (credentials removed)"),
    "input_kind": ("`rss`", "parse"),
    "ingested_at": ("`2026-01-15 12:00:00+00:00`", "the run (--ingested-at)"),
    "date_source": ("`jsonld`", "fields: `dates` step"),
    "dateline": ("`ASTANA`", "fields: `dateline` step"),
    "rights": ('`{"tdm_reservation": true, ...}`', "extract (html_meta.py)"),
    "revision": ("`1`", "dedupe (revisions at one URL)"),
    "changes": ('`["text"]`', "dedupe (revisions)"),
    "field_sources": ('`{"text": "page", "title": "feed", ...}`', "extract (--follow-links)"),
    "date": ("`2024-03-04`", "extract (partition)"),
}


def schema_markdown() -> str:
    lines = [
        "# Schema",
        "",
        f"Schema version {SCHEMA_VERSION}. Generated from `schemas/arrow.py` by "
        "`schemas/docs.py` (a test compares it); every Parquet file carries "
        "`newsbeam.schema_version` and `newsbeam.version` in its metadata. Columns are only "
        "added, never renamed or removed; see README, \"Reading it\", for reading files of "
        "several versions together.",
        "",
    ]
    for dataset in ("articles", "duplicates", "rejects", "_index", "_state/feeds",
                    "_state/links", "_state/files"):
        schema = SCHEMAS[dataset]
        lines += [f"## `{dataset}`", ""]
        if dataset == "articles":
            lines += ["| column | type | meaning | example | filled by |",
                      "| --- | --- | --- | --- | --- |"]
        else:
            lines += ["| column | type | meaning |", "| --- | --- | --- |"]
        for f in schema:
            doc = (f.metadata or {}).get(b"doc", b"").decode().replace("|", "\\|")
            typ = str(f.type).replace("|", "\\|")
            where = " (partition)" if f.name in PARTITION_COLUMNS[dataset] else ""
            null = "" if f.nullable else ", required"
            cells = [f"`{f.name}`{where}", f"`{typ}`{null}", doc]
            if dataset == "articles":
                example, filled = ARTICLE_COLUMNS[f.name]
                cells += [example.replace("|", "\\|"), filled]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
