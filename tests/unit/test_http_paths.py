"""gateway.http.paths: a caller's path can name any API path under its provider's mount, and nothing else."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidPath
from gateway.http.paths import normalize, split_mount

# -- split_mount --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"/openai/v1/chat/completions", ("openai", b"/v1/chat/completions")),
        (
            b"/gemini/v1beta/models/gemini-2.0-flash:generateContent",
            ("gemini", b"/v1beta/models/gemini-2.0-flash:generateContent"),
        ),
        (b"/openai/", ("openai", b"/")),
        (b"/openai", ("openai", b"")),
        (b"/", ("", b"")),
        (b"", ("", b"")),
    ],
)
def test_split_mount_separates_the_first_segment_from_the_rest(
    raw: bytes, expected: tuple[str, bytes]
) -> None:
    assert split_mount(raw) == expected


def test_split_mount_leaves_the_rest_raw_for_normalize_to_judge() -> None:
    assert split_mount(b"/openai/%2e%2e/admin") == ("openai", b"/%2e%2e/admin")


# -- plain paths are untouched ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/chat/completions",
        "/v1/messages",
        "/v1beta/models/gemini-2.0-flash:generateContent",
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
        "/openai/deployments/gpt-4o/chat/completions",
        "/v1/files/file-abc123/content",
        "/v1/models/",
        "/v1/.well-known",
        "/v1/models/ft:gpt-4o-mini:org::abc",
    ],
)
def test_a_plain_path_is_returned_unchanged(path: str) -> None:
    assert normalize(path.encode()) == path


def test_an_empty_path_is_the_root_of_the_mount() -> None:
    assert normalize(b"") == "/"


@pytest.mark.parametrize(
    "path",
    ["/v1/models/my%20model", "/v1/files/a%3Ab", "/v1/x%25y", "/v1/caf%C3%A9", "/v1/a%2Bb"],
)
def test_other_percent_escapes_are_forwarded_as_they_came(path: str) -> None:
    assert normalize(path.encode()) == path


# -- dot segments and repeated slashes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"/v1/./chat/completions", "/v1/chat/completions"),
        (b"/v1/models/../chat/completions", "/v1/chat/completions"),
        (b"/v1/a/b/../../messages", "/v1/messages"),
        (b"/v1/models/..", "/v1/"),
        (b"/v1/models/.", "/v1/models/"),
        (b"/./v1/messages", "/v1/messages"),
    ],
)
def test_dot_segments_are_resolved(raw: bytes, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"/v1/models/%2e%2e/chat/completions", "/v1/chat/completions"),
        (b"/v1/models/%2E%2E/chat/completions", "/v1/chat/completions"),
        (b"/v1/models/.%2e/chat/completions", "/v1/chat/completions"),
        (b"/v1/%2e/messages", "/v1/messages"),
    ],
)
def test_encoded_dots_are_treated_as_dots(raw: bytes, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"//v1/messages", "/v1/messages"),
        (b"/v1//chat///completions", "/v1/chat/completions"),
        (b"/v1/models//", "/v1/models/"),
        (b"//", "/"),
    ],
)
def test_repeated_slashes_are_collapsed(raw: bytes, expected: str) -> None:
    assert normalize(raw) == expected


def test_a_dot_inside_a_segment_is_not_a_dot_segment() -> None:
    assert normalize(b"/v1//models/gemini-2.0-flash/...") == "/v1/models/gemini-2.0-flash/..."


# -- refused ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"/..", b"/../admin", b"/v1/../../admin", b"/%2e%2e/admin", b"/v1/%2e%2e/%2E%2E/x", b"//../x", b"/./.."],
)
def test_climbing_above_the_mount_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidPath, match="climbs above"):
        normalize(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"/v1/..%2fadmin",
        b"/v1/models%2F..%2F..%2Fadmin",
        b"/v1/..%5cadmin",
        b"/v1/models%5C",
        b"/v1\\..\\admin",
        b"/v1/models\\x",
    ],
)
def test_encoded_separators_and_backslashes_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidPath, match="encoded separator"):
        normalize(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"/v1/chat%0d%0aX-Injected:%20yes",
        b"/v1/chat%0D%0A",
        b"/v1/chat%0a",
        b"/v1/chat%00",
        b"/v1/chat%1f",
        b"/v1/chat%7f",
        b"/v1/chat\r\nX-Injected: yes",
        b"/v1/chat\x00",
        b"/v1/chat\t",
        b"/v1/chat\x7f",
    ],
)
def test_control_characters_raw_or_encoded_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidPath):
        normalize(raw)
