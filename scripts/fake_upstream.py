"""A fast fake AI provider: OpenAI, Anthropic and Gemini response shapes over raw HTTP/1.1.

Used by the benchmark, by the integration tests and as a local OpenAI-compatible server. It is a bare
`asyncio.Protocol` server with keep-alive and request bodies framed by Content-Length or chunked transfer
coding. It needs only the standard library, and is faster with uvloop and orjson when they are importable.

Endpoints (any path prefix, e.g. `/v1/chat/completions` or `/openai/deployments/x/chat/completions`):

    POST .../chat/completions       OpenAI chat completion; `"stream": true` for SSE chunks
    POST .../completions            OpenAI legacy completion; streams too
    POST .../embeddings             OpenAI embeddings (float lists, or base64 when asked)
    POST .../responses              OpenAI Responses API; streams the documented event sequence;
                                    `"background": true` answers `queued` at once (unless streamed)
    GET  .../responses/ID           a background response: `in_progress` until it has run its time
                                    (x-fake-background-ms), then `completed` with its usage; 404 if unknown
    GET  .../models                 model list (Anthropic shape with `anthropic-version`, Gemini shape
                                    under /v1beta/ or with `x-goog-api-key`, OpenAI shape otherwise)
    POST .../v1/messages            Anthropic message; `"stream": true` for its event stream
    POST .../v1/messages/count_tokens
    POST .../models/M:generateContent, :streamGenerateContent (`?alt=sse` for SSE, else a JSON
                                    array), :countTokens      Gemini

Token counts are deterministic: the prompt counts `len(body) // 4` tokens (at least 1) and the answer
one token per word, `x-fake-chunks` words.

Control request headers:

    x-fake-status: NNN           reply NNN; >= 400 with the provider's error JSON shape
    x-fake-chunks: N             words in the answer and content events in a stream (default 3)
    x-fake-delay-ms: N           wait before the response head
    x-fake-chunk-delay-ms: N     wait between stream events (otherwise each event is its own write)
    x-fake-reset-after: N        send the head and N stream events, then reset the connection
                                 (a non-streaming response is reset right after its head)
    x-fake-reset-mid-event: 1    with x-fake-reset-after, send the first half of the next event before
                                 the reset (a connection cut inside an event)
    x-fake-set-cookie: 1         add Set-Cookie and the hop-by-hop Connection / Keep-Alive headers
    x-fake-redirect: URL         reply 302 with Location: URL
    x-fake-control-char-header: 1  add `x-fake-odd: a<DEL>b` (a control character, which an HTTP client
                                 reads and an HTTP server may not send) and `x-fake-even: 1`
    x-fake-no-usage: 1           leave every usage field and usage event out
    x-fake-cached-tokens: N      report N cached prompt tokens
    x-fake-prompt-tokens: N      report N prompt tokens, whatever the body's length (a long context)
    x-fake-reasoning-tokens: N   report N reasoning (thinking) tokens on top of the answer
    x-fake-audio-tokens: IN,OUT  OpenAI chat and Responses API: report IN of the prompt tokens as audio
                                 (`prompt_tokens_details.audio_tokens`, `input_tokens_details`) and OUT
                                 audio tokens on top of the answer (`completion_tokens_details`,
                                 `output_tokens_details`), as the audio models (gpt-4o-audio-preview,
                                 gpt-audio) report what they heard and spoke
    x-fake-reject-stream-options: 1  answer 400 to a body with `stream_options` (as Azure OpenAI before
                                 API version 2024-09-01-preview and strict compatible servers do)
    x-fake-cache-write-tokens: N[,H]  Anthropic: report N prompt tokens written to the cache, H of
                                 them kept an hour (`cache_creation.ephemeral_1h_input_tokens`)
    x-fake-openai-cache-write-tokens: N  OpenAI chat and Responses API: report N of the prompt tokens
                                 (no more than those not read from the cache) as written to the cache
                                 (`prompt_tokens_details.cache_write_tokens`, `input_tokens_details`), as
                                 GPT-5.6 and later models do
    x-fake-background-ms: N      how long a background response runs before it completes (default 200)
    x-fake-echo-headers: 1       an error (x-fake-status >= 400) or redirect echoes the request's headers
                                 in its message, its `x-echo-*` headers and its Location, as a
                                 debugging server or a proxy's error page may
    x-fake-web-searches: N       run N web searches: Anthropic reports them in the usage
                                 (`server_tool_use.web_search_requests`), a Responses API answer lists
                                 N `web_search_call` items before its message (and echoes the request's
                                 `tools`, which name the search tool)
    x-fake-service-tier: NAME    Anthropic: report NAME as the usage's `service_tier` (default
                                 `standard`; `priority` as Priority Tier capacity reports it). OpenAI
                                 reports the tier its request asks for (flex, priority, scale)
    x-fake-gemini-downgrade: 1   Gemini: serve a Priority call at Standard (its `x-gemini-service-tier`
                                 header, else the tier the body's `service_tier` asks for, says so)
    x-fake-speed: NAME           Anthropic: report NAME as the usage's `speed` (`fast` for a call served
                                 in fast mode, `standard`), in the body and in `message_start`
    x-fake-inference-geo: NAME   Anthropic: report NAME as the usage's `inference_geo` (`us` for a call
                                 asked to run in the US only, `global`), in the body and in
                                 `message_start`
    x-fake-compaction: IN,OUT    Anthropic: the call also ran a server-side compaction of IN input and
                                 OUT output tokens, reported only in `usage.iterations` (a `compaction`
                                 entry, then a `message` entry with the top-level counts), in the body
                                 and in `message_delta`, never in the top-level fields
    x-fake-request-id: ID        answer with the provider's own request id ID, in `x-request-id` (as
                                 OpenAI sends it) and in `request-id` (as Anthropic does)

Every response carries `x-fake-request-count: K`, the number of requests served so far. A whole JSON
body is gzipped (`content-encoding: gzip`) when the request's `accept-encoding` names gzip, as
providers behind a CDN answer the official SDKs; event streams never are.

    with FakeUpstream() as upstream:          # listens on 127.0.0.1, a free port
        httpx.post(upstream.url + "/v1/chat/completions", json={...})
        upstream.requests[-1].json()

    python scripts/fake_upstream.py --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import json
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self, cast

try:
    import uvloop
except ImportError:  # pragma: no cover - plain asyncio is fine, only slower
    uvloop = None  # type: ignore[assignment]
try:
    import orjson
except ImportError:  # pragma: no cover - the standard json module is fine, only slower
    orjson = None  # type: ignore[assignment]

JSON = dict[str, Any]
OnListening = Callable[[asyncio.Event, int], None]

MAX_HEAD_BYTES = 64 * 1024
CREATED = 1_700_000_000
WORDS = ("Hello", "from", "the", "fake", "upstream", "streaming", "some", "tokens", "for", "Tollgate")
SSE = "text/event-stream; charset=utf-8"


# ---------------------------------------------------------------------------------------------------------
# Requests and replies


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as received: header names lower-cased, in their order."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        """The first value of header `name` (any case), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class Controls:
    """What the `x-fake-*` request headers ask for."""

    status: int | None = None
    chunks: int = 3
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    reset_after: int | None = None
    reset_mid_event: bool = False
    set_cookie: bool = False
    redirect: str | None = None
    no_usage: bool = False
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    prompt_tokens: int | None = None
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reject_stream_options: bool = False
    service_tier: str = "standard"
    speed: str | None = None
    inference_geo: str | None = None
    background_s: float = 0.2
    web_searches: int = 0
    echo_headers: bool = False
    control_char_header: bool = False
    compaction: tuple[int, int] | None = None
    audio_tokens: tuple[int, int] = (0, 0)
    openai_cache_write_tokens: int = 0
    request_id: str | None = None
    gemini_downgrade: bool = False


