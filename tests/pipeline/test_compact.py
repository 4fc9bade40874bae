"""newsbeam compact: many small files of a partition become one, atomically, under the
partition's lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.compact import PartitionBusy, compact_partition, exchange, partition_lock
from tests.pipeline.test_cli import newsbeam


def story(i: int) -> str:
    return json.dumps({"url": f"https://c.example/{i}", "title": f"Story {i}",
                       "published": "2024-03-04T10:00:00Z",
                       "text": " ".join(f"s{i}w{k} t{k % 9}." for k in range(80))}) + "\n"


def test_the_swap_is_atomic_for_a_concurrent_reader(tmp_path: Path) -> None:
    import pyarrow as pa

    live, spare = tmp_path / "date=x", tmp_path / "spare"
    live.mkdir()
    spare.mkdir()
    rows = pa.table({"n": list(range(30))})
    for i in range(3):  # the old layout: three files of 10 rows
        pq.write_table(rows.slice(i * 10, 10), live / f"part-{i}.parquet")
    pq.write_table(rows, spare / "part-merged.parquet")  # the new one: one file of 30 rows
    if not exchange(str(spare), str(live)):
        pytest.skip("renameat2 RENAME_EXCHANGE is not available on this system")
    seen: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.append(pq.ParquetDataset(str(live)).read().num_rows)
            except (FileNotFoundError, OSError) as exc:  # a file vanished mid-read
                seen.append(-1 if "No such file" in str(exc) else -2)

    thread = threading.Thread(target=reader)
    thread.start()
    for _ in range(300):
        assert exchange(str(spare), str(live))
    stop.set()
    thread.join()
    # never a mix of old and new files (10 or 20 rows, or 40+); a listing that raced the swap
    # either fails (-1) or, seldom, finds the folder being swapped empty (0): the reader
    # reads again (seen once in ~400 runs of this test)
    assert seen and set(seen) <= {30, -1, 0}
    assert 30 in seen  # how often a read lands between swaps is the scheduler's, not ours


def test_partition_lock_excludes_compaction(tmp_path: Path) -> None:
    part = tmp_path / "articles" / "date=2024-03-04"
    part.mkdir(parents=True)
    with partition_lock(str(tmp_path), "articles", "date=2024-03-04"):
        with pytest.raises(PartitionBusy):
            with partition_lock(str(tmp_path), "articles", "date=2024-03-04", timeout=0.3):
                pass
    assert compact_partition(str(tmp_path), "date=2024-03-04") is None  # free again, empty


def test_released_locks_leave_no_folders(tmp_path: Path) -> None:
    """A partition's lock folder goes with its lock (one per partition ever committed would
    pile up under OUT/_locks); a folder another holder uses stays."""
    with partition_lock(str(tmp_path), "articles", "date=2024-03-04"):
        with partition_lock(str(tmp_path), "articles", "date=2024-03-05"):
            pass
        assert (tmp_path / "_locks" / "articles" / "date=2024-03-04" / "lock").exists()
        assert not (tmp_path / "_locks" / "articles" / "date=2024-03-05").exists()
    assert list((tmp_path / "_locks" / "articles").iterdir()) == []
    with partition_lock(str(tmp_path), "articles", "date=2024-03-04"):  # taken again
        pass


def _hammer(out: str, parts: list[str], seconds: float, errors: Any) -> None:
    import traceback

    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            for part in parts:
                with partition_lock(out, "articles", part, timeout=30):
                    pass
    except Exception:
        errors.put(traceback.format_exc())


def test_locks_taken_and_released_by_several_processes_at_once(tmp_path: Path) -> None:
    """Releasing removes the partition's folder while another process may be making it, or
    opening its lock: neither may fail."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), parts, 3.0, errors))
             for parts in (["date=2024-01-01"], ["date=2024-01-01", "date=2024-01-02"],
                           ["date=2024-01-02"])]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert errors.empty(), errors.get()
    assert all(p.exitcode == 0 for p in procs)


