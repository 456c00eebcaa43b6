"""Reading a request body up to a cap, refusing larger ones before they are buffered."""

from __future__ import annotations

from gateway.errors import BadRequest, RequestTooLarge
from gateway.types import Receive


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise BadRequest("invalid Content-Length header") from None
            if length < 0:
                raise BadRequest("invalid Content-Length header")
            return length
    return None


async def read_body(receive: Receive, limit: int, declared: int | None) -> bytes:
    """The whole body, or `RequestTooLarge` as soon as it is known to exceed `limit` bytes."""
    if declared is not None and declared > limit:
        raise RequestTooLarge(f"the request body is {declared} bytes; the limit is {limit}")
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    parts = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"the request body exceeds the limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


class ClientGone(Exception):
    """The caller disconnected before its request was complete."""