DEFAULT_CONTROLS = Controls()


@dataclass(slots=True)
class Reply:
    """A response to write: a whole body, or `events` sent as one HTTP chunk each."""

    status: int
    body: bytes = b""
    events: list[bytes] | None = None
    content_type: str | None = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    reset_after: int | None = None
    reset_mid_event: bool = False

    @property
    def immediate(self) -> bool:
        return self.events is None and not self.delay_s and self.reset_after is None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one exchange; `answer` excludes reasoning and spoken audio, `cached`, `written`
    (cache writes, `written_1h` of them kept an hour), `openai_written` (OpenAI's cache writes) and
    `heard` (audio) are parts of `prompt`."""

    prompt: int
    answer: int
    cached: int
    reasoning: int
    written: int = 0
    written_1h: int = 0
    heard: int = 0
    spoken: int = 0
    openai_written: int = 0

    @property
    def output(self) -> int:
        return self.answer + self.reasoning + self.spoken

    @property
    def total(self) -> int:
        return self.prompt + self.output


@dataclass(frozen=True, slots=True)
class Call:
    """A parsed request together with everything the reply builders need."""

    request: RecordedRequest
    payload: JSON
    controls: Controls
    number: int
    usage: Usage | None

    @property
    def stream(self) -> bool:
        return self.payload.get("stream") is True

    @property
    def words(self) -> tuple[str, ...]:
        return answer_words(self.controls.chunks)

    @property
    def text(self) -> str:
        return "".join(answer_words(self.controls.chunks))

    def model(self, default: str) -> str:
        model = self.payload.get("model")
        return model if isinstance(model, str) else default


class BadRequest(Exception):
    """The request cannot be served; the message says why."""


@lru_cache(maxsize=64)
def answer_words(count: int) -> tuple[str, ...]:
    """The answer, one token per word, each word but the first led by a space."""
    return tuple((" " if i else "") + WORDS[i % len(WORDS)] for i in range(count))


def _dumps(value: Any) -> bytes:
    if orjson is not None:
        return orjson.dumps(value)
    return json.dumps(value, separators=(",", ":")).encode()


def _loads(data: bytes) -> Any:
    return orjson.loads(data) if orjson is not None else json.loads(data)


def _json_reply(value: Any, status: int = 200) -> Reply:
    return Reply(status, _dumps(value))


def _sse_data(value: Any) -> bytes:
    return b"data: " + _dumps(value) + b"\n\n"


def _sse_event(name: str, value: JSON) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _dumps(value) + b"\n\n"


def _stream_reply(events: list[bytes], content_type: str = SSE) -> Reply:
    return Reply(200, events=events, content_type=content_type, headers=[("cache-control", "no-cache")])


def _prompt_tokens(body: bytes) -> int:
    return max(1, len(body) // 4)


# ---------------------------------------------------------------------------------------------------------
# Errors, in each provider's shape

ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
GEMINI_ERROR_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}


def provider_family(request: RecordedRequest) -> str:
    """ "anthropic", "gemini" or "openai": whose conventions a request follows."""
    path = request.path
    if ":" in path.rsplit("/", 1)[-1] or "/v1beta/" in path or request.header("x-goog-api-key"):
        return "gemini"
    if "/v1/messages" in path or request.header("anthropic-version"):
        return "anthropic"
    return "openai"


def error_reply(request: RecordedRequest, status: int, message: str) -> Reply:
    family = provider_family(request)
    body: JSON
    if family == "anthropic":
        kind = ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        body = {"type": "error", "error": {"type": kind, "message": message}}
    elif family == "gemini":
        body = {
            "error": {
                "code": status,
                "message": message,
                "status": GEMINI_ERROR_STATUSES.get(status, "UNKNOWN"),
            }
        }
    else:
        kind = OPENAI_ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    reply = _json_reply(body, status)
    if status in (429, 503, 529):
        reply.headers.append(("retry-after", "1"))
    return reply


# ---------------------------------------------------------------------------------------------------------
# OpenAI


def _openai_usage(usage: Usage) -> JSON:
    return {
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.output,
        "total_tokens": usage.total,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached,
            **_audio(usage.heard),
            **_openai_cache_writes(usage.openai_written),
        },
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning, **_audio(usage.spoken)},
    }


def _audio(tokens: int) -> JSON:
    """An `audio_tokens` member of a usage's details, when x-fake-audio-tokens asked for some."""
    return {"audio_tokens": tokens} if tokens else {}


def _openai_cache_writes(tokens: int) -> JSON:
    """A `cache_write_tokens` member of a usage's input details, when x-fake-openai-cache-write-tokens
    asked for some."""
    return {"cache_write_tokens": tokens} if tokens else {}


def openai_chat(call: Call) -> Reply:
    """A chat completion with OpenAI's members in OpenAI's order: `service_tier` and
    `system_fingerprint` after the usage in a body, before the choices in a chunk."""
    head = {
        "id": f"chatcmpl-fake{call.number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.model("gpt-4o-mini"),
    }
    tail = {"service_tier": _service_tier(call), "system_fingerprint": "fp_fake"}
    if call.stream:
        return _stream_reply(_openai_chat_events(call, {**head, "object": "chat.completion.chunk", **tail}))
    message = {"role": "assistant", "content": call.text, "refusal": None}
    completion = {
        **head,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
    }
    if call.usage:
        completion["usage"] = _openai_usage(call.usage)
    return _json_reply({**completion, **tail})


def _service_tier(call: Call) -> str:
    """The tier that served the call, as OpenAI reports it: the one asked for, `auto` served as `default`."""
    asked = call.payload.get("service_tier")
    return asked if asked in ("flex", "priority", "scale") else "default"


def _openai_chat_events(call: Call, head: JSON) -> list[bytes]:
    with_usage = call.usage is not None and call.payload.get("stream_options", {}).get("include_usage")
    tail = {"usage": None} if with_usage else {}

    def chunk(delta: JSON, finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return _sse_data({**head, "choices": [choice], **tail})

    events = [
        chunk({"role": "assistant", "content": word} if i == 0 else {"content": word}, None)
        for i, word in enumerate(call.words)
    ]
    events.append(chunk({}, "stop"))
    if with_usage and call.usage:
        events.append(_sse_data({**head, "choices": [], "usage": _openai_usage(call.usage)}))
    events.append(b"data: [DONE]\n\n")
    return events


def openai_completion(call: Call) -> Reply:
    head = {
        "id": f"cmpl-fake{call.number}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": call.model("gpt-3.5-turbo-instruct"),
    }

    def choice(text: str, finish_reason: str | None) -> JSON:
        return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}

    usage = None
    if call.usage:
        usage = {key: value for key, value in _openai_usage(call.usage).items() if key.endswith("tokens")}
    if not call.stream:
        return _json_reply(
            {**head, "choices": [choice(call.text, "stop")], **({"usage": usage} if usage else {})}
        )
    events = [_sse_data({**head, "choices": [choice(word, None)]}) for word in call.words]
    events.append(_sse_data({**head, "choices": [choice("", "stop")]}))
    if usage and call.payload.get("stream_options", {}).get("include_usage"):
        events.append(_sse_data({**head, "choices": [], "usage": usage}))
    events.append(b"data: [DONE]\n\n")
    return _stream_reply(events)


def openai_embeddings(call: Call) -> Reply:
    inputs = call.payload.get("input", "")
    count = len(inputs) if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else 1
    dimensions = call.payload.get("dimensions", 8)
    as_base64 = call.payload.get("encoding_format") == "base64"
    data = []
    for index in range(count):
        vector = [round(((index + 1) * (j + 3) % 17) / 17 - 0.5, 6) for j in range(dimensions)]
        embedding: Any = vector
        if as_base64:
            embedding = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    body: JSON = {"object": "list", "data": data, "model": call.model("text-embedding-3-small")}
    if call.usage:
        body["usage"] = {"prompt_tokens": call.usage.prompt, "total_tokens": call.usage.prompt}
    return _json_reply(body)


def _responses_usage(usage: Usage) -> JSON:
    return {
        "input_tokens": usage.prompt,
        "input_tokens_details": {
            "cached_tokens": usage.cached,
            **_audio(usage.heard),
            **_openai_cache_writes(usage.openai_written),
        },
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning, **_audio(usage.spoken)},
        "total_tokens": usage.total,
    }


