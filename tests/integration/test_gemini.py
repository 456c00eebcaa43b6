"""Gemini (Google AI Studio) through the gateway: the key in `x-goog-api-key` or `?key=`, the tenant's key
sent upstream in `x-goog-api-key`, streamed and not."""

from __future__ import annotations

import httpx

from tests.integration.conftest import CREDENTIALS, World

BODY = {"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]}


def test_generate_content_with_the_key_in_the_header(fresh: World) -> None:
    key = fresh.keys["acme"]

    response = httpx.post(
        f"{fresh.url}/gemini/v1beta/models/gemini-2.0-flash:generateContent",
        json=BODY,
        headers={"x-goog-api-key": key},
    )

    assert response.status_code == 200
    assert response.json()["candidates"][0]["content"]["parts"][0]["text"]
    [request] = fresh.upstream.requests
    assert request.path == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert request.header("x-goog-api-key") == CREDENTIALS[("acme", "gemini")]


def test_stream_generate_content_with_the_key_in_the_query_string(fresh: World) -> None:
    key = fresh.keys["acme"]
    url = f"{fresh.url}/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse&key={key}"

    with httpx.stream("POST", url, json=BODY, headers={"x-fake-chunks": "4"}) as response:
        events = [line for line in response.iter_lines() if line.startswith("data: ")]

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert len(events) == 4
    [request] = fresh.upstream.requests
    assert request.query == "alt=sse"
    assert key not in request.target
    assert request.header("x-goog-api-key") == CREDENTIALS[("acme", "gemini")]


def test_gemini_errors_come_back_in_gemini_dialect(fresh: World) -> None:
    response = httpx.post(f"{fresh.url}/gemini/v1beta/models/gemini-2.0-flash:generateContent", json=BODY)

    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"
    assert response.json()["error"]["code"] == 401
