"""A preallocated ring buffer of recent audio with zero-copy reads of the latest samples."""

from __future__ import annotations

import numpy as np

from wakeword.errors import ConfigError

__all__ = ["RingBuffer"]


class RingBuffer:
    """Holds the last ``capacity`` samples; ``latest(n)`` is a view, never a copy.

    Every sample is stored twice, at ``i`` and ``i + capacity``, so any run of
    the most recent ``n <= capacity`` samples is contiguous in memory. Writes
    cost two slice assignments; nothing is allocated after construction.
    ``total`` counts every sample ever written: the engine's clock.
    """

    def __init__(self, capacity: int, dtype: np.dtype | type = np.float32) -> None:
        if capacity <= 0:
            raise ConfigError("ring buffer capacity must be positive")
        self.capacity = int(capacity)
        self._data = np.zeros(2 * self.capacity, dtype=dtype)
        self._pos = 0  # next write index, in [0, capacity)
        self.total = 0

    def write(self, block: np.ndarray) -> None:
        n = block.shape[0]
        cap = self.capacity
        if n >= cap:
            block = block[n - cap :]
            self._data[:cap] = block
            self._data[cap:] = block
            self._pos = 0
            self.total += n
            return
        start = self._pos
        end = start + n
        if end <= cap:
            self._data[start:end] = block
            self._data[start + cap : end + cap] = block
        else:
            split = cap - start
            self._data[start:cap] = block[:split]
            self._data[start + cap :] = block[:split]
            self._data[: n - split] = block[split:]
            self._data[cap : cap + n - split] = block[split:]
        self._pos = end % cap
        self.total += n

    def latest(self, n: int) -> np.ndarray:
        """The most recent ``n`` samples, oldest first (zeros before the stream began). A read-only view."""
        if not 0 <= n <= self.capacity:
            raise ValueError(f"can read 0..{self.capacity} samples, asked for {n}")
        end = self._pos + self.capacity
        view = self._data[end - n : end]
        view.flags.writeable = False
        return view

    def since(self, sample_index: int) -> np.ndarray:
        """Samples from absolute index ``sample_index`` to now (clipped to what is still held)."""
        n = min(self.total - sample_index, self.capacity, self.total)
        return self.latest(max(0, n))

    def reset(self) -> None:
        self._data[:] = 0
        self._pos = 0
        self.total = 0
