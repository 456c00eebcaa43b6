"""Bodies that end with their usage object are read from that object alone, and only when it closes them."""

from __future__ import annotations

import pytest

from gateway.metering.extractors.json_body import closing_usage
from gateway.metering.extractors.openai import chat_usage
from gateway.metering.usage import Extraction, TokenUsage
from tests.unit.metering.support import fixture

USAGE = b'"usage":{"prompt_tokens":27,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":2}}'


def test_a_compact_body_ending_with_usage_is_read_from_its_usage_and_model() -> None:
    body = b'{"id":"c1","model":"gpt-4o-mini","choices":[{"message":{"content":"hi"}}],' + USAGE + b"}\n"

    assert closing_usage(body, chat_usage) == Extraction(TokenUsage(27, 3, 2, 0, 0), "gpt-4o-mini")


def test_a_spaced_body_is_read_the_same() -> None:
    body = b'{"model" : "gpt-4o", "usage" : {"prompt_tokens": 5, "completion_tokens": 1}}'

    assert closing_usage(body, chat_usage) == Extraction(TokenUsage(5, 1), "gpt-4o")


def test_plain_members_after_the_usage_as_openai_sends_them_are_passed_over() -> None:
    compact = b'{"model":"gpt-4o",' + USAGE + b',"service_tier":"default","system_fingerprint":"fp_9"}'
    spaced = (
        b'{\n "model": "gpt-4o",\n ' + USAGE + b',\n "service_tier": "default",\n "n": -1.5e3, "x": null\n}\n'
    )

    for body in (compact, spaced):
        assert closing_usage(body, chat_usage) == Extraction(TokenUsage(27, 3, 2, 0, 0), "gpt-4o")


@pytest.mark.parametrize("after", [b',"logprobs":[1,[2,"x"]]', b',"note":"\\"x\\""', b',"n":[]'])
def test_members_of_any_kind_after_the_usage_are_passed_over_when_no_brace_closes_among_them(
    after: bytes,
) -> None:
    body = b'{"model":"gpt-4o",' + USAGE + after + b"}"

    assert closing_usage(body, chat_usage) == Extraction(TokenUsage(27, 3, 2, 0, 0), "gpt-4o")


@pytest.mark.parametrize("after", [b',"system_fingerprint":{"a":1}', b',"logprobs":[{}]', b',"note":"a}b"'])
def test_a_usage_followed_by_a_closing_brace_before_the_body_s_own_is_left_to_the_whole_parse(
    after: bytes,
) -> None:
    body = b'{"model":"gpt-4o",' + USAGE + after + b"}"

    assert closing_usage(body, chat_usage) is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"model":"gpt-4o","choices":[{' + USAGE + b"}]}",
        b'{"model":"gpt-4o","choices":[{' + USAGE + b',"n":1}],"x":2}',
        b'{"model":"gpt-4o","a":{"b":{' + USAGE + b"}}}",
    ],
)
def test_a_usage_nested_below_the_top_level_is_not_taken_for_the_bodys(body: bytes) -> None:
    assert closing_usage(body, chat_usage) is None


def test_a_usage_word_inside_text_is_not_a_usage_member() -> None:
    body = b'{"model":"gpt-4o","choices":[{"message":{"content":"the \\"usage\\":{} of it"}}]}'

    assert closing_usage(body, chat_usage) is None


def test_an_escaped_model_name_is_read_by_the_careful_search() -> None:
    body = b'{"model":"a\\"b","' + USAGE[1:] + b"}"

    assert closing_usage(body, chat_usage) == Extraction(TokenUsage(27, 3, 2, 0, 0), None)


def test_openai_s_recorded_chat_body_is_read_from_its_usage_alone() -> None:
    body = fixture("openai_chat.json")  # "usage": {...}, "service_tier": "default" }

    assert closing_usage(body, chat_usage) == Extraction(
        TokenUsage(2006, 300, 1920, 0, 256), "o4-mini-2025-04-16"
    )
