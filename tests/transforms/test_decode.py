"""Bytes -> text: declared charsets, lying prologs, undeclared encodings, wide encodings."""

from __future__ import annotations

import codecs

import pytest

from transforms.decode import declared_encoding, decode_bytes, looks_binary, wide_encoding
from transforms.errors import DecodeError

CAFE_UTF8 = "Café – Grüße".encode()


@pytest.mark.parametrize(
    ("data", "expected", "codec"),
    [
        # declared and true
        (b'<?xml version="1.0" encoding="koi8-r"?><a>' + "Привет".encode("koi8-r") + b"</a>",
         "Привет", "koi8-r"),
        (b'<?xml version="1.0" encoding="windows-1251"?><a>' + "Цитата".encode("cp1251")
         + b"</a>", "Цитата", "cp1251"),
        # ISO-8859-1 is read as windows-1252 (WHATWG), so the euro sign survives
        (b'<?xml version="1.0" encoding="iso-8859-1"?><a>' + "Caf\u00e9 \u20ac".encode("cp1252")
         + b"</a>", "Café €", "cp1252"),
        # a prolog that lies: says ISO-8859-1, bytes are UTF-8
        (b'<?xml version="1.0" encoding="ISO-8859-1"?><a>' + CAFE_UTF8 + b"</a>",
         "Café – Grüße", "utf-8"),
        # an unknown charset name falls back to UTF-8
        (b'<?xml version="1.0" encoding="invalid"?><a>' + CAFE_UTF8 + b"</a>",
         "Café – Grüße", "utf-8"),
        # says UTF-8, bytes are latin-1: detection
        (b'<?xml version="1.0" encoding="utf-8"?><note><to>Ana\xefs</to><from>J\xfcrgen'
         b"</from></note>", "Jürgen", "cp1252"),
        # HTML meta charset
        (b'<html><head><meta charset="iso-8859-1"><title>Fr\xe9d\xe9ric</title>', "Frédéric",
         "cp1252"),
        # BOMs win
        (codecs.BOM_UTF8 + CAFE_UTF8, "Café – Grüße", "utf-8"),
        (codecs.BOM_UTF16_LE + "Café".encode("utf-16-le"), "Café", "utf-16-le"),
        # UTF-16 without BOM, detected from '<' (XML 1.0 Appendix F)
        ('<?xml version="1.0"?><a>Café</a>'.encode("utf-16-be"), "Café", "utf-16-be"),
    ],
)
def test_decode_bytes(data: bytes, expected: str, codec: str) -> None:
    text, used = decode_bytes(data)
    assert expected in text
    assert used == codec


def test_undeclared_western_text_prefers_windows_1252() -> None:
    text = ("<rss><channel><title>Les très belles idées</title><item><title>Été à Paris, "
            "déjà vu</title><description>Un café près de la Seine, où l'on parle "
            "français.</description></item></channel></rss>")
    decoded, codec = decode_bytes(text.encode("latin-1"))
    assert decoded == text
    assert codec == "cp1252"


def test_bom_with_invalid_bytes_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode_bytes(codecs.BOM_UTF8 + b"ok \xf1\x28 broken")


def test_declared_encoding_from_prolog_and_meta() -> None:
    assert declared_encoding(b'<?xml version="1.0" encoding="KOI8-R"?>') == "KOI8-R"
    assert declared_encoding(b'<html><meta http-equiv="Content-Type" '
                             b'content="text/html; charset=windows-1252">') == "windows-1252"
    assert declared_encoding(b"<rss>") is None


def test_binary_and_wide_text_are_told_apart() -> None:
    assert looks_binary(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert not looks_binary("<a>ok</a>".encode("utf-16-le"))
    assert wide_encoding("<a/>".encode("utf-32-le")) == "utf-32-le"
    assert not looks_binary(b"plain text\nwith lines\n")


FRENCH = ("Le conseil municipal s'est réuni mardi soir pour débattre du nouveau plan du port, "
          "qui ajouterait quarante places et un terminal de ferry d'ici le printemps prochain. "
          "Les élus ont voté à l'unanimité. ") * 3
RUSSIAN = "Городской совет собрался во вторник вечером, чтобы обсудить новый план порта. " * 3


@pytest.mark.parametrize("stray", [b"\xff", b"\xed\xa0\x80", b"\xe9"],
                         ids=["bad-byte", "encoded-surrogate", "latin1-byte"])
@pytest.mark.parametrize("text", [FRENCH, RUSSIAN], ids=["french", "russian"])
def test_utf8_with_a_stray_byte_stays_utf8(text: str, stray: bytes) -> None:
    """One malformed sequence in a UTF-8 text becomes U+FFFD; the rest stays readable (it
    was read as iso8859-10 mojibake, or rejected when no single-byte codec fitted)."""
    data = text.encode("utf-8")
    cut = data.index(b" ", 150)
    decoded, codec = decode_bytes(data[:cut] + stray + data[cut:])
    assert codec == "utf-8"
    assert decoded.count("\ufffd") >= 1 and decoded.replace("\ufffd", "") == text


def test_latin1_text_is_still_detected_not_read_as_broken_utf8() -> None:
    decoded, codec = decode_bytes(FRENCH.encode("latin-1"))
    assert codec == "cp1252" and decoded == FRENCH


def test_utf8_with_windows_1252_pieces_reads_both() -> None:
    """A UTF-8 text with a Latin-1 paragraph pasted in: each byte that is not UTF-8 and is a
    Latin letter in windows-1252 is read as such (detection read the whole text with one
    codec, and half of it came out as mojibake)."""
    data = "Tête à tête\n\n".encode() + "Déjà vu, ça".encode("latin-1")
    assert decode_bytes(data) == ("Tête à tête\n\nDéjà vu, ça", "utf-8+cp1252")
    long = FRENCH.encode("utf-8") + b"\n\n" + FRENCH.encode("cp1252")
    assert decode_bytes(long) == (FRENCH + "\n\n" + FRENCH, "utf-8+cp1252")
    # a lone Latin-1 byte in a UTF-8 text is still taken for a stray byte (U+FFFD, above)


def test_mixed_text_whose_other_part_is_not_latin_goes_to_detection() -> None:
    """Cyrillic windows-1251 bytes are not Latin letters in windows-1252: no mojibake is made
    of them; detection finds no single codec either, so the unit is a decode_error reject."""
    from transforms.errors import DecodeError

    with pytest.raises(DecodeError):
        decode_bytes("Tête à tête\n\n".encode() + RUSSIAN.encode("cp1251"))


def test_declared_utf8_with_one_stray_byte_and_little_else_stays_utf8() -> None:
    """feedparser's bozo_linenoise.xml: a UTF-8 declaration, '’<>”' and one bad byte. Too
    few non-ASCII characters for the undeclared rule, so detection read it all as Cyrillic
    ('тАЩтАЭй'). A Latin-1 text that wrongly declares UTF-8 has no well-formed sequence and
    still goes to detection."""
    head = b'<?xml version="1.0" encoding="utf-8"?><rss><channel><item><description>'
    tail = b"</description></item></channel></rss>"
    text, codec = decode_bytes(head + b" \xe2\x80\x99<>\xe2\x80\x9d\xa9 " + tail)
    assert codec == "utf-8" and "’<>”\ufffd" in text
    latin, codec = decode_bytes(head + "Café au lait".encode("latin-1") + tail)
    assert codec != "utf-8" and "Café au lait" in latin
