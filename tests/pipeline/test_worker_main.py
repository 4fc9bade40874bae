"""pipeline/worker_main.py: the multi_processing mode's worker entry point ends its process
promptly once Beam's harness returns, without losing what a normal exit would keep."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# A stand-in for Beam's harness: it registers an exit handler, leaves unflushed text on
# stdout and a record in a logging handler's buffer, and holds a global object whose __del__
# would only run in the interpreter's teardown.
_WORKER = textwrap.dedent("""
    import atexit, logging, sys
    from pathlib import Path
    from apache_beam.runners.worker import sdk_worker_main
    import pipeline.worker_main as worker_main

    folder = Path(sys.argv[1])

    class Torn:
        def __init__(self):
            # kept here: in the teardown, the module's names and the builtins may be gone
            self.path, self.open = str(folder / "teardown"), open

        def __del__(self):
            with self.open(self.path, "w") as handle:
                handle.write("ran")

    def harness(argv):
        global held
        held = Torn()
        atexit.register(lambda: (folder / "atexit").write_text("ran"))
        sys.stdout.write("bundle output, no newline")
        handler = logging.handlers.MemoryHandler(
            100, flushLevel=logging.CRITICAL,
            target=logging.FileHandler(folder / "log.txt"))
        logging.getLogger("test.worker").addHandler(handler)
        logging.getLogger("test.worker").warning("last record")
        return {mode}

    import logging.handlers
    sdk_worker_main.main = harness
    worker_main.main(["worker"])
    sys.stdout.write("not reached")
""")


def _run(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    code = _WORKER.replace("{mode}", mode)
    # buffered streams, as a worker started by Beam may have them
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_worker_exits_without_the_interpreter_teardown(tmp_path: Path) -> None:
    proc = _run(tmp_path, "None")
    assert proc.returncode == 0, proc.stderr
    # what a normal exit keeps: the exit handlers, stdout's buffer, logging's buffers
    assert (tmp_path / "atexit").read_text() == "ran"
    assert proc.stdout == "bundle output, no newline"
    assert (tmp_path / "log.txt").read_text() == "last record\n"
    # what it skips: freeing the heap object by object (a global's __del__ never runs)
    assert not (tmp_path / "teardown").exists()


def test_a_failing_harness_still_ends_with_its_traceback(tmp_path: Path) -> None:
    proc = _run(tmp_path, "1 / 0")
    assert proc.returncode == 1
    assert "ZeroDivisionError" in proc.stderr
    assert "not reached" not in proc.stdout
