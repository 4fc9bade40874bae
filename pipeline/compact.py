"""newsbeam compact OUT: merge the small files of article partitions into one file each (or,
for a partition holding more rows than a run writes to one file, into files of that many).

A stream writes one file per window and partition; after a day of one-minute windows a
partition can hold hundreds of small files. Compaction rewrites a partition as one file:

1. It takes the partition's lock (OUT/_locks/articles/date=.../lock, created with O_EXCL):
   a run or a stream committing into that partition waits for it, and it waits for them, so
   no file lands in a partition while it is being swapped. Other partitions are untouched:
   compaction is safe while a stream writes elsewhere.
2. It reads the partition's files, writes the merged rows (sorted, content-named, the same
   schema) into a complete new folder under OUT/_staging, and checks the row count.
3. It swaps the new folder and the partition in one step (Linux renameat2 RENAME_EXCHANGE):
   a reader lists either all the old files or the one new file, never both and never none.
   Where the exchange is not available (other systems, object stores) it falls back to two
   renames: a reader may then briefly see an empty partition, never duplicated rows.
4. It deletes the old files, now in the staging folder.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from transforms.write import ROW_GROUP_ROWS, max_rows_per_file, stamped_schema

LOCKS = "_locks"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class PartitionBusy(Exception):
    """The partition's lock was not released in time."""


@contextmanager
def partition_lock(output_dir: str, dataset: str, part: str, timeout: float = 120.0
                   ) -> Iterator[None]:
    """Exclusive use of one partition (local filesystems), between committing runs and
    compaction. A lock whose holder process is gone is taken over."""
    folder = os.path.join(output_dir, LOCKS, dataset, part)
    path = os.path.join(folder, "lock")
    deadline = time.monotonic() + timeout
    while True:
        try:
            # inside the loop: a holder releasing its lock removes the (then empty) folder,
            # so the folder can vanish between this and the open, or while makedirs runs
            os.makedirs(folder, exist_ok=True)
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            break
        except FileNotFoundError:  # the folder was removed under us: make it again
            continue
        except FileExistsError:
            if not os.path.lexists(path):
                continue  # makedirs lost a race with a removal, not a held lock
            if _holder_gone(path):
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass
                continue
            if time.monotonic() > deadline:
                raise PartitionBusy(f"partition {dataset}/{part} stayed locked for "
                                    f"{timeout:.0f}s ({path})") from None
            time.sleep(0.05)
    try:
        yield
    finally:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        # the partition's folder goes too (one per partition ever committed would pile up);
        # one another process is using again is not empty, and stays
        try:
            os.rmdir(folder)
        except OSError:
            pass


def _holder_gone(path: str) -> bool:
    try:
        pid = int(open(path, encoding="utf-8").read().strip() or "0")
    except (OSError, ValueError):
        return False  # being written right now
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def exchange(a: str, b: str) -> bool:
    """Swap two paths atomically (Linux renameat2); False where it is not available."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, a.encode(), _AT_FDCWD, b.encode(), _RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), a)


@dataclass
class Compacted:
    partition: str
    files_before: int
    rows: int
    swapped_atomically: bool
    files_after: int = 1


def _part_files(folder: str) -> list[str]:
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if n.endswith(".parquet") and not n.startswith((".", "_")))


def compact_partition(output_dir: str, part: str, dataset: str = "articles",
                      min_files: int = 2) -> Compacted | None:
    """Merge one partition's files into as few as hold its rows: one, or files of at most the
    rows a run writes to one file (``max_rows_per_file``: a partition a large run split stays
    split). None when it has fewer than ``min_files`` or merging would not make fewer files."""
    folder = os.path.join(output_dir, dataset, part)
    with partition_lock(output_dir, dataset, part):
        files = _part_files(folder)
        if len(files) < min_files:
            return None
        cap = max_rows_per_file(dataset) or 0
        total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        chunks = max(1, -(-total // cap)) if cap else 1
        if chunks >= len(files):
            return None
        schema = stamped_schema(dataset)
        table = pa.concat_tables([pq.read_table(f, schema=schema) for f in files])
        if "article_id" in table.column_names:
            table = table.sort_by([("article_id", "ascending"), ("content_hash", "ascending")])
        digest = hashlib.sha256()
        for f in files:
            digest.update(os.path.basename(f).encode())
        staging = os.path.join(output_dir, "_staging", f"compact-{uuid.uuid4().hex[:8]}")
        new_folder = os.path.join(staging, part)
        os.makedirs(new_folder)
        size = -(-table.num_rows // chunks)
        written = 0
        for k in range(chunks):
            name = f"part-{digest.hexdigest()[:16]}" + (f"-{k:03d}" if chunks > 1 else "")
            merged = os.path.join(new_folder, f"{name}.parquet")
            pq.write_table(table.slice(k * size, size), merged, compression="zstd",
                           row_group_size=ROW_GROUP_ROWS)
            written += pq.ParquetFile(merged).metadata.num_rows
        if written != table.num_rows:
            shutil.rmtree(staging)
            raise RuntimeError(f"compaction of {part} wrote a wrong row count; nothing changed")
        atomic = exchange(new_folder, folder)
        if not atomic:
            old = os.path.join(staging, "old")
            os.rename(folder, old)
            os.rename(new_folder, folder)
        shutil.rmtree(staging)
        return Compacted(part, len(files), table.num_rows, atomic, chunks)


def partitions(output_dir: str, dataset: str = "articles") -> list[str]:
    root = os.path.join(output_dir, dataset)
    if not os.path.isdir(root):
        return []
    return sorted(n for n in os.listdir(root) if "=" in n and not n.startswith("."))
