"""Asking OpenAI-style streams for their usage when the caller did not, and coping with upstreams
that refuse to be asked.

OpenAI reports a stream's usage only when the request says `"stream_options": {"include_usage":
true}`. Gemini's OpenAI-compatible API (`/v1beta/openai/`) accepts the member; unasked, its streams have
been seen to carry their usage on content chunks, or not at all, so it is asked too. For a chat or
completions stream whose caller did not say so, `ask_for_stream_usage` adds it
(the tap then hides the extra usage event from the caller, see `extractors.openai_strip`), to the
caller's bytes, never re-serialised: a member in front, or, where the caller sent `stream_options`
null or without `include_usage`, into that value.

Some OpenAI-compatible servers, and Azure OpenAI before API version 2024-09-01-preview, answer such a
request with 400 or 422 ("Unrecognized request argument supplied: stream_options", "Extra inputs are
not permitted"): a call the caller made correctly would fail because of the gateway. So
`ResendWithoutStreamUsage` watches the answers to requests it changed: a 400 or 422 whose error body
names `stream_options` (other than in an echo of the request: `refuses_stream_options`) is not
relayed; the caller's own request is sent again, unchanged, and its answer relayed. If that answer is
a success, the refusal is remembered for the provider (and Azure API version) for `REMEMBER_SECONDS`,
during which its streams are sent as their callers wrote them and metered from what they report, else
estimated. Only then: an error that merely quotes the caller's own text (a message echoing an invalid
value that happens to say `stream_options`) fails again without the member, and changes nothing for
the provider's other callers. A provider
known to refuse can be configured so (`providers.<name>.inject_stream_usage: false`) and is never
asked.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence

from gateway.context import RequestContext
from gateway.errors import InvalidJSON
from gateway.metering.endpoints import request_wants_stream
from gateway.metering.usage import Endpoint
from gateway.pipeline.forward import Forward
from gateway.settings.schema import ProviderType, Settings
from gateway.upstream.transport import UpstreamResponse

logger = logging.getLogger("tollgate.metering")

_INCLUDE_USAGE = b'"include_usage":true'
_INCLUDE_USAGE_OBJECT = b"{" + _INCLUDE_USAGE + b"}"
_OPENING_WITH_INCLUDE_USAGE = b'{"stream_options":' + _INCLUDE_USAGE_OBJECT + b","
# The member metering adds, as an error body may echo the request (pydantic's `input`, in JSON or in a
# Python repr inside a message): not a refusal of it.
_ECHOED_MEMBER = re.compile(
    rb"""["']stream_options["']\s*:\s*\{[^{}]*["']include_usage["']\s*:\s*(?:true|True)[^{}]*\}"""
)
REFUSAL_STATUSES = frozenset({400, 422})
REFUSAL_MARK = b"stream_options"  # what every such refusal seen names: the member it refuses
_WHITESPACE = re.compile(r"[ \t\n\r]*")
MAX_REFUSAL_BYTES = 16 * 1024  # an error body longer than this is relayed without a look
REMEMBER_SECONDS = 3600.0
MAX_REMEMBERED = 1024


def ask_for_stream_usage(ctx: RequestContext) -> None:
    """Add `stream_options.include_usage` to a streaming request that did not ask for it (see the
    module's docstring); `ctx.body_before_injection` keeps the caller's bytes."""
    try:
        payload = ctx.json_body()
    except InvalidJSON:
        return  # the provider will say what is wrong with it
    if type(payload) is not dict or not request_wants_stream(ctx.endpoint or Endpoint.OTHER, payload):
        return
    body = ctx.body
    if "stream_options" not in payload:  # the usual case: one member added in front, the rest as it was
        payload["stream_options"] = {"include_usage": True}
        ctx.body = body.replace(b"{", _OPENING_WITH_INCLUDE_USAGE, 1)  # a JSON object's first brace
    else:  # null, or an object without include_usage: the caller's value changed in place
        options = payload["stream_options"]
        if not (options is None or (type(options) is dict and "include_usage" not in options)):
            return  # the caller asked for something explicit: leave it alone
        span = _last_member_value(body, "stream_options")
        if span is None:
            return
        start, end = span
        if options is None:
            changed = body[:start] + _INCLUDE_USAGE_OBJECT + body[end:]
        else:  # the caller's object, `include_usage` first among its members
            inside = _INCLUDE_USAGE + (b"," if options else b"")
            changed = body[: start + 1] + inside + body[start + 1 :]
        payload["stream_options"] = {**(options or {}), "include_usage": True}
        ctx.body = changed
    ctx.body_before_injection = body
    ctx.stream_usage_injected = True


# Gemini's among them for its OpenAI-compatible API (`/v1beta/openai/`): `meter.PrepareMetering` asks
# only the calls that speak OpenAI's API (`endpoints.openai_style`), never its native ones.
_ASKABLE_TYPES = frozenset(
    {ProviderType.OPENAI, ProviderType.AZURE_OPENAI, ProviderType.OPENAI_COMPATIBLE, ProviderType.GEMINI}
)


def providers_to_ask(settings: Settings) -> frozenset[str]:
    """The providers whose OpenAI-style streams are asked for their usage: `metering.inject_stream_usage`,
    unless the provider's own `inject_stream_usage` says otherwise."""
    default = settings.metering.inject_stream_usage
    return frozenset(
        name
        for name, provider in settings.providers.items()
        if provider.type in _ASKABLE_TYPES
        and (default if provider.inject_stream_usage is None else provider.inject_stream_usage)
    )


