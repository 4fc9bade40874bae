"""Direct quotations and their speakers.

Handles straight and curly quotes (and « » „ “), attribution after the quote
("…,” Nazarbayev said / said Nazarbayev / according to X) and before it ("X said: “…”"),
pronouns ("he said") resolved to the last named speaker, a second quote in a paragraph that
already named its speaker, and a quote continued over paragraphs (a paragraph that opens a quote
without closing it, followed by one that opens with a quote mark: the English convention).

Language-specific parts are data: SPEECH_VERBS and PRONOUNS per language. English is filled
in; another language adds its verbs and pronouns, the patterns are built from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SPEECH_VERBS: dict[str, tuple[str, ...]] = {
    "en": (
        "said", "says", "added", "adds", "told", "tells", "stated", "states", "explained",
        "noted", "asked", "wrote", "writes", "insisted", "warned", "argued", "declared",
        "continued", "replied", "stressed", "emphasized", "emphasised", "announced",
        "recalled", "commented", "remarked", "acknowledged", "admitted", "claimed", "urged",
        "concluded", "predicted", "suggested", "tweeted", "posted",
    ),
}
PRONOUNS: dict[str, tuple[str, ...]] = {"en": ("he", "she", "they", "He", "She", "They")}

# Titles before a name that are not part of it ("Minister Ann Lee" -> "Ann Lee").
TITLES: dict[str, tuple[str, ...]] = {
    "en": (
        "President", "Vice President", "Prime Minister", "Minister", "Foreign Minister",
        "Chancellor", "Secretary", "Senator", "Sen.", "Representative", "Rep.", "Governor",
        "Gov.", "Mayor", "General", "Gen.", "Colonel", "Col.", "Captain", "Capt.", "Chief",
        "Judge", "Justice", "Professor", "Prof.", "Dr.", "Dr", "Mr.", "Mr", "Mrs.", "Mrs",
        "Ms.", "Ms", "Sir", "Dame", "Lord", "Lady", "King", "Queen", "Prince", "Princess",
        "Pope", "Father", "Rev.", "Coach", "Director", "Commissioner", "Ambassador",
    ),
}
MIN_WORDS = 4
# a quote with no speech verb beside it (SPEECH_REACH characters before or after) is kept from
# this many words: shorter quoted spans with neither a speaker nor a verb of speech are titles,
# scare quotes and code far more often than speech (real feeds: 66 of 70 had no speaker)
MIN_UNATTRIBUTED_WORDS = 6
SPEECH_REACH = 50
# Opening mark -> closing marks it pairs with.
PAIRS = {"“": "”", '"': '"', "«": "»", "„": "“”", "‘": "’", "»": "«"}
_QUOTE = re.compile(r"(“[^“”]+”|\"[^\"]+\"|«[^«»]+»|„[^„“”]+[“”])")
_NAME = r"(?:[A-Z][\w.'’-]*(?:\s+(?:[A-Z][\w.'’-]*|de|van|von|al|bin|da|di|la|le)){0,4})"


# lowercase words of a role before a name ("transport senator", "the head of the port");
# never words that start a time or a place ("said on Monday", "said in Oslo"), nor "a"
# ("said a WeWork spokesperson": the company is not the speaker)
_ROLE_WORD = (r"(?!(?:a|an|on|in|at|to|from|after|before|during|this|last|next|when|while|that|and|"
              r"but|as|of)\s)[a-z][\w'’-]*")
# a name is not a day or a month ("said on Monday" must not make Monday a speaker)
_NOT_TIME = (r"(?!(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|January|February|"
             r"March|April|May|June|July|August|September|October|November|December)\b)")


@dataclass(frozen=True)
class _Patterns:
    after: re.Pattern[str]
    after_inverted: re.Pattern[str]
    after_role: re.Pattern[str]
    according: re.Pattern[str]
    before: re.Pattern[str]
    # a speech verb near a quote: speech, even when no named speaker is found ("he said",
    # "police said", "the mayor said")
    speech: re.Pattern[str]


def _patterns(lang: str) -> _Patterns:
    verbs = "|".join(SPEECH_VERBS[lang])
    pron = "|".join(PRONOUNS[lang])
    speaker = rf"(?P<speaker>{_NAME}|{pron})"
    return _Patterns(
        # ”, Nazarbayev said … / ”, harbour master Tor Eriksen told … (a role before the name)
        after=re.compile(rf"^\W{{0,3}}\s*(?:[a-z][\w'’-]*\s+){{0,4}}{speaker}"
                         rf"(?:,\s[^,]{{1,60}},)?\s+(?:{verbs})\b"),
        # ”, said Nazarbayev / ”, said transport senator Manja Schreiner
        after_inverted=re.compile(rf"^\W{{0,3}}\s*(?:{verbs})\s+(?:the\s+)?"
                                  rf"(?:{_ROLE_WORD}\s+){{0,3}}{_NOT_TIME}{speaker}"),
        # ”, the head of the port authority, Erik Berg, said
        after_role=re.compile(rf"^\W{{0,3}}\s*(?:[a-z][\w'’-]*\s+){{1,7}}[a-z][\w'’-]*,\s+"
                              rf"{_NOT_TIME}{speaker},\s+(?:{verbs})\b"),
        according=re.compile(rf"^\W{{0,3}}\s*according to\s+(?:the\s+)?{speaker}"),
        # Nazarbayev said: “ / Nazarbayev told reporters: “
        before=re.compile(rf"{speaker}(?:,\s[^,]{{1,60}},)?\s+(?:{verbs})(?:\s+[\w\s]{{0,40}})?"
                          rf"[:,]\s*$"),
        speech=re.compile(rf"\b(?:{verbs})\b"),
    )


_CACHE: dict[str, _Patterns] = {}
_DOT_SPACE = re.compile(r"(\S+)\.\s+")


def _one_sentence(name: str, lang: str) -> str:
    """The name up to the end of its sentence: "Ken Doctor. That's" -> "Ken Doctor"; the
    dot of an initial ("Troy L. Smith") or of a title ("Rep. Brian Babin") ends none."""
    abbreviations = {t.rstrip(".") for t in TITLES.get(lang, ()) if t.endswith(".")}
    for m in _DOT_SPACE.finditer(name):
        word = m.group(1)
        if len(word) > 2 and word[-2:].isalpha() and word[-2:].islower() \
                and word not in abbreviations | {"Jr", "Sr", "St"}:
            return name[:m.end(1)]
    return name


def _get(lang: str) -> _Patterns:
    if lang not in _CACHE:
        _CACHE[lang] = _patterns(lang)
    return _CACHE[lang]


def _strip_titles(name: str, lang: str) -> str:
    changed = True
    while changed:
        changed = False
        for title in sorted(TITLES.get(lang, ()), key=len, reverse=True):
            if name.startswith(title + " ") and len(name) > len(title) + 1:
                name = name[len(title) + 1:].lstrip()
                changed = True
    return name


def _is_pronoun(name: str, lang: str) -> bool:
    return name in PRONOUNS[lang]


def _speaker_after(tail: str, p: _Patterns) -> str | None:
    for pattern in (p.after, p.after_inverted, p.after_role, p.according):
        m = pattern.search(tail[:160])
        if m:
            return m.group("speaker").strip()
    return None


def _merge_continued(paragraphs: list[str]) -> list[str]:
    """Join a paragraph that opens a quote and leaves it open with the next paragraph, when
    that one opens with a quote mark (the quote goes on)."""
    merged: list[str] = []
    i = 0
    while i < len(paragraphs):
        para = paragraphs[i]
        while (
            i + 1 < len(paragraphs)
            and para.lstrip()[:1] in ("“", '"', "«")
            and _open_quote(para)
            and paragraphs[i + 1].lstrip()[:1] in ("“", '"', "«")
        ):
            para = para + " " + paragraphs[i + 1].lstrip()[1:]
            i += 1
        merged.append(para)
        i += 1
    return merged


def _open_quote(para: str) -> bool:
    curly = para.count("“") > para.count("”")
    straight = para.count('"') % 2 == 1
    guillemet = para.count("«") > para.count("»")
    return curly or straight or guillemet


def extract_quotes(text: str, lang: str = "en") -> list[tuple[str | None, str]]:
    """(speaker, quote) pairs in order of appearance."""
    if lang not in SPEECH_VERBS:
        lang = "en"
    p = _get(lang)
    quotes: list[tuple[str | None, str]] = []
    spoken: set[int] = set()  # quotes with a speech verb beside them, speaker found or not
    last_named: str | None = None
    for para in _merge_continued([x for x in text.split("\n\n") if x]):
        para_speaker: str | None = None
        pending: list[int] = []
        for m in _QUOTE.finditer(para):
            inner = m.group(0)[1:-1].strip().strip(",").strip()
            if len(inner.split()) < MIN_WORDS:
                continue
            speaker = _speaker_after(para[m.end():], p)
            if speaker is None:
                before = p.before.search(para[max(0, m.start() - 160):m.start()])
                if before:
                    speaker = before.group("speaker").strip()
            if speaker is not None or p.speech.search(para[m.end():m.end() + SPEECH_REACH]) \
                    or p.speech.search(para[max(0, m.start() - SPEECH_REACH):m.start()]):
                spoken.add(len(quotes))
            if speaker is not None and _is_pronoun(speaker, lang):
                speaker = last_named
            elif speaker is not None:
                # a name ends with its sentence: "said analyst Ken Doctor. That's ..." (an
                # initial's dot, "Troy L. Smith", does not end it)
                speaker = _strip_titles(_one_sentence(speaker, lang).rstrip(".,;"), lang)
            if speaker is not None:
                para_speaker = speaker
                last_named = speaker
                for idx in pending:  # earlier quotes in the paragraph share the speaker
                    quotes[idx] = (speaker, quotes[idx][1])
                pending = []
            else:
                speaker = para_speaker
                if speaker is None:
                    pending.append(len(quotes))
            quotes.append((speaker, " ".join(inner.split())))
    return [(speaker, quote) for i, (speaker, quote) in enumerate(quotes)
            if speaker is not None or i in spoken
            or len(quote.split()) >= MIN_UNATTRIBUTED_WORDS]
