"""gateway.cache: TTL expiry on an injected clock, an LRU bound, and coalesced loads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from gateway.cache import TTLCache
from tests.fakes import FakeClock, Gate


class Loader:
    """A load function that counts its calls and can be held at a gate or made to fail."""

    def __init__(self, value: str = "loaded") -> None:
        self.value = value
        self.calls = 0
        self.gate: Gate | None = None
        self.failure: Exception | None = None

    async def __call__(self) -> str:
        self.calls += 1
        if self.gate is not None:
            await self.gate.passage()
        if self.failure is not None:
            raise self.failure
        return f"{self.value} #{self.calls}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- TTL ----------------------------------------------------------------------------------------------


def test_a_stored_value_is_returned_while_fresh(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=10, clock=clock)
    cache.put("a", "value")

    clock.advance(9.9)

    assert cache.get("a") == (True, "value")


def test_a_value_expires_when_its_ttl_has_passed(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=10, clock=clock)
    cache.put("a", "value")

    clock.advance(10)

    assert cache.get("a") == (False, None)
    assert len(cache) == 0


def test_an_unknown_key_is_not_found(clock: FakeClock) -> None:
    assert TTLCache[str, str](ttl=10, size=10, clock=clock).get("a") == (False, None)


def test_a_cached_none_is_found(clock: FakeClock) -> None:
    cache: TTLCache[str, str | None] = TTLCache(ttl=10, size=10, clock=clock)
    cache.put("a", None)

    assert cache.get("a") == (True, None)


def test_a_zero_ttl_caches_nothing(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=0, size=10, clock=clock)
    cache.put("a", "value")

    assert cache.get("a") == (False, None)


def test_putting_again_restarts_the_ttl(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=10, clock=clock)
    cache.put("a", "old")
    clock.advance(8)
    cache.put("a", "new")
    clock.advance(8)

    assert cache.get("a") == (True, "new")


def test_discard_and_clear_forget_entries(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=10, clock=clock)
    cache.put("a", "1")
    cache.put("b", "2")
    cache.put("c", "3")

    cache.discard("a")
    cache.discard("never-there")
    assert (cache.get("a"), len(cache)) == ((False, None), 2)

    cache.clear()
    assert len(cache) == 0


# -- LRU bound ----------------------------------------------------------------------------------------


def test_the_least_recently_stored_entry_is_evicted_past_the_size(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=2, clock=clock)
    cache.put("a", "1")
    cache.put("b", "2")
    cache.put("c", "3")

    assert len(cache) == 2
    assert cache.get("a") == (False, None)
    assert cache.get("b") == (True, "2")
    assert cache.get("c") == (True, "3")


def test_reading_an_entry_makes_it_recently_used(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=2, clock=clock)
    cache.put("a", "1")
    cache.put("b", "2")
    cache.get("a")
    cache.put("c", "3")

    assert cache.get("a") == (True, "1")
    assert cache.get("b") == (False, None)


# -- get_or_load --------------------------------------------------------------------------------------


async def test_a_miss_loads_and_a_hit_does_not(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=10, clock=clock)
    load = Loader()

    first = await cache.get_or_load("a", load)
    second = await cache.get_or_load("a", load)

    assert first == second == "loaded #1"
    assert load.calls == 1


async def test_an_expired_entry_is_loaded_again(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=10, clock=clock)
    load = Loader()
    await cache.get_or_load("a", load)

    clock.advance(10)

    assert await cache.get_or_load("a", load) == "loaded #2"


async def test_a_loaded_value_is_trusted_for_the_ttl_from_when_its_load_started(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=10, clock=clock)
    load = Loader()
    load.gate = Gate()
    slow = asyncio.create_task(cache.get_or_load("a", load))
    await load.gate.arrived.wait()
    clock.advance(4)  # a slow database: what it answers is as of the question, not of the answer
    load.gate.open()
    await slow
    load.gate = None

    clock.advance(5.9)
    fresh = await cache.get_or_load("a", load)
    clock.advance(0.1)
    reloaded = await cache.get_or_load("a", load)

    assert (fresh, reloaded) == ("loaded #1", "loaded #2")


async def test_a_value_in_use_is_reloaded_before_it_expires_while_its_callers_are_served(
    clock: FakeClock,
) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=10, clock=clock)
    load = Loader()
    await cache.get_or_load("a", load)
    load.gate = Gate()

    clock.advance(6)  # past half its TTL
    served = await cache.get_or_load("a", load)  # at once, from the cache, while a reload starts
    await asyncio.wait_for(load.gate.arrived.wait(), timeout=5)  # (only a guard against hanging)
    load.gate.open()
    clock.advance(4)  # the first value has expired; the reload's replaces it
    after = await cache.get_or_load("a", load)
    clock.advance(5.9)
    still = await cache.get_or_load("a", load)

    assert (served, after, still) == ("loaded #1", "loaded #2", "loaded #2")
    assert load.calls == 2


async def test_a_failed_early_reload_leaves_the_value_until_it_expires(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=10, clock=clock)
    load = Loader()
    await cache.get_or_load("a", load)
    load.failure = ConnectionError("database unreachable")

    clock.advance(6)
    served = await cache.get_or_load("a", load)
    await asyncio.sleep(0)  # the reload runs, and fails
    clock.advance(3.9)
    still = await cache.get_or_load("a", load)
    clock.advance(0.1)

    assert (served, still) == ("loaded #1", "loaded #1")
    with pytest.raises(ConnectionError):
        await cache.get_or_load("a", load)


async def test_concurrent_loads_of_one_key_are_coalesced(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=10, clock=clock)
    load = Loader()
    load.gate = Gate()

    waiters = [asyncio.create_task(cache.get_or_load("a", load)) for _ in range(4)]
    await load.gate.arrived.wait()
    load.gate.open()

    assert await asyncio.gather(*waiters) == ["loaded #1"] * 4
    assert load.calls == 1


async def test_loads_of_different_keys_are_not_coalesced(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=10, clock=clock)
    load = Loader()

    results = await asyncio.gather(cache.get_or_load("a", load), cache.get_or_load("b", load))

    assert sorted(results) == ["loaded #1", "loaded #2"]


async def test_coalesced_loads_share_the_result_even_with_a_zero_ttl(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=0, size=10, clock=clock)
    load = Loader()
    load.gate = Gate()

    waiters = [asyncio.create_task(cache.get_or_load("a", load)) for _ in range(3)]
    await load.gate.arrived.wait()
    load.gate.open()

    assert await asyncio.gather(*waiters) == ["loaded #1"] * 3
    assert load.calls == 1


async def test_a_failing_load_reaches_every_waiter_and_is_not_cached(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=10, clock=clock)
    load = Loader()
    load.gate = Gate()
    load.failure = ConnectionError("database unreachable")

    waiters = [asyncio.create_task(cache.get_or_load("a", load)) for _ in range(3)]
    await load.gate.arrived.wait()
    load.gate.open()
    outcomes = await asyncio.gather(*waiters, return_exceptions=True)

    assert [str(outcome) for outcome in outcomes] == ["database unreachable"] * 3
    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes)
    assert len(cache) == 0

    load.failure = None
    assert await cache.get_or_load("a", load) == "loaded #2"


async def test_a_cancelled_caller_does_not_cancel_the_load_for_the_others(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=10, clock=clock)
    load = Loader()
    load.gate = Gate()

    first = asyncio.create_task(cache.get_or_load("a", load))
    second = asyncio.create_task(cache.get_or_load("a", load))
    await load.gate.arrived.wait()
    first.cancel()
    load.gate.open()
    outcomes = await asyncio.gather(first, second, return_exceptions=True)

    assert isinstance(outcomes[0], asyncio.CancelledError)
    assert outcomes[1] == "loaded #1"
    assert load.calls == 1


async def test_a_load_outlives_its_cancelled_caller_and_serves_the_next_one(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=10, clock=clock)
    load = Loader()
    load.gate = Gate()

    abandoned = asyncio.create_task(cache.get_or_load("a", load))
    await load.gate.arrived.wait()
    abandoned.cancel()
    later = asyncio.create_task(cache.get_or_load("a", load))
    load.gate.open()

    assert await later == "loaded #1"
    assert abandoned.cancelled()
    assert load.calls == 1


# -- "not found" answers: a bound of their own ---------------------------------------------------------


class Unavailable(Exception):
    """The source cannot be reached (what `stale_if_error` answers with the last value found)."""


class Finder:
    """A load function over a dict: None for a key it does not hold ("not found")."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.calls = 0
        self.failure: Exception | None = None

    def __call__(self, key: str) -> Callable[[], Awaitable[str | None]]:
        async def load() -> str | None:
            self.calls += 1
            if self.failure is not None:
                raise self.failure
            return self.values.get(key)

        return load


