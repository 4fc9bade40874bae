"""ReadSources: file paths -> RawDocument (bytes, decompressed, size-capped).

Input: a PCollection of file paths (local or any Beam filesystem such as gs://).
Output: RawDocument per readable file.
Rejects: ``read_error`` (vanished, unreadable), ``too_large`` (over --max-bytes),
``decompress_error`` (corrupt .gz/.bz2, or a decompression bomb over the size or ratio cap),
``empty_file``.
"""

from __future__ import annotations

import bz2
import zlib
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.error_handling import ErrorHandler

from schemas.records import RawDocument
from transforms.common import apply_stage
from transforms.errors import DecompressError, EmptyInput, ReadError, TooLarge

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
# A decompressed size over 100 times the compressed size is treated as a bomb once it also
# passes 10 MB; real text compresses about 3-10x (gzip on news HTML).
MAX_RATIO = 100
RATIO_FLOOR = 10 * 1024 * 1024


def _read_capped(path: str, max_bytes: int) -> bytes:
    try:
        with FileSystems.open(path, compression_type="uncompressed") as fh:
            data = fh.read(max_bytes + 1)
    except Exception as exc:  # any filesystem error: vanished, permission, I/O
        raise ReadError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc
    if len(data) > max_bytes:
        raise TooLarge(f"file is larger than the cap of {max_bytes} bytes")
    return data


def _bomb(kind: str, limit: int, size: int) -> DecompressError:
    return DecompressError(
        f"{kind} expands past {limit} bytes (compressed {size} bytes): "
        "treated as a decompression bomb"
    )


def _gunzip(data: bytes, limit: int) -> bytes:
    dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    try:
        buf = data
        while buf and not dec.eof:
            out += dec.decompress(buf, limit + 1 - len(out))
            if len(out) > limit:
                raise _bomb("gzip", limit, len(data))
            buf = dec.unconsumed_tail
    except zlib.error as exc:
        raise DecompressError(f"corrupt gzip data: {exc}") from exc
    if not dec.eof:
        raise DecompressError("truncated gzip data")
    return bytes(out)


def _bunzip(data: bytes, limit: int) -> bytes:
    dec = bz2.BZ2Decompressor()
    out = bytearray()
    try:
        out += dec.decompress(data, max_length=limit + 1)
        while len(out) <= limit and not dec.eof and not dec.needs_input:
            out += dec.decompress(b"", max_length=limit + 1 - len(out))
    except (OSError, EOFError, ValueError) as exc:
        raise DecompressError(f"corrupt bzip2 data: {exc}") from exc
    if len(out) > limit:
        raise _bomb("bzip2", limit, len(data))
    if not dec.eof:
        raise DecompressError("truncated bzip2 data")
    return bytes(out)


def decompress(path: str, data: bytes, max_bytes: int) -> bytes:
    """Decompress gzip/bzip2 by magic bytes (not only by name), with size and ratio caps."""
    limit = min(max_bytes, max(RATIO_FLOOR, len(data) * MAX_RATIO))
    if data[:2] == b"\x1f\x8b":
        return _gunzip(data, limit)
    if data[:3] == b"BZh" and data[4:10] == b"1AY&SY":
        return _bunzip(data, limit)
    return data


def read_document(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[RawDocument]:
    """Read one file into a RawDocument. Raises a RejectError subclass on failure."""
    data = decompress(path, _read_capped(path, max_bytes), max_bytes)
    if not data.strip():
        raise EmptyInput("the file is empty (or only whitespace)")
    yield RawDocument(input_path=path, data=data)


class ReadSources(beam.PTransform):
    """paths -> RawDocument; unreadable files become reject rows (stage ``read``)."""

    def __init__(self, error_handler: ErrorHandler, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        super().__init__()
        self._errors = error_handler
        self._max_bytes = max_bytes

    def expand(self, paths: beam.PCollection[str]) -> beam.PCollection[RawDocument]:
        return apply_stage(
            paths,
            "Read",
            "read",
            read_document,
            self._errors,
            max_bytes=self._max_bytes,
        )
