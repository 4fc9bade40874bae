"""A warning before a local run outgrows the machine.

The DirectRunner runs each stage over its whole input and keeps every stage's output in memory
until the next stage has read it; its resident set grows with the input (about 250 KB a page
at 16,000 pages, docs/benchmarks.md) and does not come back down. A run too big for the
machine is then killed by the kernel with no word from newsbeam. ``MemoryWatch`` samples the
resident memory of this process and its children (the workers of ``--direct_running_mode
multi_processing``) every few seconds and logs one warning, with what to do instead, once the
run holds ``ratio`` of the memory it can have: what it holds plus what the kernel reports as
available (``MemAvailable``), or the cgroup's limit when a container sets a lower one.

Linux only (it reads /proc); elsewhere it records the process's own peak and gives no
warning. The resident sets of the worker processes are added up, so the libraries they share
count once per worker: the warning errs early, never late. ``NEWSBEAM_MEMORY_WARNING`` sets the
ratio (default 0.7) or turns the warning off (``off``).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

LOG = logging.getLogger("newsbeam")

DEFAULT_RATIO = 0.7
INTERVAL = 2.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_PROC = Path("/proc")


def _rss(pid: int) -> int:
    """Resident bytes of one process (0 if it is gone)."""
    try:
        return int((_PROC / str(pid) / "statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list((_PROC / str(pid) / "task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def tree_rss(pid: int | None = None) -> int:
    """Resident bytes of a process and all its descendants."""
    pending, seen, total = [pid or os.getpid()], set(), 0
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        total += _rss(current)
        pending += _children(current)
    return total


def _meminfo(field: str) -> int | None:
    try:
        for line in (_PROC / "meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> tuple[int, int] | None:
    """(limit, in use) of this process's memory cgroup (v2, or v1's memory controller), when
    it sets a limit."""
    try:
        lines = (_PROC / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _id, controllers, path = parts
        if controllers == "":  # v2
            bases = [Path("/sys/fs/cgroup") / path.lstrip("/")]
            names = ("memory.max", "memory.current")
        elif "memory" in controllers.split(","):  # v1
            root = Path("/sys/fs/cgroup/memory")
            # inside a container without its own cgroup namespace the path is the host's:
            # the container's own limit is then at the mount's root
            bases = [root / path.lstrip("/"), root]
            names = ("memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        for base in bases:
            try:
                limit = (base / names[0]).read_text().strip()
                if limit == "max" or int(limit) >= 1 << 60:  # v1 writes "none" as ~2**63
                    break
                return int(limit), int((base / names[1]).read_text())
            except (OSError, ValueError):
                continue
    return None


def usable_bytes(held: int) -> int | None:
    """The memory a run holding ``held`` bytes can have in all: ``held`` plus what the kernel
    can still give (MemAvailable), or less if a cgroup limit leaves less room."""
    available = _meminfo("MemAvailable")
    if available is None:
        return None
    usable = held + available
    room = _cgroup_room()
    if room is not None:
        limit, used = room
        usable = min(usable, held + max(0, limit - used))
    return usable


def total_bytes() -> int | None:
    """The memory this machine has in all (MemTotal), or a container's limit when lower: what
    batches are planned from. Not what is free at the moment, which moves with the page
    cache and other jobs: the same input on the same machine is planned the same way."""
    total = _meminfo("MemTotal")
    if total is None:
        return None
    room = _cgroup_room()
    return min(total, room[0]) if room is not None else total


def warning_ratio(environ: dict[str, str] | None = None) -> float | None:
    """The ratio from ``NEWSBEAM_MEMORY_WARNING`` (None: off); a bad value is the default."""
    value = (environ if environ is not None else os.environ).get("NEWSBEAM_MEMORY_WARNING",
                                                                 "").strip().lower()
    if value in ("off", "0", "no", "false"):
        return None
    try:
        ratio = float(value) if value else DEFAULT_RATIO
    except ValueError:
        return DEFAULT_RATIO
    return ratio if 0 < ratio <= 1 else DEFAULT_RATIO


# What one DirectRunner run of N input files needs, for planning batches before it starts
# (``planned_batch_files``). Measured peaks of one run on AEB article pages of about 180 KB
# (docs/benchmarks.md, growth): 458-471 MiB for 1,000 pages, 784-813 MiB for 4,000, 1,731-2,375
# MiB for 16,000: a base and about 0.08-0.13 MiB a file; the larger slope is taken. In
# multi_processing mode each worker process holds about as much as a one-process run (1,334
# MiB in all with 2 workers for 1,000 pages, 2,319 MiB for 4,000), so the need is counted
# once per process. A JSONL dump counts as one file here: see --batch-lines.
RUN_BASE_BYTES = 350 * 2**20
RUN_FILE_BYTES = int(0.13 * 2**20)
# the share of the machine's memory (``total_bytes``, or --max-memory) a plan aims at
PLAN_SHARE = 0.5
# no batch planned below this many files (a run's fixed cost would outweigh it); planned sizes
# are rounded down to a multiple of this, so that a small change in the memory counted does
# not change the batches
MIN_BATCH_FILES = 100


def run_need(files: int, processes: int = 1) -> int:
    """The memory one DirectRunner run of ``files`` input files is expected to hold, in all
    its ``processes`` (1, or 1 + the workers of multi_processing)."""
    return processes * (RUN_BASE_BYTES + files * RUN_FILE_BYTES)


def planned_batch_files(files: int, processes: int, usable: int) -> int | None:
    """The batch size (files) that keeps a run within ``PLAN_SHARE`` of ``usable`` bytes, or
    None when one run of all ``files`` fits. A multiple of ``MIN_BATCH_FILES``, and never
    under it (even when that does not fit: ``run_need`` says)."""
    budget = PLAN_SHARE * usable
    if files <= MIN_BATCH_FILES or run_need(files, processes) <= budget:
        return None
    size = int((budget / processes - RUN_BASE_BYTES) // RUN_FILE_BYTES)
    return max(MIN_BATCH_FILES, size // MIN_BATCH_FILES * MIN_BATCH_FILES)


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


class MemoryWatch:
    """Samples the run's memory in a daemon thread (its peak goes to the run manifest); warns
    once past ``ratio`` of what it can have (never when ``ratio`` is None). Use as a context
    manager around the run."""

    def __init__(self, ratio: float | None, interval: float = INTERVAL,
                 advice: str = "", limit: int | None = None) -> None:
        self.ratio = ratio
        self.limit = limit
        self.interval = interval
        self.advice = advice
        self.warned: str | None = None
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> str | None:
        """One sample; returns (and logs) the warning the first time the ratio is passed."""
        held = tree_rss()
        self.peak = max(self.peak, held)
        if self.warned is not None or self.ratio is None:
            return None
        usable = usable_bytes(held)
        if self.limit is not None:  # --max-memory
            usable = min(usable, self.limit) if usable is not None else self.limit
        if usable is None or held < self.ratio * usable:
            return None
        self.warned = (f"this run holds {_gib(held)} of the {_gib(usable)} of memory it can "
                       f"have ({held / usable:.0%}){self.advice}")
        LOG.warning(self.warned)
        return self.warned

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()

    def summary(self) -> dict[str, object]:
        """For the run manifest: the peak sampled (at least this process's own peak resident
        set) and the warning, if one was given."""
        try:
            import resource

            own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            own *= 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
        except (ImportError, OSError):  # no resource module (Windows)
            own = 0
        return {"peak_rss_bytes": max(self.peak, own) or None, "warning": self.warned}

    def __enter__(self) -> MemoryWatch:
        if _PROC.joinpath("meminfo").exists():
            self._thread = threading.Thread(target=self._loop, name="newsbeam-memory",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 1)
            self.check()  # a run shorter than one interval still gets its peak


DIRECT_ADVICE = (": the DirectRunner keeps each stage's data in memory until the run ends. "
                 "If it runs out, run the input in batches (--batch-files 2000, and "
                 "--batch-lines 20000 for a large JSONL dump: several runs into the same OUT, "
                 "each adding only what is new) or use --runner FlinkRunner (docs/runners.md)")
# the same, for a batch of a command run with --batch-files (pipeline/batches.py)
BATCH_ADVICE = (": the DirectRunner keeps each stage's data in memory until the run ends. "
                "If it runs out, give --batch-files (or --batch-lines) a smaller number, or use "
                "--runner FlinkRunner "
                "(docs/runners.md)")
