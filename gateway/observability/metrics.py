"""Prometheus metrics, kept in a registry of the app's own (no module-level state).

Label values are bounded: providers come from configuration, models are reported only when the
price table knows them (else `other`), statuses are HTTP codes. Key ids, user ids and tenants are
never labels; per-tenant numbers live in the usage ledger.

The numbers are plain Python tallies, updated without locks: every update and every read happens
on the event loop's thread. prometheus-client's own metric objects take a lock per update and walk
a histogram's buckets in Python, ~8 µs a request; here a request costs about a microsecond. The
gateway is the registry's collector: it turns the tallies into metric families when /metrics is
read, and prometheus-client renders them (no `_created` samples).

A server of several worker processes shares each worker's tallies through a directory (see
`observability.workers`), and every scrape shows their sums.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from decimal import Decimal
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.utils import floatToGoString

from gateway.context import RequestContext
from gateway.metering.usage import TokenUsage
from gateway.observability.workers import WorkerDirectory

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# The `le` label values, spelled as prometheus-client spells them ("1.0", "0.005"), +Inf last.
_LE = (*(floatToGoString(bound) for bound in _LATENCY_BUCKETS), "+Inf")  # type: ignore[no-untyped-call]
_TOKEN_KINDS = ("input", "output", "cached_input", "cache_write", "reasoning")


class _Histogram:
    """One label set's histogram: a count per bucket, not cumulative (the last is +Inf), and a sum."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * len(_LE)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # A bucket holds the values up to its bound, inclusive: the first bound >= value, if any.
        self.counts[bisect_left(_LATENCY_BUCKETS, value)] += 1
        self.sum += value

    def add_to(self, family: HistogramMetricFamily, labels: list[str]) -> None:
        if any(self.counts):
            family.add_metric(labels, list(zip(_LE, accumulate(self.counts), strict=True)), self.sum)

    def to_json(self) -> dict[str, Any]:
        return {"counts": self.counts, "sum": self.sum}

    def absorb(self, data: dict[str, Any]) -> None:
        counts = data["counts"]
        if len(counts) != len(self.counts):
            raise ValueError("histogram buckets differ")
        self.counts = [mine + int(theirs) for mine, theirs in zip(self.counts, counts, strict=True)]
        self.sum += float(data["sum"])


class _ModelTally:
    """One (provider, model)'s requests by status, tokens by kind (as `_TOKEN_KINDS`), web searches
    and cost."""

    __slots__ = ("cost", "requests", "searches", "tokens")

    def __init__(self) -> None:
        self.requests: dict[int, int] = {}
        self.tokens = [0] * len(_TOKEN_KINDS)
        self.cost = Decimal(0)  # summed exactly (and cheaper than a float() per request)
        self.searches = 0

    def add_tokens(self, usage: TokenUsage) -> None:
        # Unrolled, as the hot path wants; counters only go up.
        tokens = self.tokens
        if usage.input_tokens > 0:
            tokens[0] += usage.input_tokens
        if usage.output_tokens > 0:
            tokens[1] += usage.output_tokens
        if usage.cached_input_tokens > 0:
            tokens[2] += usage.cached_input_tokens
        if usage.cache_write_tokens > 0:
            tokens[3] += usage.cache_write_tokens
        if usage.reasoning_tokens > 0:
            tokens[4] += usage.reasoning_tokens
        if usage.web_searches > 0:
            self.searches += usage.web_searches

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": {str(status): count for status, count in self.requests.items()},
            "tokens": self.tokens,
            "cost": str(self.cost),
            "searches": self.searches,
        }

    def absorb(self, data: dict[str, Any]) -> None:
        for status, count in data["requests"].items():
            self.requests[int(status)] = self.requests.get(int(status), 0) + int(count)
        tokens = data["tokens"]
        if len(tokens) != len(self.tokens):
            raise ValueError("token kinds differ")
        self.tokens = [mine + int(theirs) for mine, theirs in zip(self.tokens, tokens, strict=True)]
        self.cost += Decimal(data["cost"])
        self.searches += int(data["searches"])


