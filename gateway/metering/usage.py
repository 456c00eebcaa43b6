"""The vocabulary of metering: endpoints, token usage, and the extractor protocol.

Token counts are normalised across providers so that one price formula fits all:

    input_tokens         every input token processed, cached reads and cache writes included
    cached_input_tokens  the part of input_tokens read from the provider's prompt cache
    cache_write_tokens   the part of input_tokens written to the prompt cache (Anthropic, OpenAI)
    output_tokens        every output token, reasoning / thinking tokens included
    reasoning_tokens     the part of output_tokens spent on reasoning
    audio_input_tokens   the part of input_tokens that was audio (OpenAI's audio models)
    audio_output_tokens  the part of output_tokens that was audio

(OpenAI's `prompt_tokens` already include cached tokens; Anthropic's `input_tokens` exclude cache
reads and writes, so they are added; Gemini's `candidatesTokenCount` excludes `thoughtsTokenCount`,
so it is added to the output.)
"""

from __future__ import annotations

from enum import StrEnum
from functools import partial
from typing import NamedTuple, Protocol, overload


class Endpoint(StrEnum):
    """What kind of call a request is, for metering and for the ledger's `endpoint` column."""

    CHAT_COMPLETIONS = "chat.completions"
    COMPLETIONS = "completions"
    RESPONSES = "responses"
    EMBEDDINGS = "embeddings"
    MESSAGES = "messages"
    GENERATE_CONTENT = "generateContent"
    STREAM_GENERATE_CONTENT = "streamGenerateContent"
    EMBED_CONTENT = "embedContent"
    COUNT_TOKENS = "count_tokens"
    UNMETERED = "unmetered"  # reads and bookkeeping calls the provider does not bill (models, files, ...)
    # Work the provider bills when it is done, not in this response (a batch, a fine-tuning job, an eval
    # run, a container): recorded with its cost unknown, never as free.
    BILLED_LATER = "billed_later"
    OTHER = "other"  # a billable-looking call with no known usage format


# Named tuples, not dataclasses: several are made per request on the hot path, at a third of the cost.
class TokenUsage(NamedTuple):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    # Of the cache writes, those kept for an hour (Anthropic's `ephemeral_1h_input_tokens`), which
    # cost more than the default five minutes: they change the cost, not the ledger's token counts.
    cache_write_1h_tokens: int = 0
    # The processing tier that served the call when it is not the standard one (OpenAI's `flex`,
    # `priority`, `scale`): priced at that tier's rates (see `prices.cost_of`).
    service_tier: str | None = None
    # Web searches the provider ran for the call and bills apiece, on top of the tokens: Anthropic's
    # `server_tool_use.web_search_requests`, the `web_search_call` items of an OpenAI response.
    web_searches: int = 0
    # The searches were made by OpenAI's earlier `web_search_preview` tool, billed at its own rate.
    web_search_preview: bool = False
    # Of the input and output tokens, those that were audio (OpenAI's `prompt_tokens_details` and
    # `completion_tokens_details.audio_tokens`), billed at the audio rates: they change the cost, not
    # the ledger's token counts.
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0
    # Where the call's inference ran when it is not the default, `global` (Anthropic's `inference_geo`:
    # `us` for US-only inference): priced at its model's multiplier for it (see `prices.cost_of`). It
    # changes the cost, not the ledger's columns.
    inference_geo: str | None = None
    # Sub-inferences of the call that another model ran and that are billed at that model's rates, as
    # (model, its tokens): Anthropic's advisor tool (`usage.iterations` entries of type `advisor_message`,
    # left out of the response's top-level counts), and every attempt of a server-side fallback (the
    # declined `message` entries and the serving `fallback_message`: the fields above then count none of
    # them). The fields above are the call's own model's; the ledger records the sum
    # (`with_advisors_summed`), priced part by part (`prices.call_cost`). A part with no model named is
    # unpriced, and so is its call.
    advisors: tuple[tuple[str, TokenUsage], ...] = ()

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def with_advisors_summed(self) -> TokenUsage:
        """The call's whole usage: its own tokens and its advisors', in one count of each kind (the
        processing tier, geo and web searches its own)."""
        input_tokens, output_tokens, cached, written, reasoning, hour = self[:6]
        for _, part in self.advisors:
            input_tokens += part.input_tokens
            output_tokens += part.output_tokens
            cached += part.cached_input_tokens
            written += part.cache_write_tokens
            reasoning += part.reasoning_tokens
            hour += part.cache_write_1h_tokens
        return self._replace(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=cached,
            cache_write_tokens=written,
            reasoning_tokens=reasoning,
            cache_write_1h_tokens=hour,
            advisors=(),
        )


class Extraction(NamedTuple):
    """What a response told about its usage once it has passed through."""

    usage: TokenUsage | None  # None: the provider reported none (cut stream, omitted)
    model: str | None = None  # the model the provider says answered, when it says
    # Characters of generated text that passed, the estimate's input when usage is missing: a
    # response that reported its usage skips the count (0), whole body or stream.
    output_chars: int = 0
    # The id of an OpenAI background response (`"background": true`) that was still queued or running
    # when its call ended: the provider bills it when it ends, and reports its usage then (see
    # `metering.background`).
    pending: str | None = None
    # What a stream that ended without its final usage had reported so far (Anthropic's `message_start`,
    # Gemini's running totals): input and cache counts exact, output a running count. The estimate
    # keeps them (see `metering.estimate.with_reported`).
    partial: TokenUsage | None = None


# Made from a tuple in C, without the generated `__new__`'s Python frame (half the cost), where the hot
# path makes one per request: `new_token_usage((input, output, cached, cache_write, reasoning, 1h_writes,
# service_tier, web_searches, web_search_preview, audio_input, audio_output, inference_geo, advisors))`, every
# field given (`new_extraction((usage, model, output_chars, pending, partial))` alike).
new_token_usage = partial(tuple.__new__, TokenUsage)
new_extraction = partial(tuple.__new__, Extraction)

# The names of the standard tier: what OpenAI reports for it, what a request may ask for (OpenAI's
# `auto`, Anthropic's `auto` and `standard_only`: neither names a tier that served the call), the
# name Anthropic reports it by, and Groq's (`on_demand`, on every response of its standard tier).
STANDARD_TIERS = frozenset({"default", "auto", "standard", "standard_only", "on_demand", ""})
MAX_TIER_LENGTH = 32
# The inference geo of the standard price (Anthropic's default, `global`), as a response names it.
STANDARD_GEOS = frozenset({"global", ""})


@overload
def in_service_tier(usage: TokenUsage, tier: object) -> TokenUsage: ...
@overload
def in_service_tier(usage: None, tier: object) -> None: ...
@overload
def in_service_tier(usage: TokenUsage | None, tier: object) -> TokenUsage | None: ...
def in_service_tier(usage: TokenUsage | None, tier: object) -> TokenUsage | None:
    """`usage` marked with the processing `tier` a response reports (its `service_tier`), unless that is
    the standard tier or not a name."""
    if usage is None or type(tier) is not str or tier in STANDARD_TIERS:
        return usage
    return usage._replace(service_tier=tier[:MAX_TIER_LENGTH])


class UsageExtractor(Protocol):
    """Watches one response body pass by, chunk by chunk, without holding it back.

    `feed` returns the bytes to send on: the chunk itself, except where the gateway added
    `stream_options.include_usage` to an OpenAI-style request the caller made without it, in which
    case the extra usage-only event (and the `"usage":null` members it brings) are removed so the
    caller sees exactly the stream it asked for.
    """

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> Extraction: ...