async def test_not_found_answers_never_evict_values_found(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=2, clock=clock, misses_size=3)
    find = Finder({"a": "1", "b": "2"})
    await cache.get_or_load("a", find("a"))
    await cache.get_or_load("b", find("b"))

    for n in range(100):  # a flood of unknown keys
        assert await cache.get_or_load(f"unknown-{n}", find(f"unknown-{n}")) is None
    calls = find.calls

    assert (await cache.get_or_load("a", find("a")), await cache.get_or_load("b", find("b"))) == ("1", "2")
    assert find.calls == calls
    assert len(cache) == 2 + 3


async def test_not_found_answers_are_cached_within_their_own_bound(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=10, clock=clock, misses_size=2)
    find = Finder({})
    for key in ("x", "y", "z"):
        await cache.get_or_load(key, find(key))

    assert (cache.get("x"), cache.get("y"), cache.get("z")) == ((False, None), (True, None), (True, None))
    await cache.get_or_load("z", find("z"))
    assert find.calls == 3


async def test_a_key_found_after_a_not_found_answer_replaces_it(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=10, size=10, clock=clock, misses_size=10)
    find = Finder({})
    await cache.get_or_load("a", find("a"))

    find.values["a"] = "now there"
    clock.advance(10)

    assert await cache.get_or_load("a", find("a")) == "now there"
    assert len(cache) == 1


