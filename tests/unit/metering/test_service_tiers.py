"""Processing tiers: the `service_tier` a response reports marks its usage, which prices it.

The standard tier (OpenAI's `default`, `auto` echoed by a compatible server, Anthropic's `standard`)
leaves the usage unmarked; any other tier (OpenAI's flex, priority, scale; Anthropic's priority) is
carried on `TokenUsage.service_tier`, however the response came: a whole body, a stream read as it
passes, a stream the gateway strips of the usage it asked for.
"""

from __future__ import annotations

import json
import re

import pytest

from gateway.metering.usage import Endpoint, in_service_tier
from tests.unit.metering.support import JSON, SSE, extract_every_way, fixture, run, splittings


def in_tier(data: bytes, tier: str) -> bytes:
    """A recorded OpenAI chat body or stream, served in `tier` (it reports `default`)."""
    changed, found = re.subn(rb'"service_tier": ?"default"', f'"service_tier":"{tier}"'.encode(), data)
    assert found
    return changed


def anthropic_in_tier(data: bytes, tier: str) -> bytes:
    """A recorded Anthropic body or stream, served in `tier` (its usage reports `standard`)."""
    changed, found = re.subn(rb'"service_tier": ?"standard"', f'"service_tier":"{tier}"'.encode(), data)
    assert found
    return changed


def responses_in_tier(data: bytes, tier: str) -> bytes:
    """A recorded Responses API body or stream whose response object says it was served in `tier`."""

    def marked(payload: dict[str, object]) -> dict[str, object]:
        response = payload.get("response")
        if isinstance(response, dict):
            return {**payload, "response": {**response, "service_tier": tier}}
        return {**payload, "service_tier": tier} if payload.get("object") == "response" else payload

    if data.lstrip().startswith(b"{"):
        return json.dumps(marked(json.loads(data))).encode()
    lines = [
        b"data: " + json.dumps(marked(json.loads(line[6:])), separators=(",", ":")).encode()
        if line.startswith(b"data: {")
        else line
        for line in data.split(b"\n")
    ]
    return b"\n".join(lines)


@pytest.mark.parametrize("tier", ["flex", "priority", "scale"])
def test_a_chat_body_served_in_another_tier_marks_its_usage_with_it(tier: str) -> None:
    extraction = extract_every_way(
        "openai", Endpoint.CHAT_COMPLETIONS, JSON, in_tier(fixture("openai_chat.json"), tier)
    )

    assert extraction.usage is not None and extraction.usage.service_tier == tier
    assert extraction.usage.input_tokens == 2006


def test_the_standard_tier_leaves_the_usage_unmarked_whatever_a_server_calls_it() -> None:
    for tier in ("default", "auto", "on_demand"):  # on_demand: Groq's standard tier, on every response
        body = in_tier(fixture("openai_chat.json"), tier)

        extraction = extract_every_way("openai", Endpoint.CHAT_COMPLETIONS, JSON, body)

        assert extraction.usage is not None and extraction.usage.service_tier is None, tier


def test_a_body_read_whole_finds_its_tier_wherever_it_stands() -> None:
    # the usage first, so that the body is parsed whole (on the fast path, the tier is read where
    # OpenAI puts it: after the usage object that closes the body)
    recorded = json.loads(fixture("openai_chat.json"))
    body = {
        "usage": recorded.pop("usage"),
        **recorded,
        "service_tier": "flex",
        "choices": recorded["choices"],
    }

    extraction = extract_every_way("openai", Endpoint.CHAT_COMPLETIONS, JSON, json.dumps(body).encode())

    assert extraction.usage is not None and extraction.usage.service_tier == "flex"


def test_a_chat_stream_served_in_another_tier_marks_its_usage_with_it() -> None:
    stream = in_tier(fixture("openai_chat_stream_usage.sse"), "flex")

    extraction = extract_every_way("openai", Endpoint.CHAT_COMPLETIONS, SSE, stream)

    assert extraction.usage is not None and extraction.usage.service_tier == "flex"


def test_a_stream_stripped_of_the_usage_the_gateway_asked_for_keeps_its_tier() -> None:
    stream = in_tier(fixture("openai_chat_stream_usage.sse"), "priority")

    for label, pieces in splittings(stream):
        extraction, relayed = run("openai", Endpoint.CHAT_COMPLETIONS, SSE, pieces, strip=True)

        assert extraction.usage is not None and extraction.usage.service_tier == "priority", label
        assert b'"usage"' not in relayed and b'"service_tier":"priority"' in relayed, label


@pytest.mark.parametrize("name", ["openai_responses.json", "openai_responses_stream.sse"])
def test_a_responses_call_served_in_another_tier_marks_its_usage_with_it(name: str) -> None:
    kind = SSE if name.endswith(".sse") else JSON
    data = responses_in_tier(fixture(name), "flex")

    extraction = extract_every_way("openai", Endpoint.RESPONSES, kind, data)

    assert extraction.usage is not None and extraction.usage.service_tier == "flex"


def test_a_tier_that_is_no_name_is_ignored_and_a_long_one_cut() -> None:
    usage = extract_every_way("openai", Endpoint.CHAT_COMPLETIONS, JSON, fixture("openai_chat.json")).usage
    assert usage is not None

    assert in_service_tier(usage, 7) is usage
    assert in_service_tier(usage, None) is usage
    assert in_service_tier(None, "flex") is None
    marked = in_service_tier(usage, "x" * 100)
    assert marked is not None and marked.service_tier == "x" * 32


@pytest.mark.parametrize("name", ["anthropic_messages.json", "anthropic_messages_stream.sse"])
def test_an_anthropic_call_served_from_priority_capacity_marks_its_usage_with_it(name: str) -> None:
    kind = SSE if name.endswith(".sse") else JSON
    recorded = extract_every_way("anthropic", Endpoint.MESSAGES, kind, fixture(name)).usage

    extraction = extract_every_way(
        "anthropic", Endpoint.MESSAGES, kind, anthropic_in_tier(fixture(name), "priority")
    )

    assert recorded is not None and recorded.service_tier is None  # `standard`
    assert extraction.usage == recorded._replace(service_tier="priority")


def test_an_anthropic_stream_keeps_the_tier_of_message_start_when_message_delta_names_none() -> None:
    stream = anthropic_in_tier(fixture("anthropic_messages_stream.sse"), "priority")
    assert stream.count(b'"service_tier"') == 1  # on message_start only

    for label, pieces in splittings(stream):
        extraction, _ = run("anthropic", Endpoint.MESSAGES, SSE, pieces)

        assert extraction.usage is not None and extraction.usage.service_tier == "priority", label
