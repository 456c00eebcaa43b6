"""The edges of a request, as a demanding caller probes them with curl and the SDKs: every answer the
gateway gives before (or instead of) proxying is in the caller's dialect, logged, and reaches no upstream.
"""

from __future__ import annotations

import gzip
import json
import socket
from typing import Any

import httpx
import pytest

from tests.integration.conftest import MAX_BODY, World
from tests.integration.test_refusals import CHAT, openai_error
from tests.support.gateway import wait_until

ALLOWED = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"


def access_record(world: World, request_id: str) -> dict[str, Any] | None:
    """The access-log line of the request `request_id`, once it is written."""

    def find() -> dict[str, Any] | None:
        return next((r for r in world.gateway.access_records() if r["request_id"] == request_id), None)

    return wait_until(find, timeout=5)


def test_a_request_to_an_unknown_mount_is_logged_without_its_query(fresh: World) -> None:
    key = fresh.keys["acme"]

    response = httpx.get(
        f"{fresh.url}/nosuch/v1/models?key={key}&alt=sse", headers={"x-request-id": "edge-unknown-mount"}
    )

    record = access_record(fresh, "edge-unknown-mount")
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "edge-unknown-mount"
    assert record is not None
    assert (record["status"], record["error"], record["method"]) == (404, "not_found", "GET")
    assert record["path"] == "/nosuch/v1/models"
    assert record["provider"] is None and record["tenant"] is None
    assert key not in fresh.gateway.logs()
    assert fresh.upstream.requests == []


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND"])
def test_a_method_no_provider_api_uses_is_405_with_allow_and_never_forwarded(
    fresh: World, method: str
) -> None:
    """A TRACE sent on would carry the tenant's credential to a server that may echo it back in a success,
    which the gateway does not search for secrets."""
    key = fresh.keys["acme"]

    openai_style = httpx.request(
        method, fresh.url + "/openai/v1/models", headers={"authorization": f"Bearer {key}"}
    )
    anthropic_style = httpx.request(method, fresh.url + "/anthropic/v1/models", headers={"x-api-key": key})
    gemini_style = httpx.request(method, fresh.url + "/gemini/v1beta/models", headers={"x-goog-api-key": key})

    for response in (openai_style, anthropic_style, gemini_style):
        assert response.status_code == 405
        assert response.headers["allow"] == ALLOWED
    assert openai_style.json()["error"]["code"] == "method_not_allowed"
    assert anthropic_style.json()["error"]["type"] == "invalid_request_error"
    assert gemini_style.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert fresh.upstream.requests == []


def test_a_wrong_method_on_the_gateways_own_endpoint_is_405_not_a_missing_provider(fresh: World) -> None:
    response = httpx.post(fresh.url + "/healthz")

    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD"}
    assert openai_error(response)["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("method", "path"), [("TRACE", "/nosuch/v1/models"), ("GET", "/healthz/"), ("POST", "/metrics/")]
)
def test_any_method_under_no_mount_is_a_json_404_never_a_redirect(
    fresh: World, method: str, path: str
) -> None:
    """No redirect to the path without its slash either: its `Location` would be built from `Host`."""
    response = httpx.request(method, fresh.url + path)

    assert response.status_code == 404
    assert openai_error(response)["code"] == "not_found"


def post_json_as_a_key_limited_to_models(fresh: World, body: bytes) -> httpx.Response:
    headers = {"authorization": f"Bearer {fresh.keys['acme-restricted']}", "content-type": "application/json"}
    return httpx.post(fresh.url + "/openai/v1/chat/completions", content=body, headers=headers)


@pytest.mark.parametrize("body", [b"[1, 2]", b'"gpt-4o-mini"', b"null", b"42"])
def test_a_json_body_that_is_no_object_is_400_for_a_key_limited_to_models(fresh: World, body: bytes) -> None:
    """Not a 403 saying the request names no model: what is wrong is the body."""
    response = post_json_as_a_key_limited_to_models(fresh, body)

    assert response.status_code == 400
    assert openai_error(response)["code"] == "invalid_json"
    assert fresh.upstream.requests == []