# -- stale if error ------------------------------------------------------------------------------------


def stale_cache(clock: FakeClock, stale_if_error: float = 60) -> TTLCache[str, str]:
    return TTLCache(
        ttl=10, size=10, clock=clock, stale_if_error=stale_if_error, unavailable=(Unavailable,), name="things"
    )


async def found_then_cut_off(cache: TTLCache[str, str], failure: Exception | None = None) -> Finder:
    """A source that answered "a" once (now cached), then fails as `failure` (default: unreachable)."""
    find = Finder({"a": "1"})
    await cache.get_or_load("a", find("a"))
    find.failure = failure or Unavailable("database unreachable")
    return find


async def test_a_value_found_is_served_past_its_ttl_while_its_source_is_unavailable(clock: FakeClock) -> None:
    cache = stale_cache(clock)
    find = await found_then_cut_off(cache)

    clock.advance(10 + 59.9)

    assert await cache.get_or_load("a", find("a")) == "1"


async def test_each_lookup_answered_with_a_stale_value_is_reported_and_fresh_ones_are_not(
    clock: FakeClock,
) -> None:
    reported: list[str] = []
    cache: TTLCache[str, str] = TTLCache(
        ttl=10,
        size=10,
        clock=clock,
        stale_if_error=60,
        unavailable=(Unavailable,),
        on_stale=lambda: reported.append("stale"),
    )
    find = await found_then_cut_off(cache)
    assert await cache.get_or_load("a", find("a")) == "1"  # fresh: not reported
    clock.advance(15)

    assert await cache.get_or_load("a", find("a")) == "1"  # the reload fails: served stale
    assert await cache.get_or_load("a", find("a")) == "1"  # the source known down: served stale at once

    assert reported == ["stale", "stale"]


