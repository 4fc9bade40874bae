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
"""

from __future__ import annotations

import sys

from pipeline import logs

logs.setup_worker()

from apache_beam.runners.worker import sdk_worker_main  # noqa: E402 - after the logging

if __name__ == "__main__":
    sdk_worker_main.main(sys.argv)
