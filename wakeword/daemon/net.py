"""One asyncio loop on one named thread for every socket of the daemon.

The loop only moves bytes; anything slow (classifying a Wyoming client's
audio) runs in an executor, so a busy or stalled client never holds up the
others. ``call`` runs a coroutine on the loop from any thread and waits for
its result, so bind errors surface where the server is started.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from wakeword.daemon.address import Address, prepare_unix_path
from wakeword.errors import ConfigError

__all__ = ["NetworkLoop", "close_stream_server", "start_stream_server"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class NetworkLoop:
    """An event loop running on the thread ``wakeword-net`` until ``close()``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="wakeword-net")
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = 10.0) -> T:
        """Run ``coro`` on the loop and return its result (re-raising its exception)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Schedule ``fn(*args)`` on the loop; never blocks (thread-safe)."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn, *args)

    def close(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()


async def start_stream_server(
    address: Address,
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    option: str,
) -> asyncio.AbstractServer:
    """Listen on ``address`` (a Unix socket gets mode 0600); bind errors become one-line ConfigErrors."""
    try:
        if address.scheme == "unix":
            prepare_unix_path(address.path, option)
            server = await asyncio.start_unix_server(handler, path=address.path)
            os.chmod(address.path, 0o600)
        else:
            server = await asyncio.start_server(handler, host=address.host, port=address.port)
    except OSError as e:
        raise ConfigError(f"{option}: cannot listen on {address} ({e.strerror or e})") from None
    log.info("%s listening on %s", option, address)
    return server


async def close_stream_server(server: asyncio.AbstractServer | None, address: Address) -> None:
    """Stop accepting; remove the Unix socket file it made (never one it did not bind)."""
    if server is None:
        return
    server.close()
    if address.scheme == "unix":
        try:
            os.unlink(address.path)
        except FileNotFoundError:
            pass
