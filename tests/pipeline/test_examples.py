"""examples/questions.py runs on the sample output and answers its questions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.pipeline.test_cli import run_samples


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("examples") / "out"
    run_samples(out)
    return out


def test_questions_script_answers_on_the_sample_output(out: Path) -> None:
    proc = subprocess.run([sys.executable, "examples/questions.py", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "Articles per day per source" in text and "Valley Weekly" in text
    assert "Top countries mentioned" in text and "KZ" in text
    assert "Most-quoted speakers" in text and "Nazarbayev" in text
    assert "Latest revision of each article" in text


def test_questions_functions(out: Path) -> None:
    sys.path.insert(0, str(REPO / "examples"))
    try:
        import questions
    finally:
        sys.path.pop(0)
    df = questions.load(str(out))
    per_day = questions.articles_per_day_per_source(df)
    assert per_day.articles.sum() == len(df)
    speakers = questions.most_quoted_speakers(df)
    assert speakers.iloc[0].speaker == "Nazarbayev" and speakers.iloc[0].quotes >= 5
    assert set(questions.top_countries(df, 50).country) >= {"KZ", "US", "RU", "CN"}
    assert questions.latest_revisions(df).article_id.is_unique
