"""Anthropic's Messages API, as a JSON body and as an event stream.

    usage {input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens,
           cache_creation {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}, service_tier, speed,
           server_tool_use {web_search_requests, web_fetch_requests},
           iterations [{type, input_tokens, output_tokens, cache_...}],
           output_tokens_details {thinking_tokens}}

Anthropic's `input_tokens` leave out the tokens read from and written to the prompt cache, so the
normalised input is their sum: input = input + cache_read + cache_creation, cached = cache_read,
cache_write = cache_creation, and of those, cache_write_1h = the writes kept for an hour (priced
higher than the default five minutes). Thinking tokens are part of `output_tokens` (the billed
whole); newer responses break them out, `output_tokens_details.thinking_tokens`: the reasoning
count, else 0. The usage's `service_tier` (`standard`, or `priority` for a call served from Priority
Tier capacity, `batch` for a batch) marks the usage unless it is the standard one, as OpenAI's do.
Fast mode (`speed: "fast"`, else `"standard"`) is billed at rates of its own, a multiple of the standard
ones: such a call is in the tier `fast`, whatever `service_tier` says (Priority Tier's price is each
customer's commitment, fast mode's a list price). The usage's `inference_geo` (`global` by default,
`us` for a call asked to run in the US only) marks the usage unless it is `global` or `not_available`
(what the API reports for a call that asked for no geo, Claude Code's on every model: no surcharge
applies): US-only inference costs more (see the price table's header).
The web searches of the server-side web search tool (`server_tool_use.web_search_requests`) are
billed apiece; web fetches cost only the tokens they bring, and are not counted. A server-side
compaction (beta) summarises the conversation in a sampling of its own by the same model, billed but
left out of the top-level fields: it is reported only as a `compaction` entry of `iterations`, whose
counts are added (the `message` entries break the top-level fields down, and are not). The advisor
tool (beta) runs a sub-inference on another model, billed at that model's rates and likewise left out
of the top-level fields: each `advisor_message` entry of `iterations` names its model, and is kept apart
as one of the usage's `advisors` (priced at its own model's rates; the ledger records the sum). A
server-side fallback (beta: a model that declines the request hands it to a `fallbacks` model in the same
call) reports each attempt with its model: a `message` entry for each declined one, a `fallback_message`
entry in place of the `message` entry of the one that served, whose counts the top-level fields repeat.
Every attempt is then one of the usage's `advisors`, priced at the model that ran it, and the top-level
fields count nothing more, whichever model the response names (a stream's `message_start` is sent before
the fallback), but for a declined attempt that generated no output: the Claude API bills no request
refused before any output (its release notes), and the fallback's at the fallback model's rates. A call
whose `message` entries name different models and no `fallback_message` (every model of a fallback chain
declined: which attempt the top-level fields count is not documented) is left unpriced, and so is one with
an entry of any other kind, never priced as if it were not there: such an entry may be billed apart from
the top-level fields (as advisors are) or not (as `message` entries are).

Streamed, `message_start` carries the input and cache counts with an initial `output_tokens`, and
`message_delta` the cumulative `output_tokens` (newer API versions repeat the input and cache counts
there): each field takes its latest non-null value. Without a `message_delta` the stream was cut (an
`error` event such as `overloaded_error` may end it): its usage is unknown, but `message_start`'s exact
input and cache counts are kept for the estimate (`reported_so_far`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

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
    payload_of,
    text_head,
    text_size_after,
    whole_event,
)
from gateway.metering.usage import MAX_TIER_LENGTH, STANDARD_GEOS, TokenUsage, in_service_tier

USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cache_creation",
    "service_tier",
    "speed",
    "server_tool_use",
    "iterations",
    "output_tokens_details",
    "inference_geo",
)
FAST = "fast"  # `usage.speed` of a call served in fast mode, and the tier it is priced in
ADVISOR = "advisor_message"  # an `iterations` entry of the advisor tool's sub-inference
FALLBACK = "fallback_message"  # the `iterations` entry of the attempt that served a server-side fallback
# What an `iterations` entry of a kind not known here adds: nothing to the counts (it may break them down,
# as `message` entries do, or not), and a part no price is found for, so that the call is unpriced
# (counted as such), never priced as if the entry were not there.
UNKNOWN_PART: tuple[str, TokenUsage] = ("", TokenUsage())
# The `inference_geo` values of a call at the standard price: the default geo, and `not_available`, the
# API's answer for a call that asked for none (a geo the model lists no multiplier for is unpriced).
DEFAULT_GEOS = STANDARD_GEOS | {"not_available"}
DELTA_TEXT_KEY = re.compile(rb'"(?:text|thinking|partial_json)"\s*:\s*"')


def messages_usage(usage: object) -> TokenUsage | None:
    """A Messages API `usage` object, normalised; None if it is not one."""
    if type(usage) is not dict or not ("input_tokens" in usage or "output_tokens" in usage):
        return None
    prompt, output, read, written, hour = token_counts(usage)
    thinking = min(count(mapping(usage, "output_tokens_details"), "thinking_tokens"), output)
    steps = items(usage, "iterations")
    parts: tuple[tuple[str, TokenUsage], ...] = ()
    if steps:
        parts, more, fell_back = _iterations(steps)
        if fell_back:  # every attempt is a part; the fields above repeat the serving one's counts
            prompt = output = read = written = hour = 0
        prompt, output = prompt + more[0], output + more[1]
        read, written, hour = read + more[2], written + more[3], hour + more[4]
    searches = count(mapping(usage, "server_tool_use"), "web_search_requests")
    geo = usage.get("inference_geo")
    geo = geo[:MAX_TIER_LENGTH] if type(geo) is str and geo not in DEFAULT_GEOS else None
    total = TokenUsage(
        prompt, output, read, written, thinking, hour, None, searches, inference_geo=geo, advisors=parts
    )
    if usage.get("speed") == FAST:
        return total._replace(service_tier=FAST)
    return in_service_tier(total, usage.get("service_tier"))


def _iterations(steps: list[Any]) -> tuple[tuple[tuple[str, TokenUsage], ...], list[int], bool]:
    """What a usage's `iterations` add to its top-level fields: the parts other models ran (advisors;
    after a server-side fallback, every attempt), the compactions' counts (input, output, cache reads,
    writes, 1-hour writes), and whether a fallback served the call."""
    parts: list[tuple[str, TokenUsage]] = []
    declined: list[Mapping[str, Any]] = []  # `message` entries: the attempts a fallback replaced, if one did
    more = [0, 0, 0, 0, 0]
    fell_back = False
    for step in steps:
        kind = step.get("type") if type(step) is dict else None
        if kind == "message":
            declined.append(step)
        elif kind == "compaction":
            more = [a + b for a, b in zip(more, token_counts(step), strict=True)]
        elif kind in (ADVISOR, FALLBACK):
            parts.append(_part(step))
            fell_back = fell_back or kind == FALLBACK
        elif kind is not None:
            parts.append(UNKNOWN_PART)
    if fell_back:  # the declined attempts first, as the response lists them: those that said something
        return (*(_part(step) for step in declined if count(step, "output_tokens")), *parts), more, True
    if len({model_of(step) for step in declined} - {None}) > 1:  # every model of a fallback chain declined
        parts.append(UNKNOWN_PART)  # which of them the fields above count is not documented
    return tuple(parts), more, False


def _part(step: Mapping[str, Any]) -> tuple[str, TokenUsage]:
    """A part of the call that a model of its own ran, billed at that model's rates (an advisor's
    sub-inference, an attempt of a server-side fallback): the model (empty if not named: then unpriced)
    and its tokens."""
    model = step.get("model")
    prompt, output, read, written, hour = token_counts(step)
    return (model[:200] if type(model) is str else ""), TokenUsage(prompt, output, read, written, 0, hour)


def token_counts(usage: Mapping[str, Any]) -> tuple[int, int, int, int, int]:
    """Input (cache reads and writes included), output, cache reads, cache writes and, of those, the
    writes kept an hour, of a `usage` object or one of its `iterations`."""
    read = count(usage, "cache_read_input_tokens")
    written = count(usage, "cache_creation_input_tokens")
    hour = min(count(mapping(usage, "cache_creation"), "ephemeral_1h_input_tokens"), written)
    return count(usage, "input_tokens") + read + written, count(usage, "output_tokens"), read, written, hour


def message_texts(message: object) -> Iterator[str]:
    """The generated text of a whole message: text and thinking blocks, tool inputs as JSON."""
    for block in items(message, "content"):
        yield text(block, "text")
        yield text(block, "thinking")
        if isinstance(block, dict) and isinstance(block.get("input"), dict) and block["input"]:
            yield orjson.dumps(block["input"]).decode()


def read_message(payload: Any) -> Reading:
    """A whole Messages API body."""
    return read_body(payload, messages_usage, message_texts)


class AnthropicDialect:
    """Messages stream events: `content_block_delta` carries text, `message_start` and `message_delta` the
    usage (the only events parsed). Other deltas (`signature_delta`) and events count no text."""

    __slots__ = ("_fields", "_final", "_model")
    wants_last = False  # content events never carry usage
    pending: str | None = None  # no background messages

    def __init__(self) -> None:
        self._fields: dict[str, Any] = {}
        self._final = False
        self._model: str | None = None

    def head(self, event: bytes) -> bytes | None:
        if event_name(event) != b"content_block_delta":
            return None
        return text_head(event, DELTA_TEXT_KEY)

    def text_size(self, event: bytes, head: bytes) -> int:
        return text_size_after(event, len(head))

    def note(self, event: bytes) -> None:
        name = event_name(event)
        if name == b"message_start":
            message = mapping(payload_of(event), "message")
            self._model = model_of(message) or self._model
            merge(self._fields, mapping(message, "usage"))
        elif name == b"message_delta":
            usage = mapping(payload_of(event), "usage")
            merge(self._fields, usage)
            self._final = self._final or "output_tokens" in usage

    def read_last(self, event: bytes) -> Reading:
        return NOTHING

    def result(self) -> tuple[TokenUsage | None, str | None]:
        if not self._final:
            return None, self._model
        return messages_usage(self._fields), served_by(self._fields) or self._model

    def reported_so_far(self) -> TokenUsage | None:
        """`message_start`'s input and cache counts (and its initial output count), of a stream cut
        before its `message_delta`."""
        return None if self._final else messages_usage(self._fields)

    def settle(self, data: bytes) -> Settled | None:
        """`message_start`, then `message_delta` with the output count, and no other event so named: the
        first `message_start` and the last `message_delta`, with no such name before the one, between
        them, or `message_start` after the other."""
        blank = blank_line(data)
        first, last = data.find(b"message_start"), data.rfind(b"message_delta")
        start, delta = whole_event(data, first, blank), whole_event(data, last, blank)
        if start is None or delta is None or start[1] > delta[0]:
            return None
        if (
            data.find(b"message_delta", 0, start[0]) >= 0
            or data.find(b"message_", start[1], delta[0]) >= 0
            or data.find(b"message_start", delta[1]) >= 0
        ):
            return None
        start_event, delta_event = data[start[0] : start[1]], data[delta[0] : delta[1]]
        if event_name(start_event) != b"message_start" or event_name(delta_event) != b"message_delta":
            return None
        message = mapping(payload_of(start_event), "message")
        usage = mapping(payload_of(delta_event), "usage")
        if "output_tokens" not in usage:
            return None
        fields: dict[str, Any] = {}
        merge(fields, mapping(message, "usage"))
        merge(fields, usage)
        total = messages_usage(fields)
        return None if total is None else (total, served_by(fields) or model_of(message))


def served_by(usage: Mapping[str, Any]) -> str | None:
    """The model a server-side fallback handed the call to, named by the usage's `fallback_message`
    entry; None without one. A stream's `message_start` is sent before any fallback, so its model may be
    the one that declined; a body's top-level `model` names the one that answered."""
    for step in items(usage, "iterations"):
        if type(step) is dict and step.get("type") == FALLBACK:
            return model_of(step)
    return None


def merge(fields: dict[str, Any], usage: Mapping[str, Any]) -> None:
    """Each usage field takes its latest non-null value."""
    for field in USAGE_FIELDS:
        if usage.get(field) is not None:
            fields[field] = usage[field]
