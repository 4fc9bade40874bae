"""URL canonicalization: one spelling per article, so the same story has one id.

Lower-cases scheme and host, drops default ports, fragments and tracking parameters, and sorts
the remaining query. The tracking list follows the parameters that ClearURLs and Firefox's
query stripping remove for news sites (utm_*, fbclid, gclid, ...).

One spelling of the same address (RFC 3986, section 6.2.2): a host given in punycode
('xn--bcher-kva.example') is written in Unicode ('bücher.example'), as a page or feed writes
it; the path is percent-encoded as UTF-8, with upper-case hex digits, and an escaped
unreserved character ('%7E') decoded; '.' and '..' segments are resolved. A feed's link
'/новости/1' and the page's canonical '/%D0%BD%D0%BE...' are then one URL, and one article id.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "mc_cid", "mc_eid", "yclid",
        "igshid", "ref", "ref_src", "ref_url", "cmpid", "cmp", "ito", "ncid", "ocid", "sr_share",
        "smid", "smtyp", "_ga", "_gl", "mkt_tok", "oly_anon_id", "oly_enc_id", "rss", "xtor",
        "at_medium", "at_campaign", "src", "share", "CMP",
    }
)
# utm_ (Google Analytics), pk_ (Piwik), mtm_ (Matomo), at_ (AT Internet), __hs and hsa_
# (HubSpot), wt_ (Webtrekk/Mapp: heise's feeds add ?wt_mc=rss.ho.beitrag.rdf)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "at_", "__hs", "hsa_", "wt_")


def _is_tracking(name: str, value: str = "") -> bool:
    low = name.lower()
    # Medium's feeds: ?source=rss----<feed id>---4 (a 'source' that names something else,
    # a search's, stays)
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES) or (
        low == "source" and value.lower().startswith("rss"))


_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# what a path keeps as is: reserved characters (RFC 3986 gen-delims and sub-delims) and "%"
_PATH_SAFE = "/:@!$&'()*+,;=%-._~"


def _unescape_unreserved(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _path(path: str) -> str:
    """The path percent-encoded one way: non-ASCII and spaces as UTF-8 escapes, upper-case
    hex, escaped unreserved characters decoded, dot segments resolved."""
    path = _BARE_PERCENT.sub("%25", quote(path, safe=_PATH_SAFE))
    path = _ESCAPE.sub(_unescape_unreserved, path)
    if "/." in path:
        path = urlsplit(urljoin("http://h/", path)).path
    return path or "/"


def _host(host: str) -> str:
    """Lower case, no trailing dot, punycode labels in Unicode."""
    host = host.lower().rstrip(".")
    if "xn--" not in host:
        return host
    labels = []
    for label in host.split("."):
        if label.startswith("xn--"):
            try:
                label = label.encode("ascii").decode("idna")
            except UnicodeError:  # not valid punycode: kept as written
                pass
        labels.append(label)
    return ".".join(labels)


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """The canonical form of an http(s) URL, or None when there is no usable URL."""
    if not url:
        return None
    url = url.strip()
    try:
        if base:
            url = urljoin(base, url)
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a broken authority ('https://]]>host/'), a port out of range
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = _host(parts.hostname)
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not _is_tracking(k, v)]
    return urlunsplit((scheme, host, _path(parts.path), urlencode(sorted(query)), ""))


_WWW = re.compile(r"^www\d*\.(?=[^.]+\.)")  # www., www1., www2. before a name with a dot


def domain_of(url: str | None) -> str | None:
    """Host of a URL without a leading 'www.' (or 'www1.', 'www2.': folha.uol.com.br serves
    from www1)."""
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    return _WWW.sub("", host.lower())
