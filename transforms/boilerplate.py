"""Boilerplate lines that extraction lets through, as one data table.

Each rule is (name, pattern): a line (paragraph) that matches the pattern in full, case-
insensitively, is boilerplate. The name is what the cleaning step reports. Rules cover
English, German, French, Spanish and Russian; add a row rather than a regex elsewhere.

A rule that scans the whole line (a leading ``.{0,N}`` or a look-ahead) may carry a third
element, its cues: lower-case words one of which any line it matches holds. A line holding
none of them skips the rule's regex. On the AEB paragraphs these rules were 44 of the 53 ms the
table cost; a cue must be implied by the pattern, or the rule would stop matching (a test
compares the table with and without cues).
"""

from __future__ import annotations

import re

from transforms.dates import parse_date

# Where a feed's story first appeared, as WordPress and Medium write it (also cut from the end
# of a summary: transforms/clean.py). Medium's opens with the story's title.
WORDPRESS_FOOTER = (r"(?-i:The post )[^\n]{1,300}?(?-i: appeared first on )"
                    r"(?:[^\s.!?,;:]+ ?){1,6}\.?")
MEDIUM_FOOTER = (r"was originally published in [^\n]{1,150}? on medium, where people are "
                 r"continuing the conversation\b[^\n]{0,80}?")

BOILERPLATE_RULES: tuple[tuple[str, str] | tuple[str, str, tuple[str, ...]], ...] = (
    ("null_literal", r"(none|null|undefined|nan|n/a)"),
    ("logo_alt", r"[\w .&'’-]{0,60}\s(logo|logotipo|логотип)", ("logo", "логотип")),
    ("logo_alt", r"(logo|logotipo|логотип)\s[\w .&'’-]{0,60}"),
    ("advertisement", r"(advertisement|anzeige|werbung|publicité|publicidad|реклама|ad|sponsored)"),
    ("share_widget", r"(share|teilen|partager|compartir|поделиться)( (this|on|via|sur|en|auf|в))?"
                     r"( (article|story|facebook|twitter|x|whatsapp|linkedin|e-?mail))*:?"),
    ("follow_widget", r"(follow us|folgen sie uns|suivez-nous|síguenos|подписывайтесь)\b.{0,80}"),
    ("cookie_notice", r".{0,200}\b(cookies?|cookie-richtlinie)\b.{0,200}"
                      r"\b(accept|akzeptieren|accepter|aceptar|consent|zustimm\w*|usamos|utilisons"
                      r"|verwenden|use)\b.{0,200}", ("cookie",)),
    ("cookie_notice", r".{0,100}(используем cookies|файлы cookie).{0,200}", ("cookie",)),
    ("newsletter", r".{0,80}\b(newsletter|sign up for|subscribe to|abonnieren|inscrivez-vous"
                   r"|suscríbete|подпишитесь)\b.{0,120}",
     ("newsletter", "sign up for", "subscribe to", "abonnieren", "inscrivez-vous", "suscríbete",
      "подпишитесь")),
    ("read_more", r"(read more|weiterlesen|mehr lesen|lire la suite|lire plus|leer más"
                  r"|seguir leyendo|читать далее|подробнее|read the full story"
                  r"|continue reading|keep reading|continuer la lecture|continue lendo"
                  r"|continua a leggere|verder lezen)\W{0,5}"),
    ("copyright", r"(©|\(c\)|copyright|todos los derechos|tous droits|alle rechte|все права)"
                  r".{0,200}"),
    ("share_widget", r"(like this (story|article)\?|liked this (story|article)\?).{0,80}"),
    ("tags_label", r"(tags|schlagwörter|schlagworte|mots-clés|etiquetas|теги|метки)\s*:?"),
    ("related_links", r"(related|related (articles|stories|posts|content|coverage)|don['’]t miss"
                      r"|you (may|might) also like|recommended( for you)?|more (stories|news)"
                      r"|mehr zum thema|lesen sie auch|à lire aussi|lire aussi|te puede interesar"
                      r"|читайте также|смотрите также)\W{0,3}"),
    ("reprint_notice", r"this copy is for your personal, non-commercial use only\..{0,400}"),
    # Reddit's feeds close every entry with who posted it where, and its two links
    ("forum_footer", r"submitted by \S{1,60} to \S{1,60}|\[link\]\s*\[\d*\s*comments?\]"),
    # "Related: <headline>", "READ MORE: <headline>", a bare "More:" or "Also:" (a link follows)
    ("related_links", r"\[?(related( (post|posts|article|articles|story|stories|content|coverage))?"
                      r"|read more|see more|see also|read also|also read|don['’]t miss"
                      r"|mehr zum thema|lesen sie auch|à lire aussi|lire aussi|lee también"
                      r"|ver también|leia também|veja também|читайте также|смотрите также)"
                      r"\s*:\s*.{0,160}?\]?|(more|also|mehr|plus|más|ещё)\s*:"),
    ("comment_count", r"(\d+\s+)?(comments?|kommentare?|commentaires?|comentários?|comentarios?"
                      r"|комментари\w*)(\s*\(\d+\))?"),
    ("reading_time", r"(reading time|read time|lesezeit|lesedauer|temps de lecture"
                     r"|tiempo de lectura|tempo de leitura|время чтения)\s*:?\s*.{0,25}"
                     r"|\d+\s*(min|mins|minutes?|minuten|minutos)\.?\s*(read|lesezeit|de lecture"
                     r"|de lectura|de leitura)"),
    # agency credits and contributor lines that close a story
    ("credit_line", r"\((additional )?(reporting|writing|editing|compiled) by [^()]{0,300}\)\.?"
                    r"|(with )?additional reporting by .{0,300}"
                    r"|reporting by .{0,200}\b(editing|additional reporting) by .{0,200}"
                    r"|.{0,200}\bcontributed (reporting|to this (report|story|article))\b.{0,120}",
     ("by ", "contributed")),
    # how to reach the author: an address or a handle after follow / email / write to / reach
    ("contact_line", r"(?=.*(\S@\S|@\w|twitter\.com/))((have a (news )?tip\?\s*)?.{0,60}\b(may|can)"
                     r" be reached\b|follow|email|e-mail|write to|reach|contact)\b.{0,250}",
     ("@", "twitter.com/")),
    ("contact_line", r"follow .{0,60}\b(on|at) (twitter|facebook|instagram|youtube|linkedin)\b"
                     r".{0,150}"),
    ("contact_line", r"\S+@\S+\.\w+|(https?://)?(www\.)?(twitter|facebook|instagram)\.com/\S+"),
    # where a feed's story first appeared: WordPress's "The post X appeared first on Y.",
    # Medium's "X was originally published in Y on Medium, where people are continuing ..."
    # (WordPress's words as it writes them, and a site name of a few words without a comma:
    # "The post of mayor, which appeared first on a shortlist, went to ..." is news)
    ("syndication_footer", rf"{WORDPRESS_FOOTER}|[^\n]{{0,300}}?\b{MEDIUM_FOOTER}",
     ("appeared first on", "originally published in")),
)

