"""ReadSources: file paths -> RawDocument (bytes, decompressed, size-capped).

Input: a PCollection of file paths (local or any Beam filesystem such as gs://).
Output: RawDocument per readable file.
Rejects: ``read_error`` (vanished, unreadable), ``too_large`` (over --max-bytes),
``decompress_error`` (corrupt .gz/.bz2, or a decompression bomb over the size or ratio cap;
a truncated JSONL file keeps its complete lines, a truncated feed its complete entries, and
only the lost rest is this reject), ``empty_file``.
"""

from __future__ import annotations

import bz2
import codecs
import dataclasses
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from xml.parsers import expat

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.error_handling import ErrorHandler

from schemas.records import RawDocument, bounded_excerpt
from transforms.common import Rejected, apply_stage
from transforms.errors import DecompressError, EmptyInput, ReadError, TooLarge, TruncatedData
from transforms.parse import feed_root

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
# A decompressed size over 100 times the compressed size is treated as a bomb once it also
# passes 10 MB; real text compresses about 3-10x (gzip on news HTML).
MAX_RATIO = 100
RATIO_FLOOR = 10 * 1024 * 1024


def display_path(path: str) -> str:
    """A local path as text that Beam's coders and Parquet can carry. A file name that is not
    UTF-8 (an old archive's; Python holds its bytes as surrogates) gets them as ``\\xNN``
    escapes; ``local_path`` finds the file again."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return path


def local_path(path: str) -> str:
    """The file a ``display_path`` names: each part that does not exist as written is looked
    up among its folder's entries by its display form."""
    if "\\x" not in path or "://" in path or os.path.lexists(path):
        return path
    found = os.sep if path.startswith(os.sep) else ""
    for part in [p for p in path.split(os.sep) if p]:
        here = os.path.join(found, part)
        if not os.path.lexists(here):
            try:
                here = next((os.path.join(found, entry) for entry in os.listdir(found or ".")
                             if display_path(entry) == part), here)
            except OSError:
                return path
        found = here
    return found


def _read_capped(path: str, max_bytes: int) -> bytes:
    try:
        with FileSystems.open(local_path(path), compression_type="uncompressed") as fh:
            data = fh.read(max_bytes + 1)
    except Exception as exc:  # any filesystem error: vanished, permission, I/O
        raise ReadError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc
    return _capped(data, max_bytes)


def _capped(data: bytes, max_bytes: int) -> bytes:
    """``data`` (read as ``max_bytes + 1`` bytes at most), unless the file is over the cap."""
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
        raise TruncatedData("truncated gzip data", bytes(out))
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
        raise TruncatedData("truncated bzip2 data", bytes(out))
    return bytes(out)


def decompress(path: str, data: bytes, max_bytes: int) -> bytes:
    """Decompress gzip/bzip2 by magic bytes (not only by name), with size and ratio caps."""
    limit = min(max_bytes, max(RATIO_FLOOR, len(data) * MAX_RATIO))
    if data[:2] == b"\x1f\x8b":
        return _gunzip(data, limit)
    if data[:3] == b"BZh" and data[4:10] == b"1AY&SY":
        return _bunzip(data, limit)
    return data


def _first_line_is_object(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data.split(b"\n", 1)[0]), dict)
    except ValueError:
        return False


_ENTRY_NAMES = ("item", "entry")
# For an ill-formed feed: the start (group 1), end (group 2) and empty (group 3) tags of RSS/RDF
# items and Atom entries, with or without a namespace prefix, outside CDATA and comments.
_LOOSE_ENTRY_TAG = re.compile(
    rb"<!\[CDATA\[.*?(?:\]\]>|\Z)|<!--.*?(?:-->|\Z)"
    rb"|(<(?:[A-Za-z_][\w.\-]*:)?(?:item|entry)(?:\s[^>]*?)?(?<!/)>)"
    rb"|(</(?:[A-Za-z_][\w.\-]*:)?(?:item|entry)\s*>)"
    rb"|(<(?:[A-Za-z_][\w.\-]*:)?(?:item|entry)(?:\s[^>]*)?/>)", re.I | re.S)
