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

Every run also adds one file to each of OUT's flat datasets (``_index``, ``duplicates``,
``rejects``, ``_state/...``), and a run reads every ``_index`` and ``_state`` file at its
start: an hourly job leaves 8,760 of each a year, and a run then spends most of its time
opening them (about 3 ms a file on a local disk here, far more on an object store). Those
datasets are compacted the same way, the whole folder swapped, but only under the OUT lock
(``compact_dataset``): runs and streams read and write them without partition locks. Files of
another schema version (an index a later run upgrades) or of other signature settings are never
merged with the rest; they move unchanged, as does any other file in the folder.
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

from transforms.neardup import SIGNATURE_KEY
from transforms.streaming import FILE_STATE
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
    merged: tuple[str, ...] = ()  # the names of the files merged
    into: tuple[str, ...] = ()  # the names of the files written in their place

    def record(self, dataset: str) -> dict[str, object]:
        """This merge, for the compaction's record under OUT/_runs/compactions."""
        return {"dataset": dataset, "partition": self.partition if dataset == "articles"
                else "", "rows": self.rows, "merged": list(self.merged),
                "into": list(self.into)}


def _part_files(folder: str) -> list[str]:
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if n.endswith(".parquet") and not n.startswith((".", "_")))


# the order of a merged file's rows (what makes a row itself, as in transforms/write.py);
# OUT/_state/files: the last row of a path is its latest read, as in file-name order before
SORT_KEYS: dict[str, tuple[str, ...]] = {
    "articles": ("article_id", "content_hash", "revision"),
    "_index": ("article_id", "content_hash", "revision"),
    "duplicates": ("article_id", "duplicate_of", "input_path", "url", "run_id"),
    "rejects": ("input_path", "stage", "reason", "run_id"),
    "_state/feeds": ("feed_key", "run_id"),
    "_state/links": ("link", "url", "run_id"),
    FILE_STATE: ("path", "run_id"),
}
# OUT's datasets that are not partitioned, compacted whole under the OUT lock
FLAT_DATASETS = ("_index", "duplicates", "rejects", "_state/feeds", "_state/links", FILE_STATE)


