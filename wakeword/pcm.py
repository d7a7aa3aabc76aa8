"""The engine's one internal audio format: 16 kHz mono float32, time counted in samples.

Every source converts to it once (rate, channels, dtype); every component
after the source assumes it.
"""

from __future__ import annotations

__all__ = ["SAMPLE_RATE"]

SAMPLE_RATE = 16_000