def openai_responses(call: Call) -> Reply:
    tools = call.payload.get("tools")
    searches = [
        {
            "id": f"ws_fake{call.number}_{index}",
            "type": "web_search_call",
            "status": "completed",
            "action": {"type": "search", "query": f"query {index}"},
        }
        for index in range(call.controls.web_searches)
    ]
    message_id = f"msg_fake{call.number}"
    part = {"type": "output_text", "text": call.text, "annotations": []}
    message = {
        "id": message_id,
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [part],
    }
    response: JSON = {
        "id": f"resp_fake{call.number}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "model": call.model("gpt-4o-mini"),
        "output": [*searches, message],
        "parallel_tool_calls": True,
        "service_tier": _service_tier(call),
        "tool_choice": "auto",
        "tools": tools if isinstance(tools, list) else [],
        "background": call.payload.get("background") is True,
    }
    if call.usage:
        response["usage"] = _responses_usage(call.usage)
    if response["background"]:  # it runs on: a GET sees it end (`openai_retrieved_response`)
        _remember_background(response, time.monotonic() + call.controls.background_s)
        if not call.stream:
            return _json_reply(_running(response, "queued"))
    if not call.stream:
        return _json_reply(response)
    started = {**response, "status": "in_progress", "output": []}
    if call.usage:
        started["usage"] = None
    at = len(searches)  # the message's output_index
    where = {"item_id": message_id, "output_index": at, "content_index": 0}
    steps: list[tuple[str, JSON]] = [
        ("response.created", {"response": started}),
        ("response.in_progress", {"response": started}),
        *[
            step
            for index, item in enumerate(searches)
            for step in (
                (
                    "response.output_item.added",
                    {"output_index": index, "item": {**item, "status": "in_progress"}},
                ),
                ("response.web_search_call.completed", {"output_index": index, "item_id": item["id"]}),
                ("response.output_item.done", {"output_index": index, "item": item}),
            )
        ],
        (
            "response.output_item.added",
            {"output_index": at, "item": {**message, "status": "in_progress", "content": []}},
        ),
        ("response.content_part.added", {**where, "part": {**part, "text": ""}}),
        *[("response.output_text.delta", {**where, "delta": word}) for word in call.words],
        ("response.output_text.done", {**where, "text": call.text}),
        ("response.content_part.done", {**where, "part": part}),
        ("response.output_item.done", {"output_index": at, "item": message}),
        ("response.completed", {"response": response}),
    ]
    return _stream_reply(
        [
            _sse_event(name, {"type": name, "sequence_number": number, **data})
            for number, (name, data) in enumerate(steps)
        ]
    )


