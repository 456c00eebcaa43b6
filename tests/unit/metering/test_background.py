"""OpenAI background responses: the call that starts one is recorded when the response ends, with the
usage the provider reports then, and estimated only when that end is never seen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

import orjson
import pytest

from gateway.context import RequestContext
from gateway.credentials.secret import Secret
from gateway.credentials.store import ResolvedCredential
from gateway.errors import UpstreamUnavailable
from gateway.metering.background import BackgroundResponses, retry_after
from gateway.metering.extractors.factory import extractor_for
from gateway.metering.extractors.openai import read_responses
from gateway.metering.meter import Meter, PrepareMetering
from gateway.metering.prices import cost_of
from gateway.metering.stream_usage import StreamUsageRefusals
from gateway.metering.usage import Endpoint, Extraction, TokenUsage
from gateway.settings.schema import Timeouts
from gateway.storage.errors import StorageUnavailable
from gateway.storage.records import UsageRecord
from gateway.upstream.transport import UpstreamRequest
from tests.support.metering import ADAPTERS, PRICES, PRINCIPAL, ListLedger

SECRET = "sk-tenant-credential"
REQUEST = {"model": "o3", "input": "Write a long report on otters", "background": True}
USAGE = {
    "input_tokens": 1200,
    "input_tokens_details": {"cached_tokens": 200},
    "output_tokens": 5000,
    "output_tokens_details": {"reasoning_tokens": 4000},
    "total_tokens": 6200,
}
REPORTED = TokenUsage(1200, 5000, 200, 0, 4000)


def response(status: str, *, background: bool = True, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": "resp_0123abc",
        "object": "response",
        "status": status,
        "background": background,
        "model": "o3-2025-04-16",
        "output": [],
        "usage": usage,
    }


class Answer:
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.headers: Sequence[tuple[bytes, bytes]] = []
        self._body = body
        self.closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self._body

    async def aclose(self) -> None:
        self.closed = True


class ScriptedUpstream:
    """A transport that answers the polls in turn from `answers` (the last one over and over): a status and
    a JSON body, or an exception to raise."""

    def __init__(self, *answers: tuple[int, dict[str, Any]] | Exception) -> None:
        self._answers = list(answers)
        self.requests: list[UpstreamRequest] = []
        self.answers: list[Answer] = []

    async def send(self, request: UpstreamRequest) -> Answer:
        self.requests.append(request)
        answer = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        self.answers.append(Answer(status, orjson.dumps(body)))
        return self.answers[-1]

    async def aclose(self) -> None:
        return None


def started_call(body: dict[str, Any] | None = None) -> RequestContext:
    """The context of a `POST /v1/responses` that was answered with a background response still queued."""
    ctx = RequestContext(
        request_id="req-bg",
        started=time.perf_counter(),
        method="POST",
        provider=ADAPTERS["openai"],
        raw_path=b"/v1/responses",
        query_string=b"",
        headers=[
            (b"authorization", b"Bearer tg_live_callers_key"),
            (b"content-type", b"application/json"),
            (b"content-length", b"99"),
            (b"accept-encoding", b"gzip"),
            (b"openai-organization", b"org-acme"),
        ],
        receive=None,  # type: ignore[arg-type]
        path="/v1/responses",
        principal=PRINCIPAL,
        body=orjson.dumps(body or REQUEST),
        credential=ResolvedCredential("cred_1", "api_key", Secret(SECRET), shared=False),
        endpoint=Endpoint.RESPONSES,
        status=200,
        upstream_status=200,
    )
    ctx.received_at = time.time()
    ctx.upstream_started = ctx.upstream_responded = ctx.started + 0.001
    ctx.first_byte = ctx.started + 0.002
    ctx.finished = ctx.started + 0.003
    ctx.extraction = Extraction(None, "o3-2025-04-16", 0, "resp_0123abc")
    return ctx


class Credentials:
    """The tenants' credentials as the store resolves them: `secrets[(tenant, provider)]`, or an error."""

    def __init__(self, *secrets: str | Exception) -> None:
        self._secrets = list(secrets)
        self.asked: list[tuple[str, str]] = []

    async def __call__(self, tenant: str, provider: str) -> ResolvedCredential | None:
        self.asked.append((tenant, provider))
        secret = self._secrets.pop(0) if len(self._secrets) > 1 else self._secrets[0]
        if isinstance(secret, Exception):
            raise secret
        return ResolvedCredential("cred_1", "api_key", Secret(secret), shared=False)


