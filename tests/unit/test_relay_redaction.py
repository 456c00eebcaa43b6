"""A response that is no success is relayed without the provider credential the gateway injected,
should the upstream echo it back; a success goes byte for byte."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.context import RequestContext
from gateway.credentials.secret import Secret
from gateway.credentials.store import ResolvedCredential
from gateway.pipeline.relay import REDACTED, Redactor, relay
from tests.support.metering import chat_call
from tests.unit.metering.support import splittings

SECRET = "sk-proj-0123456789abcdef"
ECHO = f'{{"error":{{"message":"bad key: Bearer {SECRET}, also {SECRET}"}}}}'.encode()


@dataclass
class Canned:
    status: int
    headers: Sequence[tuple[bytes, bytes]]
    body: list[bytes]

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self.body:
            yield chunk

    async def aclose(self) -> None:
        return None


def call(credential: str | None = SECRET) -> RequestContext:
    if credential is None:
        return chat_call()
    return chat_call(credential=ResolvedCredential("cred_1", "api_key", Secret(credential), shared=False))


def relayed(ctx: RequestContext, response: Canned) -> tuple[dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(relay(ctx, response, send, None))  # type: ignore[arg-type]
    headers = dict(sent[0]["headers"])
    return headers, b"".join(message.get("body", b"") for message in sent[1:])


def test_the_redactor_finds_the_secret_however_the_chunks_cut_it() -> None:
    expected = ECHO.replace(SECRET.encode(), REDACTED)
    for label, pieces in splittings(ECHO):
        redactor = Redactor(SECRET.encode())
        out = b"".join(redactor.feed(piece) for piece in pieces) + redactor.rest()
        assert out == expected, label


@pytest.mark.parametrize("status", [302, 401, 500])
def test_an_error_or_redirect_echoing_the_credential_is_relayed_without_it(status: int) -> None:
    response = Canned(
        status,
        [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(ECHO)).encode()),
            (b"x-echo-authorization", f"Bearer {SECRET}".encode()),
            (b"location", f"https://elsewhere.example/?auth={SECRET}".encode()),
        ],
        [ECHO[:30], ECHO[30:47], ECHO[47:]],
    )

    headers, body = relayed(call(), response)

    assert SECRET.encode() not in body and body == ECHO.replace(SECRET.encode(), REDACTED)
    assert all(SECRET.encode() not in value for value in headers.values())
    assert headers[b"location"] == b"https://elsewhere.example/?auth=" + REDACTED
    assert b"content-length" not in headers  # the body changed length


def test_a_success_is_relayed_byte_for_byte_with_its_length() -> None:
    body = [b'{"id":"chatcmpl-1",', b'"choices":[]}']
    response = Canned(200, [(b"content-type", b"application/json"), (b"content-length", b"32")], body)

    headers, relayed_body = relayed(call(), response)

    assert relayed_body == b"".join(body) and headers[b"content-length"] == b"32"


def test_a_call_without_a_credential_has_nothing_to_redact() -> None:
    response = Canned(401, [(b"content-type", b"application/json")], [ECHO])

    _, body = relayed(call(credential=None), response)

    assert body == ECHO
