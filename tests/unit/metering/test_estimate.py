"""gateway.metering.estimate: usage at 4 characters per token when the provider reported none."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.metering.estimate import estimate_usage, with_reported
from gateway.metering.prices import cost_of, load_price_table
from gateway.metering.usage import Endpoint, TokenUsage


def test_input_is_the_request_text_and_output_the_generated_characters_rounded_up() -> None:
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": "12345678"}], "temperature": 1}

    assert estimate_usage(Endpoint.CHAT_COMPLETIONS, request, 9) == TokenUsage(
        input_tokens=2, output_tokens=3
    )


def test_what_a_cut_stream_reported_replaces_the_guess_and_the_output_is_the_larger_count() -> None:
    estimate = TokenUsage(input_tokens=3, output_tokens=30, service_tier="flex")
    reported = TokenUsage(
        input_tokens=250_000, output_tokens=3_002, cached_input_tokens=1_000, reasoning_tokens=3_000
    )

    assert with_reported(estimate, reported) == reported._replace(service_tier="flex")
    assert with_reported(estimate, reported._replace(output_tokens=2)).output_tokens == 30
    assert with_reported(estimate, TokenUsage(output_tokens=7)) == TokenUsage(3, 30, service_tier="flex")
    assert with_reported(estimate, None) == estimate


def test_anthropic_system_prompt_content_blocks_and_tool_uses_count() -> None:
    request = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "x" * 40}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "y" * 20}]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "z" * 12}]},
            {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "A" * 999}}]},
        ],
    }

    assert estimate_usage(Endpoint.MESSAGES, request, 0).input_tokens == -(
        -(40 + 20 + len('{"a":1}') + 12) // 4
    )


def test_an_anthropic_fast_mode_request_is_estimated_in_the_fast_tier_at_its_rates() -> None:
    """Fast mode is asked for with `speed`, not `service_tier`; a fast call is never priced at the
    standard rates, estimated or not."""
    request = {
        "model": "claude-opus-5-5",
        "max_tokens": 1024,
        "speed": "fast",
        "service_tier": "auto",
        "messages": [{"role": "user", "content": "x" * 4_000_000}],
    }
    price = load_price_table(None).price_for("anthropic", "anthropic", "claude-opus-5-5")
    assert price is not None

    estimate = estimate_usage(Endpoint.MESSAGES, request, 400_000)

    assert estimate == TokenUsage(input_tokens=1_000_000, output_tokens=100_000, service_tier="fast")
    assert cost_of(estimate, price) == Decimal(8) + Decimal(4)  # $8 / $40 a million, not $4 / $20
    standard = estimate_usage(Endpoint.MESSAGES, request | {"speed": "standard"}, 400_000)
    assert standard.service_tier is None


def test_speed_means_fast_mode_only_on_anthropics_messages_endpoint() -> None:
    request = {"model": "gpt-4o", "speed": "fast", "messages": [{"role": "user", "content": "abcd"}]}

    assert estimate_usage(Endpoint.CHAT_COMPLETIONS, request, 0).service_tier is None


def test_gemini_contents_and_system_instruction_count() -> None:
    request = {
        "systemInstruction": {"parts": [{"text": "a" * 8}]},
        "contents": [{"role": "user", "parts": [{"text": "b" * 8}, {"inlineData": {"data": "QUJD" * 50}}]}],
        "generationConfig": {"temperature": 0.2, "stopSequences": ["END"]},
    }

    assert estimate_usage(Endpoint.GENERATE_CONTENT, request, 4) == TokenUsage(
        input_tokens=4, output_tokens=1
    )


def test_responses_input_as_a_string_or_as_items_counts() -> None:
    as_string = {"model": "o4-mini", "instructions": "abcd", "input": "efgh"}
    as_items = {
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "efgh"}]}],
        "instructions": "abcd",
    }

    assert estimate_usage(Endpoint.RESPONSES, as_string, 0) == estimate_usage(Endpoint.RESPONSES, as_items, 0)
    assert estimate_usage(Endpoint.RESPONSES, as_string, 0).input_tokens == 2


def test_embeddings_have_no_output_and_token_ids_count_one_token_each() -> None:
    assert estimate_usage(Endpoint.EMBEDDINGS, {"input": ["abcd", "efgh"]}, 100) == TokenUsage(input_tokens=2)
    assert estimate_usage(Endpoint.EMBEDDINGS, {"input": [[1, 2, 3]]}, 0) == TokenUsage(input_tokens=3)


@pytest.mark.parametrize("endpoint", [Endpoint.COUNT_TOKENS, Endpoint.UNMETERED])
def test_unmetered_calls_are_estimated_at_zero(endpoint: Endpoint) -> None:
    assert estimate_usage(endpoint, {"messages": [{"content": "hello"}]}, 50) == TokenUsage()


@pytest.mark.parametrize("request_json", [None, "not an object", [1, 2], {"messages": 5}, {}])
def test_a_request_without_text_estimates_no_input_and_never_a_negative_count(request_json: object) -> None:
    assert estimate_usage(Endpoint.CHAT_COMPLETIONS, request_json, -7) == TokenUsage()


TEXT = "x" * 1200  # 300 tokens


@pytest.mark.parametrize(
    ("endpoint", "request_json"),
    [
        (  # OpenAI's legacy function call, as an assistant message given back
            Endpoint.CHAT_COMPLETIONS,
            {"messages": [{"role": "assistant", "function_call": {"name": "f", "arguments": TEXT}}]},
        ),
        (  # an Anthropic plain-text document
            Endpoint.MESSAGES,
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "document", "source": {"type": "text", "data": TEXT}}],
                    }
                ]
            },
        ),
        (  # an Anthropic document of content blocks
            Endpoint.MESSAGES,
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "content", "content": [{"type": "text", "text": TEXT}]},
                            }
                        ],
                    }
                ]
            },
        ),
        (  # Gemini's code execution given back: the code and its output
            Endpoint.GENERATE_CONTENT,
            {
                "contents": [
                    {
                        "role": "model",
                        "parts": [
                            {"executableCode": {"language": "PYTHON", "code": TEXT[:600]}},
                            {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": TEXT[600:]}},
                        ],
                    }
                ]
            },
        ),
        (  # Gemini's function call and its result in the REST API's snake_case, as its curl examples send
            Endpoint.GENERATE_CONTENT,
            {
                "contents": [
                    {"role": "model", "parts": [{"function_call": {"name": "f", "args": {"q": TEXT[:592]}}}]},
                    {
                        "role": "user",
                        "parts": [{"function_response": {"name": "f", "response": {"r": TEXT[600:1192]}}}],
                    },
                ]
            },
        ),
        (  # Gemini's code execution given back in snake_case
            Endpoint.GENERATE_CONTENT,
            {
                "contents": [
                    {
                        "role": "model",
                        "parts": [
                            {"executable_code": {"language": "PYTHON", "code": TEXT[:600]}},
                            {"code_execution_result": {"outcome": "OUTCOME_OK", "output": TEXT[600:]}},
                        ],
                    }
                ]
            },
        ),
        (  # a reasoning item and a refusal given back to the Responses API
            Endpoint.RESPONSES,
            {
                "input": [
                    {"type": "reasoning", "summary": [{"type": "summary_text", "text": TEXT[:600]}]},
                    {"role": "assistant", "content": [{"type": "refusal", "refusal": TEXT[600:]}]},
                ]
            },
        ),
    ],
    ids=[
        "function_call",
        "text-document",
        "content-document",
        "code-execution",
        "gemini-snake-case-function",
        "gemini-snake-case-code",
        "reasoning-refusal",
    ],
)
def test_text_given_back_in_every_documented_shape_counts(endpoint: Endpoint, request_json: object) -> None:
    assert estimate_usage(endpoint, request_json, 0).input_tokens == 300


def test_an_image_or_file_document_counts_no_text() -> None:
    image = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x" * 1000}
    request = {"messages": [{"role": "user", "content": [{"type": "document", "source": image}]}]}

    assert estimate_usage(Endpoint.MESSAGES, request, 0).input_tokens == 0


def test_text_nested_beyond_any_real_request_is_not_followed_and_nothing_fails() -> None:
    nested: object = TEXT
    for _ in range(5000):
        nested = [{"type": "text", "content": nested}]
    request = {"messages": [{"role": "user", "content": nested}]}

    usage = estimate_usage(Endpoint.CHAT_COMPLETIONS, request, 0)

    assert usage.input_tokens == 0