def follower(
    upstream: ScriptedUpstream, credentials: Credentials | None = None, **options: Any
) -> BackgroundResponses:
    settings: dict[str, Any] = {"max_wait": 60.0, "max_pending": 10, "first_poll": 0.001, "max_poll": 0.002}
    return BackgroundResponses(
        {"openai": upstream},
        {"openai": Timeouts()},
        credentials or Credentials(SECRET),
        **{**settings, **options},
    )


async def metered(
    upstream: ScriptedUpstream, ctx: RequestContext, credentials: Credentials | None = None, **options: Any
) -> list[UsageRecord]:
    """Observe `ctx` with a meter that follows background responses; the records once it has settled."""
    ledger = ListLedger()
    background = follower(upstream, credentials, **options)
    Meter(PRICES, ledger, background).observe(ctx)  # type: ignore[arg-type]
    while len(background):
        await asyncio.sleep(0.001)
    return ledger.records


# ---------------------------------------------------------------------------------------------------------
# Recognising a background response that has not ended


def test_a_queued_background_response_is_pending_by_its_id() -> None:
    reading = read_responses(response("queued"))

    assert reading.usage is None and reading.pending == "resp_0123abc"


@pytest.mark.parametrize(
    "body",
    [
        response("completed", usage=USAGE),  # ended: its usage is there
        response("queued", background=False),  # not a background response
        response("failed"),  # ended without usage: nothing to wait for
        {**response("queued"), "id": "resp_1/../../files"},  # not an id that may go into a URL
    ],
)
def test_nothing_is_pending_unless_a_background_response_is_still_running(body: dict[str, Any]) -> None:
    assert read_responses(body).pending is None


def test_a_whole_body_reports_the_running_background_response() -> None:
    extractor = extractor_for("openai", Endpoint.RESPONSES, b"application/json", strip_injected_usage=False)
    extractor.feed(orjson.dumps(response("queued")))

    extraction = extractor.finish()

    assert extraction.usage is None and extraction.pending == "resp_0123abc"
    assert extraction.model == "o3-2025-04-16"


def _events(*responses: tuple[str, dict[str, Any]]) -> list[bytes]:
    return [
        b"event: %s\ndata: %s\n\n" % (name.encode(), orjson.dumps({"type": name, "response": body}))
        for name, body in responses
    ]


def test_a_background_stream_cut_before_it_ended_reports_the_response_as_pending() -> None:
    extractor = extractor_for("openai", Endpoint.RESPONSES, b"text/event-stream", strip_injected_usage=False)
    for event in _events(
        ("response.created", response("queued")), ("response.in_progress", response("in_progress"))
    ):
        extractor.feed(event)

    extraction = extractor.finish()

    assert extraction.usage is None and extraction.pending == "resp_0123abc"


def test_a_background_stream_that_ended_reports_its_usage_and_nothing_pending() -> None:
    extractor = extractor_for("openai", Endpoint.RESPONSES, b"text/event-stream", strip_injected_usage=False)
    for event in _events(
        ("response.created", response("queued")), ("response.completed", response("completed", usage=USAGE))
    ):
        extractor.feed(event)

    extraction = extractor.finish()

    assert extraction.usage == REPORTED and extraction.pending is None


# ---------------------------------------------------------------------------------------------------------
# Following it to its end


