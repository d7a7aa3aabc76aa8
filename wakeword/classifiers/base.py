"""The classifier seam: a window of 16 kHz audio in, one score per label out.

A classifier says what it is through one frozen :class:`ModelInfo` (labels,
window, preferred hop, the keywords that fire by default and their
thresholds), so the engine, the detector and the tools never probe it with
``getattr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from wakeword.errors import ModelError
from wakeword.pcm import SAMPLE_RATE

__all__ = ["Classifier", "ModelInfo", "ScoreStream", "StreamingClassifier", "default_keywords", "softmax"]


def softmax(logits: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Probabilities of ``logits`` written into ``out`` (no allocation); returns ``out``."""
    np.subtract(logits, logits.max(), out=out)
    np.exp(out, out=out)
    out /= out.sum()
    return out


def default_keywords(labels: tuple[str, ...]) -> tuple[str, ...]:
    """Labels that name a keyword: all but the ``_silence_``/``_unknown_`` style ones."""
    return tuple(label for label in labels if not label.startswith("_"))


@dataclass(frozen=True)
class ModelInfo:
    """What a classifier is: ``labels`` in score order, its ``window_samples`` at ``sample_rate``,
    ``hop_ms`` it was trained for (``None``: the engine's default), the ``keywords`` that fire by
    default (empty: every label not starting with ``_``) and recommended per-keyword ``thresholds``."""

    labels: tuple[str, ...]
    window_samples: int
    sample_rate: int = SAMPLE_RATE
    hop_ms: int | None = None
    keywords: tuple[str, ...] = ()
    thresholds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.labels or not all(isinstance(label, str) and label for label in self.labels):
            raise ModelError(f"a model needs non-empty string labels, got {self.labels!r}")
        if self.window_samples <= 0:
            raise ModelError(f"a model window must be positive, got {self.window_samples} samples")
        if self.hop_ms is not None and self.hop_ms <= 0:
            raise ModelError(f"a model hop must be positive, got {self.hop_ms} ms")
        unknown = [k for k in self.keywords if k not in self.labels]
        if unknown:
            raise ModelError(f"keywords {unknown} are not labels of the model ({', '.join(self.labels)})")
        bad = {k: v for k, v in self.thresholds.items() if k not in self.labels or not 0.0 <= v <= 1.0}
        if bad:
            raise ModelError(f"bad recommended threshold(s) {bad}: each must name a label and lie in [0, 1]")

    @property
    def default_keywords(self) -> tuple[str, ...]:
        """The keywords that fire when the user names none."""
        return self.keywords or default_keywords(self.labels)


@runtime_checkable
class Classifier(Protocol):
    """Scores the latest window of audio.

    ``scores(window)`` receives a float32 array of exactly
    ``info.window_samples`` samples at ``info.sample_rate`` (16 kHz, mono,
    oldest sample first) and returns a float32 array of shape
    ``(len(info.labels),)`` with one probability-like score in [0, 1] per
    label. It must not keep a reference to ``window``: the engine reuses that
    memory.
    """

    @property
    def info(self) -> ModelInfo: ...

    def scores(self, window: np.ndarray) -> np.ndarray: ...


class ScoreStream(Protocol):
    """The scores of one stream, computed from what each hop adds (see :class:`StreamingClassifier`)."""

    def scores(self, window: np.ndarray, end_sample: int) -> np.ndarray:
        """Scores of ``window``, the stream's latest ``info.window_samples`` samples, ending at absolute sample
        ``end_sample``; consecutive calls may skip hops (a closed VAD gate), never go back without ``reset``."""
        ...

    def reset(self) -> None: ...


@runtime_checkable
class StreamingClassifier(Classifier, Protocol):
    """A classifier that can also score a stream incrementally: ``open_stream(hop_samples)`` gives one
    stream's state (``None`` when it cannot stream at that hop; the engine then scores whole windows)."""

    def open_stream(self, hop_samples: int) -> ScoreStream | None: ...
