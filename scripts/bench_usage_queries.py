#!/usr/bin/env python3
"""Time the usage ledger's report queries on a million records, on SQLite and on PostgreSQL.

For each backend the script creates a database of its own (a SQLite file in a temporary folder; a
PostgreSQL database with a unique name on the server at --postgres-url, dropped at the end), migrates
it to head (so the indexes measured are the migrations'), and bulk-loads N records (default 1,000,000)
in time order: 50 tenants of Zipf-like sizes, 500 keys, 20 models of three providers and a local
unpriced one, 90 days, costs from the built-in price table. PostgreSQL is then ANALYZEd (as autovacuum
would); SQLite is not (the gateway never runs ANALYZE), unless --sqlite-analyze.

It then times typical `tollgate usage` queries through `UsageRepository` (the path the CLI takes):
one warm-up and --repeat runs each, reporting the median. The last line times the ledger writer's
work: one `insert_many` of 500 records, the default metering.batch_size, under a batch id as the
writer gives it (the id marked written in the same transaction).

    python scripts/bench_usage_queries.py
    python scripts/bench_usage_queries.py --records 200000 --backends sqlite
    python scripts/bench_usage_queries.py --try-index key_id,created_at --try-index model,created_at

Each --try-index COLUMNS is measured on its own: created after the baseline run, every query and the
write timed again, then dropped. That is how an index earns a place in the migrations.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import os
import random
import secrets
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.metering.prices import PriceTable, cost_of, load_price_table
from gateway.metering.usage import TokenUsage
from gateway.storage.bulk import utc_moment
from gateway.storage.engine import create_engine
from gateway.storage.migrate import upgrade
from gateway.storage.models import usage_records
from gateway.storage.records import UsageRecord
from gateway.storage.usage import Dimension, UsageFilter, UsageRepository

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TENANTS, KEYS, DAYS = 50, 500, 90
WRITE_BATCH = 500
NOW = datetime(2026, 11, 26, tzinfo=UTC)  # fixed, so that every run loads the same ledger
MODELS = {  # model: (provider, kind, popularity)
    "gpt-4o": ("openai", "openai", 10),
    "gpt-4o-mini": ("openai", "openai", 14),
    "gpt-4.1": ("openai", "openai", 8),
    "gpt-4.1-mini": ("openai", "openai", 8),
    "gpt-4.1-nano": ("openai", "openai", 3),
    "o3": ("openai", "openai", 3),
    "o4-mini": ("openai", "openai", 5),
    "gpt-5": ("openai", "openai", 6),
    "gpt-5-mini": ("openai", "openai", 5),
    "text-embedding-3-small": ("openai", "openai", 6),
    "claude-sonnet-4-5": ("anthropic", "anthropic", 10),
    "claude-sonnet-4": ("anthropic", "anthropic", 5),
    "claude-opus-4-1": ("anthropic", "anthropic", 2),
    "claude-haiku-4-5": ("anthropic", "anthropic", 4),
    "claude-3-5-haiku": ("anthropic", "anthropic", 2),
    "gemini-2.5-flash": ("gemini", "gemini", 5),
    "gemini-2.5-pro": ("gemini", "gemini", 3),
    "gemini-2.5-flash-lite": ("gemini", "gemini", 2),
    "gemini-2.0-flash": ("gemini", "gemini", 2),
    "llama-3.3-70b": ("local", "openai-compatible", 3),
}
UPSTREAMS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
    "local": "http://10.0.0.7:8000/v1",
}
COLUMNS = list(UsageRecord._fields)


# -- the ledger ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    id: str
    tenant: str
    team: str
    user: str


def make_keys(rng: random.Random) -> list[Key]:
    """500 keys over 50 tenants, tenant i holding about 1/i^0.8 of them (at least one each)."""
    weights = [1 / (rank**0.8) for rank in range(1, TENANTS + 1)]
    tenants = [f"tenant-{rank:02d}" for rank in range(1, TENANTS + 1)]
    owners = tenants + rng.choices(tenants, weights, k=KEYS - TENANTS)
    keys = []
    for number, tenant in enumerate(owners):
        team = f"team-{rng.randrange(4)}"
        keys.append(
            Key(f"key_{number:04d}{secrets.token_hex(6)}", tenant, team, f"user-{number}@{tenant}.test")
        )
    return keys


def make_record(
    rng: random.Random, key: Key, model: str, created_at: datetime, prices: PriceTable
) -> UsageRecord:
    provider, kind, _ = MODELS[model]
    embedding = "embedding" in model
    input_tokens = int(rng.lognormvariate(7.0, 1.2)) + 1
    output_tokens = 0 if embedding else int(rng.lognormvariate(5.3, 1.0))
    cached = int(input_tokens * rng.random()) if not embedding and rng.random() < 0.4 else 0
    cache_write = int((input_tokens - cached) * 0.5) if provider == "anthropic" and rng.random() < 0.1 else 0
    reasoning = int(output_tokens * 0.6) if model.startswith(("o3", "o4", "gpt-5")) else 0
    usage = TokenUsage(input_tokens, output_tokens, cached, cache_write, reasoning)
    price = prices.price_for(provider, kind, model)
    return UsageRecord(
        created_at=created_at.timestamp(),
        request_id=f"req_{secrets.token_hex(8)}",
        tenant_id=key.tenant,
        team=key.team,
        user=key.user,
        key_id=key.id,
        provider=provider,
        upstream=UPSTREAMS[provider],
        model=model,
        endpoint="embeddings" if embedding else "chat.completions",
        status=200 if rng.random() < 0.97 else 429,
        streamed=rng.random() < 0.6,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_input_tokens=cached,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
        cost_usd=None if price is None else cost_of(usage, price).quantize(Decimal("1E-10")),
        duration_ms=rng.uniform(200, 20_000),
        ttfb_ms=rng.uniform(100, 2_000),
        estimated=rng.random() < 0.01,
    )


def ledger(count: int, seed: int = 7) -> Iterator[UsageRecord]:
    """`count` records spread evenly over the 90 days before NOW, oldest first, as the gateway writes them."""
    rng = random.Random(seed)
    keys = make_keys(rng)
    key_weights = [1 / (1 + index % 37) for index in range(len(keys))]  # some keys far busier than others
    models = list(MODELS)
    model_weights = [MODELS[model][2] for model in models]
    prices = load_price_table()
    start = NOW - timedelta(days=DAYS)
    step = timedelta(days=DAYS) / count
    chosen_keys = rng.choices(keys, key_weights, k=count)
    chosen_models = rng.choices(models, model_weights, k=count)
    for index, (key, model) in enumerate(zip(chosen_keys, chosen_models, strict=True)):
        yield make_record(rng, key, model, start + step * index, prices)


def batches(records: Iterator[UsageRecord], size: int) -> Iterator[list[UsageRecord]]:
    while batch := list(itertools.islice(records, size)):
        yield batch


# -- loading ------------------------------------------------------------------------------------------


def sqlite_row(record: UsageRecord) -> tuple[Any, ...]:
    """A record as SQLAlchemy stores it in SQLite: UTC text instants, 0/1 booleans, costs as doubles."""
    values = [getattr(record, name) for name in COLUMNS]
    values[0] = utc_moment(record.created_at).strftime("%Y-%m-%d %H:%M:%S.%f")
    cost_index = COLUMNS.index("cost_usd")
    values[cost_index] = None if record.cost_usd is None else float(record.cost_usd)
    return tuple(int(v) if isinstance(v, bool) else v for v in values)


def load_sqlite(path: Path, records: Iterator[UsageRecord]) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA synchronous=OFF")
        placeholders = ", ".join("?" * len(COLUMNS))
        quoted = ", ".join(f'"{name}"' for name in COLUMNS)
        statement = f"INSERT INTO usage_records ({quoted}) VALUES ({placeholders})"  # noqa: S608
        with connection:
            for batch in batches(records, 50_000):
                connection.executemany(statement, [sqlite_row(record) for record in batch])
    finally:
        connection.close()


async def load_postgres(url: str, records: Iterator[UsageRecord]) -> None:
    connection = await asyncpg.connect(libpq(url))
    try:
        for batch in batches(records, 50_000):
            rows = [(utc_moment(record[0]), *record[1:]) for record in batch]
            await connection.copy_records_to_table("usage_records", records=rows, columns=COLUMNS)
        await connection.execute("ANALYZE usage_records")
    finally:
        await connection.close()


# -- databases ----------------------------------------------------------------------------------------


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def admin_execute(admin_url: str, statement: str) -> None:
    connection = await asyncpg.connect(libpq(admin_url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def execute(engine: AsyncEngine, statement: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(statement))


# -- the queries --------------------------------------------------------------------------------------

Query = Callable[[UsageRepository], Awaitable[int]]


def grouped(group_by: Sequence[Dimension], **filters: Any) -> Query:
    async def run(repository: UsageRepository) -> int:
        page = await repository.aggregate(group_by, UsageFilter(**filters), limit=1000, offset=0)
        return len(page.rows)

    return run


async def everything(repository: UsageRepository) -> int:
    await repository.totals(UsageFilter())
    return 1


BIG = "tenant-01"  # the busiest tenant: the slowest of the per-tenant queries


def queries(busy_key: str) -> dict[str, Query]:
    """The four typical reports first, then three that test candidate indexes."""
    return {
        "by tenant, 30 days": grouped([Dimension.TENANT], since=NOW - timedelta(days=30)),
        "by model+day, 1 tenant, 7 days": grouped(
            [Dimension.MODEL, Dimension.DAY], tenant=BIG, since=NOW - timedelta(days=7)
        ),
        "by key, 1 tenant, 90 days": grouped([Dimension.KEY], tenant=BIG, since=NOW - timedelta(days=90)),
        "totals, everything": everything,
        "by day, 1 key, 30 days": grouped([Dimension.DAY], key=busy_key, since=NOW - timedelta(days=30)),
        "by tenant, last 24h": grouped([Dimension.TENANT], since=NOW - timedelta(days=1)),
        "by user, 1 tenant+team, 30 days": grouped(
            [Dimension.USER], tenant=BIG, team="team-0", since=NOW - timedelta(days=30)
        ),
    }


async def busiest_key(engine: AsyncEngine) -> str:
    query = select(usage_records.c.key_id).group_by(usage_records.c.key_id).order_by(func.count().desc())
    async with engine.connect() as connection:
        return str(await connection.scalar(query.limit(1)))


async def timed(work: Callable[[], Awaitable[Any]], repeat: int) -> float:
    """The median of `repeat` runs after one warm-up, in milliseconds."""
    await work()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await work()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def measure(engine: AsyncEngine, repeat: int) -> dict[str, tuple[float, int]]:
    repository = UsageRepository(engine)
    results: dict[str, tuple[float, int]] = {}
    for name, query in queries(await busiest_key(engine)).items():
        rows = await query(repository)
        results[name] = (await timed(functools.partial(query, repository), repeat), rows)
    writes = batches(ledger(WRITE_BATCH * (repeat + 1), seed=99), WRITE_BATCH)
    results[f"write: insert_many({WRITE_BATCH})"] = (
        await timed(lambda: repository.insert_many(next(writes), batch_id=secrets.token_bytes(16)), repeat),
        WRITE_BATCH,
    )
    return results


async def measure_variants(
    engine: AsyncEngine, backend: str, candidates: Sequence[str], repeat: int
) -> dict[str, dict[str, tuple[float, int]]]:
    variants = {"baseline": await measure(engine, repeat)}
    for number, columns in enumerate(candidates):
        name = f"bench_ix_{number}"
        quoted = ", ".join(f'"{column.strip()}"' for column in columns.split(","))
        await execute(engine, f"CREATE INDEX {name} ON usage_records ({quoted})")
        if backend == "postgresql":
            await execute(engine, "ANALYZE usage_records")
        variants[f"+({columns})"] = await measure(engine, repeat)
        await execute(engine, f"DROP INDEX {name}")
    return variants


# -- per backend --------------------------------------------------------------------------------------


async def bench_sqlite(args: argparse.Namespace) -> dict[str, dict[str, tuple[float, int]]]:
    with tempfile.TemporaryDirectory(prefix="tollgate-bench-") as folder:
        path = Path(folder) / "usage.db"
        url = f"sqlite:///{path}"
        await asyncio.to_thread(upgrade, url)
        started = time.perf_counter()
        await asyncio.to_thread(load_sqlite, path, ledger(args.records))
        print(f"sqlite: loaded {args.records:,} records in {time.perf_counter() - started:.1f}s ({path})")
        engine = create_engine(url)
        try:
            if args.sqlite_analyze:
                await execute(engine, "ANALYZE")
            return await measure_variants(engine, "sqlite", args.try_index, args.repeat)
        finally:
            await engine.dispose()


async def bench_postgres(args: argparse.Namespace) -> dict[str, dict[str, tuple[float, int]]]:
    name = f"tollgate_bench_{os.getpid()}_{secrets.token_hex(4)}"
    url = make_url(args.postgres_url).set(database=name).render_as_string(hide_password=False)
    await admin_execute(args.postgres_url, f'CREATE DATABASE "{name}"')
    try:
        await asyncio.to_thread(upgrade, url)
        started = time.perf_counter()
        await load_postgres(url, ledger(args.records))
        print(f"postgresql: loaded {args.records:,} records in {time.perf_counter() - started:.1f}s ({name})")
        engine = create_engine(url)
        try:
            return await measure_variants(engine, "postgresql", args.try_index, args.repeat)
        finally:
            await engine.dispose()
    finally:
        await admin_execute(args.postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def print_table(results: dict[str, dict[str, dict[str, tuple[float, int]]]]) -> None:
    headers = ["query", "groups"] + [
        f"{backend} {variant} ms" for backend, variants in results.items() for variant in variants
    ]
    first = next(iter(next(iter(results.values())).values()))
    lines = []
    for name, (_, groups) in first.items():
        cells = [name, str(groups)]
        cells += [f"{variants[v][name][0]:.1f}" for variants in results.values() for v in variants]
        lines.append(cells)
    widths = [max(len(row[i]) for row in [headers, *lines]) for i in range(len(headers))]
    for row in [headers, ["-" * width for width in widths], *lines]:
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000, help="records to load (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query (median reported)")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TOLLGATE_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL,
        help="maintenance connection that may create and drop databases",
    )
    parser.add_argument(
        "--try-index", action="append", default=[], metavar="COLUMNS", help="a candidate index (repeatable)"
    )
    parser.add_argument("--sqlite-analyze", action="store_true", help="run ANALYZE on SQLite after loading")
    return parser.parse_args()


async def main() -> None:
    args = arguments()
    benches = {"sqlite": bench_sqlite, "postgresql": bench_postgres}
    results = {}
    for backend in args.backends.split(","):
        results[backend] = await benches[backend](args)
    print(f"\n{args.records:,} records; median of {args.repeat} runs after a warm-up")
    print(f"SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs")
    print_table(results)


if __name__ == "__main__":
    asyncio.run(main())