async def test_the_call_is_recorded_when_the_response_ends_with_the_usage_it_reports() -> None:
    upstream = ScriptedUpstream(
        (200, response("queued")), (200, response("in_progress")), (200, response("completed", usage=USAGE))
    )
    ctx = started_call()

    [record] = await metered(upstream, ctx)

    price = PRICES.price_for("openai", "openai", "o3-2025-04-16")
    assert price is not None
    assert (record.input_tokens, record.output_tokens) == (1200, 5000)
    assert (record.cached_input_tokens, record.reasoning_tokens) == (200, 4000)
    assert record.cost_usd == cost_of(REPORTED, price) and record.cost_usd > 0
    assert not record.estimated and record.status == 200 and record.endpoint == "responses"
    assert (record.request_id, record.tenant_id, record.key_id) == ("req-bg", "acme", "key_1")
    assert record.created_at == ctx.received_at
    assert len(upstream.requests) == 3 and all(answer.closed for answer in upstream.answers)


async def test_the_polls_go_to_the_response_with_the_tenants_credential_and_not_the_callers_key() -> None:
    upstream = ScriptedUpstream((200, response("completed", usage=USAGE)))

    await metered(upstream, started_call())

    [poll] = upstream.requests
    headers = dict(poll.headers)
    assert (poll.method, poll.url, poll.body) == (
        "GET",
        "https://api.openai.com/v1/responses/resp_0123abc",
        b"",
    )
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert headers["openai-organization"] == "org-acme" and headers["x-request-id"] == "req-bg"
    assert not {"content-type", "content-length"} & set(headers)
    assert headers["accept-encoding"] == "identity"  # not the caller's gzip: the body is read here
    assert all("tg_live" not in value for value in headers.values())


@pytest.mark.parametrize(
    ("query", "polled"),
    [
        (b"stream=true", ""),  # would answer the poll with a stream of events, never an ended response
        (b"api-version=2025-04-01-preview&stream=true&key=tg_live_x", "?api-version=2025-04-01-preview"),
        (b"include[]=reasoning.encrypted_content", ""),
    ],
)
async def test_a_poll_keeps_only_the_api_version_of_the_call_s_query(query: bytes, polled: str) -> None:
    upstream = ScriptedUpstream((200, response("completed", usage=USAGE)))
    ctx = started_call()
    ctx.query_string = query

    [record] = await metered(upstream, ctx)

    [poll] = upstream.requests
    assert poll.url == "https://api.openai.com/v1/responses/resp_0123abc" + polled
    assert not record.estimated


async def test_each_poll_presents_the_credential_the_tenant_has_then() -> None:
    upstream = ScriptedUpstream((200, response("in_progress")), (200, response("completed", usage=USAGE)))
    credentials = Credentials("sk-before-rotation", "sk-after-rotation")

    [record] = await metered(upstream, started_call(), credentials)

    presented = [dict(poll.headers)["authorization"] for poll in upstream.requests]
    assert presented == ["Bearer sk-before-rotation", "Bearer sk-after-rotation"]
    assert credentials.asked == [("acme", "openai")] * 2 and record.output_tokens == 5000


async def test_while_the_credential_store_is_down_polling_goes_on() -> None:
    upstream = ScriptedUpstream((200, response("completed", usage=USAGE)))
    credentials = Credentials(StorageUnavailable("database error"), SECRET)

    [record] = await metered(upstream, started_call(), credentials)

    assert len(upstream.requests) == 1 and not record.estimated


async def test_the_decrypted_credential_is_not_kept_while_the_response_runs() -> None:
    upstream = ScriptedUpstream((200, response("in_progress")))
    background = follower(upstream)
    kept: list[RequestContext] = []

    background.follow(started_call(), "resp_0123abc", lambda ctx, _ended: kept.append(ctx))
    await background.close()

    [ctx] = kept
    assert ctx.credential is None and ctx.body == b"" and ctx.headers == [] and ctx.query_string == b""
    assert ctx.principal == PRINCIPAL and ctx.request_id == "req-bg"


