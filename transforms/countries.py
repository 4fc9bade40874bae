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


@lru_cache(maxsize=1)
def _matcher() -> tuple[re.Pattern[str], dict[str, str]]:
    text = resources.files("transforms").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    forms = load_gazetteer(text)
    for phrase in BLOCKLIST:
        forms[phrase] = ""
    alternation = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    # \w on both sides: "Iran" does not match in "Iranian" unless "Iranian" is listed itself.
    # Hyphens are boundaries, so "U.S.-led", "Russia-Ukraine" and "pro-Russian" match.
    pattern = re.compile(rf"(?<![\w.])(?:{alternation})(?!\w)")
    return pattern, forms


def find_countries(text: str) -> list[str]:
    """Sorted, unique alpha-2 codes of the countries the text names."""
    if not text:
        return []
    pattern, forms = _matcher()
    return sorted({forms[m.group(0)] for m in pattern.finditer(text)} - {""})
