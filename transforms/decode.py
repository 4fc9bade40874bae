"""Bytes -> text: honour the declared charset, detect it when none is declared, and catch
declarations that lie.

Order of evidence (after WHATWG's encoding sniffing and RFC 7303):
1. a byte order mark;
2. the charset the document declares (XML prolog, HTML ``<meta>``), unless the declaration is
   single-byte (latin-1, windows-125x, koi8...) while the bytes are valid multi-byte UTF-8:
   real single-byte text almost never forms valid UTF-8 sequences by chance, so such a
   prolog lies (miniflux's ``utf8-incorrect-prolog.xml`` is such a feed);
3. strict UTF-8; UTF-8 with a stray byte or two (U+FFFD for them); UTF-8 with windows-1252
   letters mixed in (each read as windows-1252);
4. detection with charset-normalizer.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

from charset_normalizer import from_bytes

from transforms.errors import DecodeError

_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:\-]+)["']""")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:\-]+)""", re.I)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# How far into a document we look for an HTML <meta charset>; WHATWG says 1024 bytes, but
# real pages put it later (miniflux's iso-8859-1-meta-after-1024.html).
_META_SCAN_BYTES = 16_384
# charset-normalizer 'chaos' (mess ratio) within which windows-1252 is preferred.
_CHAOS_MARGIN = 0.05


# XML 1.0 Appendix F: a document without a BOM starts with '<' (or '<?'), whose byte pattern
# gives away UTF-16 and UTF-32.
_XML_AUTODETECT = (
    (b"\x00\x00\x00\x3c", "utf-32-be"),
    (b"\x3c\x00\x00\x00", "utf-32-le"),
    (b"\x00\x3c\x00\x3f", "utf-16-be"),
    (b"\x3c\x00\x3f\x00", "utf-16-le"),
    (b"\x00\x3c", "utf-16-be"),
    (b"\x3c\x00", "utf-16-le"),
)


def wide_encoding(data: bytes) -> str | None:
    """UTF-16/32 detected from a BOM or from the first '<' (XML 1.0 Appendix F)."""
    for bom, codec in _BOMS:
        if data.startswith(bom) and codec != "utf-8":
            return codec
    for prefix, codec in _XML_AUTODETECT:
        if data.startswith(prefix):
            return codec
    return None


def normalize_encoding(name: str | None) -> str | None:
    """Python codec name for a declared charset, or None when unknown."""
    if not name:
        return None
    try:
        codec = codecs.lookup(name.strip().lower()).name
    except LookupError:
        return None
    # Browsers and every feed reader treat ISO-8859-1 and ASCII as windows-1252 (WHATWG).
    if codec in ("latin-1", "iso8859-1", "ascii"):
        return "cp1252"
    return codec


def _is_multibyte(codec: str) -> bool:
    return codec.startswith("utf") or codec in (
        "gb18030", "gbk", "gb2312", "big5", "big5hkscs", "shift_jis", "cp932", "euc_jp",
        "euc_kr", "iso2022_jp", "cp949", "hz",
    )


def declared_encoding(data: bytes) -> str | None:
    """The charset named by an XML prolog or an HTML meta tag (raw name, not validated)."""
    m = _XML_DECL.match(data[:512])
    if m:
        return m.group(1).decode("ascii")
    m = _META_CHARSET.search(data[:_META_SCAN_BYTES])
    if m:
        return m.group(1).decode("ascii")
    return None


# A UTF-8 text with a stray byte or two (a cut in the middle of a character, one bad byte from
# a scraper) is still UTF-8: decoded as detected it became mojibake in every accented letter
# (a French article read as iso8859-10, 'réuni' as 'rÃĐuni'), or a reject when no single-byte
# codec fitted (Cyrillic). With at least UTF8_MIN_VALID well-formed multi-byte characters, and
# UTF8_VALID_PER_INVALID of them per malformed sequence, the text is read as UTF-8 and each
# malformed sequence becomes U+FFFD. A Latin-1 or cp1252 text has next to no well-formed
# sequences (its 'é' is one byte followed by ASCII), so it still goes to detection; so does a
# text that mixes the two about evenly. None of the 2,343 real feeds, AEB pages and samples
# changed codec with this rule (checked against the previous decoder, 2026-11-27).
UTF8_VALID_PER_INVALID = 4
UTF8_MIN_VALID = 8
_REPLACEMENT_RUNS = re.compile("\ufffd+")


def _utf8_counts(data: bytes) -> tuple[str, int, int]:
    """(text read as UTF-8 with U+FFFD, well-formed non-ASCII characters, malformed
    sequences)."""
    text = data.decode("utf-8", errors="replace")
    # a malformed sequence may give several U+FFFD in a row; count runs, minus real ones
    invalid = len(_REPLACEMENT_RUNS.findall(text)) - data.count("\ufffd".encode())
    valid = sum(1 for ch in text if ord(ch) > 127) - text.count("\ufffd")
    return text, valid, invalid


def _mostly_utf8(data: bytes) -> str | None:
    text, valid, invalid = _utf8_counts(data)
    if invalid <= 0:
        return None
    return text if valid >= max(UTF8_MIN_VALID, UTF8_VALID_PER_INVALID * invalid) else None


# A UTF-8 text with windows-1252 pieces in it (a Latin-1 paragraph pasted into a UTF-8 page,
# two feeds concatenated): every byte that is not valid UTF-8 is read as windows-1252, when each
# such byte gives a Latin letter there and the text holds at least MIXED_MIN_VALID well-formed
# multi-byte characters (so it really is partly UTF-8). Detection used to pick one codec for
# the whole text, and half of it came out as mojibake ('TÃªte' or 'D\ufffdj\ufffd').
# (bs4's UnicodeDammit.detwingle does the same for windows-1252 inside UTF-8.) A text with only
# a stray byte or two keeps U+FFFD for them (_mostly_utf8 runs first): a lone bad byte is more
# often a cut or a corruption than a letter.
MIXED_MIN_VALID = 2
_NON_ASCII = re.compile("[^\x00-\x7f]")


def _cp1252_letter(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: a byte that is not UTF-8, read as windows-1252 if it is a Latin
    letter there; anything else stops the decoding (the caller then goes on to detection)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    char = exc.object[exc.start:exc.start + 1].decode("cp1252", errors="replace")
    if not unicodedata.name(char, "").startswith("LATIN"):
        raise exc
    return char, exc.start + 1


codecs.register_error("newsbeam-cp1252-letters", _cp1252_letter)


def _utf8_with_cp1252(data: bytes) -> str | None:
    valid = len(_NON_ASCII.findall(data.decode("utf-8", errors="ignore")))
    if valid < MIXED_MIN_VALID:
        return None
    try:
        return data.decode("utf-8", errors="newsbeam-cp1252-letters")
    except UnicodeDecodeError:
        return None


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode_bytes(data: bytes, declared: str | None = None,
                 own_declaration: bool = True) -> tuple[str, str]:
    """Decode a document. Returns (text, codec used). Raises DecodeError when nothing fits.

    ``declared`` is an outside declaration (an HTTP charset); otherwise the document's own
    (an XML declaration, a ``<meta charset>``), unless ``own_declaration`` is False: JSON
    declares none, and a ``<meta charset>`` inside one of its strings must not decide how
    the whole reads.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(codec), codec
            except UnicodeDecodeError as exc:
                raise DecodeError(
                    f"byte order mark says {codec} but bytes do not decode: {exc}"
                ) from exc
    wide = wide_encoding(data)
    if wide is not None:
        try:
            return data.decode(wide), wide
        except UnicodeDecodeError as exc:
            raise DecodeError(f"bytes look like {wide} but do not decode: {exc}") from exc
    name = declared or (declared_encoding(data) if own_declaration else None)
    declared_codec = normalize_encoding(name)
    as_utf8 = _utf8(data)
    if declared_codec is not None:
        if as_utf8 is not None and not _is_multibyte(declared_codec) and not data.isascii():
            return as_utf8, "utf-8"
        try:
            return data.decode(declared_codec), declared_codec
        except UnicodeDecodeError:
            pass  # the declaration lies; fall through to detection
    if as_utf8 is not None:
        return as_utf8, "utf-8"
    return _undeclared(data, utf8_declared=declared_codec == "utf-8")


