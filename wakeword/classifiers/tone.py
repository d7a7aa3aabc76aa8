"""A small, deterministic classifier for tests and benchmarks (``--model tone``).

It scores each label by the share of spectral energy near that label's
frequency, so its output depends on the audio alone and the streaming
invariants can be checked without a trained model.
"""

from __future__ import annotations

import math

import numpy as np

from wakeword.classifiers.base import ModelInfo
from wakeword.errors import ModelError
from wakeword.pcm import SAMPLE_RATE

__all__ = ["ToneClassifier", "from_spec"]


class ToneClassifier:
    """Deterministic test classifier: label ``k`` scores the energy share near ``freqs[k]``.

    The score of a label is the fraction of the window's spectral energy that
    lies within ``bandwidth_hz`` of its frequency; ``_silence_`` gets the rest
    when the window is quiet. A pure 440 Hz tone under ``{"marvin": 440}``
    scores ~1.0 for "marvin".
    """

    def __init__(
        self,
        freqs_hz: dict[str, float] | None = None,
        window_samples: int = SAMPLE_RATE,
        bandwidth_hz: float = 40.0,
    ) -> None:
        freqs_hz = dict(freqs_hz or {"marvin": 440.0, "sheila": 660.0, "go": 880.0})
        if window_samples <= 0:
            raise ModelError("tone classifier: window_samples must be positive")
        self._labels = tuple(freqs_hz) + ("_silence_",)
        self._window_samples = int(window_samples)
        self.info = ModelInfo(labels=self._labels, window_samples=self._window_samples)
        n_bins = self._window_samples // 2 + 1
        bin_hz = SAMPLE_RATE / self._window_samples
        centres = np.arange(n_bins) * bin_hz
        self._masks = np.zeros((len(freqs_hz), n_bins), dtype=np.float32)
        for i, freq in enumerate(freqs_hz.values()):
            self._masks[i] = np.abs(centres - freq) <= bandwidth_hz
        self._hann = np.hanning(self._window_samples).astype(np.float32)
        self._spectrum = np.empty(n_bins, dtype=np.float32)
        self._out = np.empty(len(self._labels), dtype=np.float32)

    def scores(self, window: np.ndarray) -> np.ndarray:
        power = np.abs(np.fft.rfft(window * self._hann)) ** 2
        self._spectrum[:] = power
        total = float(self._spectrum.sum())
        # ~ -60 dBFS RMS: below it the window counts as silence
        quiet = total < 1e-6 * self._window_samples * float(self._hann.sum())
        out = self._out
        if total <= 0.0 or quiet:
            out[:] = 0.0
            out[-1] = 1.0
            return out.copy()
        np.dot(self._masks, self._spectrum, out=out[:-1])
        out[:-1] /= total
        out[-1] = max(0.0, 1.0 - float(out[:-1].sum()))
        return out.copy()


def from_spec(spec: str, threads: int | None = None) -> ToneClassifier:
    """``tone`` or ``tone:marvin=440,go=880``: the labels and their frequencies (``threads`` is unused)."""
    if not spec:
        return ToneClassifier()
    freqs: dict[str, float] = {}
    for item in spec.split(","):
        label, _, freq = item.partition("=")
        try:
            value = float(freq)
        except ValueError:
            raise ModelError(f"tone classifier: expected LABEL=HZ, got {item!r}") from None
        if not label or not math.isfinite(value) or value <= 0:
            raise ModelError(f"tone classifier: expected LABEL=HZ, got {item!r}")
        freqs[label] = value
    return ToneClassifier(freqs)
