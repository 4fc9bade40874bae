"""Countries mentioned, from the gazetteer in transforms/data/countries.tsv."""

from __future__ import annotations

from importlib import resources

import pytest

from transforms.countries import find_countries, load_gazetteer


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("Talks between the U.S., Russia and China.", ["CN", "RU", "US"]),
        ("The Kazakhstani capital hosted Syrian, Iranian and Turkish envoys.",
         ["IR", "KZ", "SY", "TR"]),
        ("A U.S.-led coalition and pro-Russian groups in the Russia-Ukraine war.",
         ["RU", "UA", "US"]),
        ("Niger and Nigeria; Guinea-Bissau and Equatorial Guinea.", ["GQ", "GW", "NE", "NG"]),
        ("Ministers from the UK and the Netherlands.", ["GB", "NL"]),
        ("Exports to Latin America and shipping in the Indian Ocean.", []),
        # not in ISO 3166-1: no code, and not Cyprus's (docs/countries.md)
        ("Talks in Northern Cyprus, then in Cyprus.", ["CY"]),
        ("Leaders of Northern Cyprus met.", []),
        ("He carved the turkey on fine china.", []),
        ("US STOCKS RALLY AS INVESTORS CHEER", []),
    ],
)
def test_find_countries(text: str, codes: list[str]) -> None:
    assert find_countries(text) == codes


def test_gazetteer_is_consistent() -> None:
    text = resources.files("transforms").joinpath("data", "countries.tsv").read_text("utf-8")
    forms = load_gazetteer(text)
    codes = {line.split("\t")[0] for line in text.splitlines()[1:] if line.strip()}
    assert len(codes) >= 249
    assert all(len(c) == 2 and c.isupper() for c in codes)
    assert forms["Kazakhstani"] == "KZ" and forms["U.S."] == "US"
    assert "US" not in forms and "Georgia" not in forms