_COMPILED = tuple((name, re.compile(pattern, re.I | re.S), cues[0] if cues else ())
                  for name, pattern, *cues in BOILERPLATE_RULES)

LAST_UPDATE = re.compile(
    r"(last update[d]?|updated|aktualisiert( am)?|mis à jour( le)?|mise à jour( le)?"
    r"|actualizado( el)?|última actualización|обновлено)\s*:?\s*(?P<date>.{4,60})",
    re.I,
)


def rule_index(line: str) -> int | None:
    """The position in BOILERPLATE_RULES of the first rule a whole line matches, or None."""
    stripped = line.strip()
    if len(stripped) > 600:
        return None
    # re.I matches the Turkish dotted and dotless I to "i"; casefold does not (İ -> "i̇")
    lowered = stripped.casefold().replace("i\u0307", "i").replace("\u0131", "i")
    for i, (_name, pattern, cues) in enumerate(_COMPILED):
        if cues and not any(cue in lowered for cue in cues):
            continue  # the rule cannot match a line without one of its cues
        if pattern.fullmatch(stripped):
            return i
    return None


def boilerplate_rule(line: str) -> str | None:
    """The name of the rule a whole line matches, or None."""
    found = rule_index(line)
    return None if found is None else _COMPILED[found][0]


def update_stamp(line: str) -> object | None:
    """The datetime of a 'Last update: ...' line (in any covered language), else None."""
    m = LAST_UPDATE.fullmatch(line.strip())
    if not m:
        return None
    return parse_date(m.group("date"))
