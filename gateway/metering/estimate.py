"""The documented estimate of a call's usage when the provider reported none (a cut stream, a provider
that omits usage).

Method: 4 characters per token, OpenAI's rule of thumb for English text, rounded up.

* Input: the characters of the request's text, found by walking the request JSON through the members
  that hold text: `messages`, `input`, `prompt`, `contents`, `system`, `instructions` and, inside those,
  `content`, `text`, `parts` and the like (`TEXT_KEYS`); tool-call arguments and tool results count
  as their JSON text (`RAW_KEYS`), an Anthropic text document (`source` of type `text` or `content`)
  as its text. Other members (the model name, roles, settings, tool definitions, image and file data)
  do not count, nor does anything nested deeper than `MAX_DEPTH` (no request nests text so deep). A
  token-id array (`"input": [1, 2, 3]`) counts one token per id.
* Output: `output_chars`, the characters of generated text the extractor saw pass.
* Calls that produce no text (embeddings) have no output; COUNT_TOKENS and UNMETERED calls cost nothing.
* The processing tier is the one the request asked for (OpenAI's `service_tier`: `flex`,
  `priority`; Anthropic's fast mode, `speed: "fast"` on the Messages endpoint, is the tier `fast`
  whatever `service_tier` says, as the extractor has it), which prices the estimate; no response said
  which tier served it.
* A stream cut after it reported counts (Anthropic's `message_start`, Gemini's running totals: see
  `Extraction.partial`) keeps them, exact: input, cache reads and writes, reasoning, searches and
  tier as reported, output the larger of the reported running count and the estimate (`with_reported`).

No cache, reasoning or cache-write tokens are ever estimated otherwise.
"""

from __future__ import annotations

import orjson

from gateway.metering.extractors.anthropic import FAST
from gateway.metering.usage import Endpoint, TokenUsage, in_service_tier

CHARS_PER_TOKEN = 4
FREE = frozenset({Endpoint.COUNT_TOKENS, Endpoint.UNMETERED})
INPUT_ONLY = frozenset({Endpoint.EMBEDDINGS, Endpoint.EMBED_CONTENT})
TEXT_KEYS = frozenset(
    {
        # where requests keep their text, per provider
        "messages",
        "input",
        "prompt",
        "suffix",
        "contents",
        "system",
        "instructions",
        "systemInstruction",
        "system_instruction",
        "requests",
        # inside messages, content blocks, parts and input items
        "content",
        "text",
        "parts",
        "thinking",
        "tool_calls",
        "function",
        "functionCall",
        "functionResponse",
        "function_call",  # OpenAI's legacy assistant message: its `arguments`
        "output",
        "summary",  # reasoning items given back to the Responses API
        "refusal",
        "executableCode",  # Gemini's code execution: the code, and `output` of its result
        "codeExecutionResult",
        "code",
        # Gemini's REST API takes every field in snake_case too (its curl examples do):
        # `system_instruction` above, `function_call` beside OpenAI's, and these
        "function_response",
        "executable_code",
        "code_execution_result",
    }
)
MAX_DEPTH = 64
RAW_KEYS = frozenset({"arguments", "args", "response"})  # tool arguments and results: counted as JSON text


def estimate_usage(endpoint: Endpoint, request_json: object, output_chars: int) -> TokenUsage:
    """Estimated usage: request text and `output_chars` at `CHARS_PER_TOKEN`, rounded up, in the tier
    the request asked for."""
    if endpoint in FREE:
        return TokenUsage()
    output = 0 if endpoint in INPUT_ONLY else tokens(max(output_chars, 0))
    if not isinstance(request_json, dict):
        return TokenUsage(output_tokens=output)
    usage = TokenUsage(input_tokens=tokens(text_chars(request_json)), output_tokens=output)
    if endpoint is Endpoint.MESSAGES and request_json.get("speed") == FAST:
        return usage._replace(service_tier=FAST)
    return in_service_tier(usage, request_json.get("service_tier"))


def with_reported(estimate: TokenUsage, reported: TokenUsage | None) -> TokenUsage:
    """`estimate`, with what a cut stream had reported before it ended (`Extraction.partial`) in place
    of the guesswork: every count as reported, but the output the larger of the two (the text that
    passed after the last report counts too)."""
    if reported is None:
        return estimate
    if reported.input_tokens == 0:  # a report without input counts: the estimate's input stands
        reported = reported._replace(input_tokens=estimate.input_tokens)
    return reported._replace(
        output_tokens=max(reported.output_tokens, estimate.output_tokens),
        service_tier=reported.service_tier or estimate.service_tier,
    )


def tokens(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN)


def text_chars(value: object, *, in_list: bool = False, depth: int = 0) -> int:
    """Characters of text in `value`, following only `TEXT_KEYS` through objects, `MAX_DEPTH` deep.

    An integer in a list under a text member is a token id (`"input": [[1, 2, 3]]`) and counts as one
    token's worth of characters.
    """
    if isinstance(value, str):
        return len(value)
    if isinstance(value, bool) or depth > MAX_DEPTH:
        return 0
    if isinstance(value, int):
        return CHARS_PER_TOKEN if in_list else 0
    if isinstance(value, list):
        return sum(text_chars(item, in_list=True, depth=depth + 1) for item in value)
    if isinstance(value, dict):
        return sum(_member_chars(key, member, depth + 1) for key, member in value.items())
    return 0


def _member_chars(key: str, member: object, depth: int) -> int:
    if key in RAW_KEYS or (key == "input" and isinstance(member, dict)):  # an Anthropic tool_use input
        if isinstance(member, str):
            return len(member)
        try:
            return len(orjson.dumps(member))
        except orjson.JSONEncodeError:  # deeper than orjson writes, among others
            return 0
    if key == "source" and isinstance(member, dict):  # an Anthropic document: text counts, files not
        kind = member.get("type")
        if kind == "text":
            return text_chars(member.get("data"), depth=depth)
        return text_chars(member.get("content"), depth=depth) if kind == "content" else 0
    return text_chars(member, depth=depth) if key in TEXT_KEYS else 0
