"""A small bounded LRU cache with a time-to-live, and concurrent loads of one key coalesced.

The hot path reads keys and credentials from here instead of the database; an entry older than
its TTL is loaded again, so changes made elsewhere (a revoked key) take effect within the TTL. One in
use is reloaded in the background during the second half of its TTL, so that the hot path does not
wait for the database each time a busy key's entry would expire.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Clock = Callable[[], float]


class TTLCache(Generic[K, V]):
    """At most `size` entries, each trusted for `ttl` seconds after it was loaded."""

    def __init__(self, ttl: float, size: int, clock: Clock = time.monotonic) -> None:
        self._ttl = ttl
        self._reload_ahead = ttl / 2  # how long before its expiry a value asked for is reloaded
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._loading: dict[K, asyncio.Future[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> tuple[bool, V | None]:
        """(True, value) for a fresh entry, else (False, None)."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry[0] <= self._clock():
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, entry[1]

    def put(self, key: K, value: V, loaded_at: float | None = None) -> None:
        """Store `value`, fresh for the TTL from `loaded_at` (the clock's reading when it was read from
        its source), else from now."""
        if self._ttl <= 0:
            return
        self._entries[key] = ((self._clock() if loaded_at is None else loaded_at) + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value, or `load()`'s result; callers asking at once share one load.

        The load runs in a task of its own: a caller cancelled while waiting neither cancels it for
        the others nor hands them its cancellation. A failed load is not cached; every waiter gets
        its error. The value is trusted for the TTL from when its load started, not ended: a slow source
        answers as of the question, and a change made meanwhile (a key revoked) must still show within
        the TTL.

        A value asked for in the second half of its TTL is served and reloaded in the background, so
        that a value in use is replaced before it expires and its callers do not wait for the source
        every TTL; a failed reload leaves it to expire as it would have.
        """
        entry = self._entries.get(key)
        if entry is not None:
            expires, value = entry
            now = self._clock()
            if now < expires:
                self._entries.move_to_end(key)
                if now >= expires - self._reload_ahead and key not in self._loading:
                    self._start_load(key, load)
                return value
            del self._entries[key]
        loading = self._loading.get(key)
        if loading is None:
            loading = self._start_load(key, load)
        return await asyncio.shield(loading)

    def _start_load(self, key: K, load: Callable[[], Awaitable[V]]) -> asyncio.Future[V]:
        loading = asyncio.ensure_future(self._load(key, load))
        loading.add_done_callback(_retrieve_exception)
        self._loading[key] = loading
        return loading

    async def _load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        started = self._clock()
        try:
            value = await load()
            self.put(key, value, started)
            return value
        finally:
            del self._loading[key]


def _retrieve_exception(task: asyncio.Future[Any]) -> None:
    """Mark a failed load's error seen: its waiters re-raise it, and with none it is not news."""
    if not task.cancelled():
        task.exception()
