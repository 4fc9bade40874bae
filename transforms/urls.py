"""URL canonicalization: one spelling per article, so the same story has one id.

Lower-cases scheme and host, drops default ports, fragments and tracking parameters, and sorts
the remaining query. The tracking list follows the parameters that ClearURLs and Firefox's
query stripping remove for news sites (utm_*, fbclid, gclid, ...).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "mc_cid", "mc_eid", "yclid",
        "igshid", "ref", "ref_src", "ref_url", "cmpid", "cmp", "ito", "ncid", "ocid", "sr_share",
        "smid", "smtyp", "_ga", "_gl", "mkt_tok", "oly_anon_id", "oly_enc_id", "rss", "xtor",
        "at_medium", "at_campaign", "src", "share", "CMP",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "at_", "__hs", "hsa_")


def _is_tracking(name: str) -> bool:
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES)


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
    host = parts.hostname.lower().rstrip(".")
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not _is_tracking(k)]
    path = parts.path or "/"
    return urlunsplit((scheme, host, path, urlencode(sorted(query)), ""))


def domain_of(url: str | None) -> str | None:
    """Host of a URL without a leading 'www.'."""
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.lower()
    return host[4:] if host.startswith("www.") else host
