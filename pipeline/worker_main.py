"""The entry point of the DirectRunner's ``multi_processing`` worker processes
(``python -m pipeline.worker_main``, in place of Beam's ``apache_beam.runners.worker.
sdk_worker_main``; ``pipeline.runners.direct_engine``).

Beam's own entry point imports Beam before anything can set up logging, so its import-time
notices (optional GCP client libraries) and its harness's first INFO lines reached the
terminal in Python's default format, under ``--quiet`` too, once per worker. Here newsbeam's
logging comes first (the import of ``pipeline`` installs its filter, ``logs.setup_worker`` the
CLI's format and levels), then Beam's worker runs as it would have. Beam sets its own levels
as it starts; it then imports the ``pipeline.worker`` plugin, which sets newsbeam's again (so
this module must not import that plugin itself: a second import would not run it).

Once Beam's harness returns (the runner closed the control channel, every bundle is finished
and its output sent, the harness's log handler flushed), the process ends without the
interpreter's teardown. Freeing a worker's heap object by object took 0.3-0.4 s, and the
runner closes its workers one after the other, waiting for each process to end: on the
throughput corpus (3,664 inputs, two workers) that close took 0.86 s, now 0.08 s
(docs/benchmarks.md). The exit handlers still run (logging's flushes its handlers) and the
streams are flushed; an exception from the harness ends the process as before, with its
traceback.

With ``--prewarmed`` the process is one that ``pipeline.prewarm`` started before the runner
needed it: it imports what a bundle needs, then waits for one JSON line on its stdin, the
environment Beam would have given a new worker process, and runs Beam's harness with it.
Unused, it is ended by the command (SIGTERM, ``pipeline.prewarm.release``), or by the end of
its stdin when the command died.
"""

from __future__ import annotations

import signal
import sys

# A worker started ahead (--prewarmed) ignores Ctrl-C from its first line until it is given
# work: the key reaches the whole process group, and the command answers it with one line
# (a traceback of the imports below, per worker, is noise). The disposition the process
# inherited is restored then: ignored still for a run started with Ctrl-C ignored (a
# background job), as Beam's own worker processes inherit it.
INHERITED_SIGINT = signal.getsignal(signal.SIGINT)
# the flag is pipeline.prewarm.PREWARMED_FLAG, not imported before this line on purpose
if "--prewarmed" in sys.argv[1:]:
    signal.signal(signal.SIGINT, signal.SIG_IGN)

from pipeline import logs  # noqa: E402 - after the signal's disposition

logs.setup_worker()

from apache_beam.runners.worker import sdk_worker_main  # noqa: E402 - after the logging


def main(argv: list[str]) -> None:
    """Beam's harness, then a prompt exit (see the module's doc)."""
    import atexit
    import os

    sdk_worker_main.main(argv)
    atexit._run_exitfuncs()  # logging's among them: its handlers are flushed and closed
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


def preload() -> None:
    """Import what a bundle of the batch graph needs, and load the language model, so that
    the worker's first bundle does not."""
    import pipeline.graph  # noqa: F401 - the transforms, trafilatura, feedparser, pyarrow
    from transforms.fields import load_language_model

    load_language_model()


def prewarmed(argv: list[str]) -> None:
    """Wait for the environment to run with (``pipeline.prewarm``), then run as ``main``."""
    import json
    import os

    from pipeline.prewarm import PREWARMED_FLAG

    preload()
    line = sys.stdin.buffer.readline()
    if not line.strip():  # no run needed this worker
        os._exit(0)
    environment = json.loads(line)
    os.environ.clear()
    os.environ.update(environment)
    signal.signal(signal.SIGINT, INHERITED_SIGINT)
    logs.setup_worker()  # again: the command may have changed its logging since the start
    main([arg for arg in argv if arg != PREWARMED_FLAG])


if __name__ == "__main__":
    if "--prewarmed" in sys.argv[1:]:
        prewarmed(sys.argv)
    else:
        main(sys.argv)