async def test_a_poll_answered_429_with_retry_after_waits_as_long_before_the_next() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    class Busy(ScriptedUpstream):
        async def send(self, request: UpstreamRequest) -> Answer:
            answer = await super().send(request)
            if answer.status == 429:
                answer.headers = [(b"Retry-After", b"20")]
            return answer

    upstream = Busy((429, {}), (200, response("in_progress")), (200, response("completed", usage=USAGE)))

    [record] = await metered(upstream, started_call(), first_poll=2.0, max_poll=30.0, sleep=sleep)

    assert waits == [2.0, 20.0, 4.5] and not record.estimated  # 2, then 3 asked up to 20, then 2 x 1.5^2


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(b"20", 20.0), (b" 7 ", 7.0), (b"Wed, 21 Oct 2015 07:28:00 GMT", 0.0), (b"soon", None), (b"-3", None)],
)
def test_retry_after_is_read_in_seconds_or_as_a_date(value: bytes, seconds: float | None) -> None:
    assert retry_after([(b"content-type", b"application/json"), (b"retry-after", value)]) == seconds


@pytest.mark.parametrize("unreachable", [UpstreamUnavailable("down"), (503, {"error": {}}), (429, {})])
async def test_polls_that_fail_are_tried_again(unreachable: tuple[int, dict[str, Any]] | Exception) -> None:
    upstream = ScriptedUpstream(unreachable, unreachable, (200, response("completed", usage=USAGE)))

    [record] = await metered(upstream, started_call())

    assert record.output_tokens == 5000 and not record.estimated


async def test_a_response_the_provider_no_longer_knows_is_recorded_estimated() -> None:
    upstream = ScriptedUpstream((200, response("in_progress")), (404, {"error": {"message": "not found"}}))

    [record] = await metered(upstream, started_call())

    assert record.estimated and record.input_tokens > 0 and record.output_tokens == 0
    assert record.cost_usd is not None and record.cost_usd > 0


async def test_a_response_that_ended_without_usage_is_recorded_estimated() -> None:
    upstream = ScriptedUpstream((200, response("failed")))

    [record] = await metered(upstream, started_call())

    assert record.estimated and record.input_tokens > 0


