"""One server's worker processes, seen as one by /metrics: each worker publishes its tallies to a
directory the workers share, and a scrape, whichever worker answers it, sums them.

`tollgate serve --workers N` (N > 1) makes a fresh directory for each start and names it to its workers
in `TOLLGATE_METRICS_DIR` (a process manager that starts the workers itself can do the same). Each worker
writes its tallies there as `<pid>.json`, replaced whole (never half-written), every
`PUBLISH_INTERVAL_SECONDS` and once more when it stops. A scrape adds its own worker's live tallies to
the other workers' last files: what another worker counted shows up to that interval late, and never
goes backwards. The counters of a worker that has exited (a restart) stay in the sums, its last file
kept; its gauges (ledger queue depth, background responses followed) no longer count.

Publishing reads the tallies on the event loop's thread, as every update does; the hot path pays nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

METRICS_DIR_ENV = "TOLLGATE_METRICS_DIR"
PUBLISH_INTERVAL_SECONDS = 1.0
_SUFFIX = ".json"

logger = logging.getLogger("tollgate.metrics")


@dataclass(frozen=True, slots=True)
class PeerTallies:
    """Another worker's last published tallies, and whether that worker still runs."""

    pid: int
    data: dict[str, Any]
    alive: bool

    @property
    def file_name(self) -> str:
        return f"{self.pid}{_SUFFIX}"


@dataclass(slots=True)
class WorkerDirectory:
    """The directory a server's workers share their tallies in; this worker is `pid`."""

    path: Path
    pid: int = field(default_factory=os.getpid)
    _unreadable: set[str] = field(default_factory=set)
    _published: bytes = b""

    def publish(self, data: dict[str, Any]) -> None:
        """Replace this worker's file with `data`, atomically: a reader sees the old file or the new.
        Unchanged tallies are not written again."""
        content = orjson.dumps(data)
        if content == self._published:
            return
        partial = self.path / f".{self.pid}.partial"
        partial.write_bytes(content)
        os.replace(partial, self.path / f"{self.pid}{_SUFFIX}")
        self._published = content

    def peers(self) -> Iterator[PeerTallies]:
        """The other workers' tallies, living or not; a file that cannot be read is skipped (and logged
        once)."""
        for file in sorted(self.path.glob(f"*{_SUFFIX}")):
            pid = _pid_of(file)
            if pid is None or pid == self.pid:
                continue
            try:
                data = orjson.loads(file.read_bytes())
            except (OSError, orjson.JSONDecodeError) as exc:
                self.unreadable(file.name, type(exc).__name__)
                continue
            if not isinstance(data, dict):
                self.unreadable(file.name, "not an object")
                continue
            yield PeerTallies(pid, data, _alive(pid))

    def unreadable(self, name: str, reason: str) -> None:
        if name not in self._unreadable:
            self._unreadable.add(name)
            logger.warning(
                "a worker's metrics file was skipped",
                extra={"fields": {"file": name, "reason": reason, "directory": str(self.path)}},
            )


def worker_directory(environ: Mapping[str, str]) -> WorkerDirectory | None:
    """The shared directory named in the environment, if any and if it exists."""
    value = environ.get(METRICS_DIR_ENV)
    if not value:
        return None
    path = Path(value)
    if not path.is_dir():
        raise ValueError(f"{METRICS_DIR_ENV}={value} is not a directory")
    return WorkerDirectory(path)


def _pid_of(file: Path) -> int | None:
    try:
        return int(file.name.removesuffix(_SUFFIX))
    except ValueError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user: alive, though not ours
        return True
    return True