# A character reference to a surrogate, which expat refuses and the feed parser reads as
# U+FFFD (parse.py); for the scan, a reference to U+FFFD of the same length.
_SURROGATE_REF = re.compile(
    rb"&#(?:[xX]0*[dD][89a-fA-F][0-9a-fA-F]{2}|0*(?:5529[6-9]|55[3-9]\d\d|5[67]\d\d\d));")


def _feed_prefixes() -> dict[str, str]:
    """The namespaces the feed parser knows, by URI (lower case), with the prefix it gives
    their elements: '' for those of the feed formats themselves (RSS 1.0, Atom, ...)."""
    from feedparser.mixin import _FeedParserMixin

    return {uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()}


_FEED_PREFIXES = _feed_prefixes()


def _qname_entry(name: str) -> tuple[str, bool]:
    """An element name as expat gives it with namespaces on ("local", "uri local" or
    "uri local prefix"): its name as written, and whether the feed parser reads it as an
    entry. That is an item or entry whose namespace the parser maps to no prefix (RSS, Atom,
    RDF), or an unprefixed one of a namespace it does not know: as the parser's
    ``startElementNS`` does, an element of any other namespace is ``prefix:item`` to it."""
    parts = name.split(" ")
    local = parts[1] if len(parts) > 1 else parts[0]
    given = parts[2] if len(parts) > 2 else None
    uri = parts[0].lower() if len(parts) > 1 else ""
    if "backend.userland.com/rss" in uri:
        uri = "http://backend.userland.com/rss"
    prefix = _FEED_PREFIXES.get(uri, given)
    return (f"{given}:{local}" if given else local), (
        local.lower() in _ENTRY_NAMES and not prefix)


def _fffd_ref(match: re.Match[bytes]) -> bytes:
    return b"&#x" + b"FFFD".rjust(len(match.group(0)) - 4, b"0") + b";"


def _whole_entries(prefix: bytes) -> tuple[int, bytes, int] | None:
    """A feed cut short, made whole again up to its last whole entry: (how many bytes of
    ``prefix`` to keep, the end tags to add, how many entries that holds). The end tags are
    those of the elements still open after that entry (the channel, the root), so the feed
    parser reads the result as it reads a well-formed whole feed. An entry is an RSS/RDF item
    or an Atom entry not inside another one, by namespace as the feed parser tells them
    (``_qname_entry``: a ``media:item`` is none). An ill-formed feed (which the parser reads
    loosely, whole or cut) is cut after its last entry end tag found outside CDATA and
    comments, with no end tags added. None for anything that is not an RSS, Atom or RDF feed
    in an ASCII-compatible encoding, that declares entities (a reject of their own in a whole
    feed), or that holds no whole entry."""
    bom = len(codecs.BOM_UTF8) if prefix.startswith(codecs.BOM_UTF8) else 0
    head = prefix[bom:65536].decode("latin-1")
    if not feed_root(head) or "<!ENTITY" in head.upper():
        return None
    # white space before the prolog: the feed parser drops it (parse.py), expat would refuse it
    skip = len(prefix) - len(prefix[bom:].lstrip())
    scanned = _SURROGATE_REF.sub(_fffd_ref, prefix[skip:])  # same length: offsets hold
    entries = inside = 0  # whole entries; entries open now
    last: tuple[int, tuple[str, ...]] = (0, ())  # (bytes to keep, elements open after it)
    stack: list[tuple[str, bool]] = []  # open elements: (name as written, an entry)
    # latin-1 reads any ASCII-compatible encoding byte for byte: names and offsets are right
    parser = expat.ParserCreate(encoding="iso-8859-1", namespace_separator=" ")
    parser.namespace_prefixes = True

    def start(name: str, _attrs: object) -> None:
        nonlocal inside
        stack.append(_qname_entry(name))
        inside += stack[-1][1]

    def end(_name: str) -> None:
        nonlocal entries, last, inside
        qname, entry = stack.pop()
        inside -= entry
        if entry and not inside:
            at = skip + parser.CurrentByteIndex
            # an end tag: kept through its '>'; an empty <item/>: expat points past it
            if prefix.startswith(b"</" + qname.encode("latin-1"), at):
                at = prefix.index(b">", at) + 1
            entries += 1
            last = (at, tuple(name for name, _ in stack))

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(scanned, False)
    except expat.ExpatError:
        return _loose_entries(prefix)
    if not entries:
        return None
    stop, open_ = last
    closing = "".join(f"</{name}>" for name in reversed(open_)).encode("latin-1")
    return stop, closing, entries


