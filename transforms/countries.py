"""Countries an article mentions, as ISO 3166-1 alpha-2 codes.

The gazetteer is the data table transforms/data/countries.tsv (alpha2, names, demonyms; see
docs/countries.md for its sources and the ambiguous forms left out). Matching is
case-sensitive ("China", not "china"), on word boundaries, longest form first, so "Niger"
never matches inside "Nigeria" and "Guinea-Bissau" is not read as "Guinea".
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

DATA_FILE = "countries.tsv"
# Phrases that contain a country form but name no country: matched (longest first) and dropped.
BLOCKLIST = (
    "Latin America", "Latin American", "Latin Americans", "Indian Ocean", "Gulf of Guinea",
    "Gulf of Mexico", "Mexican wave", "French fries", "French toast", "Turkish delight",
    "Chinese whispers", "Dutch courage", "Swiss cheese", "Brussels sprouts", "Panama hat",
    "Indian summer", "American football", "Irish coffee", "Russian roulette", "Spanish flu",
    "Northern Cyprus",  # not in ISO 3166-1 (docs/countries.md, "Left out"): no code implied
)


def load_gazetteer(text: str) -> dict[str, str]:
    """TSV text -> {surface form: alpha2}."""
    forms: dict[str, str] = {}
    for n, line in enumerate(text.splitlines()):
        if n == 0 or not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        code = cols[0].strip()
        for col in cols[1:3]:
            for form in col.split("|"):
                form = form.strip()
                if form:
                    forms.setdefault(form, code)
    return forms


# Each candidate starts where a capitalized token starts; the forms are looked up by that
# token, longest first. About ten times faster than one regex alternation of ~1,100 forms.
_CANDIDATE = re.compile(r"(?<![\w.])[A-ZÀ-Þ][\w.'’&]*")


@lru_cache(maxsize=1)
def _index() -> dict[str, list[tuple[str, str]]]:
    # one part per joinpath: Python 3.10 takes no more
    text = resources.files("transforms").joinpath("data").joinpath(DATA_FILE).read_text(
        encoding="utf-8")
    forms = load_gazetteer(text)
    for phrase in BLOCKLIST:
        forms[phrase] = ""
    by_first: dict[str, list[tuple[str, str]]] = {}
    for form, code in forms.items():
        first = _CANDIDATE.match(form)
        key = first.group(0) if first else form.split()[0]
        by_first.setdefault(_stem(key), []).append((form, code))
    for entries in by_first.values():
        entries.sort(key=lambda e: len(e[0]), reverse=True)
    return by_first


def _stem(token: str) -> str:
    # "U.S.-led" and "Russia-Ukraine": the token is looked up without what a hyphen or a
    # possessive glues to it.
    return token.split("’")[0].split("'")[0].rstrip(".") or token


def find_countries(text: str) -> list[str]:
    """Sorted, unique alpha-2 codes of the countries the text names (case-sensitive, longest
    form first, on word boundaries; hyphens are boundaries, so "U.S.-led" counts)."""
    if not text:
        return []
    index = _index()
    found: set[str] = set()
    pos = 0
    while True:
        m = _CANDIDATE.search(text, pos)
        if m is None:
            break
        entries = index.get(_stem(m.group(0)))
        pos = m.end()
        if not entries:
            continue
        start = m.start()
        for form, code in entries:
            end = start + len(form)
            if text.startswith(form, start) and (end == len(text) or not text[end].isalnum()
                                                   and text[end] != "_"):
                if code:
                    found.add(code)
                pos = max(pos, end)
                break
    return sorted(found)
