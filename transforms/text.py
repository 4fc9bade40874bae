"""Text helpers shared by extraction and cleaning: Unicode and whitespace normalization,
HTML fragments to paragraphs, and the normalized form that content hashes are taken of."""

from __future__ import annotations

import hashlib
import html
import json
import re
import unicodedata
from typing import Any

import lxml.html
from lxml import etree

# Zero-width and bidi-control characters that survive NFC and break equality and tokenizing.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u00ad]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANKS = re.compile(r"\n\s*\n+")
_WORD = re.compile(r"\w+")
# a tag, a comment, a declaration or a CDATA marker: '<' then a letter, '/', '!' or '?'
# ('a < b > c' and '< >' are text, not a tag); group 1 is the tag's name
_TAG = re.compile(r"<(?:/?([A-Za-z][\w:-]*)(?![\w:-])|[!?])[^>]{0,2000}>")  # (no backtracking
# into the name: a long run of letters after '<' costs one pass, not one per letter)
# tags inside a line of text that a browser renders without a break: dropped without a space
# ('1930ft<sup>2</sup>' is '1930ft2', not '1930ft 2'); any other tag is a space
INLINE_TAGS = {
    "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "font", "i", "kbd",
    "mark", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "time", "tt",
    "u", "var", "wbr",
}


def _tag_gap(match: re.Match[str]) -> str:
    name = match.group(1)
    return "" if name and name.lower() in INLINE_TAGS else " "

BLOCK_TAGS = {
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
    "pre", "table", "tr", "section", "article", "header", "footer", "figure", "figcaption",
    "dd", "dt", "hr",
}


_SURROGATE = re.compile("[\ud800-\udfff]")


def without_surrogates(value: Any) -> Any:
    """``value`` (a string, or lists, tuples and dicts of them) with every lone UTF-16
    surrogate replaced by U+FFFD. JSON allows ``"\\ud800"`` alone, and feedparser turns
    ``&#55296;`` into it; such a string cannot be encoded as UTF-8, so it broke the language
    model and the Parquet writer. Valid pairs never get here: ``json.loads`` joins them.
    Returns ``value`` itself when it holds none."""
    return _replace_surrogates(value) if has_surrogates(value) else value


def _replace_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_replace_surrogates(v) for v in value)
    return value


def has_surrogates(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(has_surrogates(k) or has_surrogates(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_surrogates(v) for v in value)
    return False


def loads_json(raw: str) -> Any:
    """``json.loads``, with lone surrogates replaced (``without_surrogates``): only a raw text
    holding a ``\\ud8..``-``\\udf..`` escape needs the walk."""
    value = json.loads(raw)
    if "\\ud" in raw or "\\uD" in raw:
        return without_surrogates(value)
    return value


def normalize_line(text: str) -> str:
    """NFC, no invisible or control characters, single spaces, no line breaks."""
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub(" ", text)
    return _SPACES.sub(" ", text.replace("\r", " ").replace("\n", " ")).strip()


def normalize_body(text: str) -> str:
    """Paragraphs separated by one blank line, each paragraph normalized as a line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [normalize_line(p) for p in _BLANKS.split(text)]
    if len(paragraphs) == 1:
        # No blank lines: single newlines separate paragraphs (trafilatura's output).
        paragraphs = [normalize_line(p) for p in text.split("\n")]
    return "\n\n".join(p for p in paragraphs if p)


def strip_tags(text: str) -> str:
    """Feed titles and summaries: decode entities, drop tags left in them, one line."""
    if "<" in text:
        text = _TAG.sub(_tag_gap, text)
    return normalize_line(html.unescape(text))


def html_to_text(fragment: str) -> str:
    """An HTML fragment (feed content, summary) -> paragraphs of plain text."""
    if not fragment or not fragment.strip():
        return ""
    if "<" not in fragment:
        return normalize_body(html.unescape(fragment))
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (etree.ParserError, ValueError):
        return normalize_body(strip_tags(fragment))
    for bad in root.xpath("//script|//style|//noscript|//comment()"):
        bad.drop_tree()
    parts: list[str] = []
    for event, node in etree.iterwalk(root, events=("start", "end")):
        tag = node.tag.lower() if isinstance(node.tag, str) else ""
        if event == "start":
            if tag in BLOCK_TAGS:
                parts.append("\n\n")
            if tag and node.text:
                parts.append(node.text)
        else:
            if tag in BLOCK_TAGS:
                parts.append("\n\n")
            if node is not root and node.tail:
                parts.append(node.tail)
    return normalize_body("".join(parts))


def words(text: str) -> list[str]:
    return _WORD.findall(text)


# Chinese characters and Japanese kana: written without spaces, so a run of them is no word;
# each counts as one, as word counts for these languages usually do (Korean spaces its words)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def count_words(text: str) -> int:
    """The number of words of ``text`` (``word_count``): word tokens, each Chinese character
    or Japanese kana counted as one."""
    cjk = len(_CJK.findall(text))
    if not cjk:
        return len(words(text))
    return cjk + len(words(_CJK.sub(" ", text)))


def content_key(text: str) -> str:
    """Normalized content for exact-duplicate hashing: NFKC, case-folded, word tokens only,
    so whitespace, punctuation and quote styles do not make two copies differ."""
    return " ".join(content_tokens(text))


def content_id(title: str | None, text: str) -> str:
    """The article id of an article without a URL: its title and its text, each as
    ``content_key`` normalizes it, kept apart (a title-only entry "Storm warning" and a
    text-only entry "Storm warning" are two articles, as their exact keys say; joined, their
    words made one id for two stored rows)."""
    return sha256_hex(f"content:{content_key(title or '')}|{content_key(text)}")[:32]


def content_tokens(text: str) -> list[str]:
    """The word tokens ``content_key`` joins: ``content_key(text).split()``, unjoined."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
