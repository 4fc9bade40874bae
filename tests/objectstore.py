"""An object store in memory (scheme ``nbmem://``), registered with Beam's FileSystems: flat
keys, no directories, listing by prefix, like gs:// or s3://. Beam 2.77 ships no in-memory
filesystem, and the tests cannot reach a real bucket; importing this module registers it."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

from apache_beam.io.filesystem import CompressionTypes, FileMetadata, FileSystem

_FILES: dict[str, tuple[bytes, float]] = {}
_LOCK = threading.Lock()


class _Writer(io.BytesIO):
    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path

    def close(self) -> None:
        if not self.closed:
            with _LOCK:
                _FILES[self._path] = (self.getvalue(), time.time())
        super().close()


class MemoryObjectStore(FileSystem):
    @classmethod
    def scheme(cls) -> str:
        return "nbmem"

    def join(self, basepath: str, *paths: str) -> str:
        return "/".join([basepath.rstrip("/"), *(p.strip("/") for p in paths)])

    def split(self, path: str) -> tuple[str, str]:
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def mkdirs(self, path: str) -> None:
        pass  # no directories in an object store

    def has_dirs(self) -> bool:
        return False

    def _list(self, dir_or_prefix: str) -> Any:
        with _LOCK:
            items = [(p, d, t) for p, (d, t) in _FILES.items() if p.startswith(dir_or_prefix)]
        for path, data, mtime in sorted(items):
            yield FileMetadata(path, len(data), mtime)

    def create(self, path: str, mime_type: str = "application/octet-stream",
               compression_type: str = CompressionTypes.AUTO) -> Any:
        return _Writer(path)

    def open(self, path: str, mime_type: str = "application/octet-stream",
             compression_type: str = CompressionTypes.AUTO) -> Any:
        with _LOCK:
            if path not in _FILES:
                raise FileNotFoundError(path)
            return io.BytesIO(_FILES[path][0])

    def copy(self, source_file_names: list[str], destination_file_names: list[str]) -> None:
        with _LOCK:
            for src, dst in zip(source_file_names, destination_file_names, strict=True):
                _FILES[dst] = (_FILES[src][0], time.time())

    def rename(self, source_file_names: list[str], destination_file_names: list[str]) -> None:
        with _LOCK:
            for src, dst in zip(source_file_names, destination_file_names, strict=True):
                _FILES[dst] = (_FILES.pop(src)[0], time.time())

    def exists(self, path: str) -> bool:
        """An object of that exact name: a prefix is no object (gcsio.exists, s3io)."""
        with _LOCK:
            return path in _FILES

    def size(self, path: str) -> int:
        return len(_FILES[path][0])

    def last_updated(self, path: str) -> float:
        return _FILES[path][1]

    def checksum(self, path: str) -> str:
        return str(hash(_FILES[path][0]))

    def metadata(self, path: str) -> FileMetadata:
        data, mtime = _FILES[path]
        return FileMetadata(path, len(data), mtime)

    def delete(self, paths: list[str]) -> None:
        """As gs:// does (GCSFileSystem.delete): a path ending in '/' deletes everything
        under it; any other path only the object of that exact name."""
        with _LOCK:
            for path in paths:
                if path.endswith("/"):
                    for key in [k for k in _FILES if k.startswith(path)]:
                        del _FILES[key]
                else:
                    _FILES.pop(path, None)
