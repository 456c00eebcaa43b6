"""gateway.errors: every error rendered the way the caller's own SDK expects to read it."""

from __future__ import annotations

import orjson
import pytest

from gateway.errors import (
    AuthError,
    BadRequest,
    Dialect,
    GatewayError,
    InvalidPath,
    MethodNotAllowed,
    MissingKey,
    ModelNotAllowed,
    NotFound,
    PermissionDenied,
    RequestTimeout,
    RequestTooLarge,
    ServiceUnavailable,
    UpstreamError,
    UpstreamStreamBroken,
    UpstreamTimeout,
    UpstreamUnavailable,
    WebSocketsNotSupported,
    error_payload,
    render_error,
    render_stream_error,
)

# (error, status, OpenAI type, Anthropic type, Gemini status)
CASES = [
    (BadRequest("bad"), 400, "invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"),
    (InvalidPath("bad path"), 400, "invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"),
    (AuthError("bad key"), 401, "authentication_error", "authentication_error", "UNAUTHENTICATED"),
    (MissingKey("no key"), 401, "authentication_error", "authentication_error", "UNAUTHENTICATED"),
    (PermissionDenied("no"), 403, "permission_error", "permission_error", "PERMISSION_DENIED"),
    (ModelNotAllowed("no"), 403, "permission_error", "permission_error", "PERMISSION_DENIED"),
    (NotFound("where"), 404, "invalid_request_error", "not_found_error", "NOT_FOUND"),
    (MethodNotAllowed("how"), 405, "invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"),
    (RequestTimeout("slow"), 408, "invalid_request_error", "invalid_request_error", "DEADLINE_EXCEEDED"),
    (RequestTooLarge("big"), 413, "invalid_request_error", "request_too_large", "INVALID_ARGUMENT"),
    (GatewayError("oops"), 500, "api_error", "api_error", "INTERNAL"),
    (UpstreamError("bad gateway"), 502, "api_error", "api_error", "UNAVAILABLE"),
    (UpstreamUnavailable("down"), 502, "api_error", "api_error", "UNAVAILABLE"),
    (UpstreamStreamBroken("cut"), 502, "api_error", "api_error", "UNAVAILABLE"),
    (WebSocketsNotSupported("http only"), 501, "api_error", "api_error", "UNIMPLEMENTED"),
    (ServiceUnavailable("later"), 503, "api_error", "overloaded_error", "UNAVAILABLE"),
    (UpstreamTimeout("slow"), 504, "api_error", "timeout_error", "DEADLINE_EXCEEDED"),
]
IDS = [type(case[0]).__name__ for case in CASES]


@pytest.mark.parametrize(("error", "status", "openai", "anthropic", "gemini"), CASES, ids=IDS)
def test_each_error_carries_its_http_status(
    error: GatewayError, status: int, openai: str, anthropic: str, gemini: str
) -> None:
    assert error.status == status
    assert isinstance(error, GatewayError)


@pytest.mark.parametrize(("error", "status", "openai", "anthropic", "gemini"), CASES, ids=IDS)
def test_openai_callers_get_an_openai_error_object(
    error: GatewayError, status: int, openai: str, anthropic: str, gemini: str
) -> None:
    assert orjson.loads(render_error(error, Dialect.OPENAI)) == {
        "error": {"message": error.message, "type": openai, "param": None, "code": error.code}
    }


@pytest.mark.parametrize(("error", "status", "openai", "anthropic", "gemini"), CASES, ids=IDS)
def test_anthropic_callers_get_an_anthropic_error_object(
    error: GatewayError, status: int, openai: str, anthropic: str, gemini: str
) -> None:
    assert orjson.loads(render_error(error, Dialect.ANTHROPIC)) == {
        "type": "error",
        "error": {"type": anthropic, "message": error.message},
    }


@pytest.mark.parametrize(("error", "status", "openai", "anthropic", "gemini"), CASES, ids=IDS)
def test_gemini_callers_get_a_google_error_object(
    error: GatewayError, status: int, openai: str, anthropic: str, gemini: str
) -> None:
    assert orjson.loads(render_error(error, Dialect.GEMINI)) == {
        "error": {"code": status, "message": error.message, "status": gemini}
    }


def test_the_openai_code_is_the_errors_stable_machine_readable_code() -> None:
    assert error_payload(MissingKey("x"), Dialect.OPENAI)["error"] == {
        "message": "x",
        "type": "authentication_error",
        "param": None,
        "code": "missing_api_key",
    }
    assert error_payload(AuthError("x"), Dialect.OPENAI)["error"]["code"] == "invalid_api_key"  # type: ignore[index]


def test_a_message_with_quotes_and_newlines_stays_valid_json() -> None:
    message = 'the field "model" is\nmissing \u00e9'

    for dialect in Dialect:
        assert orjson.loads(render_error(BadRequest(message), dialect))["error"]["message"] == message


# -- errors inside a stream that has already started --------------------------------------------------


@pytest.mark.parametrize("dialect", [Dialect.OPENAI, Dialect.GEMINI])
def test_a_stream_error_is_one_data_event(dialect: Dialect) -> None:
    error = UpstreamStreamBroken("the upstream closed the stream")

    event = render_stream_error(error, dialect)

    assert event.startswith(b"data: ")
    assert event.endswith(b"\n\n")
    assert event.count(b"\n\n") == 1
    assert orjson.loads(event.removeprefix(b"data: ").removesuffix(b"\n\n")) == error_payload(error, dialect)


def test_an_anthropic_stream_error_is_a_named_error_event() -> None:
    error = UpstreamStreamBroken("the upstream closed the stream")

    event = render_stream_error(error, Dialect.ANTHROPIC)

    head, data = event.removesuffix(b"\n\n").split(b"\n")
    assert head == b"event: error"
    assert orjson.loads(data.removeprefix(b"data: ")) == {
        "type": "error",
        "error": {"type": "api_error", "message": "the upstream closed the stream"},
    }
    assert event.count(b"\n\n") == 1 and event.endswith(b"\n\n")


def test_a_multiline_message_does_not_break_the_event_framing() -> None:
    event = render_stream_error(UpstreamStreamBroken("line one\n\nline two"), Dialect.OPENAI)

    assert event.count(b"\n") == 2
