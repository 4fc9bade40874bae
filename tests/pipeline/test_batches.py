"""--batch-files: one command run as several runs into OUT (pipeline/batches.py)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, SAMPLES

INGESTED_AT = "2026-01-15T12:00:00Z"


def newsbeam(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def renamed_copy(src: Path, dst: Path) -> Path:
    """``src``'s files under other names and folders, listed in another order."""
    files = sorted(p for p in src.rglob("*") if p.is_file())
    for i, path in enumerate(reversed(files)):
        target = dst / f"d{i % 3}" / f"z{i:02d}-{path.name[::-1]}{''.join(path.suffixes)}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    return dst


def decisions(out: Path) -> tuple[list[str], list[tuple[str, str, str]], list[str]]:
    """Kept article ids; (duplicate id, kept id, method); reject reasons: sorted."""
    arts = pd.read_parquet(out / "articles")
    dups = pd.read_parquet(out / "duplicates")
    reasons = pd.read_parquet(out / "rejects").reason if (out / "rejects").exists() else []
    return (sorted(arts.article_id),
            sorted(zip(dups.article_id, dups.duplicate_of, dups.method, strict=True)),
            sorted(reasons))


def manifests(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "_runs").glob("*.json"))]


def test_batches_are_formed_by_content_not_by_names(tmp_path: Path) -> None:
    from pipeline.batches import split
    from pipeline.main import make_parser
    from pipeline.options import config_from_args

    def batches(folder: Path) -> list[list[bytes]]:
        args, extra = make_parser().parse_known_args(
            ["run", str(folder), "--output", str(tmp_path / "out"), "--batch-files", "5",
             "--ingested-at", INGESTED_AT])
        runs = split(config_from_args(args, extra))
        assert [r.batch for r in runs] == [(i, 4) for i in range(1, 5)]
        assert [len(r.inputs) for r in runs] == [5, 4, 4, 4]  # as even as they can be
        assert len({r.run_id for r in runs}) == 4
        return [sorted(Path(p).read_bytes() for p in r.inputs) for r in runs]

    assert batches(SAMPLES) == batches(renamed_copy(SAMPLES, tmp_path / "renamed"))


def test_an_unreadable_file_is_ordered_after_the_readable_ones(tmp_path: Path) -> None:
    from pipeline.batches import content_order

    files = []
    for i in range(5):
        path = tmp_path / f"f{i}.txt"
        path.write_text(f"article number {i}\n", encoding="utf-8")
        files.append(str(path))
    readable = content_order(files)
    assert sorted(readable) == sorted(files)
    missing = str(tmp_path / "a-vanished-file.txt")  # would sort first by its name
    assert content_order([missing, *files]) == [*readable, missing]
    assert content_order([*files, missing]) == [*readable, missing]


def test_a_run_in_batches_accounts_for_every_unit_and_is_deterministic(tmp_path: Path) -> None:
    """samples/ (17 files) in batches of 9 files: two runs, two manifests, every unit of
    the one-run result accounted for; the same decisions for the same files under other
    names; a rerun of the command adds nothing."""
    whole = tmp_path / "whole"
    proc = newsbeam("run", str(SAMPLES), "--output", str(whole), "--ingested-at", INGESTED_AT)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "batched"
    proc = newsbeam("run", str(SAMPLES), "--output", str(out), "--ingested-at", INGESTED_AT,
                    "--batch-files", "9")
    assert proc.returncode == 0, proc.stderr
    runs = manifests(out)
    assert sorted((m["batch"]["number"], m["batch"]["of"]) for m in runs) == \
        [(1, 2), (2, 2)]
    assert all(m["accounting"]["balanced"] for m in runs)
    one = manifests(whole)[0]
    assert sum(m["counts"]["in"] for m in runs) == one["counts"]["in"]
    assert sum(m["inputs"]["files"] for m in runs) == one["inputs"]["files"]
    kept, dups, rejects = decisions(out)
    whole_kept, whole_dups, whole_rejects = decisions(whole)
    # the same units, the same ids; only which copy of a story is kept may differ
    assert sorted(kept + [d[0] for d in dups]) == sorted(whole_kept + [d[0] for d in whole_dups])
    assert rejects == whole_rejects
    assert "2 of 2 batches, 17 files" in proc.stdout
    assert proc.stderr.count("newsbeam: batch ") == 2
    renamed = tmp_path / "renamed-out"
    proc = newsbeam("run", str(renamed_copy(SAMPLES, tmp_path / "renamed")), "--output",
                    str(renamed), "--ingested-at", INGESTED_AT, "--batch-files", "9")
    assert proc.returncode == 0, proc.stderr
    assert decisions(renamed)[:2] == (kept, dups)
    again = newsbeam("run", str(SAMPLES), "--output", str(out), "--ingested-at", INGESTED_AT,
                     "--batch-files", "9")
    assert again.returncode == 0, again.stderr
    assert decisions(out)[0] == kept  # no article added
    assert ": articles 0, duplicates " in again.stdout, again.stdout


