"""Turns per-hop classifier scores into detections: smoothing, thresholds, refractory time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from wakeword.errors import ConfigError
from wakeword.events import Detection
from wakeword.pcm import SAMPLE_RATE

__all__ = ["Detector", "DetectorConfig"]

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class DetectorConfig:
    """``threshold`` applies to every keyword without its own entry in ``thresholds``; when it is None, each
    keyword uses the threshold its model recommends (``manifest.json`` → ``thresholds``), else 0.5.

    ``smoothing_hops``: scores are averaged over the last this-many hops, a
    closed gate counting as zero, so a single-hop spike cannot fire alone. ``refractory_s``: after a keyword
    fires it cannot fire again for this long, nor while the audio it fired on is still in the classifier's
    window, nor before its smoothed score has fallen below its threshold, so one utterance fires once (a pause
    that closes the VAD gate re-arms a keyword, but the window rule still holds it). ``keywords``: which
    labels may fire (default: the model's wake words, else every label not starting with ``_``).
    """

    threshold: float | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)
    smoothing_hops: int = 3
    refractory_s: float = 1.0
    keywords: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 <= float(self.threshold) <= 1.0:
            raise ConfigError(f"threshold must be between 0 and 1, got {self.threshold!r}")
        for name, value in self.thresholds.items():
            if not 0.0 <= float(value) <= 1.0:
                raise ConfigError(f"threshold for {name!r} must be between 0 and 1, got {value!r}")
        if int(self.smoothing_hops) < 1:
            raise ConfigError(f"smoothing_hops must be >= 1, got {self.smoothing_hops!r}")
        if self.refractory_s < 0:
            raise ConfigError(f"refractory_s must be >= 0, got {self.refractory_s!r}")


class Detector:
    """Stateful detector for one stream. State: score history, re-arm flags, refractory ends."""

    def __init__(
        self,
        labels: tuple[str, ...],
        config: DetectorConfig = DetectorConfig(),
        default_keywords: tuple[str, ...] = (),
        window_samples: int = 0,
        model_thresholds: Mapping[str, float] | None = None,
    ) -> None:
        """``default_keywords``: the model's wake words, used when the config names none. ``window_samples``:
        the classifier's window; a keyword stays quiet at least this long after it fires. ``model_thresholds``:
        the model's recommended thresholds, used where the config sets neither a keyword's nor a global one."""
        self.config = config
        keywords = config.keywords or default_keywords or tuple(label for label in labels if not label.startswith("_"))
        unknown = [k for k in (*keywords, *config.thresholds) if k not in labels]
        if unknown:
            raise ConfigError(
                f"unknown keyword(s) {', '.join(map(repr, unknown))}; the model knows: {', '.join(labels)}"
            )
        if not keywords:
            raise ConfigError("no keyword to detect: the model has no keyword labels")
        self.keywords = tuple(keywords)
        self._index = np.array([labels.index(k) for k in keywords], dtype=np.intp)
        self._threshold_of = {
            k: float(config.thresholds.get(k, self._fallback_threshold(k, config, model_thresholds or {})))
            for k in keywords
        }
        self._thresholds = np.array([self._threshold_of[k] for k in keywords], dtype=np.float32)
        self._refractory_samples = max(int(round(config.refractory_s * SAMPLE_RATE)), int(window_samples))
        self._history = np.zeros((config.smoothing_hops, len(keywords)), dtype=np.float32)
        self._smoothed = np.zeros(len(keywords), dtype=np.float32)
        self.reset_states()

    @staticmethod
    def _fallback_threshold(keyword: str, config: DetectorConfig, model_thresholds: Mapping[str, float]) -> float:
        if config.threshold is not None:
            return float(config.threshold)
        return float(model_thresholds.get(keyword, DEFAULT_THRESHOLD))

    def thresholds(self) -> dict[str, float]:
        """The threshold each keyword fires at."""
        return dict(self._threshold_of)

    def reset_states(self) -> None:
        self._history[:] = 0.0
        self._smoothed[:] = 0.0
        self._row = 0
        self._armed = np.ones(len(self.keywords), dtype=bool)
        self._quiet_until = np.full(len(self.keywords), -1, dtype=np.int64)

    def update(self, scores: np.ndarray, sample: int) -> list[Detection]:
        """Feed the scores of the hop ending at ``sample``; return the detections it fires."""
        self._history[self._row] = scores[self._index]
        self._row = (self._row + 1) % self._history.shape[0]
        np.mean(self._history, axis=0, out=self._smoothed)
        above = self._smoothed >= self._thresholds
        fired: list[Detection] = []
        for i in np.flatnonzero(above & self._armed & (sample >= self._quiet_until)):
            fired.append(Detection(self.keywords[i], float(self._smoothed[i]), int(sample)))
            self._armed[i] = False
            self._quiet_until[i] = sample + self._refractory_samples
        self._armed |= ~above
        return fired

    def idle(self) -> None:
        """The gate is closed: no speech, so the history empties and every keyword re-arms."""
        self._history[:] = 0.0
        self._smoothed[:] = 0.0
        self._armed[:] = True

    @property
    def smoothed(self) -> np.ndarray:
        return self._smoothed
