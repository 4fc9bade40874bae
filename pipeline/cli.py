"""The ``newsbeam`` command's entry point (and ``python -m pipeline``'s).

Kept apart from ``pipeline.main``, whose imports (Apache Beam, pyarrow, trafilatura) take
a second or more: a Ctrl-C while they load ends the command like a Ctrl-C during a run, with
one line and exit code 130, not a traceback of the import.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it


def entrypoint() -> None:
    try:
        from pipeline.main import main
    except KeyboardInterrupt:
        sys.stderr.write("newsbeam: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    try:
        code = main()
    except KeyboardInterrupt:  # before or after a run (a run says more itself)
        sys.stderr.write("\nnewsbeam: interrupted\n")
        code = EXIT_INTERRUPTED
    sys.exit(code)
