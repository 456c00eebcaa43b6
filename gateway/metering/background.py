"""Background responses: metered when they end, not when the call that started them does.

An OpenAI Responses API request with `"background": true` is answered at once, the response `queued` or
`in_progress` (or, streamed, with events until the caller lets go), and runs on at the provider, which
bills it when it ends. The caller learns the outcome by polling `GET .../responses/{id}`, by a webhook,
or not at all. Recorded when its call ended, such a call would cost nothing, or an estimate of its
input alone; the most expensive calls there are (deep research, `-pro` models) run this way.

So the meter hands such a call here, and `BackgroundResponses` follows the response itself: it polls
the provider at the URL the call was made to plus `/{id}`, with the call's own headers and the tenant's
credential (resolved again for each poll, as a call resolves it: a rotated key is used once stored, and
no decrypted secret is held for the hours a response may run), and writes the call's one ledger record
(its time, tenant, key and duration, as every record) once the provider says how the response ended:

* the first poll after `first_poll` seconds, then `BACKOFF` times longer each time, up to `max_poll`,
  or longer when the provider asks (a 429 or 503 with `Retry-After`);
* an ended response (`completed`, `incomplete`, `failed`, `cancelled`) is recorded with the usage it
  reports, exactly; one that reports none gets the estimate metering makes of any call without usage,
  its output estimated from the text the ended response holds;
* when the gateway shuts down, every response still followed is polled once more, at once and
  together (for `last_poll` seconds at most): one that has ended by then is recorded exactly;
* a response the provider no longer knows (404, 410: a background response made with `store: false`
  is kept about ten minutes), one still running after `max_wait` seconds or at that last poll are
  recorded with that estimate, flagged `estimated`, and logged: never dropped, never recorded as free;
* at most `max_pending` responses are followed at once; the call of one more is recorded at once,
  estimated (and logged).

Polls are not calls: they leave no record of their own, and an error while polling (the upstream or the
credential store down, 429, 5xx) only means another poll later. The caller's own polls are reads,
recorded as unmetered calls like every read, so each background response is counted once; a caller's
`DELETE .../responses/{id}` of a response still followed waits for one poll first (`before_delete`), so
a response read and deleted between two polls is still recorded with the usage it ended with. What is
followed lives in this process: a gateway killed without a shutdown loses it, as it loses the ledger's
queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from gateway.auth.extract import query_without_key
from gateway.context import RequestContext
from gateway.credentials.store import CredentialUnreadable, ResolvedCredential
from gateway.errors import GatewayError
from gateway.metering.extractors.base import loads
from gateway.metering.extractors.openai import read_responses
from gateway.metering.usage import Extraction
from gateway.pipeline.forward import headers_for_upstream
from gateway.settings.schema import Timeouts
from gateway.storage.errors import StorageError
from gateway.types import Message
from gateway.upstream.transport import Transport, UpstreamRequest, UpstreamResponse

logger = logging.getLogger("tollgate.metering")

ENDED = frozenset({"completed", "incomplete", "failed", "cancelled"})
GONE_STATUSES = frozenset({404, 410})
FIRST_POLL = 2.0  # seconds
BACKOFF = 1.5
MAX_POLL = 30.0  # seconds
LAST_POLL = 5.0  # seconds: the longest the last polls at shutdown may take, together
WAIT_STATUSES = frozenset({429, 503})  # whose Retry-After says when to poll again
MAX_BODY = 32 * 1024 * 1024  # bytes of a polled response read at most
# The request's own headers that do not belong on a GET without a body.
BODY_HEADERS = frozenset({"content-type", "content-encoding"})
# The only query parameter a retrieve keeps of its call's (Azure OpenAI's API version): others, such as
# `stream=true`, would change what the provider answers.
KEPT_QUERY = "api-version"

# Called once per followed response: the call's context, and what the provider said when the response
# ended (None: its end was not seen). It writes the call's record.
Settle = Callable[[RequestContext, Extraction | None], None]
# The credential to present for a tenant's calls to a provider (`CredentialStore.resolve`).
Credentials = Callable[[str, str], Awaitable[ResolvedCredential | None]]


class _Gone(Exception):
    """The provider no longer knows the response."""


class _Later(Exception):
    """The provider asks to be polled again no sooner than `seconds` from now."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


@dataclass(frozen=True, slots=True)
class _Followed:
    ctx: RequestContext
    request: UpstreamRequest
    settle: Settle
    response_id: str


