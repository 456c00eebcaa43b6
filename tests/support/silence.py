"""Database servers that stop answering, as a network partition or a hung server leaves them: a port
that accepts connections and never answers, and a relay to a real server that can be paused (its
connections stay open, nothing passes either way).

Both run on their own thread, so that blocking tests (a gateway in a subprocess) and async tests alike
can use them:

    with SilentPort() as port:                        # postgresql://user@127.0.0.1:{port}/db hangs
        ...
    with PausableRelay(5432) as relay:                # postgresql://user@127.0.0.1:{relay.port}/db
        ...
        relay.pause()                                 # the server stops answering
"""

from __future__ import annotations

import asyncio
import socket
import threading
from types import TracebackType


class SilentPort:
    """A listening port whose connections the kernel completes and nobody ever reads or answers."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.port: int = self._socket.getsockname()[1]

    def __enter__(self) -> int:
        return self.port

    def __exit__(self, *_exc: object) -> None:
        self._socket.close()


class PausableRelay:
    """127.0.0.1:`port` relayed to 127.0.0.1:`target`; paused, it passes nothing and closes nothing."""

    def __init__(self, target: int) -> None:
        self._target = target
        self._loop = asyncio.new_event_loop()
        self._running = asyncio.Event()
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._serve, name="pausable-relay", daemon=True)

    def __enter__(self) -> PausableRelay:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def pause(self) -> None:
        self._loop.call_soon_threadsafe(self._running.clear)

    def resume(self) -> None:
        self._loop.call_soon_threadsafe(self._running.set)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._running.set()
        self._server = self._loop.run_until_complete(asyncio.start_server(self._relay, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._server.close()
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self._loop.run_until_complete(asyncio.sleep(0.01))  # the transports' closing callbacks
        self._loop.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._running.wait()
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except (OSError, asyncio.CancelledError):
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._running.wait()
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