async def test_a_response_that_ended_without_usage_has_its_text_estimated_as_output() -> None:
    text = "Otters hold hands while they sleep. " * 100
    ended = {
        **response("incomplete"),
        "output": [{"type": "message", "content": [{"type": "output_text", "text": text}]}],
    }
    upstream = ScriptedUpstream((200, ended))

    [record] = await metered(upstream, started_call())

    assert record.estimated and record.output_tokens == -(-len(text) // 4)


async def test_a_response_still_running_after_the_longest_wait_is_recorded_estimated() -> None:
    upstream = ScriptedUpstream((200, response("in_progress")))

    [record] = await metered(upstream, started_call(), max_wait=0.01)

    assert record.estimated and len(upstream.requests) >= 2


async def test_shutting_down_records_every_call_still_followed_estimated() -> None:
    upstream = ScriptedUpstream((200, response("in_progress")))
    ledger = ListLedger()
    background = follower(upstream)
    meter = Meter(PRICES, ledger, background)  # type: ignore[arg-type]
    meter.observe(started_call())
    meter.observe(started_call())
    await asyncio.sleep(0.01)
    assert ledger.records == [] and len(background) == 2

    await background.close()

    assert len(ledger.records) == 2 and all(record.estimated for record in ledger.records)
    assert len(background) == 0


async def test_a_response_that_ended_before_shutdown_is_recorded_exactly_at_a_last_poll() -> None:
    upstream = ScriptedUpstream((200, response("completed", usage=USAGE)))
    ledger = ListLedger()
    background = follower(upstream, first_poll=3600.0)
    Meter(PRICES, ledger, background).observe(started_call())  # type: ignore[arg-type]
    await asyncio.sleep(0.01)  # following: its first poll an hour away

    await background.close()

    [record] = ledger.records
    assert not record.estimated and record.output_tokens == 5000 and len(upstream.requests) == 1


async def test_a_call_followed_just_before_shutdown_gets_its_last_poll_too() -> None:
    upstream = ScriptedUpstream((200, response("completed", usage=USAGE)))
    ledger = ListLedger()
    background = follower(upstream)
    Meter(PRICES, ledger, background).observe(started_call())  # type: ignore[arg-type]

    await background.close()  # at once: the task that would poll has not run a step

    [record] = ledger.records
    assert not record.estimated and len(upstream.requests) == 1


async def test_a_last_poll_that_gets_no_answer_in_time_leaves_the_call_estimated() -> None:
    class Silent(ScriptedUpstream):
        async def send(self, request: UpstreamRequest) -> Answer:
            self.requests.append(request)
            await asyncio.Event().wait()  # never answers
            raise AssertionError("unreachable")

    upstream = Silent()
    ledger = ListLedger()
    background = follower(upstream, first_poll=3600.0, last_poll=0.01)
    Meter(PRICES, ledger, background).observe(started_call())  # type: ignore[arg-type]

    await background.close()

    [record] = ledger.records
    assert record.estimated and len(upstream.requests) == 1


def deleting(response_id: str, tenant: str = "acme") -> RequestContext:
    """The context of the caller's `DELETE /v1/responses/{response_id}`, authenticated, not yet sent."""
    return RequestContext(
        request_id="req-delete",
        started=time.perf_counter(),
        method="DELETE",
        provider=ADAPTERS["openai"],
        raw_path=f"/v1/responses/{response_id}".encode(),
        query_string=b"",
        headers=[],
        receive=None,  # type: ignore[arg-type]
        path=f"/v1/responses/{response_id}",
        principal=replace(PRINCIPAL, tenant_id=tenant),
    )


async def test_a_followed_response_the_caller_deletes_is_polled_first_and_recorded_exactly() -> None:
    upstream = ScriptedUpstream((200, response("completed", usage=USAGE)))
    ledger = ListLedger()
    background = follower(upstream, first_poll=3600.0)
    Meter(PRICES, ledger, background).observe(started_call())  # type: ignore[arg-type]
    await asyncio.sleep(0.01)  # following: its first poll an hour away

    await PrepareMetering(frozenset(), StreamUsageRefusals(), background)(deleting("resp_0123abc"))

    [record] = ledger.records
    assert not record.estimated and record.output_tokens == 5000
    assert len(background) == 0 and len(upstream.requests) == 1


async def test_deleting_another_tenants_or_an_unknown_response_polls_nothing() -> None:
    upstream = ScriptedUpstream((200, response("completed", usage=USAGE)))
    ledger = ListLedger()
    background = follower(upstream, first_poll=3600.0)
    Meter(PRICES, ledger, background).observe(started_call())  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    prepare = PrepareMetering(frozenset(), StreamUsageRefusals(), background)

    await prepare(deleting("resp_0123abc", tenant="globex"))
    await prepare(deleting("resp_other"))

    assert ledger.records == [] and upstream.requests == [] and len(background) == 1
    await background.close()


async def test_past_the_bound_a_call_is_recorded_at_once_estimated() -> None:
    upstream = ScriptedUpstream((200, response("in_progress")))
    ledger = ListLedger()
    background = follower(upstream, max_pending=1)
    meter = Meter(PRICES, ledger, background)  # type: ignore[arg-type]

    meter.observe(started_call())
    meter.observe(started_call())

    [record] = ledger.records
    assert record.estimated and len(background) == 1
    await background.close()


async def test_the_settled_usage_is_shown_to_the_hooks() -> None:
    upstream = ScriptedUpstream((200, response("completed", usage=USAGE)))
    seen: list[TokenUsage | None] = []

    await metered(upstream, started_call(), on_settled=[lambda ctx: seen.append(ctx.usage)])

    assert seen == [REPORTED]


def test_without_a_follower_the_call_is_recorded_at_once_estimated() -> None:
    ledger = ListLedger()

    Meter(PRICES, ledger).observe(started_call())  # type: ignore[arg-type]

    [record] = ledger.records
    assert record.estimated and record.output_tokens == 0