class BackgroundResponses:
    """The background responses being followed to their end, each by a task of its own."""

    def __init__(
        self,
        transports: Mapping[str, Transport],
        timeouts: Mapping[str, Timeouts],
        credentials: Credentials,
        *,
        max_wait: float,
        max_pending: int,
        first_poll: float = FIRST_POLL,
        max_poll: float = MAX_POLL,
        last_poll: float = LAST_POLL,
        on_settled: Sequence[Callable[[RequestContext], None]] = (),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._transports = transports
        self._timeouts = timeouts
        self._credentials = credentials
        self._max_wait = max_wait
        self._max_pending = max_pending
        self._first_poll = first_poll
        self._max_poll = max_poll
        self._last_poll = last_poll
        self._on_settled = tuple(on_settled)
        self._clock = clock
        self._sleep = sleep
        self._tasks: dict[asyncio.Task[Extraction | None], _Followed] = {}
        self._closed = False
        self._stopped: list[_Followed] = []  # followed when shutdown stopped them: polled a last time

    def __len__(self) -> int:
        """Responses being followed."""
        return len(self._tasks)

    def follow(self, ctx: RequestContext, response_id: str, settle: Settle) -> bool:
        """Follow the background response `response_id` that `ctx`'s call started, and `settle` the call
        when it ends; False (nothing followed) when `max_pending` are followed already or shutting down."""
        if self._closed or len(self._tasks) >= self._max_pending:
            logger.warning(
                "background response not followed: the call is recorded now, estimated",
                extra={"fields": {"request_id": ctx.request_id, "following": len(self._tasks)}},
            )
            return False
        request = retrieve_request(ctx, response_id, self._timeouts[ctx.provider.name])
        # Only what the record needs is kept while the response runs: not the request's body, headers
        # or query (which may hold the caller's key), the decrypted credential, or the connection.
        kept = replace(
            ctx,
            headers=[],
            query_string=b"",
            body=b"",
            body_before_injection=b"",
            receive=_nothing_to_receive,
            tap=None,
            credential=None,
            _json=None,
        )
        followed = _Followed(kept, request, settle, response_id)
        task = asyncio.get_running_loop().create_task(self._until_ended(followed))
        self._tasks[task] = followed
        task.add_done_callback(self._ended)
        return True

    async def before_delete(self, ctx: RequestContext) -> None:
        """`ctx` deletes a response (`DELETE .../responses/{id}`): if it is one this tenant's call started
        and still followed, poll it now, and record its call if it has ended, before it is gone."""
        base, _, response_id = ctx.path.rstrip("/").rpartition("/")
        principal = ctx.principal
        if not base.endswith("/responses") or principal is None:
            return
        found = next(
            (
                (task, followed)
                for task, followed in self._tasks.items()
                if followed.response_id == response_id and _same_owner(followed.ctx, ctx, principal.tenant_id)
            ),
            None,
        )
        if found is None:
            return
        task, followed = found
        try:
            async with asyncio.timeout(self._last_poll):
                ended = await self._poll(followed)
        except (TimeoutError, _Gone, _Later):
            return
        if ended is None or task.done() or self._tasks.get(task) is not followed:
            return
        del self._tasks[task]
        task.remove_done_callback(self._ended)
        task.cancel()
        self._settle(followed, ended)

    async def close(self) -> None:
        """Stop following: every response still followed is polled a last time, and its call recorded,
        exactly if it has ended, else estimated (see the module's docstring)."""
        self._closed = True
        tasks = list(self._tasks)
        if not tasks:
            return
        logger.warning(
            "shutting down with background responses followed: polling each a last time",
            extra={"fields": {"count": len(tasks)}},
        )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # `_ended` keeps the stopped ones
        stopped, self._stopped = self._stopped, []
        ended = await self._last_polls(stopped)
        for followed, extraction in zip(stopped, ended, strict=True):
            if extraction is None:
                self._log_unseen(followed, "still running when the gateway shut down")
            self._settle(followed, extraction)

    async def _last_polls(self, stopped: list[_Followed]) -> list[Extraction | None]:
        """What one more poll of each says, all at once, for `last_poll` seconds at most."""
        polls = [asyncio.ensure_future(self._poll(followed)) for followed in stopped]
        done, pending = await asyncio.wait(polls, timeout=self._last_poll) if polls else (set(), set())
        for poll in pending:
            poll.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return [
            poll.result() if poll in done and not poll.cancelled() and poll.exception() is None else None
            for poll in polls
        ]

    def _ended(self, task: asyncio.Task[Extraction | None]) -> None:
        """Record the call of a response followed to its end, or not (cancelled at shutdown, even before
        its first poll; a bug): the call is recorded either way."""
        followed = self._tasks.pop(task)
        if task.cancelled() and self._closed:
            self._stopped.append(followed)  # `close` polls it a last time and records it
            return
        ended = None
        if not task.cancelled():
            if task.exception() is None:
                ended = task.result()
            else:
                logger.error(
                    "following a background response failed",
                    exc_info=task.exception(),
                    extra={"fields": {"request_id": followed.ctx.request_id}},
                )
        self._settle(followed, ended)

    async def _until_ended(self, followed: _Followed) -> Extraction | None:
        deadline = self._clock() + self._max_wait
        delay = self._first_poll
        wait = delay
        while True:
            await self._sleep(wait)
            try:
                ended = await self._poll(followed)
            except _Gone:
                self._log_unseen(followed, "the provider no longer knows the response")
                return None
            except _Later as later:
                ended, wait = None, max(delay, later.seconds)
            else:
                wait = delay
            if ended is not None:
                return ended
            if self._clock() + wait > deadline:
                self._log_unseen(followed, "still running after metering.background_max_wait_seconds")
                return None
            delay = min(delay * BACKOFF, self._max_poll)
            wait = max(wait, delay)

    async def _poll(self, followed: _Followed) -> Extraction | None:
        """What the provider says of an ended response, else None (running, or no answer this time)."""
        ctx = followed.ctx
        try:
            request = await self._with_credential(ctx, followed.request)
            response = await self._transports[ctx.provider.name].send(request)
        except (GatewayError, StorageError, CredentialUnreadable):
            return None
        try:
            if response.status in GONE_STATUSES:
                raise _Gone
            if response.status in WAIT_STATUSES:
                seconds = retry_after(response.headers)
                if seconds is not None:
                    raise _Later(seconds)
            if response.status >= 300:
                return None
            body = await _read(response)
        except GatewayError:
            return None
        finally:
            await response.aclose()
        payload = loads(body) if body is not None else None
        if type(payload) is not dict or payload.get("status") not in ENDED:
            return None
        reading = read_responses(payload)
        return Extraction(reading.usage, reading.model, reading.chars)

    async def _with_credential(self, ctx: RequestContext, request: UpstreamRequest) -> UpstreamRequest:
        """`request` with the credential the tenant's calls to the provider present now, if any."""
        adapter, principal = ctx.provider, ctx.principal
        if adapter.credential_mode == "none" or principal is None:
            return request
        credential = await self._credentials(principal.tenant_id, adapter.name)
        if credential is None:
            return request
        header = adapter.credential.header_for(credential.secret.reveal())
        return replace(request, headers=[*request.headers, header])

    def _settle(self, followed: _Followed, ended: Extraction | None) -> None:
        ctx = followed.ctx
        try:
            followed.settle(ctx, ended)
            for hook in self._on_settled:
                hook(ctx)
        except Exception:  # a bug here must not take the other followed responses with it
            logger.exception(
                "settling a background response failed", extra={"fields": {"request_id": ctx.request_id}}
            )
            return
        logger.info(
            "background response ended",
            extra={
                "fields": {
                    "request_id": ctx.request_id,
                    "estimated": ctx.usage_estimated,
                    "cost_usd": None if ctx.cost_usd is None else str(ctx.cost_usd),
                }
            },
        )

    def _log_unseen(self, followed: _Followed, why: str) -> None:
        logger.warning(
            "background response's end not seen: its call is recorded estimated",
            extra={"fields": {"request_id": followed.ctx.request_id, "reason": why}},
        )


def _same_owner(started: RequestContext, ctx: RequestContext, tenant_id: str) -> bool:
    """Whether `started` was a call of the tenant `tenant_id` to the provider `ctx` calls."""
    principal = started.principal
    same_tenant = principal is not None and principal.tenant_id == tenant_id
    return same_tenant and started.provider.name == ctx.provider.name


def retrieve_request(ctx: RequestContext, response_id: str, timeouts: Timeouts) -> UpstreamRequest:
    """The GET that retrieves response `response_id` from the provider `ctx`'s call went to, with the
    call's headers (less those of its body), without a credential yet."""
    path = f"{ctx.path.rstrip('/')}/{response_id}"
    url = ctx.provider.upstream_url(path, _retrieve_query(ctx.query_string))
    headers = [(name, value) for name, value in headers_for_upstream(ctx, None) if name not in BODY_HEADERS]
    return UpstreamRequest("GET", url, headers, b"", timeouts)


def _retrieve_query(query_string: bytes) -> str:
    """Of the call's query string, what a retrieve of its response keeps: the API version, if any."""
    kept = [
        part for part in query_without_key(query_string).split("&") if part.partition("=")[0] == KEPT_QUERY
    ]
    return "&".join(kept)


def retry_after(headers: Sequence[tuple[bytes, bytes]]) -> float | None:
    """The seconds a `Retry-After` header asks to wait (a number of seconds or an HTTP date), if any."""
    for name, value in headers:
        if name.lower() != b"retry-after":
            continue
        text = value.decode("latin-1").strip()
        if text.isdigit():
            return float(text)
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            return None
        return max((moment - datetime.now(UTC)).total_seconds(), 0.0)
    return None


async def _nothing_to_receive() -> Message:
    return {"type": "http.disconnect"}


async def _read(response: UpstreamResponse) -> bytes | None:
    """The whole body, or None past `MAX_BODY` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.chunks():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
