"""Web searches: billed apiece on top of the tokens, counted from each response, priced per thousand.

Anthropic reports them in the usage (`server_tool_use.web_search_requests`); an OpenAI Responses API
response lists one `web_search_call` item per search in its `output`, and names the tool that made
them (`web_search`, or the earlier `web_search_preview`) in its `tools`. The recorded shapes are
written by hand from the providers' documented formats.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from gateway.metering.extractors.openai import read_responses, with_web_searches
from gateway.metering.prices import ModelPrice, cost_of, load_price_table, parse_price_table
from gateway.metering.usage import Endpoint, TokenUsage
from gateway.settings import ConfigError
from tests.unit.metering.support import JSON, SSE, extract_every_way, fixture


def searched(usage: TokenUsage | None) -> tuple[int, bool]:
    assert usage is not None
    return usage.web_searches, usage.web_search_preview


# -- Anthropic ----------------------------------------------------------------------------------------


def test_an_anthropic_body_counts_the_searches_its_usage_reports() -> None:
    extraction = extract_every_way(
        "anthropic", Endpoint.MESSAGES, JSON, fixture("anthropic_messages_web_search.json")
    )

    assert extraction.usage == TokenUsage(6039, 931, web_searches=2)
    assert extraction.model == "claude-sonnet-4-5-20250929"


def test_an_anthropic_stream_counts_the_searches_its_message_delta_reports() -> None:
    extraction = extract_every_way(
        "anthropic", Endpoint.MESSAGES, SSE, fixture("anthropic_messages_web_search_stream.sse")
    )

    # message_delta's counts are the call's totals: the search results were input too
    assert extraction.usage == TokenUsage(10682, 510, web_searches=1)


def test_an_anthropic_call_that_did_not_search_counts_none() -> None:
    for name, content_type in (("anthropic_messages.json", JSON), ("anthropic_messages_stream.sse", SSE)):
        extraction = extract_every_way("anthropic", Endpoint.MESSAGES, content_type, fixture(name))

        assert searched(extraction.usage) == (0, False), name


def test_anthropic_web_fetches_are_not_searches() -> None:
    body = json.loads(fixture("anthropic_messages_web_search.json"))
    body["usage"]["server_tool_use"] = {"web_search_requests": 0, "web_fetch_requests": 3}

    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, json.dumps(body).encode())

    assert searched(extraction.usage) == (0, False)


@pytest.mark.parametrize("reported", [None, "many", -2, {"web_search_requests": "2"}, [1]])
def test_a_malformed_anthropic_search_count_counts_none(reported: object) -> None:
    body = json.loads(fixture("anthropic_messages_web_search.json"))
    body["usage"]["server_tool_use"] = reported

    extraction = extract_every_way("anthropic", Endpoint.MESSAGES, JSON, json.dumps(body).encode())

    assert extraction.usage == TokenUsage(6039, 931)


# -- OpenAI Responses API ------------------------------------------------------------------------------


def test_a_responses_body_counts_one_search_per_web_search_call_item() -> None:
    extraction = extract_every_way(
        "openai", Endpoint.RESPONSES, JSON, fixture("openai_responses_web_search.json")
    )

    assert extraction.usage == TokenUsage(9321, 412, 2048, 0, 256, web_searches=2)


def test_a_responses_stream_counts_the_searches_of_its_completed_response() -> None:
    extraction = extract_every_way(
        "openai", Endpoint.RESPONSES, SSE, fixture("openai_responses_web_search_stream.sse")
    )

    # made by the preview tool, which its response names
    assert extraction.usage == TokenUsage(311, 9, web_searches=1, web_search_preview=True)
    assert extraction.model == "gpt-4o-2024-08-06"


def test_a_responses_call_that_did_not_search_counts_none() -> None:
    for name, content_type in (("openai_responses.json", JSON), ("openai_responses_stream.sse", SSE)):
        extraction = extract_every_way("openai", Endpoint.RESPONSES, content_type, fixture(name))

        assert searched(extraction.usage) == (0, False), name


def response(*items: dict[str, Any], tools: list[dict[str, Any]]) -> dict[str, Any]:
    return {"output": list(items), "tools": tools}


SEARCH = {"type": "web_search_call", "status": "completed", "action": {"type": "search"}}
MESSAGE = {"type": "message", "content": [{"type": "output_text", "text": "web_search_call"}]}


@pytest.mark.parametrize(
    ("tools", "preview"),
    [
        ([{"type": "web_search"}], False),
        ([{"type": "web_search_2025_08_26"}], False),
        ([{"type": "web_search_preview"}], True),
        ([{"type": "web_search_preview_2025_03_11"}, {"type": "function", "name": "f"}], True),
        ([{"type": "web_search_preview"}, {"type": "web_search"}], False),  # the GA tool's rate
        ([], False),  # a response that echoes no tools
    ],
)
def test_the_tool_a_response_names_says_at_which_rate_its_searches_are_priced(
    tools: list[dict[str, Any]], preview: bool
) -> None:
    usage = with_web_searches(TokenUsage(10, 5), response(SEARCH, SEARCH, MESSAGE, tools=tools))

    assert searched(usage) == (2, preview)


def test_only_web_search_call_items_count_not_text_that_names_them() -> None:
    usage = TokenUsage(10, 5)

    assert with_web_searches(usage, response(MESSAGE, "web_search_call", tools=[])) is usage  # type: ignore[arg-type]


def test_a_background_response_read_when_it_ended_counts_its_searches() -> None:
    # what the follower of a background response reads from GET /v1/responses/{id}
    body = json.loads(fixture("openai_responses_web_search.json"))
    body["background"] = True

    reading = read_responses(body)

    assert reading.pending is None
    assert searched(reading.usage) == (2, False)


# -- prices ---------------------------------------------------------------------------------------------


def priced(**rates: str) -> ModelPrice:
    entry = {"input": "3", "output": "15", "effective_date": "2026-01-01", **rates}
    return parse_price_table({"anthropic": {"m": entry}}, "test").sections["anthropic"]["m"]


def test_searches_are_priced_per_thousand_on_top_of_the_tokens() -> None:
    price = priced(web_search="10")

    tokens_only = cost_of(TokenUsage(1000, 100), price)
    assert tokens_only == Decimal("0.0045")
    assert cost_of(TokenUsage(1000, 100, web_searches=3), price) == Decimal("0.0345")


def test_searches_of_the_preview_tool_are_priced_at_its_own_rate() -> None:
    price = priced(web_search="10", web_search_preview="25")

    assert cost_of(TokenUsage(0, 0, web_searches=2, web_search_preview=True), price) == Decimal("0.05")
    assert cost_of(TokenUsage(0, 0, web_searches=2), price) == Decimal("0.02")


def test_the_preview_rate_defaults_to_the_search_rate() -> None:
    price = priced(web_search="10")

    assert price.web_search_preview == Decimal("10")
    assert cost_of(TokenUsage(0, 0, web_searches=1, web_search_preview=True), price) == Decimal("0.01")


def test_a_call_that_searched_is_unpriced_when_its_model_has_no_search_rate() -> None:
    price = priced()

    assert cost_of(TokenUsage(1000, 100, web_searches=1), price) is None
    assert cost_of(TokenUsage(1000, 100), price) == Decimal("0.0045")  # one that did not search is priced


def test_searches_are_priced_whatever_the_tier_or_the_length_of_the_call() -> None:
    entry: dict[str, object] = {
        "input": "3",
        "output": "15",
        "web_search": "10",
        "effective_date": "2026-01-01",
        "long_context": {"above_input_tokens": 100, "input": "6", "output": "22.5"},
        "service_tiers": {
            "priority": {"input": "5", "output": "25", "long_context": {"input": "10", "output": "37.5"}}
        },
    }
    price = parse_price_table({"anthropic": {"m": entry}}, "test").sections["anthropic"]["m"]

    long_call = TokenUsage(1000, 0, web_searches=1)
    assert cost_of(long_call, price) == Decimal("0.006") + Decimal("0.01")
    priority = TokenUsage(100, 0, web_searches=1, service_tier="priority")
    assert cost_of(priority, price) == Decimal("0.0005") + Decimal("0.01")
    long_priority = TokenUsage(1000, 0, web_searches=1, service_tier="priority")
    assert cost_of(long_priority, price) == Decimal("0.010") + Decimal("0.01")


def test_the_built_in_table_prices_searches_as_the_providers_list_them() -> None:
    table = load_price_table(None)

    def rates(kind: str, model: str) -> tuple[Decimal | None, Decimal | None]:
        price = table.price_for(kind, kind, model)
        assert price is not None, model
        return price.web_search, price.web_search_preview

    ten, twenty_five = Decimal("10.00"), Decimal("25.00")
    for model in ("claude-sonnet-4-5-20250929", "claude-opus-4-1", "claude-haiku-4-5", "claude-3-5-haiku"):
        assert rates("anthropic", model) == (ten, ten)
    for model in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini-2025-04-14"):
        assert rates("openai", model) == (ten, twenty_five)  # search content free, the call dearer
    for model in ("gpt-5", "gpt-5-mini", "o3", "o4-mini"):
        assert rates("openai", model) == (ten, ten)
    assert rates("openai", "gpt-4.1-nano") == (None, None)  # no web search: a search there is unpriced
    assert rates("gemini", "gemini-2.5-pro") == (None, None)  # grounding is not priced per call


@pytest.mark.parametrize(
    ("rates", "path", "message"),
    [
        ({"web_search": "-1"}, "anthropic.m.web_search", "greater than or equal to 0"),
        ({"web_search": "ten"}, "anthropic.m.web_search", "valid decimal"),
        ({"web_search": "10", "web_search_preview": "x"}, "anthropic.m.web_search_preview", "valid decimal"),
    ],
)
def test_a_malformed_search_rate_is_refused_once_with_its_key_path(
    rates: dict[str, str], path: str, message: str
) -> None:
    entry = {"input": "3", "output": "15", "effective_date": "2026-01-01", **rates}

    with pytest.raises(ConfigError) as error:
        parse_price_table({"anthropic": {"m": entry}}, "test")

    problems = {problem.path: problem.message for problem in error.value.problems}
    assert list(problems) == [path]  # not repeated for the preview rate it defaults
    assert message in problems[path]