# Background responses by id: when each completes, and what a GET answers then.
_BACKGROUND: dict[str, tuple[float, JSON]] = {}
MAX_BACKGROUND = 10_000


def _remember_background(response: JSON, completes_at: float) -> None:
    if len(_BACKGROUND) >= MAX_BACKGROUND:
        del _BACKGROUND[next(iter(_BACKGROUND))]
    _BACKGROUND[response["id"]] = (completes_at, response)


def _running(response: JSON, status: str) -> JSON:
    """A response as it is before it completes: no output, no usage yet."""
    return {**response, "status": status, "output": [], "usage": None}


def openai_retrieved_response(call: Call) -> Reply:
    """GET .../responses/ID: a background response, running or completed."""
    response_id = call.request.path.rsplit("/", 1)[-1]
    found = _BACKGROUND.get(response_id)
    if found is None:
        return error_reply(call.request, 404, f"No response found with id '{response_id}'.")
    completes_at, response = found
    return _json_reply(response if time.monotonic() >= completes_at else _running(response, "in_progress"))


def models_list(call: Call) -> Reply:
    family = provider_family(call.request)
    if family == "anthropic":
        models = [
            {"type": "model", "id": name, "display_name": name, "created_at": "2025-01-01T00:00:00Z"}
            for name in ("claude-sonnet-4-6", "claude-haiku-4-5")
        ]
        return _json_reply(
            {"data": models, "has_more": False, "first_id": models[0]["id"], "last_id": models[-1]["id"]}
        )
    if family == "gemini":
        methods = ["generateContent", "streamGenerateContent", "countTokens"]
        return _json_reply(
            {
                "models": [
                    {
                        "name": f"models/{name}",
                        "version": "001",
                        "displayName": name,
                        "supportedGenerationMethods": methods,
                    }
                    for name in ("gemini-2.5-flash", "gemini-2.5-pro")
                ]
            }
        )
    return _json_reply(
        {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": CREATED, "owned_by": "fake-upstream"}
                for name in ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small")
            ],
        }
    )


# ---------------------------------------------------------------------------------------------------------
# Anthropic


def _anthropic_usage(
    usage: Usage,
    output_tokens: int,
    tier: str,
    searches: int = 0,
    speed: str | None = None,
    geo: str | None = None,
) -> JSON:
    reported: JSON = {
        "input_tokens": usage.prompt - usage.cached - usage.written,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": usage.written,
        "cache_read_input_tokens": usage.cached,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.written - usage.written_1h,
            "ephemeral_1h_input_tokens": usage.written_1h,
        },
        "service_tier": tier,
    }
    if speed is not None:
        reported["speed"] = speed
    if geo is not None:
        reported["inference_geo"] = geo
    if searches:
        reported["server_tool_use"] = {"web_search_requests": searches, "web_fetch_requests": 0}
    return reported


def _with_compaction(usage: JSON, compaction: tuple[int, int] | None) -> JSON:
    """`usage` with the `iterations` of a call that compacted its context first, if it did."""
    if compaction is None:
        return usage
    fields = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    summary: JSON = {"type": "compaction", "input_tokens": compaction[0], "output_tokens": compaction[1]}
    summary.update(cache_creation_input_tokens=0, cache_read_input_tokens=0)
    answer: JSON = {"type": "message", **{name: usage[name] for name in fields}}
    return {**usage, "iterations": [summary, answer]}