class _ProviderTally:
    """One provider's latencies, estimated and unpriced calls, and its models' tallies."""

    __slots__ = ("estimated", "models", "request_seconds", "ttfb_seconds", "unpriced", "upstream_seconds")

    def __init__(self) -> None:
        self.request_seconds = _Histogram()
        self.upstream_seconds = _Histogram()
        self.ttfb_seconds = _Histogram()
        self.estimated = 0
        self.unpriced = 0
        self.models: dict[str, _ModelTally] = {}

    def model(self, model: str) -> _ModelTally:
        found = self.models.get(model)
        if found is None:
            found = self.models[model] = _ModelTally()
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "request_seconds": self.request_seconds.to_json(),
            "upstream_seconds": self.upstream_seconds.to_json(),
            "ttfb_seconds": self.ttfb_seconds.to_json(),
            "estimated": self.estimated,
            "unpriced": self.unpriced,
            "models": {model: tally.to_json() for model, tally in self.models.items()},
        }

    def absorb(self, data: dict[str, Any]) -> None:
        self.request_seconds.absorb(data["request_seconds"])
        self.upstream_seconds.absorb(data["upstream_seconds"])
        self.ttfb_seconds.absorb(data["ttfb_seconds"])
        self.estimated += int(data["estimated"])
        self.unpriced += int(data["unpriced"])
        for model, tally in data["models"].items():
            self.model(str(model)).absorb(tally)


class _FunctionGauge:
    """A gauge read from a function at each scrape (`set_function`, as prometheus-client's Gauge)."""

    __slots__ = ("_read",)

    def __init__(self) -> None:
        self._read: Callable[[], float] = lambda: 0.0

    def set_function(self, read: Callable[[], float]) -> None:
        self._read = read

    def get(self) -> float:
        return self._read()


_HISTOGRAMS: tuple[tuple[str, str, Callable[[_ProviderTally], _Histogram]], ...] = (
    (
        "tollgate_request_duration_seconds",
        "Whole request, streaming included",
        lambda tally: tally.request_seconds,
    ),
    (
        "tollgate_upstream_duration_seconds",
        "From sending upstream to the last byte",
        lambda tally: tally.upstream_seconds,
    ),
    (
        "tollgate_time_to_first_byte_seconds",
        "From sending upstream to the first body byte",
        lambda tally: tally.ttfb_seconds,
    ),
)


