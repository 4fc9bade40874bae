"""Worker processes of the DirectRunner's ``multi_processing`` mode, started as the command
starts instead of when the runner first needs them.

Beam's FnApiRunner starts its worker processes (``python -m pipeline.worker_main``) when it
runs the first stage, and waits for each to start Python, import Beam and connect: about a
second, during which nothing else runs. Each worker's first bundle then imports newsbeam's
transforms and their libraries. Started with the command instead, this overlaps the
command's own start (its imports, the checks of OUT and the inputs, building the graph).

How:
- ``start(n)`` spawns n processes ``python -m pipeline.worker_main --prewarmed``. Each imports
  what a bundle needs, then waits on its stdin.
- In this process, the runner's handler for subprocess workers is newsbeam's
  (``pipeline.runners``, registered in place of Beam's). It gives a waiting process the
  environment Beam would have given a new one: its control and logging addresses and the
  pipeline options, as one JSON line (``hand_over``). With none left, it starts a process as
  Beam does.
- A waiting process that no run takes is ended by ``release`` (at the end of a run, and when
  the command ends without one). If this process dies instead, the waiting process sees its
  stdin close and exits.

This module imports nothing of Beam: the command calls ``start`` before Beam's imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence

from pipeline.runners import WORKER_MAIN, _value, runner_name  # stdlib only, no Beam

PREWARMED_FLAG = "--prewarmed"

# global options of the command line that take a value (pipeline.main.make_parser)
_GLOBAL_WITH_VALUE = ("--log-level", "--log-format")
# a run whose batches run in processes of their own (pipeline/batches.py), each of which
# starts its own workers; and a config file, which may ask for that
_NOT_FROM_ARGV = ("--batch-files", "--batch-lines", "--config", "--help", "-h")

_lock = threading.Lock()
_pool: list[subprocess.Popen[bytes]] = []


def workers_wanted(argv: Sequence[str]) -> int:
    """How many worker processes the command line ``argv`` (without the program's name)
    will have the DirectRunner start: ``newsbeam run ... --direct_running_mode
    multi_processing [--direct_num_workers N]`` on the DirectRunner. 0 for anything else,
    and for a run that may run batches in processes of their own."""
    args = list(argv)
    command = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _GLOBAL_WITH_VALUE:
            i += 2
            continue
        if not arg.startswith("-"):
            command = arg
            break
        i += 1
    if command != "run" or any(_names(arg, flag) and not _one_run(args, i, flag)
                               for i, arg in enumerate(args) for flag in _NOT_FROM_ARGV):
        return 0
    return workers_in(args)


def _one_run(args: Sequence[str], i: int, flag: str) -> bool:
    """Whether ``args[i]``, which names ``flag``, is ``--batch-files 0`` (one run, in this
    process: its workers are wanted) and names no other of the flags."""
    if flag != "--batch-files" or _names(args[i], "--batch-lines"):
        return False
    arg = args[i]
    value = arg.split("=", 1)[1] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "")
    return value.strip() == "0"


def _names(arg: str, flag: str) -> bool:
    """Whether the command-line word ``arg`` gives option ``flag``: its name, with a value
    after "=" or not, or an abbreviation of it (argparse takes ``--batch`` for
    ``--batch-files`` when nothing else starts so; here any prefix counts)."""
    name = arg.split("=", 1)[0]
    if flag.startswith("--"):
        return len(name) > 2 and name.startswith("--") and flag.startswith(name)
    return name == flag


def workers_in(beam_args: Sequence[str]) -> int:
    """How many worker processes Beam's options ``beam_args`` have the DirectRunner start
    (its ``multi_processing`` mode); 0 for another mode or runner."""
    args = list(beam_args)
    if runner_name(args) not in (None, "direct"):
        return 0
    if _value(args, "--direct_running_mode") != "multi_processing":
        return 0
    try:
        count = int(_value(args, "--direct_num_workers") or 1)
    except ValueError:
        return 0  # Beam says what is wrong with it
    # Beam's DirectRunner takes 0 to mean one worker per core
    return count if count > 0 else (os.cpu_count() or 1)


def start(count: int) -> None:
    """Spawn worker processes until ``count`` wait in the pool."""
    with _lock:
        _pool[:] = [proc for proc in _pool if proc.poll() is None]
        while len(_pool) < count:
            _pool.append(subprocess.Popen(  # noqa: S603 - this interpreter, a fixed module
                [sys.executable, "-m", WORKER_MAIN, PREWARMED_FLAG], stdin=subprocess.PIPE))


def take() -> subprocess.Popen[bytes] | None:
    """A waiting worker process for the runner, or None when none is left."""
    with _lock:
        while _pool:
            proc = _pool.pop(0)
            if proc.poll() is None:
                return proc
        return None


def hand_over(proc: subprocess.Popen[bytes], environment: dict[str, str]) -> None:
    """Give a waiting worker the environment it runs with; it then runs Beam's harness.
    Raises OSError when the process is gone."""
    assert proc.stdin is not None
    try:
        proc.stdin.write(json.dumps(environment).encode("utf-8") + b"\n")
    finally:
        proc.stdin.close()


def release(timeout: float = 10.0) -> None:
    """End the waiting workers no run took, at once: they hold nothing yet."""
    with _lock:
        procs, _pool[:] = list(_pool), []
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()
