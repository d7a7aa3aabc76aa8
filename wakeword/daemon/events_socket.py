"""``--events``: every event as one JSON line (the objects of ``run --json``) to every subscriber.

``publish`` is called from the pipeline thread and never blocks: it hands the
line to the network loop, which appends it to each subscriber's bounded
queue. A subscriber that reads too slowly (or not at all) loses lines once
its queue is full; they are counted per subscriber and in total, and the
detection path never waits for it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field

from wakeword.daemon.address import Address
from wakeword.daemon.net import NetworkLoop, close_stream_server, start_stream_server
from wakeword.events import Event, event_to_json

__all__ = ["EventSocketServer"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Subscriber:
    number: int
    queue: asyncio.Queue
    dropped: int = 0
    sent: int = 0
    tasks: list = field(default_factory=list)


class EventSocketServer:
    """Fans JSON event lines out to any number of subscribers on ``address``."""

    def __init__(self, net: NetworkLoop, address: Address, queue_size: int = 256) -> None:
        self.net = net
        self.address = address
        self.queue_size = queue_size
        self.published = 0
        self.dropped = 0
        self.connected_total = 0
        self._subscribers: set[_Subscriber] = set()
        self._numbers = itertools.count(1)
        self._server: asyncio.AbstractServer | None = None

    def start(self) -> None:
        self._server = self.net.call(start_stream_server(self.address, self._handle, "--events"))

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, event: Event) -> None:
        """Queue ``event`` for every subscriber (thread-safe, never blocks)."""
        self.publish_line((event_to_json(event) + "\n").encode())

    def publish_line(self, line: bytes) -> None:
        self.published += 1
        self.net.call_soon(self._fan_out, line)

    def _fan_out(self, line: bytes) -> None:  # on the loop
        for sub in self._subscribers:
            try:
                sub.queue.put_nowait(line)
            except asyncio.QueueFull:
                sub.dropped += 1
                self.dropped += 1
                if sub.dropped == 1 or sub.dropped % 1000 == 0:
                    log.warning("event subscriber %d is not reading: %d event(s) dropped", sub.number, sub.dropped)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sub = _Subscriber(next(self._numbers), asyncio.Queue(maxsize=self.queue_size))
        self._subscribers.add(sub)
        self.connected_total += 1
        log.info("event subscriber %d connected", sub.number)
        writing = asyncio.ensure_future(self._write(sub, writer))
        watching = asyncio.ensure_future(reader.read())  # b"" when the subscriber hangs up
        sub.tasks = [writing, watching]
        try:
            await asyncio.wait(sub.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._subscribers.discard(sub)
            for task in sub.tasks:
                task.cancel()
            writer.close()
            log.info("event subscriber %d left (%d sent, %d dropped)", sub.number, sub.sent, sub.dropped)

    async def _write(self, sub: _Subscriber, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await sub.queue.get()
                if line is None:
                    return
                writer.write(line)
                await writer.drain()
                sub.sent += 1
        except (ConnectionError, OSError):
            return

    async def _close(self, flush_s: float) -> None:
        await close_stream_server(self._server, self.address)
        for sub in list(self._subscribers):
            try:
                sub.queue.put_nowait(None)  # flush what is queued, then hang up
            except asyncio.QueueFull:
                sub.tasks[0].cancel()
        writers = [sub.tasks[0] for sub in self._subscribers if sub.tasks]
        if writers:
            await asyncio.wait(writers, timeout=flush_s)
        for sub in list(self._subscribers):
            for task in sub.tasks:
                task.cancel()

    def close(self, flush_s: float = 0.3) -> None:
        """Stop accepting, give subscribers ``flush_s`` to receive queued lines, then hang up."""
        self.net.call(self._close(flush_s))

    def stats(self) -> dict[str, int]:
        return {
            "subscribers": self.subscribers,
            "connected_total": self.connected_total,
            "published": self.published,
            "dropped": self.dropped,
        }
