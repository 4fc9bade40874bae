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
"""

from __future__ import annotations

import sys

from pipeline import logs

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


if __name__ == "__main__":
    main(sys.argv)