# A text that declares UTF-8, with a stray byte or two and too few other non-ASCII characters
# for _mostly_utf8 (feedparser's bozo_linenoise.xml: '’<>”' and one bad byte): read as UTF-8,
# the bad bytes as U+FFFD, when it holds at most DECLARED_UTF8_MAX_INVALID malformed
# sequences and at least as many well-formed multi-byte characters. Detection made it
# Cyrillic mojibake. A Latin-1 text that wrongly declares UTF-8 has no well-formed sequence
# (its 'é' is one byte), so it still goes to detection. Of the 2,330 files of ../shared/data,
# only bozo_linenoise.xml changed codec with this rule (checked 2026-11-30).
DECLARED_UTF8_MAX_INVALID = 3


def _declared_utf8(data: bytes) -> str | None:
    text, valid, invalid = _utf8_counts(data)
    return text if 0 < invalid <= DECLARED_UTF8_MAX_INVALID and valid >= invalid else None


def _undeclared(data: bytes, utf8_declared: bool = False) -> tuple[str, str]:
    """Bytes with no byte order mark and no declaration that holds (``utf8_declared``: one
    said UTF-8) that are not all UTF-8."""
    mostly = _mostly_utf8(data)
    if mostly is not None:
        return mostly, "utf-8"
    mixed = _utf8_with_cp1252(data)
    if mixed is not None:
        return mixed, "utf-8+cp1252"
    if utf8_declared:
        declared = _declared_utf8(data)
        if declared is not None:
            return declared, "utf-8"
    codec = _detect(data)
    try:
        return data.decode(codec), codec
    except UnicodeDecodeError:
        return data.decode(codec, errors="replace"), codec


