"""/metrics: what a scrape shows after the gateway has observed some requests."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.context import RequestContext
from gateway.metering.usage import Extraction, TokenUsage
from gateway.observability.metrics import GatewayMetrics, RequestMetrics
from gateway.observability.workers import WorkerDirectory
from tests.support.metering import ADAPTERS, PRICES, PRINCIPAL

LE = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0")
LE += ("10.0", "30.0", "60.0", "120.0", "300.0", "+Inf")

Labels = tuple[tuple[str, str], ...]
Scrape = dict[str, dict[Labels, float]]


def request(
    provider: str,
    model: str | None,
    status: int = 200,
    *,
    seconds: float = 0.5,
    upstream: float | None = None,
    ttfb: float | None = None,
    usage: TokenUsage | None = None,
    estimated: bool = False,
    cost: str | None = None,
) -> RequestContext:
    """A finished request: `seconds` in all, the last `upstream` of them upstream, the first byte
    `ttfb` after sending upstream; usage, estimate and cost as the meter would have set them."""
    ctx = RequestContext(
        request_id="req-1",
        started=100.0,
        method="POST",
        provider=ADAPTERS[provider],
        raw_path=b"/v1/chat/completions",
        query_string=b"",
        headers=[],
        receive=None,  # type: ignore[arg-type]
        path="/v1/chat/completions",
        principal=PRINCIPAL,
        body=orjson.dumps({"model": model}) if model is not None else b"",
    )
    ctx.status = status
    ctx.finished = ctx.started + seconds
    if upstream is not None:
        ctx.upstream_started = ctx.finished - upstream
        if ttfb is not None:
            ctx.first_byte = ctx.upstream_started + ttfb
    if usage is not None:
        ctx.extraction = Extraction(usage, model)
        ctx.usage = usage
        ctx.usage_estimated = estimated
        ctx.cost_usd = None if cost is None else Decimal(cost)
    return ctx


def observed(*contexts: RequestContext, workers: WorkerDirectory | None = None) -> GatewayMetrics:
    metrics = GatewayMetrics(workers)
    observer = RequestMetrics(metrics, PRICES.model_label)
    for ctx in contexts:
        observer.observe(ctx)
    return metrics


def scrape(metrics: GatewayMetrics) -> Scrape:
    """Sample name → its label sets (sorted name/value pairs) → value, as a Prometheus server reads it."""
    samples: Scrape = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[labels(**sample.labels)] = sample.value
    return samples


def labels(**pairs: str) -> Labels:
    return tuple(sorted(pairs.items()))


def buckets(samples: Scrape, histogram: str, provider: str) -> dict[str, float]:
    found = samples[histogram + "_bucket"]
    return {le: found[labels(provider=provider, le=le)] for le in LE}


def cumulative(*counts: tuple[str, int]) -> dict[str, float]:
    """The buckets of a histogram where `count` values first fit under bound `le`, for each pair."""
    added = dict(counts)
    result, total = {}, 0
    for le in LE:
        total += added.get(le, 0)
        result[le] = float(total)
    return result


def test_requests_are_counted_by_provider_priced_model_and_status() -> None:
    metrics = observed(
        request("openai", "gpt-4o-mini-2024-07-18"),
        request("openai", "gpt-4o-mini", 200),
        request("openai", "gpt-4o-mini", 429),
        request("openai", "some-private-finetune", 200),
        request("claude", None, 502),
    )

    assert scrape(metrics)["tollgate_requests_total"] == {
        labels(provider="openai", model="gpt-4o-mini", status="200"): 2.0,
        labels(provider="openai", model="gpt-4o-mini", status="429"): 1.0,
        labels(provider="openai", model="other", status="200"): 1.0,
        labels(provider="claude", model="other", status="502"): 1.0,
    }


def test_latencies_fill_cumulative_buckets_up_to_inf_with_sum_and_count() -> None:
    metrics = observed(
        request("openai", "gpt-4o", seconds=0.25, upstream=0.125, ttfb=0.0625),  # on a bound: in it
        request("openai", "gpt-4o", seconds=0.375, upstream=0.25, ttfb=0.0078125),
        request("openai", "gpt-4o", seconds=400.0, upstream=399.0, ttfb=1.0),  # past the last bound
    )

    samples = scrape(metrics)

    whole = "tollgate_request_duration_seconds"
    assert buckets(samples, whole, "openai") == cumulative(("0.25", 1), ("0.5", 1), ("+Inf", 1))
    assert samples[whole + "_count"] == {labels(provider="openai"): 3.0}
    assert samples[whole + "_sum"] == {labels(provider="openai"): 400.625}
    upstream = "tollgate_upstream_duration_seconds"
    assert buckets(samples, upstream, "openai") == cumulative(("0.25", 2), ("+Inf", 1))
    assert samples[upstream + "_count"] == {labels(provider="openai"): 3.0}
    assert samples[upstream + "_sum"] == {labels(provider="openai"): 399.375}
    ttfb = "tollgate_time_to_first_byte_seconds"
    assert buckets(samples, ttfb, "openai") == cumulative(("0.01", 1), ("0.1", 1), ("1.0", 1))
    assert samples[ttfb + "_count"] == {labels(provider="openai"): 3.0}
    assert samples[ttfb + "_sum"] == {labels(provider="openai"): 1.0703125}


def test_upstream_and_first_byte_latencies_only_for_requests_that_got_that_far() -> None:
    metrics = observed(
        request("claude", "claude-sonnet-4", 401, seconds=0.001),  # refused before going upstream
        request("openai", "gpt-4o", 502, seconds=0.5, upstream=0.5),  # no body byte came back
    )

    samples = scrape(metrics)

    assert set(samples["tollgate_request_duration_seconds_count"]) == {
        labels(provider="claude"),
        labels(provider="openai"),
    }
    assert samples["tollgate_upstream_duration_seconds_count"] == {labels(provider="openai"): 1.0}
    assert "tollgate_time_to_first_byte_seconds_count" not in samples


def test_tokens_are_counted_by_kind_and_kinds_never_seen_are_absent() -> None:
    metrics = observed(
        request("openai", "gpt-4o", usage=TokenUsage(100, 20, cached_input_tokens=60), cost="0.01"),
        request("openai", "gpt-4o", usage=TokenUsage(50, 30, reasoning_tokens=10), cost="0.02"),
        request("claude", "claude-sonnet-4", usage=TokenUsage(7, 3, cache_write_tokens=5), cost="0.5"),
    )

    assert scrape(metrics)["tollgate_tokens_total"] == {
        labels(provider="openai", model="gpt-4o", kind="input"): 150.0,
        labels(provider="openai", model="gpt-4o", kind="output"): 50.0,
        labels(provider="openai", model="gpt-4o", kind="cached_input"): 60.0,
        labels(provider="openai", model="gpt-4o", kind="reasoning"): 10.0,
        labels(provider="claude", model="claude-sonnet-4", kind="input"): 7.0,
        labels(provider="claude", model="claude-sonnet-4", kind="output"): 3.0,
        labels(provider="claude", model="claude-sonnet-4", kind="cache_write"): 5.0,
    }


def test_web_searches_are_counted_by_provider_and_model_apart_from_tokens() -> None:
    metrics = observed(
        request("claude", "claude-sonnet-4", usage=TokenUsage(7, 3, web_searches=2), cost="0.02"),
        request("claude", "claude-sonnet-4", usage=TokenUsage(7, 3, web_searches=1), cost="0.01"),
        request("openai", "gpt-4o", usage=TokenUsage(5, 5), cost="0.01"),  # no search: no sample
    )

    samples = scrape(metrics)

    assert samples["tollgate_web_searches_total"] == {labels(provider="claude", model="claude-sonnet-4"): 3.0}
    assert {dict(label)["kind"] for label in samples["tollgate_tokens_total"]} == {"input", "output"}


def test_cost_is_summed_in_dollars_and_unpriced_and_estimated_calls_are_counted() -> None:
    usage = TokenUsage(10, 10)
    metrics = observed(
        request("openai", "gpt-4o", usage=usage, cost="0.1"),
        request("openai", "gpt-4o", usage=usage, cost="0.2"),
        request("openai", "gpt-4o", usage=usage, cost="0.000001", estimated=True),
        request("openai", "gpt-4o", usage=usage, cost="0"),  # free: counted nowhere
        request("local", "llama3", usage=usage, cost=None, estimated=True),
        request("local", "llama3", usage=usage, cost=None),
        request("openai", "gpt-4o", 500),  # no usage: neither unpriced nor estimated
    )

    samples = scrape(metrics)

    assert samples["tollgate_cost_usd_total"] == {labels(provider="openai", model="gpt-4o"): 0.300001}
    assert samples["tollgate_usage_unpriced_total"] == {labels(provider="local"): 2.0}
    assert samples["tollgate_usage_estimated_total"] == {
        labels(provider="openai"): 1.0,
        labels(provider="local"): 1.0,
    }


def test_the_ledger_reports_its_dropped_records_and_its_queue_depth() -> None:
    metrics = GatewayMetrics()
    metrics.count_dropped("overflow", 3)
    metrics.count_dropped("overflow", 2)
    metrics.count_dropped("shutdown", 1)
    assert scrape(metrics)["tollgate_ledger_queue_depth"] == {(): 0.0}
    metrics.ledger_depth.set_function(lambda: 7)

    samples = scrape(metrics)

    assert samples["tollgate_ledger_records_dropped_total"] == {
        labels(reason="overflow"): 5.0,
        labels(reason="shutdown"): 1.0,
    }
    assert samples["tollgate_ledger_queue_depth"] == {(): 7.0}


def test_lookups_served_stale_are_counted_by_cache() -> None:
    metrics = GatewayMetrics()
    metrics.count_stale("keys")
    metrics.count_stale("keys")
    metrics.count_stale("credentials")

    assert scrape(metrics)["tollgate_stale_served_total"] == {
        labels(cache="keys"): 2.0,
        labels(cache="credentials"): 1.0,
    }


def test_the_background_responses_followed_are_a_gauge_read_at_each_scrape() -> None:
    metrics = GatewayMetrics()
    assert scrape(metrics)["tollgate_background_responses_followed"] == {(): 0.0}
    metrics.background_followed.set_function(lambda: 3)

    assert scrape(metrics)["tollgate_background_responses_followed"] == {(): 3.0}


def test_every_family_is_exposed_with_its_type_and_help_even_before_any_request() -> None:
    families = text_string_to_metric_families(GatewayMetrics().exposition().decode())

    assert [(family.name, family.type, family.documentation) for family in families] == [
        ("tollgate_requests", "counter", "Proxied requests"),
        ("tollgate_request_duration_seconds", "histogram", "Whole request, streaming included"),
        ("tollgate_upstream_duration_seconds", "histogram", "From sending upstream to the last byte"),
        ("tollgate_time_to_first_byte_seconds", "histogram", "From sending upstream to the first body byte"),
        ("tollgate_tokens", "counter", "Tokens metered"),
        ("tollgate_cost_usd", "counter", "Cost metered, in US dollars"),
        ("tollgate_web_searches", "counter", "Web searches providers ran for the calls and billed apiece"),
        ("tollgate_usage_estimated", "counter", "Calls whose usage was estimated (none reported)"),
        (
            "tollgate_usage_unpriced",
            "counter",
            "Calls recorded with cost null: no price for the model or its processing tier",
        ),
        ("tollgate_ledger_records_dropped", "counter", "Usage records that never reached the ledger"),
        (
            "tollgate_stale_served",
            "counter",
            "Lookups answered with a cached value past its TTL while the database could not be reached",
        ),
        ("tollgate_ledger_queue_depth", "gauge", "Usage records waiting for the database"),
        (
            "tollgate_background_responses_followed",
            "gauge",
            "OpenAI background responses followed to their end, their calls not recorded yet",
        ),
    ]


def test_label_values_stay_bounded_and_no_created_samples_are_exposed() -> None:
    metrics = observed(
        request("openai", "ft:gpt-4o:acme:secret-project", usage=TokenUsage(1, 1), cost=None),
        request("openai", "gpt-4o", seconds=1.0, upstream=0.5, ttfb=0.25, usage=TokenUsage(1, 1), cost="1"),
    )
    metrics.count_dropped("overflow", 1)

    text = metrics.exposition().decode()
    names = {name for name in scrape(metrics)}

    assert "acme" not in text and "key_1" not in text and "secret" not in text
    assert not any(name.endswith("_created") for name in names)


# A server of several worker processes: each publishes its tallies to a directory they share.


def exited_pid() -> int:
    """The pid of a process that has run and exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_scrape_answered_by_any_worker_sums_every_workers_tallies(tmp_path: Path) -> None:
    first = observed(
        request("openai", "gpt-4o", seconds=0.25, usage=TokenUsage(input_tokens=10), cost="0.5"),
        request("openai", "gpt-4o", 429, seconds=0.25),
        workers=WorkerDirectory(tmp_path, pid=999_999_001),
    )
    first.count_dropped("overflow", 2)
    first.count_stale("keys")
    first.ledger_depth.set_function(lambda: 3)
    second = observed(
        request(
            "openai", "gpt-4o", seconds=2.0, usage=TokenUsage(input_tokens=5, output_tokens=7), cost="0.25"
        ),
        request("claude", None, 502, seconds=0.01),
        workers=WorkerDirectory(tmp_path, pid=999_999_002),
    )
    second.count_dropped("overflow", 1)
    second.count_dropped("rejected", 4)
    second.count_stale("keys")
    second.ledger_depth.set_function(lambda: 4)
    second.publish()

    samples = scrape(first)  # the peer's pid is not a running process: its gauges do not count

    assert samples["tollgate_requests_total"] == {
        labels(provider="openai", model="gpt-4o", status="200"): 2.0,
        labels(provider="openai", model="gpt-4o", status="429"): 1.0,
        labels(provider="claude", model="other", status="502"): 1.0,
    }
    assert samples["tollgate_tokens_total"] == {
        labels(provider="openai", model="gpt-4o", kind="input"): 15.0,
        labels(provider="openai", model="gpt-4o", kind="output"): 7.0,
    }
    assert samples["tollgate_cost_usd_total"] == {labels(provider="openai", model="gpt-4o"): 0.75}
    assert buckets(samples, "tollgate_request_duration_seconds", "openai") == cumulative(
        ("0.25", 2), ("2.5", 1)
    )
    assert samples["tollgate_request_duration_seconds_sum"][labels(provider="openai")] == 2.5
    assert samples["tollgate_ledger_records_dropped_total"] == {
        labels(reason="overflow"): 3.0,
        labels(reason="rejected"): 4.0,
    }
    assert samples["tollgate_stale_served_total"] == {labels(cache="keys"): 2.0}
    assert samples["tollgate_ledger_queue_depth"] == {(): 3.0}