def anthropic_messages(call: Call) -> Reply:
    message: JSON = {
        "id": f"msg_fake{call.number:08d}",
        "type": "message",
        "role": "assistant",
        "model": call.model("claude-haiku-4-5"),
        "content": [{"type": "text", "text": call.text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
    }
    searches = call.controls.web_searches
    if call.usage:
        message["usage"] = _with_compaction(
            _anthropic_usage(
                call.usage,
                call.usage.output,
                call.controls.service_tier,
                searches,
                call.controls.speed,
                call.controls.inference_geo,
            ),
            call.controls.compaction,
        )
    if not call.stream:
        return _json_reply(message)
    started = {**message, "content": [], "stop_reason": None}
    if call.usage:
        controls = call.controls
        started["usage"] = _anthropic_usage(
            call.usage, 1, controls.service_tier, 0, controls.speed, controls.inference_geo
        )
    finished: JSON = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}}
    if call.usage:
        finished["usage"] = {"output_tokens": call.usage.output}
        if searches:  # the call's totals, as message_delta reports them
            finished["usage"]["server_tool_use"] = {"web_search_requests": searches, "web_fetch_requests": 0}
        if call.controls.compaction:  # the cumulative counts again, and the iterations
            finished["usage"] = message["usage"]
    steps: list[tuple[str, JSON]] = [
        ("message_start", {"type": "message_start", "message": started}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        *[
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}},
            )
            for word in call.words
        ],
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", finished),
        ("message_stop", {"type": "message_stop"}),
    ]
    return _stream_reply([_sse_event(name, data) for name, data in steps])


def anthropic_count_tokens(call: Call) -> Reply:
    return _json_reply({"input_tokens": _prompt_tokens(call.request.body)})


# ---------------------------------------------------------------------------------------------------------
# Gemini


def _gemini_model(call: Call) -> str:
    last = call.request.path.rsplit("/", 1)[-1]
    return last.partition(":")[0] or "gemini-2.5-flash"


def _gemini_usage(usage: Usage, answer_tokens: int) -> JSON:
    metadata = {
        "promptTokenCount": usage.prompt,
        "candidatesTokenCount": answer_tokens,
        "totalTokenCount": usage.prompt + answer_tokens + usage.reasoning,
    }
    if usage.cached:
        metadata["cachedContentTokenCount"] = usage.cached
    if usage.reasoning:
        metadata["thoughtsTokenCount"] = usage.reasoning
    return metadata


def _gemini_chunk(call: Call, text: str, answer_tokens: int, last: bool) -> JSON:
    candidate: JSON = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if last:
        candidate["finishReason"] = "STOP"
    chunk: JSON = {"candidates": [candidate]}
    if call.usage:
        chunk["usageMetadata"] = _gemini_usage(call.usage, answer_tokens)
    chunk["modelVersion"] = _gemini_model(call)
    chunk["responseId"] = f"fake{call.number}"
    return chunk


def gemini_generate(call: Call) -> Reply:
    return _in_gemini_tier(call, _json_reply(_gemini_chunk(call, call.text, call.controls.chunks, last=True)))


def _in_gemini_tier(call: Call, reply: Reply) -> Reply:
    """`reply` with the `x-gemini-service-tier` header that names the tier that served the call: the one
    its body's `service_tier` asks for (`flex`, `priority`), else `standard`, as is a Priority call
    past its limit (x-fake-gemini-downgrade: 1)."""
    asked = str(call.payload.get("service_tier") or "").lower().removeprefix("service_tier_")
    served = asked if asked in ("flex", "priority") and not call.controls.gemini_downgrade else "standard"
    reply.headers.append(("x-gemini-service-tier", served))
    return reply


def gemini_stream(call: Call) -> Reply:
    words = call.words or ("",)
    chunks = [
        _gemini_chunk(call, word, min(i + 1, call.controls.chunks), last=i == len(words) - 1)
        for i, word in enumerate(words)
    ]
    if "alt=sse" in call.request.query:
        return _in_gemini_tier(
            call, _stream_reply([b"data: " + _dumps(chunk) + b"\r\n\r\n" for chunk in chunks])
        )
    pieces = [(b"[" if i == 0 else b",\r\n") + _dumps(chunk) for i, chunk in enumerate(chunks)]
    pieces[-1] += b"]"
    return _in_gemini_tier(call, _stream_reply(pieces, content_type="application/json; charset=UTF-8"))


def gemini_count_tokens(call: Call) -> Reply:
    return _json_reply({"totalTokens": _prompt_tokens(call.request.body)})


# ---------------------------------------------------------------------------------------------------------
# Routing

Handler = Callable[[Call], Reply]
POST_SUFFIXES: tuple[tuple[str, Handler], ...] = (
    ("/v1/messages/count_tokens", anthropic_count_tokens),
    ("/v1/messages", anthropic_messages),
    ("/chat/completions", openai_chat),
    ("/completions", openai_completion),
    ("/embeddings", openai_embeddings),
    ("/responses", openai_responses),
)
GEMINI_ACTIONS: dict[str, Handler] = {
    "generateContent": gemini_generate,
    "streamGenerateContent": gemini_stream,
    "countTokens": gemini_count_tokens,
}


