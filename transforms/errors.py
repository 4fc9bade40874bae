"""Typed failures. Each class carries the stable reason code written to ``rejects``.

Stages raise these; the stage boundary (transforms/common.py) turns any exception into one
flat reject row. Anything that is not a ``RejectError`` is reported as ``internal_error``
with its class name, so a bug never vanishes and never crashes the run.
"""

from __future__ import annotations


def error_line(exc: BaseException) -> str:
    """An exception's first line of text, "" when it has none (for one-line messages)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


class RejectError(Exception):
    """Base class: the input unit cannot become an article."""

    reason = "rejected"
    stage = ""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ReadError(RejectError):
    """The file vanished, is unreadable, or the filesystem failed."""

    stage = "read"
    reason = "read_error"


class TooLarge(RejectError):
    """The file (after decompression) is larger than --max-bytes; in an uncompressed JSONL
    dump, which is read in pieces, one line is (the detail names it)."""

    stage = "read"
    reason = "too_large"


class PageTooLarge(RejectError):
    """An HTML page of more than 10,000,000 characters: not extracted (memory); the detail
    gives its size."""

    stage = "extract"
    reason = "too_large"


class DecompressError(RejectError):
    """Corrupt or truncated gzip/bzip2 data, or a decompression bomb (expands past the size
    cap, or past 100 times its compressed size once over 10 MB). A truncated JSONL file (a cut
    download) keeps every line that ends before the cut, and a truncated RSS, Atom or RDF feed
    every entry that ends before it, each read as in a whole file; this reject stands for the
    lost rest: its detail says how many lines or entries were read, its excerpt is the cut
    piece. Any other document cut short (a page, a text, a JSON feed) stays one reject, since
    it would read as a shorter whole."""

    stage = "read"
    reason = "decompress_error"


class TruncatedData(DecompressError):
    """A gzip/bzip2 stream that ends before its end mark (a cut download or copy). ``prefix``:
    what decompressed before the cut, from which ReadSources salvages the complete lines of a
    JSONL file or the complete entries of a feed."""

    def __init__(self, detail: str, prefix: bytes = b"") -> None:
        super().__init__(detail)
        self.prefix = prefix


class EmptyInput(RejectError):
    """The file is empty or holds only whitespace."""

    stage = "read"
    reason = "empty_file"


class BinaryInput(RejectError):
    """Binary content (NUL or control bytes) that is no text in any encoding read."""

    stage = "parse"
    reason = "binary_content"


class DecodeError(RejectError):
    """The bytes do not decode in the encoding their byte order mark or detection gives."""

    stage = "parse"
    reason = "decode_error"


class HostileXml(RejectError):
    """A document that declares XML entities (billion laughs, external entities): refused
    before any parser sees it, as defusedxml does."""

    stage = "parse"
    reason = "xml_entities"


class NotAFeed(RejectError):
    """XML that is no RSS, Atom or RDF feed."""

    stage = "parse"
    reason = "not_a_feed"


class ParserError(RejectError):
    """feedparser itself raised on the document (it does on about 0.16% of mutated feeds,
    mostly in encoding detection, instead of flagging them as ill-formed)."""

    stage = "parse"
    reason = "parser_error"


class EmptyFeed(RejectError):
    """A feed with zero entries (the detail names the feed title)."""

    stage = "parse"
    reason = "empty_feed"


class InvalidJson(RejectError):
    """A JSON document or JSONL line that is not valid JSON."""

    stage = "parse/extract"
    reason = "invalid_json"


class InvalidRecord(RejectError):
    """A JSONL record without html or text, or a JSON value that is not an object."""

    stage = "extract"
    reason = "invalid_record"


class NotNews(RejectError):
    """A plain-text file that is source code, a table or a project file (a .py, .csv, .yaml
    ... file, or a LICENSE, README, CHANGELOG), not an article. Decided by its name, for text
    that is not HTML, a feed or JSON: a feed saved as .txt is still read."""

    stage = "parse"
    reason = "not_news"


class EmptyContent(RejectError):
    """An entry or document with neither title nor body text, or a file with no record."""

    stage = "parse/extract"
    reason = "empty_content"


class HtmlTooDeep(RejectError):
    """An HTML page nested so deep (250 levels or more) that the extractor drops its text
    (trafilatura silently returns nothing from 254 levels on)."""

    stage = "extract"
    reason = "html_too_deep"


class ExtractionFailed(RejectError):
    """trafilatura could not read the page at all."""

    stage = "extract"
    reason = "extraction_failed"


class StepDropped(RejectError):
    """A cleaning or field step returned None: it judged the article not worth keeping."""

    stage = "clean:<step> / fields:<step>"
    reason = "dropped_by_step"


class StepFailed(RejectError):
    """A cleaning or field step raised on this article (the stage names the step)."""

    stage = "clean:<step> / fields:<step>"
    reason = "step_failed"


INTERNAL_ERROR = "internal_error"


def reasons_markdown() -> str:
    """docs/rejects.md, generated from the classes above (and the fetch errors of
    transforms/http.py) so it cannot drift."""
    import transforms.http  # noqa: F401  (its RejectError classes register themselves)

    lines = [
        "# Reject reasons",
        "",
        "Every row of `OUT/rejects` carries one of these stable codes in `reason`; the `stage`",
        "column says where it was raised and `detail` says why in a sentence. This page is",
        "generated from `transforms/errors.py` (a test compares them).",
        "",
        "| reason | stage | meaning |",
        "| --- | --- | --- |",
    ]
    for cls in sorted(RejectError.__subclasses__(), key=lambda c: (c.reason, c.stage)):
        lines.append(f"| `{cls.reason}` | {cls.stage} | {' '.join((cls.__doc__ or '').split())} |")
    lines.append(f"| `{INTERNAL_ERROR}` | any | An unexpected exception (a bug): `error_type` and "
                 "`detail` name it. The run goes on; please report it. |")
    return "\n".join(lines) + "\n"