def _merge_into(new_folder: str, dataset: str, files: list[str],
                metadata: dict[str, str] | None) -> tuple[int, list[str]]:
    """Write ``files``' rows, sorted, into ``new_folder`` as one file or files of the writers'
    size; (rows, the names written). The names derive from the merged files' names."""
    schema = stamped_schema(dataset, metadata)
    table = pa.concat_tables([pq.read_table(f, schema=schema) for f in files])
    keys = [k for k in SORT_KEYS.get(dataset, ()) if k in table.column_names]
    if keys:
        table = table.sort_by([(k, "ascending") for k in keys])
    chunks = _chunks(dataset, files)
    digest = hashlib.sha256()
    for f in files:
        digest.update(os.path.basename(f).encode())
    size = -(-table.num_rows // chunks)
    written = 0
    names = []
    for k in range(chunks):
        name = f"part-{digest.hexdigest()[:16]}" + (f"-{k:03d}" if chunks > 1 else "")
        merged = os.path.join(new_folder, f"{name}.parquet")
        pq.write_table(table.slice(k * size, size), merged, compression="zstd",
                       row_group_size=ROW_GROUP_ROWS)
        written += pq.ParquetFile(merged).metadata.num_rows
        names.append(f"{name}.parquet")
    if written != table.num_rows:
        raise RuntimeError(f"compaction of {dataset} wrote a wrong row count; nothing changed")
    return table.num_rows, names


def _link_rest(folder: str, new_folder: str, merged: list[str]) -> None:
    """Hard-link into the new folder every entry of ``folder`` that is not merged (files of
    another version, a user's file): the swap must not take anything away."""
    skip = set(merged)
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if path in skip:
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            raise RuntimeError(f"{folder} holds a folder ({name}); not compacted")
        os.link(path, os.path.join(new_folder, name), follow_symlinks=False)


def _swap_in(staging: str, new_folder: str, folder: str) -> bool:
    """Put ``new_folder`` in the place of ``folder`` (atomically where the system can), then
    delete the old files; whether the swap was atomic."""
    atomic = exchange(new_folder, folder)
    if not atomic:
        old = os.path.join(staging, "old")
        os.rename(folder, old)
        os.rename(new_folder, folder)
    shutil.rmtree(staging)
    return atomic


COMPACT_PREFIX = "compact-"


def compaction_alive(name: str) -> bool:
    """Whether an OUT/_staging folder is a running compaction's (``compact-<pid>-<id>``, its
    process alive): a run starting meanwhile must leave it, since compact does not hold the
    OUT lock while it merges article partitions."""
    parts = name.split("-")
    if not name.startswith(COMPACT_PREFIX) or len(parts) < 3 or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _new_staging(output_dir: str, leaf: str) -> tuple[str, str]:
    staging = os.path.join(output_dir, "_staging",
                           f"{COMPACT_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    new_folder = os.path.join(staging, leaf)
    os.makedirs(new_folder)
    return staging, new_folder


def _chunks(dataset: str, files: list[str]) -> int:
    """How many files ``files``' rows make: one, or files of the writers' size."""
    cap = max_rows_per_file(dataset) or 0
    total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    return max(1, -(-total // cap)) if cap else 1


def compact_partition(output_dir: str, part: str, dataset: str = "articles",
                      min_files: int = 2) -> Compacted | None:
    """Merge one partition's files into as few as hold its rows: one, or files of at most the
    rows a run writes to one file (``max_rows_per_file``: a partition a large run split stays
    split). None when it has fewer than ``min_files`` or merging would not make fewer files."""
    folder = os.path.join(output_dir, dataset, part)
    with partition_lock(output_dir, dataset, part):
        files = _part_files(folder)
        if len(files) < min_files or _chunks(dataset, files) >= len(files):
            return None
        staging, new_folder = _new_staging(output_dir, part)
        try:
            rows, written = _merge_into(new_folder, dataset, files, None)
            _link_rest(folder, new_folder, files)
        except BaseException:
            shutil.rmtree(staging)
            raise
        atomic = _swap_in(staging, new_folder, folder)
        return Compacted(part, len(files), rows, atomic, len(written),
                         tuple(os.path.basename(f) for f in files), tuple(written))


def _merge_groups(dataset: str, files: list[str]) -> dict[str, list[str]]:
    """The files of a flat dataset that may merge, by the signature settings they record
    (index files; '' for the others). The others move unchanged: another schema (an older
    version, which a run upgrades or reads as it is) or a file that cannot be read."""
    current = stamped_schema(dataset)
    groups: dict[str, list[str]] = {}
    for f in files:
        try:
            schema = pq.read_schema(f)
        except Exception:  # noqa: BLE001 - a damaged file is the run's to report, not ours
            continue
        if not schema.equals(current, check_metadata=False):
            continue
        tag = (schema.metadata or {}).get(SIGNATURE_KEY.encode(), b"").decode()
        groups.setdefault(tag, []).append(f)
    return groups


def compact_dataset(output_dir: str, dataset: str, min_files: int = 2) -> Compacted | None:
    """Merge the files of one of OUT's flat datasets (``FLAT_DATASETS``). The caller holds
    the OUT lock: runs and streams read and write these folders under it, not under
    partition locks. The new folder (merged files, and hard links of the files that do not
    merge) takes the old one's place in one step, as a partition's does."""
    folder = os.path.join(output_dir, *dataset.split("/"))
    if not os.path.isdir(folder):
        return None
    groups = _merge_groups(dataset, _part_files(folder))
    merging = {tag: group for tag, group in groups.items()
               if len(group) >= min_files and _chunks(dataset, group) < len(group)}
    if not merging:
        return None
    staging, new_folder = _new_staging(output_dir, os.path.basename(folder))
    rows = 0
    written: list[str] = []
    try:
        for tag, group in sorted(merging.items()):
            got, made = _merge_into(new_folder, dataset, group,
                                    {SIGNATURE_KEY: tag} if tag else None)
            rows, written = rows + got, written + made
        _link_rest(folder, new_folder, [f for g in merging.values() for f in g])
    except BaseException:
        shutil.rmtree(staging)
        raise
    merged = sorted(os.path.basename(f) for g in merging.values() for f in g)
    atomic = _swap_in(staging, new_folder, folder)
    return Compacted(dataset, len(merged), rows, atomic, len(written), tuple(merged),
                     tuple(written))


def write_record(output_dir: str, started: str, merges: list[dict[str, object]]) -> str:
    """What a compaction merged into what (OUT/_runs/compactions/<time>-compact.json): a
    run's manifest names the files it wrote, and compaction replaces some of them later."""
    import json

    folder = os.path.join(output_dir, "_runs", "compactions")
    os.makedirs(folder, exist_ok=True)
    name = f"{started}-compact"
    path = os.path.join(folder, f"{name}.json")
    k = 2
    while os.path.exists(path):
        path = os.path.join(folder, f"{name}-{k}.json")
        k += 1
    temp = os.path.join(folder, f".{os.path.basename(path)}.inprogress")
    with open(temp, "w", encoding="utf-8") as fh:
        json.dump({"kind": "compaction", "started_at": started, "merges": merges}, fh,
                  indent=1)
    os.replace(temp, path)
    return path


def partitions(output_dir: str, dataset: str = "articles") -> list[str]:
    root = os.path.join(output_dir, dataset)
    if not os.path.isdir(root):
        return []
    return sorted(n for n in os.listdir(root) if "=" in n and not n.startswith("."))