def find_handler(method: str, path: str) -> Handler | None:
    if method == "GET":
        if "/responses/" in path:
            return openai_retrieved_response
        return models_list if path.endswith("/models") else None
    if method != "POST":
        return None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        return GEMINI_ACTIONS.get(last.partition(":")[2])
    return next((handler for suffix, handler in POST_SUFFIXES if path.endswith(suffix)), None)


def parse_controls(headers: list[tuple[str, str]]) -> Controls:
    values = {name[7:]: value for name, value in headers if name.startswith("x-fake-")}
    if not values:
        return DEFAULT_CONTROLS
    try:
        return Controls(
            status=int(values["status"]) if "status" in values else None,
            chunks=int(values.get("chunks", 3)),
            delay_s=float(values.get("delay-ms", 0)) / 1000,
            chunk_delay_s=float(values.get("chunk-delay-ms", 0)) / 1000,
            reset_after=int(values["reset-after"]) if "reset-after" in values else None,
            reset_mid_event=values.get("reset-mid-event") == "1",
            set_cookie=values.get("set-cookie") == "1",
            redirect=values.get("redirect"),
            no_usage=values.get("no-usage") == "1",
            cached_tokens=int(values.get("cached-tokens", 0)),
            reasoning_tokens=int(values.get("reasoning-tokens", 0)),
            prompt_tokens=int(values["prompt-tokens"]) if "prompt-tokens" in values else None,
            **_cache_writes(values.get("cache-write-tokens", "0")),
            reject_stream_options=values.get("reject-stream-options") == "1",
            service_tier=values.get("service-tier", "standard"),
            speed=values.get("speed"),
            inference_geo=values.get("inference-geo"),
            background_s=float(values.get("background-ms", 200)) / 1000,
            web_searches=int(values.get("web-searches", 0)),
            echo_headers=values.get("echo-headers") == "1",
            control_char_header=values.get("control-char-header") == "1",
            compaction=_compaction(values["compaction"]) if "compaction" in values else None,
            audio_tokens=_compaction(values.get("audio-tokens", "0")),
            openai_cache_write_tokens=int(values.get("openai-cache-write-tokens", 0)),
            request_id=values.get("request-id"),
            gemini_downgrade=values.get("gemini-downgrade") == "1",
        )
    except ValueError as error:
        raise BadRequest(f"bad x-fake-* header: {error}") from error


def _cache_writes(value: str) -> dict[str, int]:
    """`N` or `N,H` of x-fake-cache-write-tokens as Controls fields."""
    written, _, hour = value.partition(",")
    return {"cache_write_tokens": int(written), "cache_write_1h_tokens": int(hour or 0)}


def _compaction(value: str) -> tuple[int, int]:
    """`IN,OUT` of x-fake-compaction (and of x-fake-audio-tokens)."""
    tokens_in, _, tokens_out = value.partition(",")
    return int(tokens_in), int(tokens_out or 0)


def _parse_payload(request: RecordedRequest) -> JSON:
    if request.method != "POST" or not request.body:
        return {}
    try:
        payload = _loads(request.body)
    except ValueError as error:
        raise BadRequest(f"We could not parse the JSON body of your request: {error}") from error
    if not isinstance(payload, dict):
        raise BadRequest("The request body must be a JSON object.")
    return payload


def respond(request: RecordedRequest, number: int) -> Reply:
    """The full reply to one request, the `x-fake-*` controls applied."""
    try:
        controls = parse_controls(request.headers)
        reply = _compressed_if_asked(request, _route(request, number, controls))
    except BadRequest as error:
        return error_reply(request, 400, str(error))
    if request.method == "GET" and "/responses/" in request.path:
        return reply  # a background response retrieved: the controls were the request's that started it
    if controls.set_cookie:
        reply.headers += [
            ("set-cookie", "fake_session=abc123; Path=/; HttpOnly"),
            ("connection", "keep-alive"),
            ("keep-alive", "timeout=5"),
        ]
    if controls.control_char_header:
        reply.headers += [("x-fake-odd", "a\x7fb"), ("x-fake-even", "1")]
    if controls.request_id is not None:
        reply.headers += [("x-request-id", controls.request_id), ("request-id", controls.request_id)]
    reply.delay_s, reply.chunk_delay_s = controls.delay_s, controls.chunk_delay_s
    reply.reset_after, reply.reset_mid_event = controls.reset_after, controls.reset_mid_event
    return reply


def _compressed_if_asked(request: RecordedRequest, reply: Reply) -> Reply:
    """A whole JSON body gzipped when the request accepts gzip, as providers behind a CDN answer (the
    official SDKs accept it); streams go as they are."""
    accepted = (request.header("accept-encoding") or "").lower()
    if (
        "gzip" in accepted
        and reply.events is None
        and reply.body
        and (reply.content_type or "").startswith("application/json")
    ):
        reply.body = gzip.compress(reply.body, compresslevel=6, mtime=0)
        reply.headers.append(("content-encoding", "gzip"))
    return reply


