"""gateway.auth.extract: the caller's Tollgate key is found wherever its SDK puts it."""

from __future__ import annotations

import pytest

from gateway.auth.extract import presented_key, query_without_key

KEY = "tg-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcd"


# -- where each SDK sends the key ---------------------------------------------------------------------


def test_openai_sdks_send_the_key_as_a_bearer_token() -> None:
    assert presented_key([(b"authorization", f"Bearer {KEY}".encode())], b"") == KEY


@pytest.mark.parametrize("scheme", [b"bearer", b"BEARER", b"Bearer"])
def test_the_bearer_scheme_is_case_insensitive(scheme: bytes) -> None:
    assert presented_key([(b"authorization", scheme + b" " + KEY.encode())], b"") == KEY


def test_anthropic_sdks_send_the_key_as_x_api_key() -> None:
    assert presented_key([(b"x-api-key", KEY.encode())], b"") == KEY


def test_google_sdks_send_the_key_as_x_goog_api_key() -> None:
    assert presented_key([(b"x-goog-api-key", KEY.encode())], b"") == KEY


def test_azure_openai_sdks_send_the_key_as_api_key() -> None:
    assert presented_key([(b"api-key", KEY.encode())], b"") == KEY


def test_google_clients_may_send_the_key_as_a_query_parameter() -> None:
    assert presented_key([], f"alt=sse&key={KEY}".encode()) == KEY


def test_surrounding_whitespace_is_not_part_of_the_key() -> None:
    assert presented_key([(b"authorization", f"Bearer  {KEY} ".encode())], b"") == KEY
    assert presented_key([(b"x-api-key", f" {KEY}\t".encode())], b"") == KEY


# -- nothing presented --------------------------------------------------------------------------------


def test_no_key_anywhere_is_none() -> None:
    assert presented_key([(b"content-type", b"application/json")], b"alt=sse") is None


@pytest.mark.parametrize("value", [b"Basic dXNlcjpwYXNz", b"Bearer", b"Bearer   ", KEY.encode()])
def test_an_authorization_header_that_is_not_a_bearer_token_is_not_a_key(value: bytes) -> None:
    assert presented_key([(b"authorization", value)], b"") is None


def test_an_empty_key_parameter_is_not_a_key() -> None:
    assert presented_key([], b"key=&alt=sse") is None


def test_a_parameter_merely_ending_in_key_is_not_the_key() -> None:
    assert presented_key([], b"apikey=tg-nope&monkey=tg-nope") is None


# -- priority -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ([(b"x-api-key", b"tg-second"), (b"authorization", b"Bearer tg-first")], b"", "tg-first"),
        ([(b"x-goog-api-key", b"tg-third"), (b"x-api-key", b"tg-second")], b"", "tg-second"),
        ([(b"api-key", b"tg-fourth"), (b"x-goog-api-key", b"tg-third")], b"", "tg-third"),
        ([(b"api-key", b"tg-fourth")], b"key=tg-fifth", "tg-fourth"),
        ([(b"authorization", b"Basic abc"), (b"x-api-key", b"tg-second")], b"", "tg-second"),
        ([(b"x-api-key", b"")], b"key=tg-fifth", "tg-fifth"),
    ],
)
def test_headers_are_searched_in_priority_order_then_the_query(
    headers: list[tuple[bytes, bytes]], query: bytes, expected: str
) -> None:
    assert presented_key(headers, query) == expected


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ([(b"authorization", b"Bearer sk-ant-oat01-own-token"), (b"x-api-key", KEY.encode())], b""),
        ([(b"authorization", b"Bearer eyJhbGciOi.jwt.sig"), (b"api-key", KEY.encode())], b""),
        ([(b"x-goog-api-key", b"AIza-own-google-key")], b"key=" + KEY.encode()),
    ],
)
def test_a_tollgate_key_counts_over_a_token_of_the_clients_own_in_a_header_searched_earlier(
    headers: list[tuple[bytes, bytes]], query: bytes
) -> None:
    assert presented_key(headers, query) == KEY


def test_with_no_tollgate_shaped_key_the_first_found_is_presented_to_be_refused() -> None:
    headers = [(b"authorization", b"Bearer sk-own"), (b"x-api-key", b"sk-ant-own")]

    assert presented_key(headers, b"") == "sk-own"


def test_the_first_of_repeated_headers_counts() -> None:
    headers = [(b"x-api-key", b"tg-first"), (b"x-api-key", b"tg-second")]

    assert presented_key(headers, b"") == "tg-first"


# -- query_without_key --------------------------------------------------------------------------------


def test_the_key_parameter_is_removed_from_the_forwarded_query() -> None:
    assert query_without_key(f"alt=sse&key={KEY}".encode()) == "alt=sse"
    assert query_without_key(f"key={KEY}&alt=sse".encode()) == "alt=sse"
    assert query_without_key(f"key={KEY}".encode()) == ""


def test_every_key_parameter_is_removed() -> None:
    assert query_without_key(b"key=tg-a&alt=sse&key=tg-b") == "alt=sse"


def test_a_query_without_a_key_is_forwarded_unchanged() -> None:
    assert query_without_key(b"api-version=2024-10-21&x=a%20b+c") == "api-version=2024-10-21&x=a%20b+c"


def test_only_the_key_parameter_is_removed_and_the_rest_is_byte_for_byte_the_same() -> None:
    query = f"q=a%20b+c&$filter=x%2Fy&key={KEY}&flag&pageToken=abc%3D%3D&apikey=v".encode()

    assert query_without_key(query) == "q=a%20b+c&$filter=x%2Fy&flag&pageToken=abc%3D%3D&apikey=v"


def test_a_percent_encoded_key_parameter_name_is_removed_too() -> None:
    assert query_without_key(b"%6Bey=tg-secret&alt=sse") == "alt=sse"


def test_an_empty_query_stays_empty() -> None:
    assert query_without_key(b"") == ""


@pytest.mark.parametrize("name", ["KEY", "Key", "kEy", "%4BEY", "key%20", "+key"])
def test_a_key_parameter_in_another_case_or_padded_is_removed_too(name: str) -> None:
    """Not read as the caller's key (no SDK writes it so), but never forwarded: a key sent in it would
    reach the provider, and its logs, with the URL."""
    assert query_without_key(f"alt=sse&{name}={KEY}".encode()) == "alt=sse"


def test_parameters_whose_names_merely_contain_key_are_kept_in_any_case() -> None:
    query = b"apikey=a&KEYS=b&monkey=c&key_id=d&pageKey=e"

    assert query_without_key(query) == query.decode()