class GatewayMetrics:
    """The tallies, and the registry's collector that exposes them."""

    def __init__(self, workers: WorkerDirectory | None = None) -> None:
        """`workers`: the directory this server's worker processes share their tallies in, if it has
        several; a scrape then shows the sums of all of them."""
        self._providers: dict[str, _ProviderTally] = {}
        self._dropped: dict[str, int] = {}
        self._stale: dict[str, int] = {}  # cache -> lookups answered stale (see `count_stale`)
        self.ledger_depth = _FunctionGauge()
        self.background_followed = _FunctionGauge()
        self.workers = workers
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self)

    def tally(self, provider: str) -> _ProviderTally:
        found = self._providers.get(provider)
        if found is None:
            found = self._providers[provider] = _ProviderTally()
        return found

    def count_tokens(self, provider: str, model: str, usage: TokenUsage) -> None:
        self.tally(provider).model(model).add_tokens(usage)

    def count_cost(self, provider: str, model: str, cost: Decimal) -> None:
        if cost > 0:
            self.tally(provider).model(model).cost += cost

    def count_dropped(self, reason: str, count: int) -> None:
        if count > 0:
            self._dropped[reason] = self._dropped.get(reason, 0) + count

    def count_stale(self, cache: str) -> None:
        """A lookup of `cache` ("keys", "credentials") was answered with a value past its TTL, the
        database being unreachable (`stale_if_error`): how long and how much an outage was bridged."""
        self._stale[cache] = self._stale.get(cache, 0) + 1

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def snapshot(self) -> dict[str, Any]:
        """This process's tallies as plain data (JSON), as `publish` writes them for the other workers."""
        return {
            "providers": {name: tally.to_json() for name, tally in self._providers.items()},
            "dropped": self._dropped,
            "stale": self._stale,
            "ledger_depth": self.ledger_depth.get(),
            "background_followed": self.background_followed.get(),
        }

    def publish(self) -> None:
        """Write this worker's tallies where the other workers' scrapes read them (if it has peers)."""
        if self.workers is not None:
            self.workers.publish(self.snapshot())

    def collect(self) -> Iterator[Metric]:
        """The metric families, in a fixed order; a label set appears once it has counted something."""
        if self.workers is None:
            return self._families(
                self._providers,
                self._dropped,
                self._stale,
                self.ledger_depth.get(),
                self.background_followed.get(),
            )
        return self._summed_over_workers(self.workers)

    def _summed_over_workers(self, workers: WorkerDirectory) -> Iterator[Metric]:
        providers: dict[str, _ProviderTally] = {}
        dropped: dict[str, int] = {}
        stale: dict[str, int] = {}
        depth, followed = 0.0, 0.0
        for peer in [None, *workers.peers()]:
            data = self.snapshot() if peer is None else peer.data
            try:  # read whole before adding anything: a malformed file adds nothing
                their_providers, their_dropped = _tallies_of(data)
                their_stale = _counts_of(data.get("stale", {}))  # absent from an older worker's file
                their_depth, their_followed = float(data["ledger_depth"]), float(data["background_followed"])
            except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
                workers.unreadable(peer.file_name if peer else "self", f"malformed: {type(exc).__name__}")
                continue
            for name, tally in their_providers.items():
                providers.setdefault(name, _ProviderTally()).absorb(tally.to_json())
            for reason, count in their_dropped.items():
                dropped[reason] = dropped.get(reason, 0) + count
            for cache, count in their_stale.items():
                stale[cache] = stale.get(cache, 0) + count
            if peer is None or peer.alive:  # a worker that has exited queues and follows nothing
                depth += their_depth
                followed += their_followed
        return self._families(providers, dropped, stale, depth, followed)

    def _families(
        self,
        tallies: dict[str, _ProviderTally],
        dropped_by_reason: dict[str, int],
        stale_by_cache: dict[str, int],
        ledger_depth: float,
        background_followed: float,
    ) -> Iterator[Metric]:
        providers = list(tallies.items())
        requests = CounterMetricFamily(
            "tollgate_requests", "Proxied requests", labels=["provider", "model", "status"]
        )
        tokens = CounterMetricFamily(
            "tollgate_tokens", "Tokens metered", labels=["provider", "model", "kind"]
        )
        cost = CounterMetricFamily(
            "tollgate_cost_usd", "Cost metered, in US dollars", labels=["provider", "model"]
        )
        searches = CounterMetricFamily(
            "tollgate_web_searches",
            "Web searches providers ran for the calls and billed apiece",
            labels=["provider", "model"],
        )
        for provider, tally in providers:
            for model, counts in tally.models.items():
                for status, count in counts.requests.items():
                    requests.add_metric([provider, model, str(status)], count)
                for kind, count in zip(_TOKEN_KINDS, counts.tokens, strict=True):
                    if count:
                        tokens.add_metric([provider, model, kind], count)
                if counts.cost:
                    cost.add_metric([provider, model], float(counts.cost))
                if counts.searches:
                    searches.add_metric([provider, model], counts.searches)
        yield requests
        for name, documentation, histogram in _HISTOGRAMS:
            family = HistogramMetricFamily(name, documentation, labels=["provider"])
            for provider, tally in providers:
                histogram(tally).add_to(family, [provider])
            yield family
        yield tokens
        yield cost
        yield searches
        estimated = CounterMetricFamily(
            "tollgate_usage_estimated", "Calls whose usage was estimated (none reported)", labels=["provider"]
        )
        unpriced = CounterMetricFamily(
            "tollgate_usage_unpriced",
            "Calls recorded with cost null: no price for the model or its processing tier",
            labels=["provider"],
        )
        for provider, tally in providers:
            if tally.estimated:
                estimated.add_metric([provider], tally.estimated)
            if tally.unpriced:
                unpriced.add_metric([provider], tally.unpriced)
        yield estimated
        yield unpriced
        yield _counter_by(
            "tollgate_ledger_records_dropped",
            "Usage records that never reached the ledger",
            "reason",
            dropped_by_reason,
        )
        yield _counter_by(
            "tollgate_stale_served",
            "Lookups answered with a cached value past its TTL while the database could not be reached",
            "cache",
            stale_by_cache,
        )
        yield GaugeMetricFamily(
            "tollgate_ledger_queue_depth", "Usage records waiting for the database", ledger_depth
        )
        yield GaugeMetricFamily(
            "tollgate_background_responses_followed",
            "OpenAI background responses followed to their end, their calls not recorded yet",
            background_followed,
        )


