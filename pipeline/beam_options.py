"""The PipelineOptions a newsbeam pipeline runs with.

Beam calls ``options.view_as(...)`` for every transform it applies and every step it
translates (1,291 times for one newsbeam run), and each call builds and runs a new argparse
parser over every registered option: about 0.3 s of a run's ~1.4 s start-up. A view shares
the options' values (a change made through one view shows in every other), so handing out the
same view again changes nothing. Imported only where a pipeline is built: importing Beam's
options module is not free, and ``newsbeam --help`` does not need it.
"""

from __future__ import annotations

from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions


class CachedViewOptions(PipelineOptions):
    """PipelineOptions that make each view once. The views live in the instance's
    ``__dict__`` (what Beam's own ``__getstate__`` pickles), so the options still pickle."""

    def view_as(self, cls: type[Any]) -> Any:
        views = self.__dict__.setdefault("_newsbeam_views", {})
        view = views.get(cls)
        if view is None:
            view = views[cls] = super().view_as(cls)
        return view


def pipeline_options(beam_args: list[str] | tuple[str, ...]) -> PipelineOptions:
    return CachedViewOptions(list(beam_args))
