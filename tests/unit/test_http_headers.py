"""gateway.http.headers: what crosses the gateway in each direction."""

from __future__ import annotations

import pytest

from gateway.http.headers import HOP_BY_HOP, downstream_headers, upstream_headers

# -- upstream: caller → provider ----------------------------------------------------------------------


def test_end_to_end_headers_travel_upstream_in_order() -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"accept", b"text/event-stream"),
        (b"anthropic-version", b"2023-06-01"),
        (b"openai-beta", b"assistants=v2"),
        (b"user-agent", b"OpenAI/Python 1.50.0"),
    ]

    assert upstream_headers(headers) == [
        ("content-type", "application/json"),
        ("accept", "text/event-stream"),
        ("anthropic-version", "2023-06-01"),
        ("openai-beta", "assistants=v2"),
        ("user-agent", "OpenAI/Python 1.50.0"),
    ]


@pytest.mark.parametrize("name", sorted(HOP_BY_HOP))
def test_hop_by_hop_headers_never_travel_upstream(name: bytes) -> None:
    assert upstream_headers([(name, b"x"), (b"accept", b"*/*")]) == [("accept", "*/*")]


@pytest.mark.parametrize("name", [b"authorization", b"x-api-key", b"x-goog-api-key", b"api-key"])
def test_the_callers_credential_headers_never_travel_upstream(name: bytes) -> None:
    forwarded = upstream_headers([(name, b"tg-secret"), (b"accept", b"*/*")])

    assert forwarded == [("accept", "*/*")]


@pytest.mark.parametrize("name", [b"host", b"content-length", b"cookie", b"expect"])
def test_connection_specific_and_cookie_headers_never_travel_upstream(name: bytes) -> None:
    assert upstream_headers([(name, b"x"), (b"accept", b"*/*")]) == [("accept", "*/*")]


@pytest.mark.parametrize(
    "name",
    [
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-proto",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-forwarded-server",
        b"x-forwarded-ssl",
        b"x-forwarded-scheme",
        b"x-real-ip",
        b"x-original-url",
        b"x-rewrite-url",
        b"x-request-id",
    ],
)
def test_headers_the_gateway_sets_itself_are_not_taken_from_the_caller(name: bytes) -> None:
    assert upstream_headers([(name, b"x"), (b"accept", b"*/*")]) == [("accept", "*/*")]


def test_headers_named_in_connection_are_dropped_upstream() -> None:
    headers = [
        (b"connection", b"keep-alive, X-Debug-Trace ,x-other"),
        (b"x-debug-trace", b"1"),
        (b"x-other", b"2"),
        (b"x-kept", b"3"),
    ]

    assert upstream_headers(headers) == [("x-kept", "3")]


def test_header_values_are_passed_as_latin1_text() -> None:
    assert upstream_headers([(b"x-title", "caf\u00e9".encode("latin-1"))]) == [("x-title", "caf\u00e9")]


# -- downstream: provider → caller --------------------------------------------------------------------


def test_response_headers_are_relayed_with_lowercase_names() -> None:
    headers = [(b"Content-Type", b"application/json"), (b"x-ratelimit-remaining-requests", b"99")]

    assert downstream_headers(headers) == [
        (b"content-type", b"application/json"),
        (b"x-ratelimit-remaining-requests", b"99"),
    ]


@pytest.mark.parametrize("name", [*sorted(HOP_BY_HOP), b"Transfer-Encoding", b"Connection"])
def test_hop_by_hop_headers_are_not_relayed_downstream(name: bytes) -> None:
    assert downstream_headers([(name, b"x"), (b"content-type", b"text/plain")]) == [
        (b"content-type", b"text/plain")
    ]


@pytest.mark.parametrize("name", [b"set-cookie", b"Set-Cookie", b"set-cookie2"])
def test_cookies_set_by_the_provider_are_never_relayed(name: bytes) -> None:
    headers = [(name, b"__cf_bm=abc; path=/; HttpOnly"), (b"content-type", b"application/json")]

    assert downstream_headers(headers) == [(b"content-type", b"application/json")]


def test_headers_named_in_connection_are_dropped_downstream() -> None:
    headers = [(b"Connection", b"close, X-Upstream-Debug"), (b"X-Upstream-Debug", b"1"), (b"x-kept", b"2")]

    assert downstream_headers(headers) == [(b"x-kept", b"2")]


def test_the_providers_request_id_comes_back_under_another_name_and_anthropics_as_it_is() -> None:
    assert downstream_headers([(b"X-Request-Id", b"req_upstream"), (b"request-id", b"req_a")]) == [
        (b"request-id", b"req_a"),
        (b"x-upstream-request-id", b"req_upstream"),
    ]


@pytest.mark.parametrize("value", [b"", b"req 1", b"req/1", b"r" * 129, b"req_1\n"])
def test_a_malformed_provider_request_id_is_not_relayed(value: bytes) -> None:
    assert downstream_headers([(b"x-request-id", value), (b"content-type", b"text/plain")]) == [
        (b"content-type", b"text/plain")
    ]


def test_of_two_provider_request_ids_the_last_comes_back() -> None:
    headers = [(b"x-request-id", b"req_1"), (b"content-type", b"text/plain"), (b"X-Request-Id", b"req_2")]

    assert downstream_headers(headers) == [
        (b"content-type", b"text/plain"),
        (b"x-upstream-request-id", b"req_2"),
    ]


def test_an_upstream_cannot_pose_as_the_provider_request_id() -> None:
    headers = [(b"x-upstream-request-id", b"forged"), (b"x-request-id", b"req_1")]

    assert downstream_headers(headers) == [(b"x-upstream-request-id", b"req_1")]


def test_content_length_goes_only_when_the_gateway_may_resize_the_body() -> None:
    headers = [(b"Content-Length", b"42"), (b"content-type", b"text/plain")]

    assert downstream_headers(headers) == [(b"content-length", b"42"), (b"content-type", b"text/plain")]
    assert downstream_headers(headers, resized=True) == [(b"content-type", b"text/plain")]


@pytest.mark.parametrize("value", [b"a\x7fb", b"a\x01b", b"\x1b[31m", b"a\x0bb"])
def test_a_response_header_whose_value_holds_a_control_character_is_not_relayed(value: bytes) -> None:
    relayed = downstream_headers(
        [(b"Content-Type", b"application/json"), (b"X-Odd", value), (b"X-Even", b"1")]
    )

    assert relayed == [(b"content-type", b"application/json"), (b"x-even", b"1")]


def test_tabs_and_bytes_beyond_ascii_in_response_header_values_are_relayed() -> None:
    headers = [(b"x-tabbed", b"a\tb"), (b"x-title", "Café".encode())]

    assert downstream_headers(headers) == headers
