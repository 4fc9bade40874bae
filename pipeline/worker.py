"""newsbeam's set-up of a Beam SDK worker process.

The DirectRunner's ``multi_processing`` mode runs the pipeline in worker processes that Beam
starts itself (``python -m apache_beam.runners.worker.sdk_worker_main``), so the set-up the
CLI does in its own process is not there. newsbeam passes ``--beam_plugins=pipeline.worker``
for that mode (``pipeline.runners.worker_plugin_args``); Beam's worker imports each plugin
at its start, before it takes any work, and importing this module in such a process:

- sets up logging as the CLI did (``pipeline/logs.py``): the same format and levels, so a
  two-worker run prints what a one-worker run prints, not Beam's start-up chatter and
  trafilatura's per-page notes twice over;
- sets again the per-logger levels the user gave Beam (``--sdk_harness_log_level_overrides``);
- gives the worker's bundle state samplers the CLI's shorter period
  (``pipeline.runners.SAMPLING_PERIOD_MS``).

Imported anywhere else (no Beam control service in the environment) it does nothing; ``apply``
does the same on demand.
"""

from __future__ import annotations

import os

from pipeline import logs
from pipeline.runners import SAMPLING_PERIOD_MS, set_sampling_period

# set by Beam for every SDK worker process it starts (sdk_worker_main.create_harness reads it)
WORKER_MARKER = "CONTROL_API_SERVICE_DESCRIPTOR"


def apply() -> None:
    """The worker set-up, in this process."""
    logs.setup_worker()
    beam_overrides()
    set_sampling_period(SAMPLING_PERIOD_MS)


def beam_overrides() -> None:
    """Beam's per-logger levels the user gave (``--sdk_harness_log_level_overrides``), set
    again: Beam set them before this plugin's levels, which would otherwise replace them for
    the loggers newsbeam quiets (apache_beam, trafilatura, ...)."""
    from apache_beam.runners.worker import sdk_worker_main

    try:
        text = os.environ.get("PIPELINE_OPTIONS")
        if "PIPELINE_OPTIONS_FILE" in os.environ:
            with open(os.environ["PIPELINE_OPTIONS_FILE"], encoding="utf-8") as handle:
                text = handle.read()
        options = sdk_worker_main._load_pipeline_options(text)
    except (OSError, ValueError):  # Beam itself has failed on them already
        return
    sdk_worker_main._set_log_level_overrides(options)


if WORKER_MARKER in os.environ:
    apply()