async def test_a_stale_value_is_served_no_longer_than_stale_if_error_past_its_expiry(
    clock: FakeClock,
) -> None:
    cache = stale_cache(clock)
    find = await found_then_cut_off(cache)
    clock.advance(30)
    assert await cache.get_or_load("a", find("a")) == "1"

    clock.advance(40)  # 70 s after the lookup: 60 s past its expiry

    with pytest.raises(Unavailable):
        await cache.get_or_load("a", find("a"))


async def test_a_not_found_answer_is_never_served_stale(clock: FakeClock) -> None:
    cache = stale_cache(clock)
    find = Finder({})
    assert await cache.get_or_load("a", find("a")) is None
    find.failure = Unavailable("database unreachable")

    clock.advance(10)

    with pytest.raises(Unavailable):
        await cache.get_or_load("a", find("a"))


async def test_an_error_other_than_unavailable_is_not_answered_with_a_stale_value(clock: FakeClock) -> None:
    cache = stale_cache(clock)
    find = await found_then_cut_off(cache, ValueError("the database answered: refused"))

    clock.advance(10)

    with pytest.raises(ValueError, match="refused"):
        await cache.get_or_load("a", find("a"))


async def test_a_zero_stale_if_error_serves_nothing_stale(clock: FakeClock) -> None:
    cache = stale_cache(clock, stale_if_error=0)
    find = await found_then_cut_off(cache)

    clock.advance(10)

    with pytest.raises(Unavailable):
        await cache.get_or_load("a", find("a"))


async def test_during_an_outage_a_stale_value_is_looked_up_again_at_most_once_per_half_ttl(
    clock: FakeClock,
) -> None:
    cache = stale_cache(clock)
    find = await found_then_cut_off(cache)
    clock.advance(10)

    served = []
    for _ in range(40):  # 20 s of calls, two a second
        served.append(await cache.get_or_load("a", find("a")))
        await asyncio.sleep(0)  # a lookup started in the background runs (and fails)
        clock.advance(0.5)

    assert served == ["1"] * 40
    assert 1 + 1 <= find.calls <= 1 + 20 / 5 + 1  # the first lookup, then one each 5 s at most


async def test_once_the_source_answers_again_its_answer_replaces_the_stale_value(clock: FakeClock) -> None:
    cache = stale_cache(clock)
    find = await found_then_cut_off(cache)
    clock.advance(10)
    assert await cache.get_or_load("a", find("a")) == "1"

    find.failure = None
    del find.values["a"]  # revoked while the database was unreachable from here
    clock.advance(5)
    await cache.get_or_load("a", find("a"))  # may still answer stale while it looks again
    await asyncio.sleep(0)

    assert await cache.get_or_load("a", find("a")) is None


async def test_one_warning_when_stale_values_are_first_served_and_one_when_the_source_answers(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    cache = stale_cache(clock)
    find = Finder({"a": "1", "b": "2"})
    await cache.get_or_load("a", find("a"))
    await cache.get_or_load("b", find("b"))
    find.failure = Unavailable("database unreachable")
    clock.advance(10)

    with caplog.at_level(logging.INFO, logger="tollgate.cache"):
        for _ in range(3):
            await cache.get_or_load("a", find("a"))
            await cache.get_or_load("b", find("b"))
            await asyncio.sleep(0)
            clock.advance(5)
        find.failure = None
        for _ in range(3):
            await cache.get_or_load("a", find("a"))
            await asyncio.sleep(0)

    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "things" in warnings[0].getMessage() and "stale" in warnings[0].getMessage()
    assert "things" in warnings[1].getMessage() and "again" in warnings[1].getMessage()
