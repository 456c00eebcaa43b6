"""An Anthropic body holds its tool inputs as JSON objects, so a `"service_tier"` key may stand just before
the usage object in a tool's input. Anthropic states a call's tier inside its usage object only: a key
beside it (where OpenAI and Azure OpenAI put theirs) is the caller's data, and never sets the tier."""

from __future__ import annotations

import json

from gateway.metering.usage import Endpoint, TokenUsage
from tests.unit.metering.support import JSON, extract_every_way


def message_with_tool_input(tool_input: dict[str, object], usage: dict[str, object]) -> bytes:
    return json.dumps(
        {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": [{"type": "tool_use", "id": "toolu_01", "name": "set_plan", "input": tool_input}],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": usage,
        },
        separators=(",", ":"),
    ).encode()


def test_a_service_tier_key_in_a_tool_input_does_not_set_the_calls_tier() -> None:
    body = message_with_tool_input(
        {"service_tier": "flex"}, {"input_tokens": 50, "output_tokens": 12, "service_tier": "standard"}
    )

    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, body)

    assert extraction.usage == TokenUsage(input_tokens=50, output_tokens=12)
    assert extraction.usage.service_tier is None


def test_the_tier_inside_the_usage_object_still_counts() -> None:
    body = message_with_tool_input(
        {"service_tier": "flex"}, {"input_tokens": 50, "output_tokens": 12, "service_tier": "priority"}
    )

    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, body)

    assert extraction.usage is not None
    assert extraction.usage.service_tier == "priority"
