"""Reading a request body up to a cap, refusing larger ones before they are buffered."""

from __future__ import annotations

from gateway.errors import BadRequest, RequestTooLarge
from gateway.types import Receive


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit():  # ASCII digits only: int() would also take "+5", " 5", "1_0"
                raise BadRequest("invalid Content-Length header")
            return int(value)
    return None


async def read_body(receive: Receive, limit: int, declared: int | None) -> bytes:
    """The whole body, or `RequestTooLarge` as soon as it is known to exceed `limit` bytes."""
    if declared is not None and declared > limit:
        raise RequestTooLarge(f"the request body is {declared} bytes; the limit is {limit}")
    parts: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"the request body exceeds the limit of {limit} bytes")
        parts.append(chunk)
        more = message.get("more_body", False)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class ClientGone(Exception):
    """The caller disconnected before its request was complete."""
