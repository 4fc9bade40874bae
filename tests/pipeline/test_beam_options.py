"""pipeline.beam_options: views made once, still shared, and the options still pickle."""

from __future__ import annotations

import pickle

from apache_beam.options.pipeline_options import (
    PipelineOptions,
    SetupOptions,
    StandardOptions,
    TypeOptions,
)

from pipeline.beam_options import pipeline_options


def test_views_are_made_once_and_share_the_values() -> None:
    options = pipeline_options(["--runner=DirectRunner", "--direct_num_workers=2"])
    assert options.view_as(TypeOptions) is options.view_as(TypeOptions)
    assert options.view_as(StandardOptions).runner == "DirectRunner"
    assert options.get_all_options()["direct_num_workers"] == 2
    # a value set through one view shows through the options and through a fresh view
    options.view_as(SetupOptions).save_main_session = True
    assert options.get_all_options()["save_main_session"] is True
    assert PipelineOptions.view_as(options, SetupOptions).save_main_session is True


def test_the_options_pickle_with_their_values() -> None:
    options = pipeline_options(["--runner=DirectRunner"])
    options.view_as(TypeOptions)
    copy = pickle.loads(pickle.dumps(options))
    assert copy.view_as(StandardOptions).runner == "DirectRunner"
    assert copy.get_all_options() == options.get_all_options()
