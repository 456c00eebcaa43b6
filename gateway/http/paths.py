"""Normalising the path a caller asked for, so it can never leave its provider's mount.

Encoded separators (`%2f`, `%5c`), backslashes and control characters are refused outright; encoded
dots are decoded, then `.` and `..` segments are resolved and repeated slashes collapsed. A path
whose `..` would climb above the mount is refused. Other percent-escapes are forwarded as they came.
"""

from __future__ import annotations

import re

from gateway.errors import InvalidPath

_FORBIDDEN = re.compile(rb"%(2f|5c|00)|[\x00-\x1f\x7f\\]|%[01][0-9a-f]|%7f", re.IGNORECASE)
_ENCODED_DOT = re.compile(rb"%2e", re.IGNORECASE)


def split_mount(raw_path: bytes) -> tuple[str, bytes]:
    """(`first segment`, `the rest`) of a raw request path: `/openai/v1/x` → (`openai`, `/v1/x`)."""
    end = raw_path.find(b"/", 1)
    if end < 0:
        return raw_path[1:].decode("latin-1"), b""
    return raw_path[1:end].decode("latin-1"), raw_path[end:]


def normalize(raw: bytes) -> str:
    """The safe form of a raw (still percent-encoded) path relative to a mount, or `InvalidPath`."""
    if _FORBIDDEN.search(raw):
        raise InvalidPath("the path contains an encoded separator or a control character")
    if b"%" in raw:
        raw = _ENCODED_DOT.sub(b".", raw)
    text = raw.decode("latin-1")
    if "/." not in text and "//" not in text:
        return text or "/"
    segments: list[str] = []
    for segment in text.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not segments:
                raise InvalidPath("the path climbs above the provider's mount")
            segments.pop()
            continue
        segments.append(segment)
    trailing = "/" if text.endswith(("/", "/.", "/..")) and segments else ""
    return "/" + "/".join(segments) + trailing