def _loose_entries(prefix: bytes) -> tuple[int, bytes, int] | None:
    """``_whole_entries`` for an ill-formed feed: cut after the last end (or empty) tag that
    closes an entry not inside another one; no end tags added."""
    depth = entries = stop = 0
    for m in _LOOSE_ENTRY_TAG.finditer(prefix):
        if m.group(1):
            depth += 1
        elif (m.group(2) and depth > 0 and (depth := depth - 1) == 0) or \
                (m.group(3) and depth == 0):
            entries, stop = entries + 1, m.end()
    return (stop, b"", entries) if entries else None


def salvage(path: str, cut: TruncatedData) -> Iterator[RawDocument | Rejected]:
    """What can be kept of a truncated file, and one reject (``decompress_error``) for the lost
    rest, its excerpt the cut piece:

    - a JSONL file's complete lines, as a RawDocument (each line becomes a unit, as in a
      whole file). A line is complete when a newline follows it, so no record is kept cut.
    - a feed's complete entries (RSS/RDF items, Atom entries): its text up to the end tag of
      the last whole entry, and the end tags of the channel and the root (``_whole_entries``).
      No entry is kept cut.

    Any other document cut short (a page, a text, a JSON feed) would be read as a shorter
    whole, so it stays one reject."""
    prefix = cut.prefix
    feed = _whole_entries(prefix)
    if feed is not None:
        stop, closing, entries = feed
        yield RawDocument(input_path=path, data=prefix[:stop] + closing)
        yield _lost_rest(cut, entries, "complete entry", stop, prefix[stop:])
        return
    if prefix.endswith(b"\r"):  # cut between the \r and \n of a CRLF line end: that line is whole
        prefix = prefix[:-1] + b"\n"
    lines_kept, newline, tail = prefix.rpartition(b"\n")
    if not newline or not lines_kept.strip() or not _first_line_is_object(lines_kept.lstrip()):
        raise cut
    lines = sum(1 for line in lines_kept.split(b"\n") if line.strip())
    yield RawDocument(input_path=path, data=lines_kept + b"\n")
    yield _lost_rest(cut, lines, "complete line", len(lines_kept) + 1, tail)


def _lost_rest(cut: TruncatedData, count: int, what: str, kept: int, tail: bytes
               ) -> Rejected:
    """``count`` complete ``what``s (lines, entries) were read before the cut."""
    read = (f"its first 1 {what} was read" if count == 1
            else f"its first {count} {what}s were read".replace("entrys", "entries"))
    return Rejected(DecompressError(
        f"{cut.detail}: the file ends inside its compressed stream; {read}, and the rest, "
        f"after the first {kept} bytes of the decompressed text, is lost"),
        bounded_excerpt(tail))


def read_document(path: str, max_bytes: int = DEFAULT_MAX_BYTES
                  ) -> Iterator[RawDocument | Rejected]:
    """Read one file into a RawDocument. Raises a RejectError subclass on failure; a truncated
    JSONL file or feed gives its complete lines or entries and a reject for the rest
    (``salvage``)."""
    yield from _document(path, _read_capped(path, max_bytes), max_bytes)


