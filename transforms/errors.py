"""Typed failures. Each class carries the stable reason code written to ``rejects``.

Stages raise these; the stage boundary (transforms/common.py) turns any exception into one
flat reject row. Anything that is not a ``RejectError`` is reported as ``internal_error``
with its class name, so a bug never vanishes and never crashes the run.
"""

from __future__ import annotations


class RejectError(Exception):
    """Base class: the input unit cannot become an article."""

    reason = "rejected"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ReadError(RejectError):
    reason = "read_error"


class TooLarge(RejectError):
    reason = "too_large"


class DecompressError(RejectError):
    reason = "decompress_error"


class EmptyInput(RejectError):
    reason = "empty_file"


class BinaryInput(RejectError):
    reason = "binary_content"


class DecodeError(RejectError):
    reason = "decode_error"


class HostileXml(RejectError):
    """A document that declares XML entities (treated as hostile, as defusedxml does)."""

    reason = "xml_entities"


class NotAFeed(RejectError):
    reason = "not_a_feed"


class EmptyFeed(RejectError):
    reason = "empty_feed"


class InvalidJson(RejectError):
    reason = "invalid_json"


class InvalidRecord(RejectError):
    reason = "invalid_record"


class EmptyContent(RejectError):
    reason = "empty_content"


class ExtractionFailed(RejectError):
    reason = "extraction_failed"


INTERNAL_ERROR = "internal_error"

REASONS: dict[str, str] = {
    cls.reason: (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
    for cls in RejectError.__subclasses__()
}
