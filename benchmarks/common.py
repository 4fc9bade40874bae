"""What the benchmarks share: running the CLI in a child process with its peak memory, and
printing (or writing) a report."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# the command's own entry point (pipeline.cli.entrypoint), as `newsbeam` runs it; the peaks
# are printed by an exit handler, registered first so that it runs last
_PEAK = ("import atexit, resource, sys; "
         "atexit.register(lambda: print('PEAK_KB', "
         "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
         "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)); "
         "from pipeline.cli import entrypoint; entrypoint()")


def aeb_text(path: Path) -> str:
    """An AEB page (``html/<id>.html.gz``) as text: the pages are UTF-8 (../shared/data/
    README.md), and 42 of them declare no charset, so lxml given their bytes reads them as
    Latin-1 and garbles every non-ASCII character."""
    import gzip

    return gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")


def run_cli(*args: str, children: bool = False
            ) -> tuple[subprocess.CompletedProcess[str], float, int]:
    """Run `newsbeam ARGS` in a child process: (process, seconds, peak RSS in MiB). The peak
    is that process's own; with ``children``, the largest of it and the processes it started
    and waited for (the batches of --batch-files)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _PEAK, *args], cwd=REPO,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    peaks = next(([int(kb) for kb in line.split()[1:]] for line in proc.stderr.splitlines()
                  if line.startswith("PEAK_KB")), [0, 0])
    return proc, seconds, (max(peaks) if children else peaks[0]) // 1024


def report(lines: list[str], write: Path | None) -> None:
    """Print the report, and write it to ``write`` when given."""
    text = "\n".join(lines) + "\n"
    print(text)
    if write:
        write.write_text(text, encoding="utf-8")
