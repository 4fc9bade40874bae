"""The article extraction benchmark (../shared/data/aeb): loading and the published metric.

Metric, as the benchmark defines it (scrapinghub/article-extraction-benchmark, see
../shared/data/README.md): tokens are ``\\w+`` runs; the units compared are the multisets of
4-token shingles of the predicted and the true text (a text shorter than 4 tokens is one
shingle); per page tp/fp/fn are divided by tp+fp+fn; precision and recall per page are
tp/(tp+fp) and tp/(tp+fn) (1 when there is no error); the corpus figures are the means over
pages, and F1 is computed from those two means.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class Page:
    id: str
    url: str
    path: Path
    truth: str

    def html(self) -> str:
        return gzip.decompress(self.path.read_bytes()).decode("utf-8")


def load_pages(aeb: Path) -> list[Page]:
    truth = json.loads((aeb / "ground-truth.json").read_text(encoding="utf-8"))
    return [
        Page(id=k, url=v.get("url") or "", path=aeb / "html" / f"{k}.html.gz",
             truth=v.get("articleBody") or "")
        for k, v in sorted(truth.items())
    ]


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    tokens = _TOKEN.findall(text or "")
    if len(tokens) < n:
        return Counter([tuple(tokens)])
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def page_scores(predicted: str, truth: str) -> tuple[float, float]:
    """(precision, recall) of one page."""
    p, t = shingles(predicted), shingles(truth)
    tp = sum((p & t).values())
    fp = sum((p - t).values())
    fn = sum((t - p).values())
    total = tp + fp + fn
    if total == 0:
        return 1.0, 1.0
    tp, fp, fn = tp / total, fp / total, fn / total
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    pages: int

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def corpus_score(pairs: Iterable[tuple[str, str]]) -> Score:
    """Mean precision and recall over (predicted, truth) pairs."""
    scores = [page_scores(pred, truth) for pred, truth in pairs]
    n = len(scores)
    return Score(sum(s[0] for s in scores) / n, sum(s[1] for s in scores) / n, n)


def iter_html(pages: Iterable[Page]) -> Iterator[tuple[Page, str]]:
    for page in pages:
        yield page, page.html()
