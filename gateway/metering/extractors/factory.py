"""The extractor for one response: chosen by endpoint, provider family and content type."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from types import MappingProxyType
from typing import Any

from gateway.metering.extractors import anthropic, gemini, openai
from gateway.metering.extractors.base import Fixed, Reading, mapping, model_of
from gateway.metering.extractors.json_body import JsonBody
from gateway.metering.extractors.openai_strip import StripStream
from gateway.metering.extractors.streams import DataDialect, EventStream
from gateway.metering.usage import Endpoint, Extraction, TokenUsage, UsageExtractor

ZERO = Extraction(TokenUsage())
UNKNOWN = Extraction(None)
ANTHROPIC_CACHE_FIELDS = ("cache_read_input_tokens", "cache_creation_input_tokens")
STRIPPABLE = (Endpoint.CHAT_COMPLETIONS, Endpoint.COMPLETIONS)
EDGE_ENDPOINTS = (
    Endpoint.EMBEDDINGS,
    Endpoint.EMBED_CONTENT,
    Endpoint.OTHER,
)  # large bodies, usage at an end


def extractor_for(
    kind: str, endpoint: Endpoint, content_type: bytes | None, *, strip_injected_usage: bool
) -> UsageExtractor:
    """A fresh extractor for one response body (see `extractor_factory`)."""
    return extractor_factory(kind, endpoint, content_type, strip_injected_usage)()


@lru_cache(maxsize=512)
def extractor_factory(
    kind: str, endpoint: Endpoint, content_type: bytes | None, strip_injected_usage: bool
) -> Callable[[], UsageExtractor]:
    """What makes a fresh extractor for one response body: decided once per kind of response.

    `kind` is the provider family (`ProviderAdapter.kind`), `content_type` the response's header value:
    event streams are watched as they pass (see `streams`), JSON bodies (or text, or no content type)
    read once whole, other media (audio, images) not at all. `strip_injected_usage` says the gateway added
    `stream_options.include_usage` to an OpenAI-style chat or completions request (one to an OpenAI-style
    provider, or to Gemini's OpenAI-compatible API: `endpoints.openai_style`); it is honoured for such
    event streams, whatever the family, and ignored elsewhere.
    """
    if endpoint in (Endpoint.COUNT_TOKENS, Endpoint.UNMETERED):
        return partial(Fixed, ZERO)
    if endpoint is Endpoint.BILLED_LATER:
        return partial(Fixed, UNKNOWN)  # the response tells nothing of what the work will cost
    media = (content_type or b"").lower()
    if b"event-stream" in media:
        if strip_injected_usage and endpoint in STRIPPABLE:  # only OpenAI's API has these endpoints
            return StripStream
        return partial(stream_or_unknown, endpoint)
    if media and b"json" not in media and not media.startswith(b"text/"):
        return partial(Fixed, UNKNOWN)  # audio, images, files: no usage inside, and not worth holding
    if endpoint is Endpoint.STREAM_GENERATE_CONTENT:
        return gemini.GeminiArrayStream
    return partial(  # positional: a call with keywords costs more, and this one is made per response
        JsonBody,
        READERS.get(endpoint, read_any),
        CLOSING_USAGE.get(endpoint),
        endpoint in EDGE_ENDPOINTS,
        partial(stream_or_unknown, endpoint),
        endpoint is not Endpoint.MESSAGES,  # Anthropic's tier is inside its usage object, and only there
    )


def stream_for(endpoint: Endpoint) -> UsageExtractor | None:
    """The event-stream extractor for `endpoint`, or None for endpoints that do not stream usage."""
    if endpoint in STRIPPABLE:
        return EventStream(DataDialect(openai.read_chat, openai.CHAT_TEXT_KEY))
    if endpoint is Endpoint.RESPONSES:
        return EventStream(openai.ResponsesDialect())
    if endpoint is Endpoint.MESSAGES:
        return EventStream(anthropic.AnthropicDialect())
    if endpoint in (Endpoint.STREAM_GENERATE_CONTENT, Endpoint.GENERATE_CONTENT):
        return EventStream(DataDialect(gemini.read_chunk, gemini.TEXT_KEY))
    return None


def stream_or_unknown(endpoint: Endpoint) -> UsageExtractor:
    return stream_for(endpoint) or Fixed(UNKNOWN)


def read_any(payload: Any) -> Reading:
    """A body of unknown format: a top-level `usage` or `usageMetadata` in a known shape, if any."""
    usage = mapping(payload, "usage")
    model = model_of(payload) or model_of(payload, "modelVersion")
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        return Reading(openai.chat_usage(usage), model)
    if any(field in usage for field in ANTHROPIC_CACHE_FIELDS):
        return Reading(anthropic.messages_usage(usage), model)
    if usage:
        return Reading(openai.responses_usage(usage), model)
    return Reading(gemini.gemini_usage(mapping(payload, "usageMetadata") or None), model)


# The endpoints whose bodies end with their usage object (see `json_body`), and how to read that object.
CLOSING_USAGE: Mapping[Endpoint, Callable[[object], TokenUsage | None]] = MappingProxyType(
    {
        Endpoint.CHAT_COMPLETIONS: openai.chat_usage,
        Endpoint.COMPLETIONS: openai.chat_usage,
        Endpoint.EMBEDDINGS: openai.embeddings_usage,
        Endpoint.MESSAGES: anthropic.messages_usage,
    }
)

# How to read a whole JSON body of an endpoint (others: `read_any`).
READERS: Mapping[Endpoint, Callable[[Any], Reading]] = MappingProxyType(
    {
        Endpoint.CHAT_COMPLETIONS: openai.read_chat,
        Endpoint.COMPLETIONS: openai.read_chat,
        Endpoint.RESPONSES: openai.read_responses,
        Endpoint.EMBEDDINGS: openai.read_embeddings,
        Endpoint.MESSAGES: anthropic.read_message,
        Endpoint.GENERATE_CONTENT: gemini.read_response,
        Endpoint.EMBED_CONTENT: read_any,
    }
)