def test_a_copy_in_a_later_batch_is_a_duplicate_of_the_stored_article(tmp_path: Path) -> None:
    """Two files of one story (another headline line, so other bytes) in batches of one
    file: whichever batch comes first by content stores it, the other's copy is a duplicate
    of that article, whatever the files are named."""
    text = (SAMPLES / "kazakhstan_peacemaker.txt").read_text(encoding="utf-8")
    variant = text.replace("Kazakhstan Offers To Play Peacemaker",
                           "Kazakhstan Offers To Be Peacemaker", 1)
    assert variant != text
    outcomes = []
    for names in (("a.txt", "b.txt"), ("b.txt", "a.txt")):
        folder = tmp_path / "-".join(names)
        folder.mkdir()
        (folder / names[0]).write_text(text, encoding="utf-8")
        (folder / names[1]).write_text(variant, encoding="utf-8")
        out = folder / "out"
        proc = newsbeam("run", str(folder / names[0]), str(folder / names[1]), "--output",
                        str(out), "--ingested-at", INGESTED_AT, "--batch-files", "1")
        assert proc.returncode == 0, proc.stderr
        kept, dups, _ = decisions(out)
        assert len(kept) == 1 and len(dups) == 1 and dups[0][1] == kept[0]
        first = min(manifests(out), key=lambda m: m["batch"]["number"])
        stored = pd.read_parquet(out / "articles").input_path.iloc[0]
        assert first["inputs"]["paths"] == [stored]
        outcomes.append((Path(stored).read_text(encoding="utf-8"), dups[0][2]))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("value", ["-3", "many", "2.5"])
def test_a_bad_batch_size_is_a_usage_error(tmp_path: Path, value: str) -> None:
    proc = newsbeam("run", str(SAMPLES), "--output", str(tmp_path / "o"),
                    "--batch-files", value)
    assert proc.returncode == 2
    assert "--batch-files" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("value", ["-1", "1.5", "true", '"many"'])
def test_a_bad_batch_size_in_a_config_file_is_a_usage_error(tmp_path: Path,
                                                            value: str) -> None:
    config = tmp_path / "newsbeam.toml"
    config.write_text(f"batch-files = {value}\n", encoding="utf-8")
    proc = newsbeam("run", str(SAMPLES), "--output", str(tmp_path / "o"), "--config",
                    str(config))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "--batch-files" in proc.stderr, proc.stderr


