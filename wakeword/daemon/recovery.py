"""A source that survives its device: re-open with exponential backoff, count reconnects.

``RecoveringSource(open_source)`` calls ``open_source()`` for a fresh source
and iterates its blocks; when that raises :class:`DeviceError` (the device
was unplugged, failed to open, or stopped delivering), it waits 0.5 s,
1 s, 2 s ... up to ``max_backoff_s`` (the wait is cut short by ``stop()``)
and opens a new one. A device chosen by name is looked up again on every
open, so it is found after the system renumbered it. Any other error (a
missing file, bad samples) is not a device problem and is raised. The
backoff is the only wall clock here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator

import numpy as np

from wakeword.audio.sources import AudioSource, LossCountingSource, StoppableSource
from wakeword.errors import DeviceError
from wakeword.pcm import SAMPLE_RATE

__all__ = ["RecoveringSource"]

log = logging.getLogger(__name__)


class RecoveringSource:
    """Blocks from ``open_source()``, re-opened after each :class:`DeviceError` until ``stop()``."""

    def __init__(
        self,
        open_source: Callable[[], AudioSource],
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        healthy_after_s: float = 5.0,
        name: str = "source",
    ) -> None:
        self.open_source = open_source
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.healthy_after_samples = int(healthy_after_s * SAMPLE_RATE)
        self.name = name
        self.reconnects = 0  # successful re-opens after a failure
        self.failures = 0  # device errors seen (including failed re-opens)
        self.last_error = ""
        self.connected = False
        self._retired_overflows = 0
        self._retired_dropped = 0
        self._current: AudioSource | None = None
        self._stop = threading.Event()

    @property
    def overflows(self) -> int:
        current = self._current
        return self._retired_overflows + (current.overflows if isinstance(current, LossCountingSource) else 0)

    @property
    def dropped_blocks(self) -> int:
        current = self._current
        return self._retired_dropped + (current.dropped_blocks if isinstance(current, LossCountingSource) else 0)

    def _retire(self, source: AudioSource) -> None:
        if isinstance(source, LossCountingSource):
            self._retired_overflows += source.overflows
            self._retired_dropped += source.dropped_blocks
        self._current = None
        self.connected = False
        try:
            source.close()
        except Exception as e:  # a dead device may fail to close; the error that matters is logged
            log.debug("%s: error while closing: %s", self.name, e)

    def blocks(self) -> Generator[np.ndarray, None, None]:  # a generator: the daemon closes it
        backoff = self.initial_backoff_s
        failed = False
        while not self._stop.is_set():
            source: AudioSource | None = None
            delivered = 0
            try:
                source = self.open_source()
                self._current = source
                if self._stop.is_set():  # stop() came while opening
                    return
                for block in source.blocks():
                    if not self.connected:
                        self.connected = True
                        if failed:
                            self.reconnects += 1
                            failed = False
                            log.warning("%s: reconnected (%d reconnect(s) so far)", source.name, self.reconnects)
                    delivered += block.shape[0]
                    if delivered >= self.healthy_after_samples:
                        backoff = self.initial_backoff_s
                    yield block
                    if self._stop.is_set():
                        return
                return  # the source ended by itself (a file): so does this one
            except DeviceError as e:
                self.failures += 1
                failed = True
                self.last_error = str(e)
                log.warning("%s: %s; retrying in %.1f s", source.name if source is not None else self.name, e, backoff)
            finally:
                if source is not None:
                    self._retire(source)
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, self.max_backoff_s)

    def stop(self) -> None:
        """End ``blocks()`` soon: interrupts a backoff wait and the current source (thread-safe)."""
        self._stop.set()
        current = self._current
        if isinstance(current, StoppableSource):
            current.stop()

    def close(self) -> None:
        self.stop()
        if self._current is not None:
            self._retire(self._current)