def test_gauges_sum_over_running_workers_and_counters_over_all_that_ever_ran(tmp_path: Path) -> None:
    running = observed(request("openai", "gpt-4o"), workers=WorkerDirectory(tmp_path, pid=os.getppid()))
    running.ledger_depth.set_function(lambda: 5)
    running.background_followed.set_function(lambda: 1)
    running.publish()
    exited = observed(request("openai", "gpt-4o"), workers=WorkerDirectory(tmp_path, pid=exited_pid()))
    exited.ledger_depth.set_function(lambda: 100)
    exited.background_followed.set_function(lambda: 100)
    exited.publish()
    answering = observed(request("openai", "gpt-4o"), workers=WorkerDirectory(tmp_path))
    answering.ledger_depth.set_function(lambda: 2)

    samples = scrape(answering)

    assert samples["tollgate_requests_total"] == {
        labels(provider="openai", model="gpt-4o", status="200"): 3.0
    }
    assert samples["tollgate_ledger_queue_depth"] == {(): 7.0}
    assert samples["tollgate_background_responses_followed"] == {(): 1.0}


def test_what_a_worker_counts_after_publishing_reaches_the_others_at_its_next_publish(tmp_path: Path) -> None:
    worker = GatewayMetrics(WorkerDirectory(tmp_path, pid=999_999_003))
    observer = RequestMetrics(worker, PRICES.model_label)
    other = GatewayMetrics(WorkerDirectory(tmp_path, pid=999_999_004))
    observer.observe(request("openai", "gpt-4o"))
    worker.publish()
    observer.observe(request("openai", "gpt-4o"))

    assert scrape(other)["tollgate_requests_total"] == {
        labels(provider="openai", model="gpt-4o", status="200"): 1.0
    }
    worker.publish()
    assert scrape(other)["tollgate_requests_total"] == {
        labels(provider="openai", model="gpt-4o", status="200"): 2.0
    }


def test_a_file_that_cannot_be_read_adds_nothing_and_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "999999005.json").write_bytes(b'{"providers": {"openai": ')  # cut short
    (tmp_path / "999999006.json").write_bytes(b'{"providers": {"openai": {"models": 1}}, "dropped": {}}')
    (tmp_path / "999999007.json").write_bytes(b"[]")
    (tmp_path / "notes.json").write_bytes(b"{}")  # not a worker's file
    worker = observed(request("openai", "gpt-4o"), workers=WorkerDirectory(tmp_path, pid=999_999_008))

    with caplog.at_level(logging.WARNING, logger="tollgate.metrics"):
        first, second = scrape(worker), scrape(worker)

    assert first == second
    assert first["tollgate_requests_total"] == {labels(provider="openai", model="gpt-4o", status="200"): 1.0}
    assert sorted(record.fields["file"] for record in caplog.records) == [  # type: ignore[attr-defined]
        "999999005.json",
        "999999006.json",
        "999999007.json",
    ]