def test_the_reject_ratio_is_judged_over_all_batches(tmp_path: Path) -> None:
    """Every batch runs, even one whose own reject ratio is above --max-reject-ratio; the
    command's exit code judges all of them together, as one run would be judged."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("empty.txt", "binary-blob.xml"):  # two rejects
        shutil.copy(SAMPLES / "junk" / name, folder / name)
    for path in (SAMPLES / "pages").iterdir():  # two articles
        shutil.copy(path, folder / path.name)
    common = ("--output", str(tmp_path / "o"), "--ingested-at", INGESTED_AT, "--batch-files",
              "1")
    proc = newsbeam("run", str(folder), *common, "--max-reject-ratio", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert "4 of 4 batches, 4 files" in proc.stdout
    assert len(pd.read_parquet(tmp_path / "o" / "articles")) == 2
    proc = newsbeam("run", str(folder), *common, "--max-reject-ratio", "0.4")
    assert proc.returncode == 5, proc.stderr
    assert "2 of 4 input units were rejected (50.0%)" in proc.stderr


def test_a_failed_batch_stops_the_command_and_says_what_was_committed(tmp_path: Path) -> None:
    """A batch whose process dies (as the OOM killer ends one: here a step that kills its
    process on one story) ends the command with one line naming the batches committed before
    it; those stay committed, and the next run into OUT runs."""
    folder = tmp_path / "in"
    folder.mkdir()
    for path in (SAMPLES / "pages").iterdir():
        shutil.copy(path, folder / path.name)
    shutil.copy(SAMPLES / "kazakhstan_peacemaker.txt", folder / "story.txt")
    out = tmp_path / "o"
    proc = newsbeam("run", str(folder), "--output", str(out), "--ingested-at", INGESTED_AT,
                    "--batch-files", "1", "--steps",
                    "+tests.fixtures.custom_steps:die_on_kazakhstan")
    assert proc.returncode == 1, proc.stderr
    error = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(error) == 1, proc.stderr
    assert "the pipeline failed: BatchProcessDied: batch " in error[0]
    assert "process ended with exit code -9" in error[0]
    committed = manifests(out) if (out / "_runs").exists() else []
    assert f"({len(committed)} of 3 batches were committed" in error[0]
    assert all(m["run_id"] in error[0] for m in committed)
    assert "Traceback" not in proc.stderr
    proc = newsbeam("run", str(folder), "--output", str(out), "--ingested-at", INGESTED_AT,
                    "--batch-files", "1")
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_parquet(out / "articles")) == 3


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _gone(pid: int) -> bool:
    """Exited (and reaped, or a zombie waiting to be)."""
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


def _is_batch(pid: int) -> bool:
    """A batch's process (not multiprocessing's resource tracker)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"multiprocessing.spawn" in cmdline and b"resource_tracker" not in cmdline


def _start_batches(out: Path) -> tuple[subprocess.Popen[str], int]:
    """samples/ in batches of 4 files, caught while a batch after the first runs: (the
    command's process, its batch's process)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(SAMPLES), "--output", str(out),
         "--ingested-at", INGESTED_AT, "--batch-files", "4"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "_runs").exists() and (out / "_staging").exists():  # batch 2 or later
            kids = [k for k in _children(proc.pid) if _is_batch(k)]
            if kids:
                return proc, kids[0]
        time.sleep(0.01)
    proc.kill()
    pytest.fail("no batch after the first was seen running")


def test_sigterm_stops_the_batch_and_the_command_cleanly(tmp_path: Path) -> None:
    """SIGTERM to the command (a scheduler's timeout) reaches the batch's process, which
    unwinds; the command exits 143 with one line naming the committed batches, its lock
    released, no process left; the rerun completes the dataset."""
    out = tmp_path / "out"
    proc, child = _start_batches(out)
    os.kill(proc.pid, signal.SIGTERM)
    _out, err = proc.communicate(timeout=180)
    assert proc.returncode == 143, err
    line = next(li for li in err.splitlines() if li.startswith("newsbeam: terminated"))
    committed = len(list((out / "_runs").glob("*.json")))
    assert f"({committed} of 5 batches were committed: " in line
    assert _gone(child)
    assert not (out / "_lock").exists()
    rerun = newsbeam("run", str(SAMPLES), "--output", str(out), "--ingested-at", INGESTED_AT,
                     "--batch-files", "4")
    assert rerun.returncode == 0, rerun.stderr
    # the rerun's five batches each keep a manifest of their own beside the first ones
    # (a batch run again gets RUNID-2: its record does not replace the first run's)
    runs = manifests(out)
    assert len(runs) == committed + 5
    assert sorted(m["batch"]["number"] for m in runs if m["run_id"].endswith("-2")) == \
        list(range(1, committed + 1))


def test_a_batch_dies_with_the_command(tmp_path: Path) -> None:
    """The command killed outright (SIGKILL: no handler runs) takes its batch's process with
    it (a parent-death signal): the batch then running commits nothing, so nothing writes
    into OUT once the lock's holder is gone."""
    text = (SAMPLES / "kazakhstan_peacemaker.txt").read_text(encoding="utf-8")
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):  # three stories, one a batch
        (folder / f"{i}.txt").write_text(text.replace("Kazakhstan", f"Kazakhstan{i}"),
                                         encoding="utf-8")
    out = tmp_path / "out"
    log = tmp_path / "stderr"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "run", str(folder), "--output", str(out),
             "--ingested-at", INGESTED_AT, "--batch-files", "1", "--steps",
             "+tests.fixtures.custom_steps:slow"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 300
    child = None
    while time.monotonic() < deadline and proc.poll() is None and child is None:
        # batch 2's run has started (its process logs "run ID: 1 input file -> OUT"), and
        # spends three seconds in its step
        if log.read_text().count(" input file -> ") == 2:
            child = next((k for k in _children(proc.pid) if _is_batch(k)), None)
        time.sleep(0.01)
    assert child is not None, "batch 2 was not seen running"
    committed = len(list((out / "_runs").glob("*.json")))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _gone(child):
        time.sleep(0.1)
    assert _gone(child)
    time.sleep(1)
    assert len(list((out / "_runs").glob("*.json"))) == committed


