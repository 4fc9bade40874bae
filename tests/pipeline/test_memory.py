"""The memory watch: the resident memory of a process tree, and the warning a local run gives
before it outgrows the machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.memory import DIRECT_ADVICE, MemoryWatch, tree_rss, usable_bytes, warning_ratio
from tests.conftest import REPO, SAMPLES

pytestmark = pytest.mark.skipif(not Path("/proc/meminfo").exists(),
                                reason="the memory watch reads /proc (Linux only)")


def test_tree_rss_counts_the_children() -> None:
    """A child that holds 300 MiB (the workers of multi_processing are children) raises the
    tree's resident set by about that much; this process's own share is counted too."""
    before = tree_rss()
    assert before > 20 * 2**20
    child = subprocess.Popen([sys.executable, "-c",
                              "import sys, time; b = b'x' * (300 * 2**20); "
                              "print('ready', flush=True); time.sleep(60)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        grown = tree_rss() - before
        assert 280 * 2**20 < grown < 400 * 2**20
        assert tree_rss(child.pid) > 280 * 2**20
    finally:
        child.kill()
        child.wait()
    deadline = time.monotonic() + 10
    while tree_rss() - before > 100 * 2**20 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert tree_rss() - before < 100 * 2**20


def test_usable_memory_is_what_is_held_plus_what_is_available() -> None:
    held = tree_rss()
    usable = usable_bytes(held)
    assert usable is not None
    assert held < usable <= held + os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_the_warning_is_given_once_past_the_ratio() -> None:
    watch = MemoryWatch(1e-6, advice=DIRECT_ADVICE)
    first = watch.check()
    assert first is not None and first.startswith("this run holds ")
    assert "GiB of the" in first and "--runner FlinkRunner" in first
    assert watch.check() is None  # once
    assert watch.summary()["warning"] == first
    quiet = MemoryWatch(1.0)  # the whole machine: not reached by a test process
    assert quiet.check() is None
    off = MemoryWatch(None)
    assert off.check() is None
    assert off.summary()["peak_rss_bytes"] >= tree_rss() // 2
    # --max-memory lowers what the run can have: this process holds more than 1 MiB
    limited = MemoryWatch(0.9, limit=2**20)
    warned = limited.check()
    assert warned is not None and "of the 0.0 GiB of memory it can have" in warned


@pytest.mark.parametrize(("value", "ratio"), [
    ("", 0.7), ("0.5", 0.5), ("1", 1.0), ("off", None), ("0", None),
    ("2", 0.7), ("-1", 0.7), ("lots", 0.7),
])
def test_the_ratio_comes_from_the_environment(value: str, ratio: float | None) -> None:
    assert warning_ratio({"NEWSBEAM_MEMORY_WARNING": value}) == ratio


def test_a_run_past_the_ratio_warns_and_records_it(tmp_path: Path) -> None:
    """The end-to-end path on the DirectRunner, with the ratio set so low that any run passes
    it: one warning line on stderr, and the manifest keeps it with the run's peak."""
    env = {**os.environ, "NEWSBEAM_MEMORY_WARNING": "0.000001"}
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run",
                           str(SAMPLES / "kazakhstan_peacemaker.txt"),
                           "--output", str(tmp_path / "out")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "this run holds" in line]
    assert len(warnings) == 1 and "DirectRunner keeps" in warnings[0]
    manifest = json.loads(next((tmp_path / "out" / "_runs").glob("*.json")).read_text())
    assert manifest["memory"]["warning"] in warnings[0]
    assert manifest["memory"]["peak_rss_bytes"] > 50 * 2**20
    assert "memory     peak" in proc.stdout