def decode_piece(data: bytes, at_start: bool) -> str:
    """A piece of a JSONL dump read in pieces (transforms/read.py), decoded on its own. A dump
    is read in pieces only when its first record is UTF-8 (what JSON text exchanged between
    systems is: RFC 8259, section 8.1), so no piece is sniffed for a byte order mark (but the
    file's own, at its start: ``at_start``), a wide encoding or a declaration. Its lines that
    are UTF-8 read as UTF-8; the others, together, as ``decode_bytes`` reads an undeclared
    document that is not all UTF-8 (so a stray Latin-1 line does not turn its neighbours'
    UTF-8 into mojibake, whatever the size of the piece)."""
    if at_start and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    text = _utf8(data)
    if text is not None:
        return text
    lines = data.split(b"\n")
    decoded = [_utf8(line) for line in lines]
    bad = [line for line, text in zip(lines, decoded, strict=True) if text is None]
    try:
        _sample, codec = _undeclared(b"\n".join(bad))
    except DecodeError:  # nothing fits them: read as UTF-8 with replacements
        codec = "utf-8"
    return "\n".join(text if text is not None else _decode_line(line, codec)
                     for line, text in zip(lines, decoded, strict=True))


def _decode_line(line: bytes, codec: str) -> str:
    """A line that is not UTF-8, with the codec ``_undeclared`` found for such lines."""
    if codec == "utf-8+cp1252":
        try:
            return line.decode("utf-8", errors="newsbeam-cp1252-letters")
        except UnicodeDecodeError:
            pass
    elif codec != "utf-8" and _ascii_compatible(codec):
        return line.decode(codec, errors="replace")
    # a stray byte in UTF-8 text; or a guess of UTF-16 or the like, which would merge lines
    return line.decode("utf-8", errors="replace")


def _ascii_compatible(codec: str) -> bool:
    if codec.startswith("utf-8"):  # utf-8, and utf-8+cp1252 (_utf8_with_cp1252)
        return True
    probe = '\n{}[]":,abc'
    try:
        return probe.encode(codec) == probe.encode("ascii")
    except (LookupError, UnicodeError):
        return False


def _latin_script(text: str) -> bool:
    """True when most non-ASCII letters of a text are Latin letters."""
    letters = [ch for ch in text if ord(ch) > 127 and ch.isalpha()]
    if not letters:
        return True
    latin = sum(1 for ch in letters if unicodedata.name(ch, "").startswith("LATIN"))
    return latin >= 0.8 * len(letters)


def _detect(data: bytes) -> str:
    """charset-normalizer's best guess, with one correction: on short Western text it often
    ranks cp1250 or cp1257 a hair above windows-1252 (reading 'à' as 'ą'). When the best guess
    decodes to Latin script and windows-1252 is within a small margin, take windows-1252, the
    fallback WHATWG prescribes for undeclared Western documents."""
    matches = list(from_bytes(data[:200_000]))
    if not matches:
        raise DecodeError("no character encoding fits these bytes")
    best = matches[0]
    cp1252 = next((m for m in matches if m.encoding == "cp1252"), None)
    if (
        cp1252 is not None
        and cp1252.chaos <= best.chaos + _CHAOS_MARGIN
        and _latin_script(str(best))
    ):
        return "cp1252"
    return normalize_encoding(best.encoding) or best.encoding


def looks_binary(data: bytes) -> bool:
    """True for bytes that are not text in any encoding we read: NULs outside UTF-16/32, or
    many control bytes."""
    head = data[:8192]
    if any(head.startswith(bom) for bom, _ in _BOMS) or wide_encoding(head):
        return False
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls > max(8, len(head) // 100)
