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
    # argparse takes an abbreviation of an option (--batch-file for --batch-files)
    (["run", "in/", "-o", "out", "--batch-file", "100", *MULTI], 0),
    (["run", "in/", "-o", "out", "--batch=100", *MULTI], 0),
    # --batch-files 0: one run whatever it needs, in this process: its workers are wanted
    (["run", "in/", "-o", "out", "--batch-files", "0", *MULTI], 2),
    (["run", "in/", "-o", "out", "--batch-file=0", *MULTI], 2),
    (["run", "in/", "-o", "out", "--batch=0", *MULTI], 0),  # --batch-lines too, for argparse
    (["run", "in/", "-o", "out", "--batch-files", "0", "--batch-lines", "9", *MULTI], 0),
    (["run", "in/", "-o", "out", "--conf", "c.toml", *MULTI], 0),
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
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def test_a_worker_no_run_takes_ends_on_release() -> None:
    prewarm.start(2)
    procs = list(prewarm._pool)
    assert len(prewarm._pool) == 2
    prewarm.start(2)  # as many as asked, not more
    assert len(prewarm._pool) == 2
    prewarm.release()
    assert prewarm._pool == []
    assert all(proc.returncode is not None for proc in procs)


def _marked(marker: str) -> list[int]:
    """The processes whose environment holds ``NEWSBEAM_TEST_RUN=marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"NEWSBEAM_TEST_RUN={marker}".encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def test_the_command_s_end_ends_the_workers_it_started(tmp_path: Path) -> None:
    """The command ends the workers no run took before it exits, even those still loading
    (which would otherwise linger until their imports are done and they read the end of their
    stdin)."""
    code = ("from pipeline import prewarm; prewarm.start(2); "
            "print(*[p.pid for p in prewarm._pool], flush=True); "
            "from pipeline.cli import leave; leave(0, wait=True)")
    # the output to a file: a pipe's reader would wait for the workers too (they share it)
    with (tmp_path / "stdout").open("w") as stdout:
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, stdout=stdout,
                              stderr=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 0
    pids = [int(pid) for pid in (tmp_path / "stdout").read_text().split()]
    assert len(pids) == 2 and all(_ended(pid, within=0) for pid in pids)


def test_a_command_that_ends_without_a_run_ends_its_workers(tmp_path: Path) -> None:
    """A usage error after the workers started: the command ends them before it exits."""
    marker = f"usage-{os.getpid()}"
    with (tmp_path / "stderr").open("w") as stderr:  # not a pipe: see above
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline", "run", str(tmp_path / "missing"), "-o",
             str(tmp_path / "out"), *MULTI], cwd=REPO, stdout=subprocess.DEVNULL,
            stderr=stderr, timeout=120, env={**os.environ, "NEWSBEAM_TEST_RUN": marker})
    assert proc.returncode == 2, (tmp_path / "stderr").read_text()
    assert "Traceback" not in (tmp_path / "stderr").read_text()
    assert [pid for pid in _marked(marker) if not _ended(pid, within=0)] == []


def test_ctrl_c_at_the_start_of_a_two_worker_run_prints_one_line(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group, the waiting workers too, while everything
    still imports: the command's one line and exit code 130, no worker's traceback, and no
    worker left behind."""
    import signal

    marker = f"ctrl-c-{os.getpid()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(SAMPLES), "-o", str(tmp_path / "out"),
         *MULTI], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, env={**os.environ, "NEWSBEAM_TEST_RUN": marker})
    deadline = time.monotonic() + 120
    # the workers have started and the command still loads its modules
    while time.monotonic() < deadline and proc.poll() is None and not (
            len(_marked(marker)) >= 3
            and "libarrow" in Path(f"/proc/{proc.pid}/maps").read_text()):
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before the signal"
    os.killpg(proc.pid, signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.rstrip().endswith("newsbeam: interrupted"), err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert all(_ended(pid) for pid in _marked(marker))


def test_a_run_that_ignores_ctrl_c_keeps_ignoring_it_in_its_workers(tmp_path: Path) -> None:
    """A run started with Ctrl-C ignored (a background job of a script: `newsbeam run ... &`)
    is not stopped by one sent to its process group, in its workers either: they take the
    disposition they inherited when given work, as Beam's own worker processes do."""
    import signal

    pages = tmp_path / "pages"
    pages.mkdir()
    for page in sorted((SAMPLES / "pages").iterdir()):
        for i in range(2):
            (pages / f"{i}-{page.name}").write_bytes(page.read_bytes().replace(
                b"</body>", f"<p>Copy {i}.</p></body>".encode()))
    started = tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(pages), "-o", str(tmp_path / "out"),
         "-q", "--steps", "+tests.fixtures.custom_steps:mark_and_wait", *MULTI], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "NEWSBEAM_TEST_MARKER": str(started)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not started.exists():
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before the signal"
    os.killpg(proc.pid, signal.SIGINT)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    kept = pd.read_parquet(tmp_path / "out" / "articles")
    copies = pd.read_parquet(tmp_path / "out" / "duplicates")
    assert len(kept) + len(copies) == 4  # every page, each copy a near copy of the other


def test_a_waiting_worker_ends_when_the_command_dies() -> None:
    """Killed, the command cannot release its workers: its end closes their stdin."""
    code = ("import os, sys; from pipeline import prewarm; prewarm.start(1); "
            "print(prewarm._pool[0].pid, flush=True); os.kill(os.getpid(), 9)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -9
    assert _ended(int(proc.stdout.strip()))
