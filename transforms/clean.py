"""CleanArticles: the cleaning chain. Each step is a small pure function registered by name.

Built-in steps, in default order:
  normalize_unicode         NFC, no zero-width or control characters, single spaces
  strip_markup              entities decoded and tags stripped in title, summary and body
  remove_boilerplate        lines from the BOILERPLATE_RULES table; "Last update:" -> updated_at
  drop_repeated_paragraphs  a paragraph that repeats an earlier one is dropped
  drop_title_byline         the headline and byline are dropped from the body when they
                            merely repeat the title and the authors
"""

from __future__ import annotations

import html
import re
from typing import Any

from schemas.records import Article
from transforms.boilerplate import (
    MEDIUM_FOOTER,
    WORDPRESS_FOOTER,
    boilerplate_rule,
    update_stamp,
)
from transforms.extract import parse_byline, split_names
from transforms.steps import ApplySteps, Step, step
from transforms.text import content_key, html_to_text, normalize_body, normalize_line, strip_tags

_HTML_IN_TEXT = re.compile(r"</?(p|br|div|span|a|b|i|em|strong|li|ul|h[1-6])\b[^>]*>", re.I)


def _paragraphs(text: str) -> list[str]:
    return [p for p in text.split("\n\n") if p]


@step("normalize_unicode", "clean")
def normalize_unicode(article: Article) -> dict[str, Any]:
    return {
        "title": normalize_line(article.title) if article.title else article.title,
        "summary": normalize_line(article.summary) if article.summary else article.summary,
        "text": normalize_body(article.text),
        "authors": tuple(n for n in (normalize_line(a) for a in article.authors) if n),
        "categories": tuple(c for c in (normalize_line(x) for x in article.categories) if c),
    }


def _unescape(text: str) -> str:
    # Feeds double-escape often ('&amp;amp;'); unescape until stable, at most three times.
    for _ in range(3):
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    return text


@step("strip_markup", "clean")
def strip_markup(article: Article) -> dict[str, Any]:
    text = article.text
    if _HTML_IN_TEXT.search(text):
        text = html_to_text(text)
    return {
        "title": strip_tags(_unescape(article.title)) or None if article.title else None,
        "summary": strip_tags(_unescape(article.summary)) or None if article.summary else None,
        # the site or feed name: a feed title escaped twice ('Fish &amp;amp; Co') too
        "source": strip_tags(_unescape(article.source)) or None if article.source else None,
        "text": normalize_body(_unescape(text)) if "&" in text else text,
    }


# A feed summary is one line: what closes it is cut from its end, not matched as a whole
# paragraph as in the text. A link's words ("Continue reading...", the Guardian), a forum's
# footer ("submitted by X to Y [link] [329 comments]", Reddit), where the story first
# appeared (WordPress, Medium: the words these write, as the paragraph rule
# ``syndication_footer`` reads them). Each form is tried only when its cue is there.
_READ_MORE_WORDS = ("continue reading", "read more", "read the full story", "keep reading",
                    "lire la suite", "weiterlesen", "leer más", "seguir leyendo")
_READ_MORE = "(?:" + "|".join(_READ_MORE_WORDS) + ")"
_READ_MORE_CAPS = "|".join([w[0].upper() + w[1:] for w in _READ_MORE_WORDS] + ["READ MORE"])
_SUMMARY_TAILS: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = (
    # a link's words: after an ellipsis or a sentence's end in any case, else capitalized as
    # a link is ("he would read more." is a sentence)
    (("continue", "read", "keep", "lire", "weiterlesen", "leer", "seguir"), re.compile(
        r"\s*(?:(?:\[?(?:…|\.\.\.)\]?|(?<=[.!?]))\s*" + _READ_MORE + r"|\s(?-i:"
        + _READ_MORE_CAPS + r")|^" + _READ_MORE + r")\W{0,5}$", re.I)),
    # Reddit's, with its [link] and [N comments] (one of them where it opens the summary or
    # a sentence): "submitted by residents to parliament" is news
    (("submitted by",), re.compile(
        r"(?:(?:^|(?<=[.!?])\s+)submitted by \S{1,60} to \S{1,60}\s*"
        r"(?:\[link\]\s*(?:\[\d*\s*comments?\])?|\[\d*\s*comments?\])"
        r"|\s+submitted by \S{1,60} to \S{1,60}\s*\[link\]\s*\[\d*\s*comments?\])\s*$",
        re.I)),
    (("appeared first on",), re.compile(rf"(?:^|(?<=[.!?…])\s+){WORDPRESS_FOOTER}\s*$", re.I)),
)
# Medium's footer opens with the story's title: cut with it when the title is known
_MEDIUM = re.compile(rf"\s*\b{MEDIUM_FOOTER}\s*$", re.I)


