"""Every bad input gets its documented answer, in the dialect of the API the caller speaks, and nothing
reaches the upstream."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import pytest

from tests.integration.conftest import KEY_CACHE_TTL, MAX_BODY, World

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def openai_error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def post_chat(
    world: World, headers: dict[str, str], path: str = "/openai/v1/chat/completions"
) -> httpx.Response:
    return httpx.post(world.url + path, json=CHAT, headers=headers)


def test_no_key_is_401_in_each_dialect(fresh: World) -> None:
    openai_style = post_chat(fresh, {})
    anthropic_style = httpx.post(fresh.url + "/anthropic/v1/messages", json={})
    gemini_style = httpx.post(fresh.url + "/gemini/v1beta/models/g:generateContent", json={})

    assert openai_style.status_code == anthropic_style.status_code == gemini_style.status_code == 401
    assert openai_error(openai_style)["code"] == "missing_api_key"
    assert anthropic_style.json()["error"]["type"] == "authentication_error"
    assert gemini_style.json()["error"]["status"] == "UNAUTHENTICATED"
    assert fresh.upstream.requests == []


@pytest.mark.parametrize(
    "presented",
    ["tg-" + "A" * 43, "sk-proj-a-real-looking-openai-key", "Bearer", "tg-"],
)
def test_an_unknown_or_foreign_key_is_401_and_never_forwarded(fresh: World, presented: str) -> None:
    response = post_chat(fresh, {"authorization": f"Bearer {presented}"})

    assert response.status_code == 401
    assert openai_error(response)["type"] == "authentication_error"
    assert fresh.upstream.requests == []


def test_a_revoked_key_is_refused(fresh: World) -> None:
    key = fresh.gateway.create_key("acme", "--label", "to revoke")
    fresh.gateway.cli("key", "revoke", fresh.gateway.key_id(key))

    response = post_chat(fresh, {"authorization": f"Bearer {key}"})

    assert response.status_code == 401
    assert "revoked" in str(openai_error(response)["message"])


def test_a_key_revoked_while_in_use_is_refused_once_the_cache_ttl_has_passed(fresh: World) -> None:
    key = fresh.gateway.create_key("acme", "--label", "revoked while cached")
    assert post_chat(fresh, {"authorization": f"Bearer {key}"}).status_code == 200

    fresh.gateway.cli("key", "revoke", fresh.gateway.key_id(key))
    time.sleep(KEY_CACHE_TTL + 0.2)

    assert post_chat(fresh, {"authorization": f"Bearer {key}"}).status_code == 401


def test_an_expired_key_is_refused(fresh: World) -> None:
    key = fresh.gateway.create_key("acme", "--expires-in", "1s")
    time.sleep(1.2)

    response = post_chat(fresh, {"authorization": f"Bearer {key}"})

    assert response.status_code == 401
    assert "expired" in str(openai_error(response)["message"])


def test_a_body_over_the_cap_is_413_whether_its_length_is_declared_or_not(fresh: World) -> None:
    key = fresh.keys["acme"]
    big = b'{"model":"m","messages":[],"pad":"' + b"x" * MAX_BODY + b'"}'

    declared = httpx.post(
        fresh.url + "/openai/v1/chat/completions",
        content=big,
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )
    chunked = httpx.post(
        fresh.url + "/anthropic/v1/messages",
        content=iter([big[:1000], big[1000:]]),
        headers={"x-api-key": key, "content-type": "application/json"},
    )

    assert declared.status_code == chunked.status_code == 413
    assert openai_error(declared)["code"] == "request_too_large"
    assert chunked.json()["error"]["type"] == "request_too_large"
    assert fresh.upstream.requests == []


@pytest.mark.parametrize(
    "path",
    [
        "/openai/v1/../../admin",
        "/openai/%2e%2e/%2e%2e/etc/passwd",
        "/openai/v1/%2E%2E/%2e%2E/%2e%2e/x",
        "/openai/v1/chat%2fcompletions",
        "/openai/v1/..%2f..%2fadmin",
        "/openai/v1/chat%5ccompletions",
        "/openai/v1/chat/completions%0d%0aX-Injected:%20yes",
    ],
)
def test_paths_that_try_to_leave_the_provider_are_refused(fresh: World, path: str) -> None:
    status, body = raw_request(fresh, "GET", path, {"authorization": f"Bearer {fresh.keys['acme']}"})

    assert status == 400
    assert body["error"]["code"] == "invalid_path"
    assert fresh.upstream.requests == []


def test_dot_segments_are_resolved_and_repeated_slashes_collapsed_within_the_mount(fresh: World) -> None:
    status, _ = raw_request(
        fresh, "GET", "/openai/v1//chat/../models", {"authorization": f"Bearer {fresh.keys['acme']}"}
    )

    assert status == 200
    assert [r.path for r in fresh.upstream.requests] == ["/v1/models"]


def test_paths_outside_the_providers_api_and_unknown_mounts_are_404(fresh: World) -> None:
    headers = {"authorization": f"Bearer {fresh.keys['acme']}"}
    outside = httpx.get(fresh.url + "/openai/admin", headers=headers)
    unknown = httpx.get(fresh.url + "/nosuch/v1/models", headers=headers)

    assert outside.status_code == unknown.status_code == 404
    assert openai_error(outside)["code"] == "not_found"
    assert openai_error(unknown)["code"] == "not_found"
    assert fresh.upstream.requests == []


def raw_exchange(world: World, request: bytes) -> bytes:
    """Send bytes exactly as given (no client library normalises the path) and read the whole answer."""
    with socket.create_connection(("127.0.0.1", world.gateway.port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
        return b"".join(chunks)


def raw_request(world: World, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    head = f"{method} {path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    answer = raw_exchange(world, head.encode() + b"\r\n")
    status_line, _, rest = answer.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(body) if body.startswith(b"{") else {}


def test_a_bare_cr_smuggled_into_a_header_is_a_bad_request(fresh: World) -> None:
    key = fresh.keys["acme"]
    request = (
        b"GET /openai/v1/models HTTP/1.1\r\nHost: gw\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\n"
        b"X-Note: harmless\rX-Injected: evil\r\n\r\n"
    )

    answer = raw_exchange(fresh, request)[:64]

    assert answer.startswith(b"HTTP/1.1 400")
    assert fresh.upstream.requests == []


def test_a_malformed_request_id_is_replaced_and_a_good_one_kept(fresh: World) -> None:
    headers = {"authorization": f"Bearer {fresh.keys['acme']}"}
    kept = post_chat(fresh, {**headers, "x-request-id": "trace-42.abc:1"})
    replaced = post_chat(fresh, {**headers, "x-request-id": "has spaces and <script>"})

    assert kept.headers["x-request-id"] == "trace-42.abc:1"
    assert fresh.upstream.requests[0].header("x-request-id") == "trace-42.abc:1"
    assert replaced.headers["x-request-id"] != "has spaces and <script>"
    assert len(replaced.headers["x-request-id"]) == 24
