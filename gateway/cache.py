"""A small bounded LRU cache with a time-to-live, and concurrent loads of one key coalesced.

The hot path reads keys and credentials from here instead of the database; an entry older than
its TTL is loaded again, so changes made elsewhere (a revoked key) take effect within the TTL. One in
use is reloaded in the background during the second half of its TTL, so that the hot path does not
wait for the database each time a busy key's entry would expire.

A load's answer None means "not found": such answers are kept apart, in a bound of their own, so that
a flood of unknown keys cannot push out the values found. With `stale_if_error`, a value found keeps
being served for up to that long past its expiry while its reloads fail with an `unavailable` error
(the database cannot be reached); "not found" is never served stale. Without waiting for a load of
its own, an expired value is served only while the source is known down for it: the last load failed
so, after the value expired or while loading that value. A failure seen before (another key's lookup in
a moment's outage) says nothing of whether the value changed since (a key revoked): it is loaded again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Clock = Callable[[], float]
Load = Callable[[], Awaitable[V | None]]

logger = logging.getLogger("tollgate.cache")
_Entry = tuple[float, V, float, float, bool]  # see `TTLCache._entries`


class TTLCache(Generic[K, V]):
    """At most `size` values found and `misses_size` "not found" answers, each trusted for `ttl`
    seconds after its load started; a value found is served for `stale_if_error` seconds more while
    its source raises one of the `unavailable` errors (each time, `on_stale` is called)."""

    def __init__(
        self,
        ttl: float,
        size: int,
        clock: Clock = time.monotonic,
        *,
        misses_size: int | None = None,
        stale_if_error: float = 0.0,
        unavailable: tuple[type[BaseException], ...] = (),
        name: str = "cached values",
        on_stale: Callable[[], None] | None = None,
    ) -> None:
        self._ttl = ttl
        self._reload_ahead = ttl / 2  # how long before its expiry a value asked for is reloaded
        self._size = size
        self._misses_size = size if misses_size is None else misses_size
        self._clock = clock
        self._stale_for = stale_if_error
        self._unavailable = unavailable
        self._name = name
        self._on_stale = on_stale  # told of each lookup answered with a stale value (a metric counts them)
        # key -> (expires, value, served stale until, no lookup before, a lookup of it found the source
        # unreachable): the last three matter once expired
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._misses: OrderedDict[K, float] = OrderedDict()  # key -> expires
        # key -> its load: (the value, None for "not found"; whether it is a stale one served for it)
        self._loading: dict[K, asyncio.Future[tuple[V | None, bool]]] = {}
        self._source_down = False  # the last load failed as unavailable: stale values served at once
        self._down_seen = float("-inf")  # when a load last failed as unavailable (by the clock)
        self._serving_stale = False  # a stale value was served since the source last answered

    def __len__(self) -> int:
        return len(self._entries) + len(self._misses)

    def get(self, key: K) -> tuple[bool, V | None]:
        """(True, value) for a fresh entry (None for "not found"), else (False, None)."""
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None:
            if now < entry[0]:
                self._entries.move_to_end(key)
                return True, entry[1]
            if now >= entry[2]:  # kept past its expiry only to be served stale
                del self._entries[key]
        expires = self._misses.get(key)
        if expires is not None:
            if now < expires:
                self._misses.move_to_end(key)
                return True, None
            del self._misses[key]
        return False, None

    def put(self, key: K, value: V | None, loaded_at: float | None = None) -> None:
        """Store `value` (None: "not found"), fresh for the TTL from `loaded_at` (the clock's reading
        when it was read from its source), else from now."""
        if self._ttl <= 0:
            return
        expires = (self._clock() if loaded_at is None else loaded_at) + self._ttl
        if value is None:
            self._entries.pop(key, None)
            _store(self._misses, key, expires, self._misses_size)
        else:
            self._misses.pop(key, None)
            _store(
                self._entries, key, (expires, value, expires + self._stale_for, expires, False), self._size
            )

    def discard(self, key: K) -> None:
        self._entries.pop(key, None)
        self._misses.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
        self._misses.clear()

    async def get_or_load(self, key: K, load: Load[V]) -> V | None:
        """The cached value, or `load()`'s result; callers asking at once share one load.

        The load runs in a task of its own: a caller cancelled while waiting neither cancels it for
        the others nor hands them its cancellation. A failed load is not cached; every waiter gets
        its error. The value is trusted for the TTL from when its load started, not ended: a slow source
        answers as of the question, and a change made meanwhile (a key revoked) must still show within
        the TTL.

        A value asked for in the second half of its TTL is served and reloaded in the background, so
        that a value in use is replaced before it expires and its callers do not wait for the source
        every TTL; a failed reload leaves it to expire as it would have.

        Past its TTL, a value found is kept `stale_if_error` seconds more: a load of it that fails as
        unavailable answers it instead, and while the source is known to be down (the last load
        failed so, after its TTL or a load of this value) it is served at once and looked up in the
        background at most once each half TTL.
        """
        entry = self._entries.get(key)
        if entry is not None:
            expires, value, stale_until, _, looked_up_in_vain = entry
            now = self._clock()
            if now < expires:
                self._entries.move_to_end(key)
                if now >= expires - self._reload_ahead and key not in self._loading:
                    self._start_load(key, load)
                return value
            if now < stale_until and self._known_down_for(expires, looked_up_in_vain):
                return self._serve_stale(key, load, entry, now)
            if now >= stale_until:
                del self._entries[key]
        else:
            expires_miss = self._misses.get(key)
            if expires_miss is not None:
                now = self._clock()
                if now < expires_miss:
                    self._misses.move_to_end(key)
                    if now >= expires_miss - self._reload_ahead and key not in self._loading:
                        self._start_load(key, load)
                    return None
                del self._misses[key]
        loading = self._loading.get(key)
        if loading is None:
            loading = self._start_load(key, load)
        found, stale = await asyncio.shield(loading)
        if stale:  # the source was unreachable: the value it answered last, each waiter served so
            self._stale_served()
        return found

    def _known_down_for(self, expires: float, looked_up_in_vain: bool) -> bool:
        """Whether the source is known to be unreachable for a value that expired at `expires`."""
        return self._source_down and (looked_up_in_vain or self._down_seen >= expires)

    def _serve_stale(self, key: K, load: Load[V], entry: _Entry[V], now: float) -> V:
        """An expired value, while its source is known to be unreachable; looked up again in the
        background at most once each half TTL (and never twice at once)."""
        if now >= entry[3] and key not in self._loading:
            self._entries[key] = (*entry[:3], now + self._reload_ahead, True)
            self._start_load(key, load)
        self._stale_served()
        return entry[1]

    def _start_load(self, key: K, load: Load[V]) -> asyncio.Future[tuple[V | None, bool]]:
        loading = asyncio.ensure_future(self._load(key, load))
        loading.add_done_callback(_retrieve_exception)
        self._loading[key] = loading
        return loading

    async def _load(self, key: K, load: Load[V]) -> tuple[V | None, bool]:
        """The value loaded, or the one to serve in its place while the source is unreachable (then
        with True: stale, unless an early reload failed while it was still fresh)."""
        started = self._clock()
        try:
            value = await load()
        except self._unavailable:
            stale = self._stale_after_failure(key, started)
            if stale is None:
                raise
            return stale[1], self._clock() >= stale[0]
        finally:
            del self._loading[key]
        self._source_answered()
        self.put(key, value, started)
        return value, False

    def _stale_after_failure(self, key: K, started: float) -> _Entry[V] | None:
        """The entry to serve in place of a load that found the source unreachable, if any."""
        self._source_down = True
        self._down_seen = now = self._clock()
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries[key] = entry = (*entry[:3], max(entry[3], started + self._reload_ahead), True)
        if now < entry[0]:
            return entry  # still fresh (an early reload failed)
        if now >= entry[2]:
            return None
        return entry

    def _stale_served(self) -> None:
        """A lookup was answered with a stale value: reported, and said in the log once an outage."""
        if self._on_stale is not None:
            self._on_stale()
        if not self._serving_stale:
            self._serving_stale = True
            logger.warning(
                f"the database cannot be reached: serving stale {self._name} (as last found) "
                f"for up to {self._stale_for:g} s past their cache TTL",
                extra={"fields": {"stale_if_error_seconds": self._stale_for}},
            )

    def _source_answered(self) -> None:
        self._source_down = False
        if self._serving_stale:
            self._serving_stale = False
            logger.warning(f"the database answers again: {self._name} are looked up afresh")


def _store(entries: OrderedDict[Any, Any], key: Any, item: Any, size: int) -> None:
    entries[key] = item
    entries.move_to_end(key)
    while len(entries) > size:
        entries.popitem(last=False)


def _retrieve_exception(task: asyncio.Future[Any]) -> None:
    """Mark a failed load's error seen: its waiters re-raise it, and with none it is not news."""
    if not task.cancelled():
        task.exception()