def _long_dump(tmp_path: Path) -> Path:
    """samples' JSONL dump (seven lines: four articles, a line that is not JSON, a record
    with no body, a blank line) followed by seven records cut from the sample article's
    paragraphs, the last an exact copy of the first of them under another URL, and line 11
    cut short: 15 lines, 14 units, none over 1,000 bytes."""
    base = (SAMPLES / "dumps" / "crawl-2024-03.jsonl").read_bytes().rstrip(b"\n").split(b"\n")
    paragraphs = [p for p in (SAMPLES / "kazakhstan_peacemaker.txt").read_text(
        encoding="utf-8").split("\n\n") if len(p) > 200]
    records = [{"url": f"https://dump.example/story-{i}", "title": f"Story {i}",
                "published": f"2024-03-{10 + i:02d}T08:00:00Z", "text": text[:700]}
               for i, text in enumerate(paragraphs[:6])]
    records.append({**records[0], "url": "https://mirror.example/story-0"})
    lines = base + [json.dumps(r).encode("utf-8") for r in records]
    lines.insert(10, b'{"url": "https://dump.example/cut-short", "text": "The line')
    assert len(lines) == 15 and max(map(len, lines)) < 1000
    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(b"\n".join(lines) + b"\n")
    return dump


def test_a_jsonl_dump_runs_in_slices_of_batch_lines(tmp_path: Path) -> None:
    """--batch-lines 4: a dump read in pieces (over --max-bytes 1000) runs as slices of at
    most 4 lines (15 lines: four runs), each a batch of its own, before the batch of the
    other files. Its lines keep their numbers (the rejects name lines 3 and 11 as in a whole
    run), every unit is accounted for, the copy in the last slice is a duplicate of the
    stored story, and a rerun adds nothing."""
    dump = _long_dump(tmp_path)
    page = SAMPLES / "kazakhstan_peacemaker.txt"
    common = ("--ingested-at", INGESTED_AT, "--max-bytes", "1000")
    whole = tmp_path / "whole"
    proc = newsbeam("run", str(dump), str(page), "--output", str(whole), *common)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "sliced"
    proc = newsbeam("run", str(dump), str(page), "--output", str(out), *common,
                    "--batch-lines", "4")
    assert proc.returncode == 0, proc.stderr
    runs = sorted(manifests(out), key=lambda m: m["batch"]["number"])
    assert [m["batch"]["of"] for m in runs] == [5] * 5
    assert [(m["batch"]["slice"] or {}).get("first_line") for m in runs] == [1, 5, 9, 13, None]
    assert [m["inputs"]["paths"] for m in runs] == [[str(dump)]] * 4 + [[str(page)]]
    assert [m["counts"]["in"] for m in runs] == [4, 3, 4, 3, 1]  # line 5 is blank
    assert all(m["accounting"]["balanced"] for m in runs)
    kept, dups, rejects = decisions(out)
    whole_kept, whole_dups, _ = decisions(whole)
    assert sorted(kept + [d[0] for d in dups]) == sorted(whole_kept + [d[0] for d in whole_dups])
    assert len(dups) == len(whole_dups) == 1 and dups[0][2] == "exact"
    assert (sorted(pd.read_parquet(out / "rejects").detail)
            == sorted(pd.read_parquet(whole / "rejects").detail))
    details = " ".join(pd.read_parquet(out / "rejects").detail)
    assert "line 3 is not valid JSON" in details and "line 11 is not valid JSON" in details
    assert "5 of 5 batches, 2 files" in proc.stdout, proc.stdout
    assert "newsbeam: batch 2/5: lines from 5 (bytes" in proc.stderr, proc.stderr
    again = newsbeam("run", str(dump), str(page), "--output", str(out), *common,
                     "--batch-lines", "4")
    assert again.returncode == 0, again.stderr
    assert ": articles 0, duplicates " in again.stdout, again.stdout
    assert decisions(out)[0] == kept


