"""OpenAI's formats (also Azure OpenAI's and the OpenAI-compatible servers'): chat completions, legacy
completions, embeddings and the Responses API, as JSON bodies and as event streams.

    chat / completions  usage {prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens,
                        .cache_write_tokens and .audio_tokens, completion_tokens_details.reasoning_tokens
                        and .audio_tokens}; streamed, the usage-only chunk (`"choices": []`) comes last
                        before `data: [DONE]` when include_usage was asked
    responses           usage {input_tokens, output_tokens, input_tokens_details.cached_tokens (and
                        .cache_write_tokens, .cache_write_tokens_details.ttl_12h_tokens, .audio_tokens),
                        output_tokens_details.reasoning_tokens (and .audio_tokens)}; streamed, inside
                        the `response` of `response.completed` (or `.incomplete`, `.failed`)
    embeddings          usage {prompt_tokens}, input only

A Responses API call that searched the web with the built-in tool is billed per search on top of its
tokens: each `web_search_call` item of its `output` counts one, at the rate of the tool its `tools`
name (`web_search`, or the earlier `web_search_preview`, priced apart for some models).

OpenAI's input counts include cached, cache-written and audio tokens and its output counts include
reasoning and audio tokens, as the normalised `TokenUsage` wants (the audio models' audio tokens are
billed at rates of their own). Cache writes (`cache_write_tokens`, reported by GPT-5.6 and later models,
billed above the input rate) are read, and of them the Responses API's writes kept 12 hours
(`cache_write_tokens_details.ttl_12h_tokens`, beside `ttl_30m_tokens`), billed higher still, as the
writes kept longer than the default (`cache_write_1h_tokens`). DeepSeek's `prompt_cache_hit_tokens` and
Moonshot's top-level `cached_tokens` are read as cached tokens. Reasoning tokens that a server counts
apart from the output (xAI: in `total_tokens` only) are added to it. A chunk with no usage of its own is
read for one inside its choice (Moonshot's streams report theirs there).
Generated text is counted only when a body or event reports no usage (it feeds the estimate).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from gateway.metering.extractors.base import (
    NOTHING,
    Reading,
    Settled,
    count,
    items,
    mapping,
    model_of,
    read_body,
    text,
)
from gateway.metering.extractors.sse import (
    blank_line,
    event_name,
    events_after,
    last_usage_object,
    model_in,
    payload_of,
    text_head,
    text_size_after,
)
from gateway.metering.usage import TokenUsage, in_service_tier, new_token_usage

CHOICE_TEXT_FIELDS = frozenset({"content", "reasoning_content", "reasoning", "refusal"})
RESPONSES_TERMINAL = frozenset({b"response.completed", b"response.incomplete", b"response.failed"})
# A background response (`"background": true`) in these states has not ended: it is billed when it does.
RESPONSE_RUNNING = frozenset({"queued", "in_progress"})
SEARCH = "web_search_call"  # an output item: one search, billed
SEARCH_TOOLS = frozenset({"web_search", "web_search_2025_08_26"})
PREVIEW_SEARCH_TOOLS = frozenset({"web_search_preview", "web_search_preview_2025_03_11"})
RESPONSE_ID = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what may go into the URL that retrieves a response
BACKGROUND = re.compile(rb'"background"\s*:\s*true')
# where a chunk's text value starts: the head of a content event ends there
DELTA_KEY = re.compile(rb'"delta"\s*:\s*"')
CHAT_TEXT_KEY = re.compile(rb'"(?:content|text|arguments|reasoning_content|reasoning|refusal)"\s*:\s*"')


def chat_usage(usage: object) -> TokenUsage | None:
    """A chat or legacy completions `usage` object, normalised; None if it is not one."""
    if type(usage) is not dict or not ("prompt_tokens" in usage or "completion_tokens" in usage):
        return None
    # Read for every response, so without a call per field where the counts are plain integers.
    prompt, output = usage.get("prompt_tokens"), usage.get("completion_tokens")
    details = usage.get("prompt_tokens_details")
    if type(details) is dict:
        cached, heard = details.get("cached_tokens", 0), details.get("audio_tokens")
        written = details.get("cache_write_tokens")
    else:
        cached = heard = written = 0
    details = usage.get("completion_tokens_details")
    if type(details) is dict:
        reasoning, spoken = details.get("reasoning_tokens", 0), details.get("audio_tokens")
    else:
        reasoning = spoken = 0
    if not cached:  # reported beside the prompt count: DeepSeek's, Moonshot's
        if "prompt_cache_hit_tokens" in usage:
            cached = usage["prompt_cache_hit_tokens"]
        elif "cached_tokens" in usage:
            cached = usage["cached_tokens"]
    if heard or spoken or not (type(prompt) is type(output) is type(cached) is type(reasoning) is int):
        return _chat_usage_read_with_care(usage)  # audio (the audio models' calls), or odd counts
    if reasoning:
        output = _output_with_reasoning(usage, prompt, output, reasoning)
    if prompt >= 0 and output >= 0 and 0 <= cached <= prompt and 0 <= reasoning <= output:
        if not written:  # as providers send it
            return new_token_usage((prompt, output, cached, 0, reasoning, 0, None, 0, False, 0, 0, None, ()))
        if type(written) is int and 0 < written <= prompt - cached:  # GPT-5.6 and later's cache writes
            return new_token_usage(
                (prompt, output, cached, written, reasoning, 0, None, 0, False, 0, 0, None, ())
            )
    elif not written:
        return _usage(prompt, output, cached, reasoning)
    return _chat_usage_read_with_care(usage)


def _chat_usage_read_with_care(usage: dict[str, Any]) -> TokenUsage:
    """A chat `usage` object whose counts are not all plain integers or out of bounds, or that reports
    audio tokens."""
    prompt_details = mapping(usage, "prompt_tokens_details")
    output_details = mapping(usage, "completion_tokens_details")
    prompt, reasoning = count(usage, "prompt_tokens"), count(output_details, "reasoning_tokens")
    return _usage(
        prompt,
        _output_with_reasoning(usage, prompt, count(usage, "completion_tokens"), reasoning),
        count(prompt_details, "cached_tokens")
        or count(usage, "prompt_cache_hit_tokens")
        or count(usage, "cached_tokens"),
        reasoning,
        count(prompt_details, "audio_tokens"),
        count(output_details, "audio_tokens"),
        count(prompt_details, "cache_write_tokens"),
    )


def responses_usage(usage: object) -> TokenUsage | None:
    """A Responses API `usage` object, normalised; None if it is not one."""
    if type(usage) is not dict or not ("input_tokens" in usage or "output_tokens" in usage):
        return None
    input_details = mapping(usage, "input_tokens_details")
    output_details = mapping(usage, "output_tokens_details")
    prompt, reasoning = count(usage, "input_tokens"), count(output_details, "reasoning_tokens")
    return _usage(
        prompt,
        _output_with_reasoning(usage, prompt, count(usage, "output_tokens"), reasoning),
        count(input_details, "cached_tokens"),
        reasoning,
        count(input_details, "audio_tokens"),
        count(output_details, "audio_tokens"),
        count(input_details, "cache_write_tokens"),
        count(mapping(input_details, "cache_write_tokens_details"), "ttl_12h_tokens"),
    )


def _output_with_reasoning(usage: Mapping[str, Any], prompt: int, output: int, reasoning: int) -> int:
    """The output count with the reasoning in it, as the ledger counts it.

    OpenAI counts reasoning tokens inside `completion_tokens` (`output_tokens`), so that its total is
    prompt plus output. xAI, and servers that follow it, count them apart from the output and in the
    total only: a total of prompt, output and reasoning says so, and OpenAI's never adds up that way when
    there is reasoning. Without a total, the count is taken as OpenAI's.
    """
    if reasoning > 0 and usage.get("total_tokens") == prompt + output + reasoning:
        return output + reasoning
    return output


def _usage(
    prompt: int,
    output: int,
    cached: int,
    reasoning: int,
    heard: int = 0,
    spoken: int = 0,
    written: int = 0,
    kept_longer: int = 0,
) -> TokenUsage:
    """Never negative; cached, cache-written (`written`, no more than the prompt not read from the
    cache; of those, `kept_longer` 12 hours) and audio (`heard`) tokens are parts of the prompt,
    reasoning and audio (`spoken`) tokens parts of the output."""
    prompt = prompt if prompt > 0 else 0
    output = output if output > 0 else 0
    cached = cached if 0 < cached <= prompt else 0 if cached <= 0 else prompt
    written = written if 0 < written <= prompt - cached else 0 if written <= 0 else prompt - cached
    reasoning = reasoning if 0 < reasoning <= output else 0 if reasoning <= 0 else output
    if not (heard or spoken or kept_longer):
        return TokenUsage(prompt, output, cached, written, reasoning)  # positional: faster
    kept_longer = kept_longer if kept_longer <= written else written
    heard = heard if 0 < heard <= prompt else 0 if heard <= 0 else prompt
    spoken = spoken if 0 < spoken <= output else 0 if spoken <= 0 else output
    return TokenUsage(prompt, output, cached, written, reasoning, kept_longer, None, 0, False, heard, spoken)


def embeddings_usage(usage: object) -> TokenUsage | None:
    if type(usage) is not dict or not ("prompt_tokens" in usage or "total_tokens" in usage):
        return None
    return TokenUsage(input_tokens=count(usage, "prompt_tokens") or count(usage, "total_tokens"))


def chat_texts(payload: object) -> Iterator[str]:
    """The generated text of a chat or completions body or chunk: contents, reasoning, tool arguments."""
    for choice in items(payload, "choices"):
        if not isinstance(choice, dict):
            continue
        yield text(choice, "text")
        for part in (choice.get("delta"), choice.get("message")):
            if isinstance(part, dict):
                yield from _message_texts(part)


def _message_texts(message: dict[str, Any]) -> Iterator[str]:
    for field, value in message.items():
        if isinstance(value, str) and field in CHOICE_TEXT_FIELDS:
            yield value
        elif field == "tool_calls" and isinstance(value, list):
            yield from (text(mapping(call, "function"), "arguments") for call in value)


def read_chat(payload: Any) -> Reading:
    """One chat / completions chunk or body; a chunk whose usage is inside its choice (Moonshot's) too."""
    reading = read_body(payload, chat_usage, chat_texts)
    if reading.usage is not None or type(payload) is not dict:
        return reading
    usage = choice_usage(payload)
    if usage is None:
        return reading
    return Reading(in_service_tier(usage, payload.get("service_tier")), reading.model)


def choice_usage(payload: dict[str, Any]) -> TokenUsage | None:
    """The usage a chunk reports inside one of its choices: Moonshot's streams put it in the choice of
    their last chunk (`{"index": 0, "delta": {}, "finish_reason": "stop", "usage": {...}}`), not beside
    it. Looked for only where the chunk has no usage of its own."""
    for choice in items(payload, "choices"):
        if type(choice) is dict and "usage" in choice:
            usage = chat_usage(choice["usage"])
            if usage is not None:
                return usage
    return None


def read_embeddings(payload: Any) -> Reading:
    if type(payload) is not dict:
        return NOTHING
    return Reading(embeddings_usage(payload.get("usage")), model_of(payload))


def responses_texts(response: object) -> Iterator[str]:
    """The generated text of a Responses API `response`: messages, refusals, tool input, summaries."""
    for item in items(response, "output"):
        for part in items(item, "content"):
            yield text(part, "text")
            yield text(part, "refusal")
        for part in items(item, "summary"):
            yield text(part, "text")
        yield text(item, "arguments")
        yield text(item, "input")


def read_responses(payload: Any) -> Reading:
    """A whole Responses API body; a background response still running is `pending`, by its id."""
    reading = read_body(payload, responses_usage, responses_texts)
    if reading.usage is not None:
        searched = with_web_searches(reading.usage, payload)
        return reading if searched is reading.usage else reading._replace(usage=searched)
    pending = running_background_response(payload)
    return reading if pending is None else reading._replace(pending=pending)


def with_web_searches(usage: TokenUsage, response: object) -> TokenUsage:
    """`usage` with the web searches `response` made: its `web_search_call` output items, and whether
    they were made by the preview tool (named in its `tools`, the generally available one not)."""
    searches = sum(
        1 for item in items(response, "output") if type(item) is dict and item.get("type") == SEARCH
    )
    if not searches:
        return usage
    tools = {tool.get("type") for tool in items(response, "tools") if type(tool) is dict}
    preview = not tools.isdisjoint(PREVIEW_SEARCH_TOOLS) and tools.isdisjoint(SEARCH_TOOLS)
    return usage._replace(web_searches=searches, web_search_preview=preview)


def running_background_response(response: object) -> str | None:
    """The id of a Responses API `response` made with `"background": true` that is still queued or in
    progress (an id fit for a URL), else None."""
    if type(response) is not dict or response.get("background") is not True:
        return None
    identifier = response.get("id")
    if response.get("status") not in RESPONSE_RUNNING or type(identifier) is not str:
        return None
    return identifier if RESPONSE_ID.fullmatch(identifier) else None


class ResponsesDialect:
    """Responses API events: `*.delta` events carry text, the terminal events the usage.

    Only a terminal event is parsed; the model of a stream cut before it is found in `response.created`,
    which is parsed too when it announces a background response (its id is `pending` until the end).
    """

    __slots__ = ("_model", "_usage", "pending")
    wants_last = False  # content events never carry usage

    def __init__(self) -> None:
        self._usage: TokenUsage | None = None
        self._model: str | None = None
        self.pending: str | None = None

    def head(self, event: bytes) -> bytes | None:
        if not _is_content(event_name(event)):
            return None
        if event.startswith(b"event:"):
            return event[: event.find(b"\n") + 1]  # a growing sequence number precedes the text
        return text_head(event, DELTA_KEY)

    def text_size(self, event: bytes, head: bytes) -> int:
        if not head.startswith(b"event:"):
            return text_size_after(event, len(head))
        match = DELTA_KEY.search(event, len(head))
        return text_size_after(event, match.end()) if match else 0

    def note(self, event: bytes) -> None:
        name = event_name(event)
        if name in RESPONSES_TERMINAL:
            response = mapping(payload_of(event), "response")
            self._usage = _terminal_usage(response)
            self._model = model_of(response) or self._model
            self.pending = None  # it ended, and the stream said so
        elif name == b"response.created" and self._model is None:
            if BACKGROUND.search(event):
                response = mapping(payload_of(event), "response")
                self.pending = running_background_response(response)
                self._model = model_of(response)
            else:
                self._model = model_in(event)

    def read_last(self, event: bytes) -> Reading:
        return NOTHING

    def result(self) -> tuple[TokenUsage | None, str | None]:
        return self._usage, self._model

    def reported_so_far(self) -> TokenUsage | None:
        return None  # a Responses stream reports its usage at its end only

    def settle(self, data: bytes) -> Settled | None:
        """The terminal event that holds the last usage object, no terminal event after it, its model."""
        blank = blank_line(data)
        span = last_usage_object(data, blank)
        if span is None:
            return None
        start, end = span
        event = data[start:end]
        if event_name(event) not in RESPONSES_TERMINAL:
            return None
        after = events_after(data, blank, end)
        if after is None or any(event_name(following) in RESPONSES_TERMINAL for following in after):
            return None
        response = mapping(payload_of(event), "response")
        usage = _terminal_usage(response)
        model = model_of(response)
        return None if usage is None or model is None else (usage, model)


def _terminal_usage(response: Mapping[str, Any]) -> TokenUsage | None:
    """The usage of the `response` a terminal event holds: in its tier, with its web searches."""
    usage = responses_usage(response.get("usage"))
    if usage is None:
        return None
    return with_web_searches(in_service_tier(usage, response.get("service_tier")), response)


def _is_content(name: bytes) -> bool:
    return name.endswith(b".delta") and name != b"response.audio.delta"