def test_a_body_naming_its_model_twice_is_400_for_a_key_limited_to_models(fresh: World) -> None:
    body = b'{"model": "gpt-5", "model": "gpt-4o-mini", "messages": []}'

    response = post_json_as_a_key_limited_to_models(fresh, body)

    assert response.status_code == 400
    assert openai_error(response)["code"] == "invalid_json"
    assert fresh.upstream.requests == []


def test_a_compressed_body_is_415_for_a_key_limited_to_models_whose_model_it_hides(fresh: World) -> None:
    """Its model cannot be read; for any other key it is forwarded as it came (the provider decides)."""
    body = gzip.compress(json.dumps(CHAT).encode())
    headers = {"content-type": "application/json", "content-encoding": "gzip"}

    limited = httpx.post(
        fresh.url + "/openai/v1/chat/completions",
        content=body,
        headers={**headers, "authorization": f"Bearer {fresh.keys['acme-restricted']}"},
    )
    assert fresh.upstream.requests == []
    httpx.post(
        fresh.url + "/openai/v1/chat/completions",
        content=body,
        headers={**headers, "authorization": f"Bearer {fresh.keys['acme']}"},
    )

    assert limited.status_code == 415
    assert limited.headers["accept-encoding"] == "identity"
    assert openai_error(limited)["code"] == "unsupported_content_encoding"
    [forwarded] = fresh.upstream.requests
    assert (forwarded.header("content-encoding"), forwarded.body) == ("gzip", body)


def test_a_refused_method_is_logged_with_the_path_it_was_sent_to(fresh: World) -> None:
    httpx.request("TRACE", fresh.url + "/openai/v1/models", headers={"x-request-id": "edge-trace"})

    record = access_record(fresh, "edge-trace")

    assert record is not None
    assert (record["method"], record["path"], record["status"]) == ("TRACE", "/v1/models", 405)


def test_a_request_to_an_unknown_mount_is_answered_in_the_dialect_its_sdk_headers_name(fresh: World) -> None:
    anthropic_sdk = httpx.post(
        fresh.url + "/claude/v1/messages",
        json={},
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
    )
    gemini_sdk = httpx.post(
        fresh.url + "/google/v1beta/models/g:generateContent", json={}, headers={"x-goog-api-key": "k"}
    )
    curl = httpx.post(fresh.url + "/nosuch/v1/chat/completions", json={})

    assert anthropic_sdk.status_code == gemini_sdk.status_code == curl.status_code == 404
    assert anthropic_sdk.json()["error"]["type"] == "not_found_error"
    assert gemini_sdk.json()["error"]["status"] == "NOT_FOUND"
    assert openai_error(curl)["code"] == "not_found"


def test_a_form_upload_that_needs_a_model_is_415_for_a_key_limited_to_models_not_invalid_json(
    fresh: World,
) -> None:
    """The gateway reads a model from JSON only: a multipart transcription's model it cannot check."""
    response = httpx.post(
        fresh.url + "/openai/v1/audio/transcriptions",
        data={"model": "gpt-4o-mini"},
        files={"file": ("a.wav", b"RIFF....WAVE")},
        headers={"authorization": f"Bearer {fresh.keys['acme-restricted']}"},
    )

    assert response.status_code == 415
    error = openai_error(response)
    assert error["code"] == "unsupported_media_type"
    assert "multipart/form-data" in str(error["message"])
    assert fresh.upstream.requests == []


def test_an_oversize_body_announced_with_expect_100_continue_is_refused_before_it_is_sent(
    fresh: World,
) -> None:
    head = (
        b"POST /anthropic/v1/messages HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b"x-api-key: " + fresh.keys["acme"].encode() + b"\r\n"
        b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1)
    )

    with socket.create_connection(("127.0.0.1", fresh.gateway.port), timeout=10) as connection:
        connection.sendall(head)  # and no body: a client waits for 100 Continue before it sends one
        status, body = read_response(connection)

    assert status == 413
    assert body["error"]["type"] == "request_too_large"
    assert fresh.upstream.requests == []


def read_response(connection: socket.socket) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of the next response on `connection` (a body of declared length)."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(
        next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))[15:]
    )
    while len(body) < length:
        body += connection.recv(65536)
    return int(head.split()[1]), json.loads(body)