def _document(path: str, raw: bytes, max_bytes: int) -> Iterator[RawDocument | Rejected]:
    """``read_document`` of a file whose bytes (at most ``max_bytes``) are read."""
    try:
        data = decompress(path, raw, max_bytes)
    except TruncatedData as cut:
        yield from salvage(path, cut)
        return
    if not data.strip():
        raise EmptyInput("the file is empty (or only whitespace)")
    yield RawDocument(input_path=path, data=data)


# ------------------------------------------------------------- large JSONL files, in pieces
# A JSONL dump larger than this (or than --max-bytes, if smaller) is read in pieces of this
# size, each by whichever worker takes it, instead of whole by one: a dump over --max-bytes is
# read at all, and no worker holds more than a piece of it.
CHUNK_BYTES = 8 * 1024 * 1024
BLOCK = 1 << 20


@dataclass(frozen=True)
class Chunk:
    """Bytes [start, end) of a JSONL file of ``size`` bytes, its piece number ``piece`` of
    ``pieces``: the piece owns the lines that start in it. ``lines_before``: the newlines in
    the file before ``start``, once all the file's pieces are counted (-1: unknown)."""

    input_path: str
    start: int
    end: int
    size: int
    piece: int = 0
    pieces: int = 1
    lines_before: int = -1
    # the newlines before the first piece planned: 0, or a DumpSlice's lines_before
    lines_base: int = 0

    def excerpt(self) -> str:
        return f"bytes {self.start}-{self.end} of {self.size}"


class DumpSlice(NamedTuple):
    """The lines of a JSONL dump that one run reads (``--batch-files``, pipeline/batches.py):
    the bytes [start, end), where ``start`` is the start of a line and ``end`` the start of a
    line or the file's size, and the newlines before ``start``, so its lines keep the
    numbers of a whole read."""

    start: int
    end: int
    lines_before: int
    size: int = -1  # the file's size when the slices were planned (-1: not known)


def slice_dump(path: str, lines: int) -> list[DumpSlice]:
    """A local JSONL dump cut into slices of at most ``lines`` lines (the last line may lack
    its newline), in file order: one pass over its bytes."""
    cuts = [0]  # the start of every slice
    seen = 0  # newlines before the block read
    pos = 0
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            count = block.count(b"\n")
            at, passed = -1, 0  # the newlines of this block passed so far, the last one's
            while seen + count >= len(cuts) * lines:  # the next cut is in this block
                for _ in range(len(cuts) * lines - seen - passed):
                    at = block.find(b"\n", at + 1)
                passed = len(cuts) * lines - seen
                cuts.append(pos + at + 1)
            seen += count
            pos += len(block)
    if cuts[-1] >= pos and len(cuts) > 1:
        cuts.pop()  # a cut at the very end: no empty slice after it
    ends = [*cuts[1:], pos]
    return [DumpSlice(start, end, i * lines, pos) for i, (start, end) in
            enumerate(zip(cuts, ends, strict=True))]


def _is_dump(head: bytes) -> bool:
    """Does ``head`` (the start of a file, through its first line that is not blank, and at
    least the start of the next one) look like a JSONL dump: its first line that is not blank
    is a JSON object and is not the whole document (a minified JSON Feed or any one JSON
    object on one line is read whole, as one value), in UTF-8?"""
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8):]
    body = head.lstrip()
    line, newline, rest = body.partition(b"\n")
    if not newline or not rest.strip():
        return False
    try:
        return isinstance(json.loads(line.decode("utf-8")), dict)
    except ValueError:  # UnicodeDecodeError too: another encoding is read whole, as before
        return False


def piece_bytes(chunk_bytes: int, max_bytes: int) -> int:
    """The size of a dump's pieces: ``chunk_bytes``, or --max-bytes if smaller."""
    return max(1, min(chunk_bytes, max_bytes))