def test_compact_keeps_a_large_partition_in_files_of_the_writers_size(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A partition holding more rows than a run writes to one file is merged into files of at
    most that many rows (a split made for the workers' memory is not undone), and one that
    would not lose a file is left alone."""
    import transforms.write as write
    from schemas import article_row
    from tests.transforms.test_write import article

    for i in range(5):  # five runs' files, one row each
        list(write.write_partition(str(tmp_path), "articles", "date=2024-03-04",
                                   [article_row(article(i, "2024-03-04"))]))
    part = tmp_path / "articles" / "date=2024-03-04"
    before = pd.read_parquet(part).sort_values("article_id").reset_index(drop=True)
    monkeypatch.setattr(write, "DEFAULT_MAX_ROWS_PER_FILE", 2)
    done = compact_partition(str(tmp_path), "date=2024-03-04")
    assert done is not None and (done.files_before, done.files_after, done.rows) == (5, 3, 5)
    sizes = sorted(pq.ParquetFile(f).metadata.num_rows for f in part.glob("*.parquet"))
    assert sizes == [1, 2, 2]
    after = pd.read_parquet(part).sort_values("article_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)
    assert compact_partition(str(tmp_path), "date=2024-03-04") is None  # 3 files is the least


def _frame(folder: Path) -> pd.DataFrame:
    """A flat dataset as a reader sees it, in a fixed order (list columns as tuples)."""
    frame = pd.read_parquet(folder)
    for col in frame.columns:
        frame[col] = frame[col].map(lambda v: tuple(v) if hasattr(v, "__len__")
                                    and not isinstance(v, (str, bytes)) else v)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_compact_merges_what_scheduled_runs_leave_and_readers_see_the_same_rows(
        tmp_path: Path) -> None:
    """Three runs leave three files in an article partition and in OUT/_index, duplicates and
    rejects (and a run reads all of _index at its start). compact merges the partition under
    its lock, the others under the OUT lock (only the partition while a run or a stream holds
    OUT); readers see the same rows, and a later run still finds every stored article through
    the merged index."""
    from pipeline.lock import acquire

    out = tmp_path / "out"
    inputs = []
    for run in range(3):  # each run: two stories, a copy of the first, one bad line
        src = tmp_path / f"run{run}.jsonl"
        src.write_text(story(2 * run) + story(2 * run + 1) + story(2 * run) + "{oops\n")
        inputs.append(src)
        proc = newsbeam("run", str(src), "--output", str(out))
        assert proc.returncode == 0, proc.stderr
    part = out / "articles" / "date=2024-03-04"
    flat = ("_index", "duplicates", "rejects")
    assert all(len(list(folder.glob("*.parquet"))) == 3
               for folder in (part, *(out / d for d in flat)))
    before = {d: _frame(out / d) for d in ("articles", *flat)}
    assert len(before["_index"]) == 6 and len(before["duplicates"]) == 3
    # a run or a stream holds OUT: the article partition only, and it says why
    held = acquire(str(out), "a-stream")
    try:
        proc = newsbeam("compact", str(out))
    finally:
        held.release()
    assert proc.returncode == 0, proc.stderr
    assert "date=2024-03-04: 3 files -> 1 (6 rows)" in proc.stdout
    assert len(list(part.glob("*.parquet"))) == 1
    assert "is in use by run a-stream" in proc.stderr and "_index" in proc.stderr
    assert len(list((out / "_index").glob("*.parquet"))) == 3
    # the merged file carries what every file carries (README: schema and newsbeam version)
    meta = pq.read_schema(next(part.glob("*.parquet"))).metadata
    assert meta[b"newsbeam.version"] and meta[b"newsbeam.schema_version"]
    proc = newsbeam("compact", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "0 of 1 partitions merged; 3 of 6 other datasets" in proc.stdout
    for d in flat:
        assert f"  {d}: 3 files -> 1 (" in proc.stdout
        assert len(list((out / d).glob("*.parquet"))) == 1
    for d, frame in before.items():
        pd.testing.assert_frame_equal(frame, _frame(out / d))
    index_meta = pq.read_schema(next((out / "_index").glob("*.parquet"))).metadata
    assert index_meta[b"newsbeam.signature"] and index_meta[b"newsbeam.schema_version"]
    assert not (out / "_lock").exists() and not (out / "_staging").exists()
    # every file a run's manifest names is in place, or a compaction's record says what it
    # was merged into (found by review: the manifests named files that were gone)
    records = [json.loads(p.read_text()) for p in (out / "_runs" / "compactions").glob("*")]
    assert len(records) == 2 and all(r["kind"] == "compaction" for r in records)
    merged_into = {(m["dataset"], m["partition"], old): m["into"]
                   for r in records for m in r["merges"] for old in m["merged"]}
    for manifest in (out / "_runs").glob("*.json"):
        for f in json.loads(manifest.read_text())["files"]:
            name = Path(f["path"]).name
            if not Path(f["path"]).exists():
                into = merged_into[(f["dataset"], f.get("partition") or "", name)]
                assert all((Path(f["path"]).parent / n).exists() for n in into)
    # the merged index still holds every stored article: a rerun adds nothing
    proc = newsbeam("run", str(inputs[1]), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_parquet(out / "articles")) == 6
    assert len(pd.read_parquet(out / "duplicates")) == 3 + 3
    # nothing left to do; unknown partitions are a usage error
    again = newsbeam("compact", str(out), "--min-files", "3")
    assert "0 of 1 partitions merged; 0 of 6 other datasets" in again.stdout
    bad = newsbeam("compact", str(out), "--partition", "date=1999-01-01")
    assert bad.returncode == 2 and "no such partition" in bad.stderr


def test_index_files_of_other_settings_or_versions_are_never_merged(tmp_path: Path) -> None:
    """compact_dataset merges the index files written with the current schema and the same
    signature settings; a file recording other settings, one of an older schema (a run
    upgrades it) and a user's stray file move into the new folder unchanged."""
    from pipeline.compact import compact_dataset
    from transforms.neardup import SIGNATURE_KEY

    out = tmp_path / "out"
    src = tmp_path / "in.jsonl"
    src.write_text("".join(story(i) for i in range(4)))
    assert newsbeam("run", str(src), "--output", str(out)).returncode == 0
    index = out / "_index"
    [written] = list(index.glob("*.parquet"))
    table = pq.read_table(written)
    meta = table.schema.metadata
    for i in range(3):  # four files of the run's settings
        pq.write_table(table.slice(i, 1), index / f"part-same{i}.parquet")
    pq.write_table(table.slice(3, 1), written)
    other = {**meta, SIGNATURE_KEY.encode(): b"shingle=3,perm=64,bands=16"}
    pq.write_table(table.slice(0, 1).replace_schema_metadata(other), index / "part-other.parquet")
    pq.write_table(table.slice(1, 1).drop_columns(["title"]), index / "part-v7.parquet")
    (index / "notes.txt").write_text("mine")
    kept = {n: (index / n).read_bytes() for n in ("part-other.parquet", "part-v7.parquet")}
    done = compact_dataset(str(out), "_index")
    assert done is not None and (done.files_before, done.files_after, done.rows) == (4, 1, 4)
    names = sorted(p.name for p in index.iterdir())
    assert "part-other.parquet" in names and "part-v7.parquet" in names and "notes.txt" in names
    assert len(names) == 4
    assert all((index / n).read_bytes() == b for n, b in kept.items())
    [merged] = [index / n for n in names if n.startswith("part-") and n not in kept]
    merged_table = pq.read_table(merged)
    assert merged_table.schema.metadata[SIGNATURE_KEY.encode()] == meta[SIGNATURE_KEY.encode()]
    assert sorted(merged_table.column("article_id").to_pylist()) == \
        sorted(table.column("article_id").to_pylist())
    assert compact_dataset(str(out), "_index") is None  # nothing left that would merge


def test_a_run_suggests_compaction_once_the_index_holds_many_files(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from pipeline.reindex import COMPACT_HINT_FILES, suggest_compaction

    index = tmp_path / "_index"
    index.mkdir()
    for i in range(COMPACT_HINT_FILES - 1):
        (index / f"part-{i:04d}.parquet").write_bytes(b"")
    with caplog.at_level("WARNING", logger="newsbeam"):
        assert suggest_compaction(str(tmp_path)) == COMPACT_HINT_FILES - 1
        assert not caplog.records
        (index / "part-last.parquet").write_bytes(b"")
        assert suggest_compaction(str(tmp_path)) == COMPACT_HINT_FILES
    [record] = caplog.records
    assert f"holds {COMPACT_HINT_FILES} files" in record.getMessage()
    assert f"newsbeam compact {tmp_path}" in record.getMessage()


def test_a_stream_keeps_the_latest_read_of_a_file_after_compaction(tmp_path: Path) -> None:
    """OUT/_state/files: a file read, rewritten and read again is known by its latest read,
    by run id and not by the state file's name, which compaction changes (found by review:
    the merged file sorted after a newer window's, so a stream read the rewritten file again
    at every restart)."""
    from pipeline.compact import compact_dataset
    from transforms.streaming import FILE_STATE, load_file_state, write_file_state

    out = str(tmp_path / "out")
    write_file_state(out, "20261101T000000Z-stream-20261101T000100000Z", {"/in/a.htm": (10, 1)})
    write_file_state(out, "20261101T000000Z-stream-20261101T000200000Z", {"/in/b.txt": (5, 1)})
    write_file_state(out, "20261102T000000Z-stream-20261102T000100000Z", {"/in/a.htm": (20, 2)})
    assert load_file_state(out) == {"/in/a.htm": (20, 2), "/in/b.txt": (5, 1)}
    folder = tmp_path / "out" / FILE_STATE
    newest = sorted(folder.glob("*.parquet"))[-1]
    # the newest read in a file whose name sorts first, as a merged file's may
    newest.rename(folder / "part-0000.parquet")
    assert load_file_state(out) == {"/in/a.htm": (20, 2), "/in/b.txt": (5, 1)}
    done = compact_dataset(out, FILE_STATE)
    assert done is not None and (done.files_before, done.files_after) == (3, 1)
    assert load_file_state(out) == {"/in/a.htm": (20, 2), "/in/b.txt": (5, 1)}
    # the state files carry what every file carries (they had no metadata: found by review)
    [merged] = folder.glob("*.parquet")
    meta = pq.read_schema(merged).metadata
    assert meta[b"newsbeam.dataset"] == b"_state/files"
    assert meta[b"newsbeam.version"] and meta[b"newsbeam.schema_version"]


def _write(out: Path, dataset: str, part: str, rows: list[dict[str, Any]], run: str) -> None:
    import transforms.write as write

    list(write.write_partition(str(out), dataset, part, rows, run_id=run))


def test_a_damaged_partition_is_left_and_the_rest_compacted(tmp_path: Path) -> None:
    """A partition compact cannot merge (a file that is not Parquet, a notebook's folder in
    it) is named on one line and left as it is; the other partitions and datasets are merged,
    and the command ends with 1. An OUT holding rejects only is compacted too."""
    from schemas import article_row, reject_row
    from schemas.records import Reject
    from tests.transforms.test_write import article

    out = tmp_path / "out"
    for i, day in enumerate(["2024-03-04", "2024-03-04", "2024-03-05", "2024-03-05"]):
        _write(out, "articles", f"date={day}", [article_row(article(i, day))], f"r{i}")
    for i in range(2):
        _write(out, "rejects", "", [reject_row(Reject(f"/in/{i}.bin", "read", "binary_content",
                                                      "BinaryContent", "binary", "x"))], f"r{i}")
    (out / "articles" / "date=2024-03-05" / "part-zzzz.parquet").write_text("garbage")
    (out / "articles" / "date=2024-03-04" / ".ipynb_checkpoints").mkdir()
    proc = newsbeam("compact", str(out))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and all("left as it is" in line for line in lines), proc.stderr
    assert "cannot compact date=2024-03-05 (ArrowInvalid" in proc.stderr
    assert "cannot compact date=2024-03-04 (RuntimeError" in proc.stderr
    assert "  rejects: 2 files -> 1 (2 rows)" in proc.stdout
    assert len(list((out / "articles" / "date=2024-03-05").iterdir())) == 3  # untouched
    assert not (out / "_staging").exists()
    # rejects only (a run over junk): still an OUT to compact, not a usage error
    junk = tmp_path / "junk"
    for i in range(2):
        _write(junk, "rejects", "", [reject_row(Reject(f"/in/{i}.bin", "read", "binary_content",
                                                       "BinaryContent", "binary", "x"))], f"r{i}")
    proc = newsbeam("compact", str(junk))
    assert proc.returncode == 0, proc.stderr
    assert "0 of 0 partitions merged; 1 of 6 other datasets" in proc.stdout


def test_a_run_starting_leaves_a_running_compactions_staging(tmp_path: Path) -> None:
    """Every run removes what killed runs left in OUT/_staging; a compaction still at work
    there (it merges article partitions without the OUT lock) is not such a leftover."""
    import os

    from pipeline.commit import clean_leftovers

    staging = tmp_path / "_staging"
    alive = staging / f"compact-{os.getpid()}-abcd1234" / "date=2024-03-04"
    dead = staging / "compact-999999999-deadbeef" / "date=2024-03-04"
    run = staging / "20241101T000000Z-0123abcd"
    for folder in (alive, dead, run):
        folder.mkdir(parents=True)
        (folder / "part-1.parquet").write_bytes(b"x")
    clean_leftovers(str(tmp_path))
    assert alive.exists() and not dead.parent.exists() and not run.exists()


def _contend(out: str, seconds: float, results: Any) -> None:
    """Take and release OUT's run lock as often as possible; each holder marks its turn with
    a file only one may create."""
    import traceback

    from pipeline.lock import LockBusy, acquire

    held = 0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            try:
                lock = acquire(out, f"run-{os.getpid()}")
            except LockBusy:
                continue
            marker = os.open(os.path.join(out, "holder"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.close(marker)
            time.sleep(0.001)
            os.remove(os.path.join(out, "holder"))
            lock.release()
            held += 1
        results.put(("held", held))
    except Exception:
        results.put(("error", traceback.format_exc()))


def test_one_run_at_a_time_holds_out_among_racing_processes(tmp_path: Path) -> None:
    """OUT's lock under contention: processes race to take it, some of them while a stale
    lock (a dead run's) is there to be removed. Never two holders at once (a second one's
    marker file would fail to be created), no error, and every process gets its turns."""
    import multiprocessing
    import socket

    from pipeline.lock import identity

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    (tmp_path / "_lock").write_text(json.dumps({
        "run_id": "dead", "pid": pid, "host": socket.gethostname(),
        "started": "2026-01-15T12:00:00+00:00", **identity(os.getpid()),
        "start_ticks": 1}))
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_contend, args=(str(tmp_path), 3.0, results))
             for _ in range(4)]
    for p in procs:
        p.start()
    got = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(60)
    assert [kind for kind, _ in got] == ["held"] * 4, got
    assert all(n > 0 for _, n in got), got
    assert not (tmp_path / "_lock").exists() and not (tmp_path / "holder").exists()
