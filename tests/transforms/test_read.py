"""Reading files: decompression by magic bytes, caps, corrupt and vanished files."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import pytest

from transforms.errors import DecompressError, EmptyInput, ReadError, TooLarge
from transforms.read import decompress, read_document

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def test_gzip_and_bzip2_are_decompressed_by_content(tmp_path: Path) -> None:
    gz = tmp_path / "feed.xml"  # no .gz suffix: detected from the magic bytes
    gz.write_bytes(gzip.compress(FEED))
    bz = tmp_path / "feed.xml.bz2"
    bz.write_bytes(bz2.compress(FEED))
    assert next(read_document(str(gz))).data == FEED
    assert next(read_document(str(bz))).data == FEED


def test_gzip_bomb_is_refused() -> None:
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024))
    with pytest.raises(DecompressError, match="bomb"):
        decompress("bomb.gz", bomb, max_bytes=50 * 1024 * 1024)


def test_bzip2_bomb_is_refused() -> None:
    bomb = bz2.compress(b"a" * (30 * 1024 * 1024))
    with pytest.raises(DecompressError, match="bomb"):
        decompress("bomb.bz2", bomb, max_bytes=50 * 1024 * 1024)


def test_corrupt_and_truncated_archives() -> None:
    with pytest.raises(DecompressError, match="corrupt"):
        decompress("x.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage", 1 << 20)
    with pytest.raises(DecompressError, match="truncated"):
        decompress("x.gz", gzip.compress(FEED * 50)[:-30], 1 << 20)


def test_size_cap_empty_and_missing(tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    big.write_bytes(b"x" * 2000)
    with pytest.raises(TooLarge):
        next(read_document(str(big), max_bytes=1000))
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"  \n")
    with pytest.raises(EmptyInput):
        next(read_document(str(empty)))
    with pytest.raises(ReadError):
        next(read_document(str(tmp_path / "vanished.xml")))