def summary_without_footer(summary: str | None, title: str | None = None) -> str | None:
    """A feed summary without what closes it (``_SUMMARY_TAILS``, Medium's footer and the
    title it opens with); None when nothing is left."""
    if not summary:
        return summary
    for _ in range(3):  # a footer after a link's words, or the other way round
        before = summary
        lowered = summary.casefold()
        if "originally published in" in lowered:
            cut = _MEDIUM.search(summary)
            if cut is not None:
                head = summary[:cut.start()].rstrip()
                if title and head.endswith(title.strip()):
                    head = head[:len(head) - len(title.strip())]
                summary = head
        for cues, pattern in _SUMMARY_TAILS:
            if any(cue in lowered for cue in cues):
                summary = pattern.sub("", summary)
        if summary == before:
            break
    return summary.strip() or None


@step("remove_boilerplate", "clean")
def remove_boilerplate(article: Article) -> dict[str, Any]:
    kept: list[str] = []
    updated = article.updated_at
    for para in _paragraphs(article.text):
        stamp = update_stamp(para)
        if stamp is not None:
            updated = updated or stamp  # type: ignore[assignment]
            continue
        if boilerplate_rule(para):
            continue
        kept.append(para)
    return {"text": "\n\n".join(kept), "updated_at": updated,
            "summary": summary_without_footer(article.summary, article.title)}


# Only a long paragraph that comes back is an artefact (a lead repeated at the end). Short
# repeated lines are content: interview questions, recipe steps, table rows. On the AEB pages,
# dropping every repeat cost 0.5 points of recall; none of the pages repeats a paragraph of 30
# words or more that its ground truth keeps twice.
MIN_REPEAT_WORDS = 30


@step("drop_repeated_paragraphs", "clean")
def drop_repeated_paragraphs(article: Article) -> dict[str, Any]:
    """Drop a long paragraph that repeats an earlier one, also when the repeat was glued to
    the end or start of another paragraph (the shared sample repeats its lead that way)."""
    seen: set[str] = set()
    long_paragraphs: list[str] = []
    kept: list[str] = []
    for para in _paragraphs(article.text):
        key = content_key(para)
        if key in seen and key.count(" ") + 1 >= MIN_REPEAT_WORDS:
            continue
        for earlier in long_paragraphs:
            if earlier in para and earlier != para:
                para = " ".join(para.replace(earlier, " ").split())
        seen.add(key)
        if key.count(" ") + 1 >= MIN_REPEAT_WORDS:
            long_paragraphs.append(para)
        if para:
            kept.append(para)
    return {"text": "\n\n".join(kept)}


@step("drop_title_byline", "clean")
def drop_title_byline(article: Article) -> dict[str, Any]:
    title_key = content_key(article.title or "")
    author_keys = {content_key(a) for a in article.authors}
    authors = list(article.authors)
    kept: list[str] = []
    for i, para in enumerate(_paragraphs(article.text)):
        head = i < 4  # headline and byline sit at the top of the body
        if head and title_key and content_key(para) == title_key:
            continue
        byline = parse_byline(para) if head and len(para) < 200 else None
        if byline is not None:
            names = byline[0]
            if not authors:
                authors = names
            if {content_key(n) for n in names} <= author_keys | {content_key(n) for n in authors}:
                continue
        if head and author_keys and content_key(para) in author_keys:
            continue
        kept.append(para)
    return {"text": "\n\n".join(kept), "authors": tuple(authors)}


class CleanArticles(ApplySteps):
    """Article -> Article through the cleaning chain. An article a step fails on becomes a
    reject with stage ``clean:<step>``."""

    def __init__(self, steps: tuple[Step, ...], error_handler: Any) -> None:
        super().__init__("clean", steps, error_handler)


__all__ = ["CleanArticles", "split_names"]
