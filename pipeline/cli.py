"""The ``newsbeam`` command's entry point (and ``python -m pipeline``'s).

Kept apart from ``pipeline.main``, whose imports (Apache Beam, pyarrow, trafilatura) take
a second or more: a Ctrl-C while they load ends the command like a Ctrl-C during a run, with
one line and exit code 130, not a traceback of the import.
"""

from __future__ import annotations

import signal
import sys
from typing import Any, NoReturn

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it


def _load_main() -> Any:
    """``pipeline.main.main``, imported with Ctrl-C noted rather than raised.

    A KeyboardInterrupt raised in the middle of those imports lands in whatever code runs at
    that moment: in an importlib callback CPython prints "Exception ignored" and the run goes
    on as if no key was pressed, and a module cut short in its import can end the process by
    SIGINT at exit instead of 130 (each seen under load, about once in 100 tries). The imports
    take a second; the command ends right after them."""
    pressed: list[int] = []
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.default_int_handler:  # not when ignored (nohup, a background job)
        signal.signal(signal.SIGINT, lambda signum, _frame: pressed.append(signum))
    try:
        from pipeline.main import main
    finally:
        if previous is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous)
    if pressed:
        sys.stderr.write("newsbeam: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    return main


EXIT_TERMINATED = 143  # 128 + SIGTERM


def leave(code: int, wait: bool = False) -> NoReturn:
    """Exit with ``code`` once the exit handlers ran and the streams are flushed, without the
    interpreter's teardown: freeing every object of the heap one by one took 0.5 s after a
    run of 3,664 inputs in one process (docs/benchmarks.md), time the command's user waits
    for nothing. The handlers still stop a Flink, Spark or Prism job server, remove Beam's
    scratch folder and flush logging's handlers, as a normal exit does.

    ``wait``: first what the interpreter does before its exit handlers
    (``threading._shutdown``): tell thread pools (``concurrent.futures``, a user's step may
    hold one) that no more work comes, and wait for the threads that are not daemons; an idle
    pool's thread would otherwise wait for work forever. A run cut short by a signal does not
    wait: it can leave a thread behind that never ends, Beam's state sampler thread started
    just before the signal landed, whose stop then never runs (seen once in CI: the
    interpreter waited for it forever after "terminated (SIGTERM)").

    Worker processes started ahead for a run that never came (a usage error, a locked OUT)
    are ended here (``pipeline.prewarm.release``)."""
    import atexit
    import os
    import threading

    from pipeline import prewarm

    prewarm.release()
    if wait:
        threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`newsbeam ... | head`)
            pass
    os._exit(code)


def entrypoint() -> None:
    from pipeline import prewarm

    # the DirectRunner's worker processes start while this one imports and builds the run
    prewarm.start(prewarm.workers_wanted(sys.argv[1:]))
    main = _load_main()
    try:
        code = main()
    except KeyboardInterrupt:  # before or after a run (a run says more itself)
        sys.stderr.write("\nnewsbeam: interrupted\n")
        code = EXIT_INTERRUPTED
    leave(code, wait=code not in (EXIT_INTERRUPTED, EXIT_TERMINATED))