def _last_member_value(body: bytes, key: str) -> tuple[int, int] | None:
    """The byte span of the value of the top-level object's last `key` member (the one a JSON parser
    keeps), found member by member with the standard decoder, so that whatever the caller's spacing,
    escapes or nesting, nothing else is touched; None if `body` is no such object."""
    try:
        text = body.decode("utf-8")
        decoder = json.JSONDecoder()
        at = _WHITESPACE.match(text, 0).end()  # type: ignore[union-attr]
        if text[at : at + 1] != "{":
            return None
        at, found = at + 1, None
        while True:
            at = _WHITESPACE.match(text, at).end()  # type: ignore[union-attr]
            if text[at : at + 1] == "}":
                break
            name, at = decoder.raw_decode(text, at)
            at = _WHITESPACE.match(text, at).end()  # type: ignore[union-attr]
            if text[at : at + 1] != ":":
                return None
            start = _WHITESPACE.match(text, at + 1).end()  # type: ignore[union-attr]
            _, at = decoder.raw_decode(text, start)
            if name == key:
                found = (start, at)
            at = _WHITESPACE.match(text, at).end()  # type: ignore[union-attr]
            if text[at : at + 1] == ",":
                at += 1
    except (UnicodeDecodeError, ValueError):
        return None
    if found is None:
        return None
    start, end = found
    return len(text[:start].encode()), len(text[:end].encode())


def refuses_stream_options(error_body: bytes) -> bool:
    """Whether an upstream's error names `stream_options` other than by echoing the request it got
    (FastAPI servers put the whole request in a validation error about another field)."""
    return REFUSAL_MARK in _ECHOED_MEMBER.sub(b"", error_body)


def _api_version(query: bytes) -> str:
    """The `api-version` query parameter (Azure OpenAI's), else ""."""
    for part in query.split(b"&"):
        if part.startswith(b"api-version="):
            return part[len(b"api-version=") :].decode("ascii", "replace")
    return ""


class StreamUsageRefusals:
    """The upstreams (provider, API version) that refused `stream_options` lately, each for a while."""

    __slots__ = ("_clock", "_until")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[tuple[str, str], float] = {}

    def refused(self, ctx: RequestContext) -> bool:
        """Whether `ctx`'s upstream refused lately (one truth test while none has)."""
        if not self._until:
            return False
        key = (ctx.provider.name, _api_version(ctx.query_string))
        until = self._until.get(key)
        if until is None:
            return False
        if until > self._clock():
            return True
        del self._until[key]
        return False

    def note(self, ctx: RequestContext) -> None:
        if len(self._until) >= MAX_REMEMBERED:
            self._until.clear()
        key = (ctx.provider.name, _api_version(ctx.query_string))
        self._until[key] = self._clock() + REMEMBER_SECONDS
        logger.warning(
            "upstream refused stream_options.include_usage; the caller's request was sent as it was, and "
            "streams to this upstream go unchanged for a while, metered from what they report or estimated",
            extra={
                "fields": {"provider": key[0], "api_version": key[1] or None, "seconds": REMEMBER_SECONDS}
            },
        )


class _Replayed:
    """A response whose first chunks were read already: they come again, then the rest."""

    __slots__ = ("_read", "_response", "_rest")

    def __init__(
        self, response: UpstreamResponse, read: list[bytes], rest: AsyncIterator[bytes] | None
    ) -> None:
        self._response = response
        self._read = read
        self._rest = rest

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Sequence[tuple[bytes, bytes]]:
        return self._response.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._read:
            yield chunk
        if self._rest is not None:
            async for chunk in self._rest:
                yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()


async def _read_error(response: UpstreamResponse) -> tuple[list[bytes], AsyncIterator[bytes] | None]:
    """The chunks of an error body up to `MAX_REFUSAL_BYTES`, and what is left of it (None: nothing). A
    body that breaks while read (the upstream gone, its read timeout) leaves that failure as what is
    left: the caller gets the error as far as it came, then the failure, as for any error relayed."""
    read: list[bytes] = []
    size = 0
    rest = aiter(response.chunks())
    try:
        async for chunk in rest:
            read.append(chunk)
            size += len(chunk)
            if size > MAX_REFUSAL_BYTES:
                return read, rest
    except Exception as failure:
        return read, _failing(failure)
    return read, None


async def _failing(failure: Exception) -> AsyncIterator[bytes]:
    """What is left of a body whose reading failed: the failure, met again where the body is relayed."""
    raise failure
    yield b""  # an async generator, though it yields nothing


class ResendWithoutStreamUsage:
    """Forwarding, with the caller's own request sent again when the upstream refused the
    `stream_options.include_usage` the gateway added (see the module's docstring)."""

    def __init__(self, forward: Forward, refusals: StreamUsageRefusals) -> None:
        self._forward = forward
        self._refusals = refusals

    async def __call__(self, ctx: RequestContext) -> UpstreamResponse:
        response = await self._forward(ctx)
        if not ctx.stream_usage_injected or response.status not in REFUSAL_STATUSES:
            return response
        try:
            read, rest = await _read_error(response)
        except BaseException:  # cancelled (the caller gone, the total timeout): nobody relays it
            await response.aclose()
            raise
        if rest is not None or not refuses_stream_options(b"".join(read)):
            return _Replayed(response, read, rest)  # an error of the caller's own: it is theirs to read
        await response.aclose()
        ctx.replace_body(ctx.body_before_injection)
        ctx.stream_usage_injected = False
        resent = await self._forward(ctx)
        if resent.status < 300:  # refused with it, served without: a refusal, remembered for all
            self._refusals.note(ctx)
        return resent
