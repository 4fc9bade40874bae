"""Bytes -> text: honour the declared charset, detect it when none is declared, and catch
declarations that lie.

Order of evidence (after WHATWG's encoding sniffing and RFC 7303):
1. a byte order mark;
2. the charset the document declares (XML prolog, HTML ``<meta>``), unless the declaration is
   single-byte (latin-1, windows-125x, koi8...) while the bytes are valid multi-byte UTF-8:
   real single-byte text almost never forms valid UTF-8 sequences by chance, so such a
   prolog lies (miniflux's ``utf8-incorrect-prolog.xml`` is such a feed);
3. strict UTF-8;
4. detection with charset-normalizer.
"""

from __future__ import annotations

import codecs
import re

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


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode_bytes(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """Decode a document. Returns (text, codec used). Raises DecodeError when nothing fits.

    ``declared`` is an outside declaration (an HTTP charset); otherwise the document's own.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(codec), codec
            except UnicodeDecodeError as exc:
                raise DecodeError(f"byte order mark says {codec} but bytes do not decode: {exc}")
    name = declared or declared_encoding(data)
    codec = normalize_encoding(name)
    as_utf8 = _utf8(data)
    if codec is not None:
        if as_utf8 is not None and not _is_multibyte(codec) and not data.isascii():
            return as_utf8, "utf-8"
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            pass  # the declaration lies; fall through to detection
    if as_utf8 is not None:
        return as_utf8, "utf-8"
    codec = _detect(data)
    try:
        return data.decode(codec), codec
    except UnicodeDecodeError:
        return data.decode(codec, errors="replace"), codec


def _detect(data: bytes) -> str:
    """charset-normalizer's best guess. Among equally good single-byte candidates (it often
    ties cp1250, cp1252 and cp1257 on Western text) prefer windows-1252, the fallback WHATWG
    prescribes for undeclared Western documents."""
    matches = list(from_bytes(data[:200_000]))
    if not matches:
        raise DecodeError("no character encoding fits these bytes")
    best = matches[0]
    ties = [m.encoding for m in matches
            if m.chaos == best.chaos and m.coherence == best.coherence]
    choice = "cp1252" if "cp1252" in ties else best.encoding
    return normalize_encoding(choice) or choice


def looks_binary(data: bytes) -> bool:
    """True for bytes that are not text in any encoding we read: NULs outside UTF-16/32, or
    many control bytes."""
    head = data[:8192]
    if any(head.startswith(bom) for bom, _ in _BOMS):
        return False
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls > max(8, len(head) // 100)
