"""Crash consistency: a real CLI process killed with SIGKILL at several points, then the same
command again, gives the dataset of one clean run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, SAMPLES

INGESTED_AT = "2026-01-15T12:00:00Z"


def command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "run", str(SAMPLES), "--output", str(out),
            "--ingested-at", INGESTED_AT, "--quiet", *extra]


def dataset(out: Path) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    arts = pd.read_parquet(out / "articles")
    dups = pd.read_parquet(out / "duplicates")
    rejects = pd.read_parquet(out / "rejects")
    return (sorted(arts.article_id + ":" + arts.revision.astype(str)),
            sorted(zip(dups.article_id, dups.duplicate_of, strict=False)), sorted(rejects.reason))


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    out = tmp_path_factory.mktemp("clean") / "out"
    subprocess.run(command(out), cwd=REPO, check=True, capture_output=True)
    return dataset(out)


def _kill_when(out: Path, marker: str, timeout: float = 120.0) -> bool:
    """Start a run, SIGKILL it when ``marker`` shows up under OUT; False if it finished first."""
    proc = subprocess.Popen(command(out), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        # os.walk: the run makes and removes folders while they are listed (rglob raises on
        # a folder gone mid-scan)
        if any(marker in os.path.join(root, name) for root, dirs, files in os.walk(out)
               for name in (*dirs, *files)):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    proc.wait()
    return False


@pytest.mark.parametrize("marker", ["_lock", "_staging", "part-", "date="])
def test_killed_run_then_rerun_equals_a_clean_run(tmp_path: Path, marker: str,
                                                  clean_run: tuple) -> None:
    for attempt in range(5):  # a kill point passes in milliseconds: try again if missed
        out = tmp_path / f"out{attempt}"
        if _kill_when(out, marker) and not (out / "_runs").exists():
            break
    else:
        pytest.skip(f"in 5 runs, each finished before the kill point {marker!r} was seen")
    # nothing the killed run wrote is half visible
    if (out / "articles").exists():
        visible = [p for p in (out / "articles").rglob("*") if p.is_file()]
        assert all(p.suffix == ".parquet" and not p.name.startswith(".") for p in visible)
    # its lock proves its process is gone (this host, boot and pid namespace): the next run
    # removes it, saying so, with no --break-lock (a scheduled job recovers by itself)
    had_lock = (out / "_lock").exists()
    proc = subprocess.run(command(out), cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert ("removed the stale lock of run" in proc.stderr) == had_lock, proc.stderr
    assert dataset(out) == clean_run
    assert not (out / "_lock").exists()
    assert not (out / "_staging").exists()
    manifests = list((out / "_runs").glob("*.json"))
    assert len(manifests) == 1 and json.loads(manifests[0].read_text())["accounting"]["balanced"]


def test_full_disk_fails_clearly_and_the_next_run_recovers(tmp_path: Path,
                                                          clean_run: tuple) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here to fill a disk: {mounted.stderr.strip()}")
    try:
        filler = disk / "filler"
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        filler.write_bytes(b"\0" * max(0, free - 100 * 1024))  # leave 100 KB
        out = disk / "out"
        proc = subprocess.run(command(out), cwd=REPO, capture_output=True, text=True)
        assert proc.returncode == 1
        # one line, with the real error first (not Beam's RuntimeError wrapping it)
        assert proc.stderr.startswith(
            "newsbeam: error: the pipeline failed: OSError: [Errno 28] No space left on device"
        ), proc.stderr
        assert "Traceback" not in proc.stderr
        assert not (out / "_runs").exists()  # nothing committed
        assert not (out / "_lock").exists()
        filler.unlink()
        proc = subprocess.run(command(out), cwd=REPO, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert dataset(out) == clean_run
        assert not (out / "_staging").exists()
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_sigterm_ends_a_run_cleanly_and_the_rerun_equals_a_clean_run(
        tmp_path: Path, clean_run: tuple) -> None:
    """SIGTERM (a scheduler's timeout, a stopped container) unwinds the run like Ctrl-C: exit
    143 with one line, the lock on OUT released (no --break-lock needed), and the next run
    gives the dataset of one clean run. (On Flink, Spark or Prism the normal exit is also what
    stops the job server: tests/integration.)"""
    out = tmp_path / "out"
    proc = subprocess.Popen(command(out), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "_staging").exists():  # the pipeline is running
            os.kill(proc.pid, signal.SIGTERM)
            break
        time.sleep(0.005)
    _out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before it could be signalled")
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == [
        "newsbeam: terminated (SIGTERM) before the run finished; the next run into OUT "
        "completes or removes what it left"]
    assert not (out / "_lock").exists()
    rerun = subprocess.run(command(out), cwd=REPO, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert dataset(out) == clean_run
