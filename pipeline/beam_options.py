"""The PipelineOptions a newsbeam pipeline runs with.

Beam calls ``options.view_as(...)`` for every transform it applies and every step it
translates (1,291 times for one newsbeam run), and each call builds and runs a new argparse
parser over every registered option: about 0.3 s of a run's ~1.4 s start-up. A view shares
the options' values (a change made through one view shows in every other), so handing out the
same view again changes nothing. Imported only where a pipeline is built: importing Beam's
options module is not free, and ``newsbeam --help`` does not need it.

Flink's and Spark's job servers take options Python's Beam does not declare (Java's
FlinkPipelineOptions: ``--checkpointing_interval``, ``--flink_conf_dir``, ...). The CLI lets such a
flag through for those runners (``check_beam_args``); once the job server runs, Beam asks it
which options it takes (``DescribePipelineOptions``) and parses the flags with them, silently
dropping any it does not know. ``CachedViewOptions`` checks at that moment, so a misspelt flag
still ends the run with one line, not a job that quietly ran without it.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

# runners whose job server declares options of its own (Beam's names, as ``runner_name``)
JOB_SERVER_RUNNERS = ("flink", "spark", "portable")
# how Beam names a Java option on the command line: checkpointingInterval, --checkpointing_interval
JOB_SERVER_FLAG = re.compile(r"--[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


def beam_probe() -> argparse.ArgumentParser:
    """A parser of every Beam PipelineOptions subclass's flags, which raises instead of
    printing Beam's whole usage (129 lines) on a bad value."""
    probe = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    seen: set[type] = set()
    stack: list[type] = [PipelineOptions]
    sub: type
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
                try:
                    sub._add_argparse_args(probe)  # type: ignore[attr-defined]
                except (argparse.ArgumentError, TypeError):
                    pass
    return probe


def undeclared_flags(flags: list[str],
                     add_runner_options: Callable[[argparse.ArgumentParser], None]) -> list[str]:
    """The ``--flags`` neither Python's Beam nor the job server declares."""
    probe = beam_probe()
    try:
        add_runner_options(probe)
    except argparse.ArgumentError:  # Beam's own hook skips a flag declared twice; so do we
        pass
    known = {name for action in probe._actions for name in action.option_strings}
    return [flag for flag in (arg.split("=", 1)[0] for arg in flags if arg.startswith("--"))
            if flag not in known]


class CachedViewOptions(PipelineOptions):
    """PipelineOptions that make each view once. The views live in the instance's
    ``__dict__`` (what Beam's own ``__getstate__`` pickles), so the options still pickle."""

    def view_as(self, cls: type[Any]) -> Any:
        views = self.__dict__.setdefault("_newsbeam_views", {})
        view = views.get(cls)
        if view is None:
            view = views[cls] = super().view_as(cls)
        return view

    def get_all_options(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        add_runner_options = kwargs.get("add_extra_args_fn")
        # a portable runner's job service handle passes the options its job server declared
        if add_runner_options is not None and not kwargs.get("retain_unknown_options"):
            unknown = undeclared_flags(list(self._flags or ()), add_runner_options)
            if unknown:
                from pipeline.options import UsageError

                raise UsageError(f"unknown option {unknown[0]} (not a newsbeam or Beam "
                                 "option, nor one the runner's job server takes)")
        return super().get_all_options(*args, **kwargs)


def pipeline_options(beam_args: list[str] | tuple[str, ...]) -> PipelineOptions:
    return CachedViewOptions(list(beam_args))
