"""pipeline/prewarm.py: the DirectRunner's multi_processing workers start with the command,
and the runner hands its work to them; a worker no run takes ends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pipeline import prewarm

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
MULTI = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]
STEP = ["--steps", "+tests.fixtures.custom_steps:record_worker_start"]


def _starts(out: Path) -> set[str]:
    return {c for cats in pd.read_parquet(out / "articles").categories for c in cats
            if c.startswith("worker-")}


@pytest.mark.parametrize(("argv", "expected"), [
    (["run", "in/", "-o", "out", *MULTI], 2),
    (["--log-level", "DEBUG", "run", "in/", "-o", "out", *MULTI], 2),
    (["--log-format=json", "run", "in/", "-o", "out", "--direct_running_mode=multi_processing"],
     1),
    (["run", "in/", "-o", "out", "--runner", "DirectRunner", *MULTI], 2),
    (["run", "in/", "-o", "out", "--direct_num_workers", "0",
      "--direct_running_mode", "multi_processing"], os.cpu_count()),
    (["run", "in/", "-o", "out"], 0),  # one process: the command's own
    (["run", "in/", "-o", "out", "--direct_num_workers", "2"], 0),  # in_memory mode
    (["run", "in/", "-o", "out", "--runner", "FlinkRunner", *MULTI], 0),
    (["stream", "in/", "-o", "out", *MULTI], 0),
    # batches run in processes of their own, which start their own workers; a config file
    # may ask for batches
    (["run", "in/", "-o", "out", "--batch-files", "100", *MULTI], 0),
    (["run", "in/", "-o", "out", "--batch-lines=100", *MULTI], 0),
    (["run", "in/", "-o", "out", "--config", "c.toml", *MULTI], 0),
    (["run", "--help", *MULTI], 0),
    (["run", "in/", "-o", "out", "--direct_num_workers", "two",
      "--direct_running_mode", "multi_processing"], 0),
])
def test_workers_wanted_from_the_command_line(argv: list[str], expected: int) -> None:
    assert prewarm.workers_wanted(argv) == expected


def test_the_command_hands_its_runs_work_to_the_workers_it_started(tmp_path: Path) -> None:
    """`newsbeam run` in the multi_processing mode: every article is processed in a worker
    started with the command (none by the runner), and the dataset is the one-process
    run's."""
    out, alone = tmp_path / "out", tmp_path / "alone"
    for target, extra in ((out, MULTI), (alone, [])):
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline", "run", str(SAMPLES), "-o", str(target), "-q",
             "--ingested-at", "2026-01-01T00:00:00Z", *STEP, *extra],
            cwd=REPO, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
    assert _starts(out) == {"worker-prewarmed"}
    assert _starts(alone) == {"worker-in-process"}
    ids = sorted(pd.read_parquet(out / "articles").article_id)
    assert ids == sorted(pd.read_parquet(alone / "articles").article_id)


def test_with_no_worker_waiting_the_runner_starts_its_own(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """The pool empty (here: nothing started), the runner starts its workers as Beam does."""
    from pipeline.main import main

    monkeypatch.setattr(prewarm, "start", lambda count: None)
    out = tmp_path / "out"
    code = main(["run", str(SAMPLES), "-o", str(out), "-q", *STEP, *MULTI])
    assert code == 0
    assert _starts(out) == {"worker-started-by-runner"}


def _ended(pid: int, within: float = 60.0) -> bool:
    """Whether process ``pid`` is gone (or a zombie) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


def test_a_worker_no_run_takes_ends_on_release() -> None:
    prewarm.start(2)
    procs = list(prewarm._pool)
    assert prewarm.waiting() == 2
    prewarm.start(2)  # as many as asked, not more
    assert prewarm.waiting() == 2
    prewarm.release()
    assert prewarm.waiting() == 0
    assert [proc.returncode for proc in procs] == [0, 0]


def test_a_waiting_worker_ends_when_the_command_dies() -> None:
    """Killed, the command cannot release its workers: its end closes their stdin."""
    code = ("import os, sys; from pipeline import prewarm; prewarm.start(1); "
            "print(prewarm._pool[0].pid, flush=True); os.kill(os.getpid(), 9)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -9
    assert _ended(int(proc.stdout.strip()))
