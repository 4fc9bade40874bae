"""Shared test fixtures: paths, the fixed clock, golden files and the shared corpus."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
GOLDEN = Path(__file__).resolve().parent / "golden"
# ../shared beside the checkout (CI and the team's machines); a user's clone may not have it.
SHARED = Path(os.environ.get("NEWSBEAM_SHARED", REPO.parent / "shared")).resolve()
SHARED_DATA = SHARED / "data"
FIXED_NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="session", autouse=True)
def _session_tempdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Other temporary folders go to one folder per test session, removed at its end: Beam's
    Pipeline makes temporary folders it never removes (two per TestPipeline), and a CLI
    process a test kills cannot clean up after itself (child processes inherit TMPDIR).
    pytest's own tmp_path folders stay where pytest keeps them."""
    from pipeline.runners import beam_scratch

    tmp_path_factory.getbasetemp()  # resolved before the switch
    old_env = os.environ.get("TMPDIR")
    with beam_scratch() as session_tmp:
        os.environ["TMPDIR"] = session_tmp
        try:
            yield
        finally:
            if old_env is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = old_env


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", default=False,
        help="rewrite golden files from the current output (read the diff before committing)",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def shared_data() -> Path:
    """The shared test corpus, or a skip that says why it is missing."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA} (a user's clone has no "
                    "../shared; set NEWSBEAM_SHARED to point at it)")
    return SHARED_DATA


def check_golden(path: Path, actual: str, update: bool) -> None:
    """Compare text with a golden file; --update-golden rewrites it."""
    if update or not path.exists():
        if not update:
            pytest.fail(f"golden file {path} is missing; run pytest --update-golden and "
                        "read the diff")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, (
        f"output differs from golden {path.name}; if the change is deliberate run "
        "pytest --update-golden and review the diff"
    )
