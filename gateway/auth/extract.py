"""Finding the caller's Tollgate key wherever its SDK sends it, and the headers to strip.

OpenAI-style SDKs send `Authorization: Bearer`, Anthropic's `x-api-key`, Google's
`x-goog-api-key` (or `?key=`), Azure OpenAI's `api-key`. All of these are removed before a request
is forwarded, whichever one carried the key.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote_plus

CREDENTIAL_HEADERS = frozenset({b"authorization", b"x-api-key", b"x-goog-api-key", b"api-key"})
QUERY_KEY = "key"


def presented_key(headers: list[tuple[bytes, bytes]], query_string: bytes) -> str | None:
    """The key the caller presented, by header priority, then the `key` query parameter."""
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in CREDENTIAL_HEADERS and name not in found:
            found[name] = value
    bearer = found.get(b"authorization")
    if bearer is not None:
        scheme, _, token = bearer.partition(b" ")
        if scheme.lower() == b"bearer" and token.strip():
            return token.strip().decode("latin-1")
    for name in (b"x-api-key", b"x-goog-api-key", b"api-key"):
        header = found.get(name)
        if header:
            return header.strip().decode("latin-1")
    if b"key=" in query_string:
        for parameter, argument in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if parameter == QUERY_KEY and argument:
                return argument
    return None


def query_without_key(query_string: bytes) -> str:
    """The query string to forward: every `key` parameter removed, the rest byte for byte as sent.

    Only `key` is read as the caller's key, but `KEY`, `Key` or ` key ` go too: a Tollgate key sent in
    one would otherwise reach the provider in the URL, which its logs keep."""
    parts = query_string.decode("latin-1").split("&")
    kept = [part for part in parts if not _names_key(part.partition("=")[0])]
    return "&".join(kept)


def _names_key(name: str) -> bool:
    return unquote_plus(name).strip().lower() == QUERY_KEY