def _route(request: RecordedRequest, number: int, controls: Controls) -> Reply:
    echoed = [(name, value) for name, value in request.headers if not name.startswith("x-fake-")]
    if controls.redirect is not None:
        location = controls.redirect
        if controls.echo_headers:
            location += "?" + "&".join(f"{name}={value}" for name, value in echoed)
        return Reply(302, content_type=None, headers=[("location", location)])
    if controls.status is not None and controls.status >= 400:
        message = f"fake error: x-fake-status {controls.status}"
        if controls.echo_headers:
            message += f"; you sent {dict(echoed)}"
        reply = error_reply(request, controls.status, message)
        if controls.echo_headers:
            reply.headers += [(f"x-echo-{name}", value) for name, value in echoed]
        return reply
    handler = find_handler(request.method, request.path)
    if handler is None:
        return error_reply(request, 404, f"Invalid URL ({request.method} {request.path})")
    if controls.reject_stream_options and b'"stream_options"' in request.body:  # Azure's older versions
        return error_reply(request, 400, "Unrecognized request argument supplied: stream_options")
    usage = None
    if not controls.no_usage:
        prompt = controls.prompt_tokens or _prompt_tokens(request.body)
        cached = min(controls.cached_tokens, prompt)
        written = min(controls.cache_write_tokens, prompt - cached)
        written_1h = min(controls.cache_write_1h_tokens, written)
        heard, spoken = min(controls.audio_tokens[0], prompt), controls.audio_tokens[1]
        usage = Usage(prompt, controls.chunks, cached, controls.reasoning_tokens, written, written_1h)
        if heard or spoken:
            usage = replace(usage, heard=heard, spoken=spoken)
        if controls.openai_cache_write_tokens:
            usage = replace(usage, openai_written=min(controls.openai_cache_write_tokens, prompt - cached))
    reply = handler(Call(request, _parse_payload(request), controls, number, usage))
    if controls.status is not None:
        reply.status = controls.status
    return reply


# ---------------------------------------------------------------------------------------------------------
# HTTP/1.1


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str
    headers: list[tuple[str, str]]
    content_length: int
    chunked: bool
    keep_alive: bool
    expect_continue: bool


def parse_head(raw: bytes) -> RequestHead:
    """The request line and headers (without the blank line that ends them)."""
    request_line, *lines = raw.decode("latin-1").lstrip("\r\n").split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"bad request line {request_line!r}")
    method, target, version = parts
    headers: list[tuple[str, str]] = []
    content_length, chunked, connection, expect = 0, False, "", ""
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise BadRequest(f"bad header line {line!r}")
        name, value = name.strip().lower(), value.strip()
        headers.append((name, value))
        if name == "content-length":
            if not value.isdigit():
                raise BadRequest(f"bad content-length {value!r}")
            content_length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value.lower()
        elif name == "connection":
            connection = value.lower()
        elif name == "expect":
            expect = value.lower()
    keep_alive = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
    return RequestHead(method, target, headers, content_length, chunked, keep_alive, expect == "100-continue")


def parse_chunked(buffer: bytearray) -> tuple[bytes, int] | None:
    """A complete chunked body at the start of `buffer` and the bytes it spans, or None if incomplete."""
    body = bytearray()
    position = 0
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        try:
            size = int(bytes(buffer[position:line_end]).split(b";", 1)[0].strip(), 16)
        except ValueError as error:
            raise BadRequest("bad chunk size line") from error
        position = line_end + 2
        if size == 0:
            return _skip_trailers(buffer, position, bytes(body))
        if len(buffer) < position + size + 2:
            return None
        body += buffer[position : position + size]
        if buffer[position + size : position + size + 2] != b"\r\n":
            raise BadRequest("chunk data not followed by CRLF")
        position += size + 2


def _skip_trailers(buffer: bytearray, position: int, body: bytes) -> tuple[bytes, int] | None:
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        if line_end == position:
            return body, position + 2
        position = line_end + 2