def test_batch_lines_leaves_small_dumps_and_other_files_alone(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A dump no larger than a piece is read whole and is not cut; with nothing to cut and
    no --batch-files, the command is one run."""
    from pipeline.batches import split
    from pipeline.main import make_parser
    from pipeline.options import config_from_args

    def runs(*extra: str) -> list:
        args, rest = make_parser().parse_known_args(
            ["run", str(_long_dump(tmp_path)), str(SAMPLES / "kazakhstan_peacemaker.txt"),
             "--output", str(tmp_path / "out"), "--ingested-at", INGESTED_AT, *extra])
        return split(config_from_args(args, rest))

    # 8 MB pieces: whole, and said so (it was silently ignored)
    with caplog.at_level(logging.WARNING, logger="newsbeam"):
        assert [r.batch for r in runs("--batch-lines", "4")] == [None]
    assert "--batch-lines 4: no input is an uncompressed JSONL dump of more than 8 MB" \
        in caplog.text
    sliced = runs("--batch-lines", "5", "--max-bytes", "1000")
    assert [r.dump_slices[r.inputs[0]].lines_before if r.dump_slices else None
            for r in sliced] == [0, 5, 10, None]
    assert len({r.run_id for r in sliced}) == 4
    # 15 lines in slices of 20: not cut, so the dump is one of the files --batch-files counts
    both = runs("--batch-lines", "20", "--batch-files", "1", "--max-bytes", "1000")
    assert [(r.batch, r.dump_slices) for r in both] == [((1, 2), None), ((2, 2), None)]


def test_the_batch_size_is_planned_from_the_memory_a_run_can_have() -> None:
    from pipeline.memory import (
        MIN_BATCH_FILES,
        PLAN_SHARE,
        RUN_BASE_BYTES,
        RUN_FILE_BYTES,
        planned_batch_files,
        run_need,
    )

    gib = 2**30
    # 16,000 pages (about 2.4 GB measured) fit a machine that can give 24 GiB: one run
    assert run_need(16_000) < 2.5 * gib
    assert planned_batch_files(16_000, 1, 24 * gib) is None
    # not in 2 GiB: batches that fit 60% of it, as large as that allows
    size = planned_batch_files(16_000, 1, 2 * gib)
    assert size is not None and 4_000 < size < 7_000 and size % MIN_BATCH_FILES == 0
    assert run_need(size) <= PLAN_SHARE * 2 * gib < run_need(size + MIN_BATCH_FILES)
    # a little more or less memory counted: the same batches (sizes are rounded down)
    assert planned_batch_files(16_000, 1, 2 * gib + 2**20) == size
    # two worker processes besides the command's need three times as much
    two = planned_batch_files(16_000, 3, 8 * gib)
    assert two is not None
    assert run_need(two, 3) <= PLAN_SHARE * 8 * gib < run_need(two + MIN_BATCH_FILES, 3)
    # never batches of a few files, whatever little memory there is
    assert planned_batch_files(5_000, 1, RUN_BASE_BYTES) == MIN_BATCH_FILES
    assert planned_batch_files(MIN_BATCH_FILES, 1, RUN_BASE_BYTES) is None
    assert RUN_FILE_BYTES > 0


def _tiny_articles(folder: Path, count: int) -> Path:
    """``count`` short plain-text articles, each its own words (no two alike)."""
    import random

    vocabulary = ("harbour council ferry strike budget school river bridge market storm "
                  "farmers election hospital museum railway festival court police").split()
    folder.mkdir(parents=True)
    for i in range(count):
        rng = random.Random(i)
        words = [rng.choice(vocabulary) + str(rng.randrange(1000)) for _ in range(60)]
        (folder / f"story-{i:04d}.txt").write_text(
            f"Story number {i}\n\n" + " ".join(words) + ".\n", encoding="utf-8")
    return folder


def test_an_input_too_large_for_the_memory_runs_in_planned_batches(tmp_path: Path) -> None:
    """With no --batch-files, a DirectRunner input that one run would need more memory for
    than the run can have (here --max-memory) runs in batches as large as it allows, said in
    a warning and recorded in the manifests; --batch-files 0 runs it as one run anyway."""
    from pipeline.memory import planned_batch_files

    inputs = _tiny_articles(tmp_path / "in", 250)
    limit = 740 * 2**20
    size = planned_batch_files(250, 1, limit)
    assert size is not None and size < 250
    out = tmp_path / "out"
    proc = newsbeam("run", str(inputs), "--output", str(out), "--max-memory", "740MB",
                    "--ingested-at", INGESTED_AT)
    assert proc.returncode == 0, proc.stderr
    assert "250 input files would need about" in proc.stderr
    assert f"running them in batches of at most {size:,}" in proc.stderr
    runs = manifests(out)
    assert len(runs) == -(-250 // size)
    assert all(m["batch"]["auto"] and m["batch"]["batch_files"] == size for m in runs)
    assert sum(m["counts"]["in"] for m in runs) == 250
    assert sum(m["counts"]["articles"] for m in runs) == 250
    # --batch-files 0: one run, whatever the plan would say
    one = tmp_path / "one"
    proc = newsbeam("run", str(inputs), "--output", str(one), "--max-memory", "740MB",
                    "--batch-files", "0", "--ingested-at", INGESTED_AT)
    assert proc.returncode == 0, proc.stderr
    assert "would need about" not in proc.stderr
    (single,) = manifests(one)
    assert single["batch"] is None and single["counts"]["articles"] == 250


@pytest.mark.parametrize(("flags", "processes"), [
    ((), 1),
    (("--direct_running_mode", "multi_processing", "--direct_num_workers", "2"), 3),
    # Beam's 0: one worker per core
    (("--direct_running_mode", "multi_processing", "--direct_num_workers", "0"),
     1 + (os.cpu_count() or 1)),
])
def test_the_plan_counts_every_worker_process_and_says_when_no_batch_fits(
        tmp_path: Path, flags: tuple[str, ...], processes: int) -> None:
    from pipeline.batches import plan_memory
    from pipeline.main import make_parser
    from pipeline.memory import PLAN_SHARE, planned_batch_files, run_need
    from pipeline.options import config_from_args

    inputs = _tiny_articles(tmp_path / "in", 150)
    args, extra = make_parser().parse_known_args(
        ["run", str(inputs), "--output", str(tmp_path / "out"), "--max-memory", "1GB",
         "--ingested-at", INGESTED_AT, *flags])
    planned, warning = plan_memory(config_from_args(args, extra))
    expected = planned_batch_files(150, processes, 2**30)
    assert planned.batch_files == expected and planned.batch_auto == (expected is not None)
    if expected is None:
        assert warning is None
        return
    assert warning is not None and f"batches of at most {expected:,}" in warning
    fits = run_need(expected, processes) <= PLAN_SHARE * 2**30
    assert ("even a batch of" in warning) != fits
    assert ("fewer --direct_num_workers" in warning) == (not fits and processes > 1)