def _opens_a_dump(fh: Any, max_bytes: int) -> bool:
    """Is the file open in ``fh`` (at its start) a JSONL dump (``_is_dump``), not compressed?
    Reads its head only (``_head``)."""
    data = fh.read(BLOCK)
    if data[:2] == b"\x1f\x8b" or data[:3] == b"BZh":  # decompress() tells them apart
        return False
    return _is_dump(_head(fh, data, max_bytes))


_NON_WHITE = re.compile(rb"\S")


def _head(fh: Any, data: bytes, max_bytes: int) -> bytes:
    """``data`` (the first bytes read from ``fh``), read on until it holds a line that is not
    blank (after a UTF-8 byte order mark) and the first byte that is not white space after
    it, or ``max_bytes`` (a first record longer than that: the file is read whole, and
    rejected as too large). Each search goes on from where the last one stopped."""
    held = bytearray(data)
    pos = len(codecs.BOM_UTF8) if held.startswith(codecs.BOM_UTF8) else 0
    looking = "record"  # then "newline" (the end of its line), then "next" (a byte after it)
    while True:
        if looking == "record":
            found = _NON_WHITE.search(held, pos)
            looking, pos = ("newline", found.start()) if found else (looking, len(held))
        if looking == "newline":
            newline = held.find(b"\n", pos)
            looking, pos = ("next", newline + 1) if newline >= 0 else (looking, len(held))
        if looking == "next":
            if _NON_WHITE.search(held, pos):
                return bytes(held)
            pos = len(held)
        if len(held) > max_bytes:
            return bytes(held)
        more = fh.read(BLOCK)
        if not more:
            return bytes(held)
        held += more


