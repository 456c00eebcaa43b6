"""Which headers cross the gateway: hop-by-hop headers never, caller credentials never, cookies never.

The caller's `accept-encoding` does not go upstream either: the gateway asks every provider for an
uncompressed body (`IDENTITY`), which it reads for the usage and strips of what it added to a stream,
and relays as it comes (a compressed body would be metered as unknown and a stream not stripped).

The gateway's own `x-request-id` goes back to the caller; the provider's (OpenAI's `req_...`, which its
support asks for) comes back as `x-upstream-request-id` when it is well-formed. Anthropic's
`request-id` passes as it is.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from operator import itemgetter

from gateway.auth.extract import CREDENTIAL_HEADERS

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# What the caller claims about itself or the URL it used, as proxies tell their upstreams: a caller could
# spoof its address or steer an upstream's routing (`X-Forwarded-Prefix`, `X-Original-URL`). Listed by
# name, so the hot path pays one set lookup per header, as for the rest.
CLIENT_CLAIMS = frozenset(
    {
        b"forwarded",
        *(
            b"x-forwarded-" + part
            for part in (b"for", b"host", b"proto", b"port", b"prefix", b"server", b"ssl", b"scheme", b"uri")
        ),
        *(b"x-forwarded-" + part for part in (b"path", b"method", b"client-ip", b"by", b"url", b"protocol")),
        b"x-real-ip",
        b"x-client-ip",
        b"x-cluster-client-ip",
        b"true-client-ip",
        b"cf-connecting-ip",
        b"x-original-url",
        b"x-original-uri",
        b"x-original-host",
        b"x-rewrite-url",
        b"x-original-forwarded-for",
    }
)
_NOT_FORWARDED_UP = (
    HOP_BY_HOP
    | CREDENTIAL_HEADERS
    | {
        b"host",
        b"content-length",
        b"accept-encoding",
        b"expect",
        b"cookie",
        b"x-request-id",
    }
    | CLIENT_CLAIMS
)
IDENTITY = ("accept-encoding", "identity")  # sent upstream instead of the caller's (see above)
_NOT_RELAYED_DOWN = HOP_BY_HOP | {b"set-cookie", b"set-cookie2", b"x-request-id", b"x-upstream-request-id"}
UPSTREAM_REQUEST_ID = b"x-upstream-request-id"
WELL_FORMED_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")  # the caller's, the provider's
_NOT_RELAYED_DOWN_RESIZED = _NOT_RELAYED_DOWN | {b"content-length"}
# Control characters an HTTP server may not write in a field value (uvicorn refuses the whole response
# head), which an upstream's may still hold: HTAB is allowed, CR, LF and NUL the upstream's parser refuses.
_UNSENDABLE = bytes([*range(0x09), *range(0x0A, 0x20), 0x7F])
_value = itemgetter(1)


def request_id(headers: Sequence[tuple[bytes, bytes]]) -> str:
    """The request's id: the caller's `X-Request-Id` when it is well-formed, else a fresh one."""
    for name, value in headers:
        if name == b"x-request-id" and WELL_FORMED_REQUEST_ID.fullmatch(value):
            return value.decode("ascii")
    return f"{random.getrandbits(96):024x}"


def _sendable(value: bytes) -> bool:
    return len(value.translate(None, _UNSENDABLE)) == len(value)  # deleting them deletes nothing


def _named_in_connection(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Extra hop-by-hop headers that a `Connection` header lists."""
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
    return frozenset(named)


def upstream_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """The caller's headers that may travel to the provider (ASGI names are already lower-case)."""
    extra = _named_in_connection(headers)
    return [
        (name.decode("latin-1"), value.decode("latin-1") if value.isascii() else _as_text(value))
        for name, value in headers
        if name not in _NOT_FORWARDED_UP and name not in extra
    ]


def _as_text(value: bytes) -> str:
    """A header value beyond ASCII as the text the transport writes back as the same bytes (it writes
    UTF-8): UTF-8 read as such (`X-Title: Café`); other bytes, which no client should send, as latin-1."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def downstream_headers(
    headers: Iterable[tuple[bytes, bytes]], resized: bool = False
) -> list[tuple[bytes, bytes]]:
    """The provider's response headers that may travel back to the caller, names lower-cased; without
    `content-length` if the gateway may change the body's length (`resized`), and without a field whose
    value holds a control character (it could not be sent: the whole response would be lost). The
    provider's own `x-request-id` comes last, as `x-upstream-request-id`, if it is well-formed."""
    pairs = [(name.lower(), value) for name, value in headers]
    extra = _named_in_connection(pairs)
    dropped = _NOT_RELAYED_DOWN_RESIZED if resized else _NOT_RELAYED_DOWN
    relayed = [(name, value) for name, value in pairs if name not in dropped and name not in extra]
    upstream_id = _last(pairs, b"x-request-id")
    if upstream_id is not None and WELL_FORMED_REQUEST_ID.fullmatch(upstream_id):
        relayed.append((UPSTREAM_REQUEST_ID, upstream_id))
    if not _sendable(b" ".join(map(_value, relayed))):  # one look at all values; rare: then each
        relayed = [(name, value) for name, value in relayed if _sendable(value)]
    return relayed


def _last(pairs: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The value of the last field `name` in `pairs`, if there is one."""
    for field, value in reversed(pairs):
        if field == name:
            return value
    return None
