"""Observers see finished requests a batch at a time: each observer over the whole batch, in order."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.context import RequestContext
from gateway.pipeline.observers import ObserverBatch
from tests.support.metering import chat_call


def finished(request_id: str, bytes_out: int = 0) -> RequestContext:
    return chat_call(request_id, bytes_out=bytes_out)


class Journal:
    """Observers that write who saw which request, in the order they saw them."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []

    def observer(self, name: str) -> Named:
        return Named(name, self.entries)


class Named:
    def __init__(self, name: str, entries: list[tuple[str, str]]) -> None:
        self.name, self.entries = name, entries

    def observe(self, ctx: RequestContext) -> None:
        self.entries.append((self.name, ctx.request_id))


class Broken:
    def observe(self, ctx: RequestContext) -> None:
        raise RuntimeError("observer bug")


async def test_a_full_batch_is_observed_at_once_each_observer_over_all_of_it_in_order() -> None:
    journal = Journal()
    batch = ObserverBatch([journal.observer("meter"), journal.observer("log")], size=3, delay=60)

    batch.add(finished("a"))
    batch.add(finished("b"))
    assert journal.entries == [] and len(batch) == 2
    batch.add(finished("c"))

    assert journal.entries == [
        ("meter", "a"), ("meter", "b"), ("meter", "c"), ("log", "a"), ("log", "b"), ("log", "c"),
    ]  # fmt: skip
    assert len(batch) == 0


async def test_a_batch_whose_responses_add_up_to_the_byte_bound_is_observed_at_once() -> None:
    journal = Journal()
    batch = ObserverBatch([journal.observer("meter")], size=100, delay=60, max_bytes=1000)

    batch.add(finished("small", bytes_out=400))
    assert journal.entries == []
    batch.add(finished("large", bytes_out=600))

    assert journal.entries == [("meter", "small"), ("meter", "large")]
    batch.add(finished("next", bytes_out=400))
    assert len(batch) == 1  # the count of bytes started again


async def test_a_partial_batch_is_observed_once_its_delay_has_passed() -> None:
    journal = Journal()
    batch = ObserverBatch([journal.observer("meter")], size=100, delay=0.01)

    batch.add(finished("a"))
    batch.add(finished("b"))
    assert journal.entries == []
    await asyncio.sleep(0.05)

    assert journal.entries == [("meter", "a"), ("meter", "b")]


async def test_requests_after_a_full_batch_wait_no_longer_than_the_delay() -> None:
    journal = Journal()
    batch = ObserverBatch([journal.observer("meter")], size=2, delay=0.01)

    for request_id in "abc":
        batch.add(finished(request_id))
    assert journal.entries == [("meter", "a"), ("meter", "b")]
    await asyncio.sleep(0.05)

    assert journal.entries[-1] == ("meter", "c") and len(batch) == 0


async def test_flush_shows_every_waiting_request_now_and_each_only_once() -> None:
    journal = Journal()
    batch = ObserverBatch([journal.observer("meter")], size=100, delay=0.01)
    batch.add(finished("a"))

    batch.flush()
    batch.flush()
    await asyncio.sleep(0.05)

    assert journal.entries == [("meter", "a")]


async def test_once_closed_the_waiting_requests_and_every_later_one_are_observed_at_once() -> None:
    journal = Journal()
    batch = ObserverBatch([journal.observer("meter")], size=100, delay=60)
    batch.add(finished("waiting"))

    batch.close()
    batch.add(finished("late"))

    assert journal.entries == [("meter", "waiting"), ("meter", "late")]


async def test_a_batch_of_one_is_observed_as_each_request_finishes() -> None:
    journal = Journal()
    batch = ObserverBatch([journal.observer("meter")], size=1)

    batch.add(finished("a"))

    assert journal.entries == [("meter", "a")]


async def test_a_broken_observer_is_logged_and_the_others_still_see_every_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal = Journal()
    batch = ObserverBatch([Broken(), journal.observer("log")], size=2)

    with caplog.at_level(logging.ERROR, logger="tollgate.proxy"):
        batch.add(finished("a"))
        batch.add(finished("b"))

    assert journal.entries == [("log", "a"), ("log", "b")]
    failures = [record for record in caplog.records if record.getMessage() == "observer failed"]
    assert [record.fields["request_id"] for record in failures] == ["a", "b"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("size", "delay"), [(0, 0.005), (32, -1.0)])
def test_a_batch_must_hold_a_request_and_wait_no_negative_time(size: int, delay: float) -> None:
    with pytest.raises(ValueError, match="at least one request"):
        ObserverBatch([], size=size, delay=delay)