class RequestParser:
    """Splits the bytes of one connection into requests."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._head: RequestHead | None = None
        self._continue_pending = False

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_request(self) -> tuple[RecordedRequest, bool] | None:
        """The next complete request and whether to keep the connection open, or None for now."""
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD_BYTES:
                    raise BadRequest("request head too large")
                return None
            self._head = parse_head(bytes(self._buffer[:end]))
            del self._buffer[: end + 4]
            self._continue_pending = self._head.expect_continue
        head = self._head
        if head.chunked:
            framed = parse_chunked(self._buffer)
            if framed is None:
                return None
            body, consumed = framed
        else:
            if len(self._buffer) < head.content_length:
                return None
            consumed = head.content_length
            body = bytes(self._buffer[:consumed])
        del self._buffer[:consumed]
        self._head = None
        self._continue_pending = False
        return RecordedRequest(head.method, head.target, head.headers, body), head.keep_alive

    def take_continue(self) -> bool:
        """True once when a request waiting for its body asked for `100 Continue`."""
        pending, self._continue_pending = self._continue_pending, False
        return pending


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def response_head(reply: Reply, number: int, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {reply.status} {_reason(reply.status)}", "server: fake-upstream"]
    if reply.content_type:
        lines.append(f"content-type: {reply.content_type}")
    if reply.events is None:
        lines.append(f"content-length: {len(reply.body)}")
    else:
        lines.append("transfer-encoding: chunked")
    lines.append(f"x-fake-request-count: {number}")
    lines.extend(
        f"{name}: {value}"
        for name, value in reply.headers
        if keep_alive or name not in ("connection", "keep-alive")
    )
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


class ServerState:
    """What every connection of one server shares: the request count and the recorded requests."""

    def __init__(self, record: bool) -> None:
        self.record = record
        self.connections: set[Connection] = set()
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._count = 0
        self.interrupted = 0

    def admit(self, request: RecordedRequest) -> int:
        """Count (and maybe record) a request; returns its number."""
        with self._lock:
            self._count += 1
            if self.record:
                self._requests.append(request)
            return self._count

    @property
    def count(self) -> int:
        return self._count

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._count = 0
            self.interrupted = 0


class Connection(asyncio.Protocol):
    """One client connection: requests are answered in order, one at a time."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._parser = RequestParser()
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._state.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._state.connections.discard(self)
        if self._task is not None and not self._task.done():
            self._state.interrupted += 1  # the client went away mid-reply
            self._task.cancel()
        self.resume_writing()

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        self._serve_pending()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _serve_pending(self) -> None:
        transport = cast(asyncio.Transport, self._transport)
        while self._task is None and not self._closed:
            try:
                parsed = self._parser.next_request()
            except BadRequest as error:
                reply = error_reply(RecordedRequest("GET", "/", [], b""), 400, str(error))
                transport.write(response_head(reply, self._state.count, False) + reply.body)
                transport.close()
                self._closed = True
                return
            if parsed is None:
                if self._parser.take_continue():
                    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            self._serve(*parsed)

    def _serve(self, request: RecordedRequest, keep_alive: bool) -> None:
        number = self._state.admit(request)
        transport = cast(asyncio.Transport, self._transport)
        if request.method == "HEAD":  # the head a GET would get, and no body (RFC 9110, 9.3.2)
            as_get = respond(replace(request, method="GET"), number)
            transport.write(response_head(as_get, number, keep_alive))
            if not keep_alive:
                self._close()
            return
        reply = respond(request, number)
        if reply.immediate:
            transport.write(response_head(reply, number, keep_alive) + reply.body)
            if not keep_alive:
                self._close()
            return
        self._task = asyncio.get_running_loop().create_task(self._send_over_time(reply, number, keep_alive))
        self._task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._task = None
        if not task.cancelled() and task.exception() is not None:
            self.abort()
            return
        self._serve_pending()

    async def _send_over_time(self, reply: Reply, number: int, keep_alive: bool) -> None:
        transport = cast(asyncio.Transport, self._transport)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        transport.write(response_head(reply, number, keep_alive))
        if reply.events is None:
            if reply.reset_after is not None:
                await self._reset()
                return
            transport.write(reply.body)
        else:
            for index, event in enumerate(reply.events):
                if reply.reset_after is not None and index >= reply.reset_after:
                    if reply.reset_mid_event:
                        transport.write(http_chunk(event[: len(event) // 2]))
                    break
                if index:
                    await asyncio.sleep(reply.chunk_delay_s)
                if self._writable is not None:
                    await self._writable
                transport.write(http_chunk(event))
            if reply.reset_after is not None:
                await self._reset()
                return
            transport.write(b"0\r\n\r\n")
        if not keep_alive:
            self._close()

    async def _reset(self) -> None:
        """Flush what was written, then end the connection with a TCP reset."""
        transport = cast(asyncio.Transport, self._transport)
        if transport.get_write_buffer_size():
            transport.set_write_buffer_limits(high=0)
            if self._writable is not None:
                await self._writable
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.abort()

    def _close(self) -> None:
        self._closed = True
        cast(asyncio.Transport, self._transport).close()


# ---------------------------------------------------------------------------------------------------------
# Serving


def new_event_loop() -> asyncio.AbstractEventLoop:
    return uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()


async def serve(state: ServerState, host: str, port: int, on_listening: OnListening) -> None:
    """Serve until the event handed to `on_listening` (with the bound port) is set."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    server = await loop.create_server(lambda: Connection(state), host, port, backlog=1024)
    on_listening(stop, server.sockets[0].getsockname()[1])
    try:
        await stop.wait()
    finally:
        server.close()
        for connection in list(state.connections):
            connection.abort()
        await server.wait_closed()


def http_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class FakeUpstream:
    """The fake provider on a background thread with its own event loop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, record: bool = True) -> None:
        self._host = host
        self._requested_port = port
        self._state = ServerState(record)
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._listening = threading.Event()
        self._failure: BaseException | None = None

    def start(self) -> Self:
        """Start serving; returns once the socket listens."""
        if self._thread is not None:
            raise RuntimeError("FakeUpstream already started")
        self._thread = threading.Thread(target=self._run, name="fake-upstream", daemon=True)
        self._thread.start()
        self._listening.wait()
        if self._failure is not None:
            raise RuntimeError("fake upstream failed to start") from self._failure
        return self

    def stop(self) -> None:
        """Stop serving, dropping open connections; waits for the thread to end."""
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        self._thread = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeUpstream is not started")
        return self._port

    @property
    def url(self) -> str:
        return http_url(self._host, self.port)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far (empty with record=False)."""
        return self._state.snapshot()

    @property
    def interrupted(self) -> int:
        """Replies cut short because the client closed the connection before they were complete."""
        return self._state.interrupted

    @property
    def request_count(self) -> int:
        return self._state.count

    def clear(self) -> None:
        """Forget the recorded requests and restart the request count."""
        self._state.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                runner.run(serve(self._state, self._host, self._requested_port, self._on_listening))
        except BaseException as error:
            self._failure = error
        finally:
            self._listening.set()

    def _on_listening(self, stop: asyncio.Event, port: int) -> None:
        self._loop, self._stop, self._port = asyncio.get_running_loop(), stop, port
        self._listening.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9000, help="port to bind, 0 for any (default 9000)")
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="do not keep received requests in memory (for long benchmark runs)",
    )
    args = parser.parse_args(argv)

    def on_listening(stop: asyncio.Event, port: int) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        print(f"fake upstream listening on {http_url(args.host, port)}", flush=True)

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(serve(ServerState(record=not args.no_record), args.host, args.port, on_listening))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
