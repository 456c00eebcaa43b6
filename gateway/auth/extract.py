"""Finding the caller's Tollgate key wherever its SDK sends it, and the headers to strip.

OpenAI-style SDKs send `Authorization: Bearer`, Anthropic's `x-api-key`, Google's
`x-goog-api-key` (or `?key=`), Azure OpenAI's `api-key`. All of these are removed before a request
is forwarded, whichever one carried the key.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl, unquote_plus

from gateway.auth.keys import KEY_PREFIX

CREDENTIAL_HEADERS = frozenset({b"authorization", b"x-api-key", b"x-goog-api-key", b"api-key"})
QUERY_KEY = "key"


def presented_key(headers: list[tuple[bytes, bytes]], query_string: bytes) -> str | None:
    """The key the caller presented: the first, by header priority and then the `key` query parameter,
    that has a Tollgate key's prefix; else the first found at all (it is refused as unknown).

    A client may carry a token of its own beside the Tollgate key (an Anthropic SDK given both an auth
    token and an API key sends both `Authorization: Bearer` and `x-api-key`): the Tollgate key counts."""
    first: str | None = None
    for candidate in _candidates(headers, query_string):
        if candidate.startswith(KEY_PREFIX):
            return candidate
        if first is None:
            first = candidate
    return first


def _candidates(headers: list[tuple[bytes, bytes]], query_string: bytes) -> Iterator[str]:
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in CREDENTIAL_HEADERS and name not in found:
            found[name] = value
    bearer = found.get(b"authorization")
    if bearer is not None:
        scheme, _, token = bearer.partition(b" ")
        if scheme.lower() == b"bearer" and token.strip():
            yield token.strip().decode("latin-1")
    for name in (b"x-api-key", b"x-goog-api-key", b"api-key"):
        header = found.get(name)
        if header and header.strip():
            yield header.strip().decode("latin-1")
    if b"key=" in query_string:
        for parameter, argument in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if parameter == QUERY_KEY and argument:
                yield argument
                return


def query_without_key(query_string: bytes) -> str:
    """The query string to forward: every `key` parameter removed, the rest byte for byte as sent.

    Only `key` is read as the caller's key, but `KEY`, `Key` or ` key ` go too: a Tollgate key sent in
    one would otherwise reach the provider in the URL, which its logs keep."""
    parts = query_string.decode("latin-1").split("&")
    kept = [part for part in parts if not _names_key(part.partition("=")[0])]
    return "&".join(kept)


def _names_key(name: str) -> bool:
    return unquote_plus(name).strip().lower() == QUERY_KEY
