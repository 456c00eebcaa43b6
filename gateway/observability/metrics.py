"""Prometheus metrics, kept in a registry of the app's own (no module-level state).

Label values are bounded: providers come from configuration, models are reported only when the
price table knows them (else `other`), statuses are HTTP codes. Key ids, user ids and tenants are
never labels; per-tenant numbers live in the usage ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics import MetricWrapperBase

from gateway.context import RequestContext
from gateway.metering.usage import TokenUsage

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TOKEN_KINDS = ("input", "output", "cached_input", "cache_write", "reasoning")


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "tollgate_requests", "Proxied requests", ["provider", "model", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "tollgate_request_duration_seconds",
            "Whole request, streaming included",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_seconds = Histogram(
            "tollgate_upstream_duration_seconds",
            "From sending upstream to the last byte",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttfb_seconds = Histogram(
            "tollgate_time_to_first_byte_seconds",
            "From sending upstream to the first body byte",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("tollgate_tokens", "Tokens metered", ["provider", "model", "kind"], registry=r)
        self.cost = Counter(
            "tollgate_cost_usd", "Cost metered, in US dollars", ["provider", "model"], registry=r
        )
        self.estimated = Counter(
            "tollgate_usage_estimated",
            "Calls whose usage was estimated (none reported)",
            ["provider"],
            registry=r,
        )
        self.unpriced = Counter(
            "tollgate_usage_unpriced",
            "Calls recorded with cost null: no price for the model",
            ["provider"],
            registry=r,
        )
        self.ledger_dropped = Counter(
            "tollgate_ledger_records_dropped",
            "Usage records that never reached the ledger",
            ["reason"],
            registry=r,
        )
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.ledger_depth = Gauge(
            "tollgate_ledger_queue_depth", "Usage records waiting for the database", registry=r
        )

    def child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembered: prometheus-client's lookup costs ~1.5 µs a call."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def count_tokens(self, provider: str, model: str, usage: TokenUsage) -> None:
        values = (
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_input_tokens,
            usage.cache_write_tokens,
            usage.reasoning_tokens,
        )
        for kind, value in zip(_TOKEN_KINDS, values, strict=True):
            if value:
                self.child(self.tokens, provider, model, kind).inc(value)

    def count_cost(self, provider: str, model: str, cost: Decimal) -> None:
        if cost:
            self.child(self.cost, provider, model).inc(float(cost))

    def count_dropped(self, reason: str, count: int) -> None:
        self.ledger_dropped.labels(reason).inc(count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """Observer: request counts and latencies, and (from the meter's findings) tokens and cost."""

    def __init__(self, metrics: GatewayMetrics, model_label: Callable[[str, str, str | None], str]) -> None:
        self._metrics = metrics
        self._model_label = model_label

    def observe(self, ctx: RequestContext) -> None:
        m, provider = self._metrics, ctx.provider.name
        model = self._model_label(provider, ctx.provider.kind, ctx.reported_model())
        m.child(m.requests, provider, model, str(ctx.status)).inc()
        m.child(m.request_seconds, provider).observe(ctx.finished - ctx.started)
        if ctx.upstream_started:
            m.child(m.upstream_seconds, provider).observe(ctx.finished - ctx.upstream_started)
            if ctx.first_byte:
                m.child(m.ttfb_seconds, provider).observe(ctx.first_byte - ctx.upstream_started)
        if ctx.usage is not None:
            m.count_tokens(provider, model, ctx.usage)
            if ctx.usage_estimated:
                m.child(m.estimated, provider).inc()
            if ctx.cost_usd is None:
                m.child(m.unpriced, provider).inc()
            else:
                m.count_cost(provider, model, ctx.cost_usd)