def _counter_by(name: str, documentation: str, label: str, counts: dict[str, int]) -> CounterMetricFamily:
    """A counter family of one label, a sample for each value counted."""
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family


def _tallies_of(data: dict[str, Any]) -> tuple[dict[str, _ProviderTally], dict[str, int]]:
    """One worker's tallies and dropped counts, from its `GatewayMetrics.snapshot()`."""
    providers: dict[str, _ProviderTally] = {}
    for name, tally in data["providers"].items():
        providers.setdefault(str(name), _ProviderTally()).absorb(tally)
    return providers, _counts_of(data["dropped"])


def _counts_of(data: dict[str, Any]) -> dict[str, int]:
    """Counts by name, from a worker's snapshot."""
    return {str(name): int(count) for name, count in data.items()}


class RequestMetrics:
    """Observer: request counts and latencies, and (from the meter's findings) tokens and cost."""

    def __init__(self, metrics: GatewayMetrics, model_label: Callable[[str, str, str | None], str]) -> None:
        self._metrics = metrics
        self._providers = metrics._providers
        self._model_label = model_label

    def observe(self, ctx: RequestContext) -> None:
        # Every request passes here: the tallies are looked up in place, the methods that create
        # them called only the first time (a call costs ~60 ns; tallies are always truthy).
        adapter, usage, status, cost = ctx.provider, ctx.usage, ctx.status, ctx.cost_usd
        tally = self._providers.get(adapter.name) or self._metrics.tally(adapter.name)
        label = self._model_label(adapter.name, adapter.kind, ctx.reported_model())
        model = tally.models.get(label) or tally.model(label)
        model.requests[status] = model.requests.get(status, 0) + 1
        tally.request_seconds.observe(ctx.finished - ctx.started)
        if ctx.upstream_started:
            tally.upstream_seconds.observe(ctx.finished - ctx.upstream_started)
            if ctx.first_byte:
                tally.ttfb_seconds.observe(ctx.first_byte - ctx.upstream_started)
        if usage is not None:
            _count_usage(tally, model, usage, ctx.usage_estimated, cost)

    def count_usage(self, ctx: RequestContext) -> None:
        """Count the tokens and cost of a request observed before they were known (a background
        response's call, recorded when the response ended: see `metering.background`)."""
        adapter, usage = ctx.provider, ctx.usage
        if usage is None:
            return
        tally = self._providers.get(adapter.name) or self._metrics.tally(adapter.name)
        label = self._model_label(adapter.name, adapter.kind, ctx.reported_model())
        model = tally.models.get(label) or tally.model(label)
        _count_usage(tally, model, usage, ctx.usage_estimated, ctx.cost_usd)


def _count_usage(
    tally: _ProviderTally, model: _ModelTally, usage: TokenUsage, estimated: bool, cost: Decimal | None
) -> None:
    model.add_tokens(usage)
    if estimated:
        tally.estimated += 1
    if cost is None:
        tally.unpriced += 1
    elif cost > 0:
        model.cost += cost