def read_or_plan(path: str, max_bytes: int = DEFAULT_MAX_BYTES,
                 chunk_bytes: int = CHUNK_BYTES,
                 slices: Mapping[str, DumpSlice] | None = None
                 ) -> Iterator[RawDocument | Rejected | Chunk]:
    """``read_document``, but an uncompressed file larger than ``chunk_bytes`` that is a JSONL
    dump (``_is_dump``) is not read here: its pieces (``Chunk``) are given instead, whatever
    its size. Every other file is read once, as ``read_document`` reads it. A file with a
    slice in ``slices`` (a batch's share of a dump) gives the pieces of that slice."""
    if slices and path in slices:
        yield from _slice_pieces(path, slices[path], chunk_bytes)
        return
    chunked = False
    size = 0
    try:
        with FileSystems.open(local_path(path), compression_type="uncompressed") as fh:
            # the size first, from the open file (FileSystems.match would read a name holding
            # [ or * as a pattern); no read of chunk_bytes on speculation: a buffer of 8 MB
            # per file kept glibc's heap from giving memory back (a 2,000-page run peaked at
            # 1.9 GB against 0.65 GB)
            size = fh.seek(0, os.SEEK_END)
            fh.seek(0)
            if size > chunk_bytes:
                chunked = _opens_a_dump(fh, max_bytes)
                fh.seek(0)
            if not chunked:
                data = fh.read(max_bytes + 1)
    except Exception as exc:  # any filesystem error: vanished, permission, I/O
        raise ReadError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc
    if chunked:
        pieces = -(-size // chunk_bytes)
        for piece in range(pieces):
            start = piece * chunk_bytes
            yield Chunk(path, start, min(size, start + chunk_bytes), size, piece, pieces)
        return
    yield from _document(path, _capped(data, max_bytes), max_bytes)


def dump_pieces(paths: Iterable[str], max_bytes: int = DEFAULT_MAX_BYTES,
                chunk_bytes: int = CHUNK_BYTES,
                slices: Mapping[str, DumpSlice] | None = None) -> dict[str, int]:
    """The local inputs that the read will cut into pieces (a file larger than a piece that
    is a JSONL dump, ``_opens_a_dump``, or one with a slice in ``slices``), with their number
    of pieces, as ``read_or_plan`` plans them. Files on an object store are not opened here
    (too slow one by one): the read decides for them."""
    chunk = piece_bytes(chunk_bytes, max_bytes)
    found: dict[str, int] = {}
    for path in paths:
        if slices and path in slices:
            part = slices[path]
            found[path] = max(1, -(-(part.end - part.start) // chunk))
            continue
        if "://" in path:
            continue
        try:
            size = os.path.getsize(path)
            if size > chunk:
                with open(path, "rb") as fh:
                    if _opens_a_dump(fh, max_bytes):
                        found[path] = -(-size // chunk)
        except OSError:  # its read makes the reject
            continue
    return found


def _slice_pieces(path: str, part: DumpSlice, chunk_bytes: int) -> Iterator[Chunk]:
    try:
        with FileSystems.open(local_path(path), compression_type="uncompressed") as fh:
            size = fh.seek(0, os.SEEK_END)
    except Exception as exc:
        raise ReadError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc
    if size < part.end or (part.size >= 0 and size != part.size):
        raise ReadError(f"{path} changed while it was read: {size} bytes now, "
                        f"{part.size if part.size >= 0 else 'more'} when its slices were "
                        f"planned (this batch's: bytes {part.start}-{part.end})")
    pieces = max(1, -(-(part.end - part.start) // chunk_bytes))
    for piece in range(pieces):
        start = part.start + piece * chunk_bytes
        yield Chunk(path, start, min(part.end, start + chunk_bytes), size, piece, pieces,
                    lines_base=part.lines_before)


def may_hold_dumps(paths: Iterable[str], max_bytes: int = DEFAULT_MAX_BYTES,
                   chunk_bytes: int = CHUNK_BYTES,
                   pieces: Mapping[str, int] | None = None) -> bool:
    """Does any input call for the chunked read (``ReadSources(chunked=True)``)? Decided by
    the driver before it builds the graph: a local JSONL dump larger than a piece
    (``dump_pieces``, or ``pieces`` if the caller has them), or any file on an object store
    (the read decides per file). The chunked branch joins the whole read through a Flatten,
    which the DirectRunner materializes: every page's bytes held between two stages (a
    1,000-page run peaked at 1,058 MiB against 456 MiB), so it is built only when needed."""
    paths = list(paths)
    if any("://" in path for path in paths):
        return True
    if pieces is None:
        pieces = dump_pieces(paths, max_bytes, chunk_bytes)
    return bool(pieces)


def _route(item: Any) -> Iterator[Any]:
    yield beam.pvalue.TaggedOutput("pieces", item) if isinstance(item, Chunk) else item


def _open_unchanged(chunk: Chunk) -> Any:
    """The piece's file, open; a ReadError if its size is no longer the planned one (a file
    replaced or still being written while it is read: its pieces would not add up)."""
    fh = FileSystems.open(local_path(chunk.input_path), compression_type="uncompressed")
    try:
        size = fh.seek(0, os.SEEK_END)
    except Exception:
        fh.close()
        raise
    if size != chunk.size:
        fh.close()
        raise ReadError(f"{chunk.input_path} changed while it was read: {chunk.size} bytes "
                        f"when its pieces were planned, {size} now")
    return fh


def count_lines(chunk: Chunk) -> Iterator[tuple[str, Chunk, int]]:
    """(path, chunk, the newlines in its bytes)."""
    count = 0
    try:
        with _open_unchanged(chunk) as fh:
            fh.seek(chunk.start)
            left = chunk.end - chunk.start
            while left > 0:
                block = fh.read(min(BLOCK, left))
                if not block:
                    break
                count += block.count(b"\n")
                left -= len(block)
    except ReadError:
        raise
    except Exception as exc:
        raise ReadError(f"cannot read {chunk.input_path}: {type(exc).__name__}: {exc}") \
            from exc
    yield chunk.input_path, chunk, count


def _by_file(counted: tuple[str, Chunk, int]) -> tuple[str, tuple[Chunk, int]]:
    path, chunk, count = counted
    return path, (chunk, count)


def number_chunks(item: tuple[str, Iterable[tuple[Chunk, int]]]) -> Iterator[Chunk]:
    """A file's pieces with the newlines before each (counts summed in file order, from the
    ``lines_base`` of a slice). After a
    piece whose count failed (its reject says why) the lines cannot be numbered: the pieces
    after it keep ``lines_before`` -1, and each becomes a reject when read (``read_chunk``),
    rather than lines whose keys would collide with others'."""
    _path, counted = item
    ordered = sorted(counted, key=lambda pair: pair[0].piece)
    before = ordered[0][0].lines_base if ordered else 0  # a slice's lines start further on
    expected = 0
    for chunk, count in ordered:
        if chunk.piece != expected:
            before = -1
        yield dataclasses.replace(chunk, lines_before=before)
        expected = chunk.piece + 1
        if before >= 0:
            before += count


def _lines(fh: Any, pos: int, max_bytes: int, until: int | None = None
           ) -> Iterator[tuple[int, bytes | None, bytes]]:
    """The lines of an open file from offset ``pos`` (where ``fh`` stands): (offset of the
    line's start, its bytes through its newline, or to the end of the file, b""). A line over
    ``max_bytes`` (its newline aside) is not held: (offset, None, its first KiB). Before
    offset ``until`` (a piece's end) no read goes past it, and after it reads start small, so
    a piece is not read on for a whole block to finish its last line."""
    block_start = line_start = pos
    pending: list[bytes] = []
    held = 0
    over = False
    head = b""
    past = 4096  # past ``until`` (the piece's last line, read through): 4 KiB, doubling
    while True:
        if until is None:
            size = BLOCK
        elif block_start < until:
            size = min(BLOCK, until - block_start)
        else:
            size, past = past, min(BLOCK, 2 * past)
        block = fh.read(size)
        if not block:
            if over or held:
                yield line_start, None if over else b"".join(pending), head
            return
        cut = 0
        while cut < len(block):
            newline = block.find(b"\n", cut)
            stop = len(block) if newline < 0 else newline + 1
            piece = block[cut:stop]
            if not over:
                if held + len(piece) - (newline >= 0) > max_bytes:  # its newline aside
                    over, head = True, (b"".join(pending) + piece)[:1024]
                    pending, held = [], 0
                else:
                    pending.append(piece)
                    held += len(piece)
            if newline < 0:
                break
            yield line_start, None if over else b"".join(pending), head
            line_start = block_start + stop
            pending, held, over, head = [], 0, False, b""
            cut = stop
            if until is not None and line_start >= until:
                return  # the next line is the next piece's: not read, nor held
        block_start += len(block)


def _first_line_start(fh: Any, chunk: Chunk) -> int | None:
    """Where the first line that starts in the piece starts (``fh`` at the byte before the
    piece), or None: the piece lies inside one line (which the piece where it starts reads
    through), so it is left at once, not read to that line's end."""
    pos = chunk.start - 1
    while pos < chunk.end - 1:
        block = fh.read(min(BLOCK, chunk.end - 1 - pos))
        if not block:
            return None
        newline = block.find(b"\n")
        if newline >= 0:
            return pos + newline + 1
        pos += len(block)
    return None


def read_chunk(chunk: Chunk, max_bytes: int = DEFAULT_MAX_BYTES
               ) -> Iterator[RawDocument | Rejected]:
    """The lines that start in a piece, as one RawDocument whose ``first_line`` is the
    file's number of the first of them (the last may run past the piece's end: it is read
    through). A line over ``max_bytes`` is one reject (``too_large``), and a blank line in
    its place, so the lines after it keep their numbers."""
    if chunk.lines_before < 0:
        raise ReadError(f"lines {chunk.excerpt()} of {chunk.input_path} cannot be numbered: "
                        "an earlier piece of the file could not be read")
    lines: list[bytes] = []
    lost: list[Rejected] = []
    first_line = chunk.lines_before
    try:
        with _open_unchanged(chunk) as fh:
            pos: int | None = 0
            if chunk.start > 0:
                fh.seek(chunk.start - 1)
                pos = _first_line_start(fh, chunk)
                # the line under way at ``start`` (if one is) belongs to the piece before
                first_line += pos is not None and pos > chunk.start
            if pos is not None:
                fh.seek(pos)
                for begin, line, head in _lines(fh, pos, max_bytes, chunk.end):
                    if begin >= chunk.end:
                        break
                    if line is None:
                        number = first_line + len(lines) + 1  # 1-based, as users count
                        lost.append(Rejected(TooLarge(
                            f"line {number} (at byte {begin}) is larger than the cap of "
                            f"{max_bytes} bytes"), bounded_excerpt(head)))
                        line = b"\n"
                    lines.append(line)
    except ReadError:
        raise
    except Exception as exc:  # any filesystem error: vanished, permission, I/O
        raise ReadError(f"cannot read {chunk.input_path}: {type(exc).__name__}: {exc}") \
            from exc
    if lines:
        yield RawDocument(input_path=chunk.input_path, data=b"".join(lines),
                          first_line=first_line)
    yield from lost


class ReadSources(beam.PTransform):
    """paths -> RawDocument; unreadable files become reject rows (stage ``read``).

    With ``chunked`` (batch runs), a JSONL dump larger than CHUNK_BYTES (or --max-bytes, if
    smaller) is read in pieces (``read_or_plan``): each piece's newlines are counted, the counts
    summed per file, and each piece read by whichever worker takes it, its lines numbered as
    in the whole file. A dump over --max-bytes is then read at all, line by line, and
    --max-bytes caps each line. A compressed dump is still read whole (a gzip stream cannot
    be cut), within --max-bytes.

    ``slices``: path -> DumpSlice, the part of a dump this run reads (``--batch-files``).

    ``progress``: a DoFn that passes the pieces through as they are taken for reading
    (``pipeline.progress.ShowPieceProgress``), so a long dump moves the progress line."""

    def __init__(self, error_handler: ErrorHandler, max_bytes: int = DEFAULT_MAX_BYTES,
                 chunked: bool = False, chunk_bytes: int = CHUNK_BYTES,
                 progress: beam.DoFn | None = None,
                 slices: Mapping[str, DumpSlice] | None = None) -> None:
        super().__init__()
        self._slices = dict(slices or {})
        self._errors = error_handler
        self._max_bytes = max_bytes
        self._chunked = chunked
        self._chunk_bytes = piece_bytes(chunk_bytes, max_bytes)
        self._progress = progress

    def expand(self, paths: beam.PCollection[str]) -> beam.PCollection[RawDocument]:
        if not self._chunked:
            return apply_stage(paths, "Read", "read", read_document, self._errors,
                               max_bytes=self._max_bytes)
        read = apply_stage(paths, "Read", "read", read_or_plan, self._errors,
                           max_bytes=self._max_bytes, chunk_bytes=self._chunk_bytes,
                           slices=self._slices)
        routed = read | "PiecesApart" >> beam.FlatMap(_route).with_outputs("pieces",
                                                                          main="whole")
        whole, chunks = routed["whole"], routed["pieces"]
        counted = apply_stage(chunks, "CountLines", "read", count_lines,
                              self._errors)
        pieces = (
            counted
            | "PiecesByFile" >> beam.Map(_by_file)
            | "GroupPieces" >> beam.GroupByKey()
            | "NumberPieces" >> beam.FlatMap(number_chunks)
            | "SpreadPieces" >> beam.Reshuffle()
        )
        if self._progress is not None:
            pieces = pieces | "PieceProgress" >> beam.ParDo(self._progress)
        read = apply_stage(pieces, "ReadPieces", "read", read_chunk, self._errors,
                           max_bytes=self._max_bytes)
        return (whole, read) | "AllRead" >> beam.Flatten()
