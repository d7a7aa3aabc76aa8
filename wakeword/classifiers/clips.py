"""Whole clips through any classifier, in the shape the transformers audio-classification pipeline returns.

A model with a whole-clip path of its own (an exported AST pads or truncates
the clip to its input, as the pipeline does) uses it. A streaming model (our
keyword heads, the tone classifier) sees the clip as the engine would: after a
window of silence, then every hop over the clip and half a window of silence
after it; the clip's scores are those of the window where a keyword scored
highest, so a one-second "marvin" is classified at the moment it ends.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from wakeword.classifiers.base import Classifier
from wakeword.errors import ConfigError, InvalidAudioError
from wakeword.pcm import SAMPLE_RATE

__all__ = ["ClipClassifier", "clip_scores", "top_predictions"]

DEFAULT_HOP_MS = 100


@runtime_checkable
class ClipClassifier(Protocol):
    """A classifier that scores a whole clip of any length itself."""

    def clip_scores(self, audio: np.ndarray) -> np.ndarray: ...


def clip_scores(classifier: Classifier, audio: np.ndarray) -> np.ndarray:
    """One score per label for a whole 16 kHz mono clip of any length."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or audio.shape[0] == 0:
        raise InvalidAudioError(f"expected a non-empty mono clip, got shape {audio.shape}")
    if isinstance(classifier, ClipClassifier):
        return classifier.clip_scores(audio)
    info = classifier.info
    window = info.window_samples
    hop = SAMPLE_RATE * (info.hop_ms or DEFAULT_HOP_MS) // 1000
    padded = np.zeros(window + audio.shape[0] + window // 2, dtype=np.float32)
    padded[window : window + audio.shape[0]] = audio
    keywords = [i for i, label in enumerate(info.labels) if label in info.default_keywords] or list(
        range(len(info.labels))
    )
    best: np.ndarray | None = None
    best_score = -1.0
    for end in range(window + hop, padded.shape[0] + 1, hop):
        scores = np.array(classifier.scores(padded[end - window : end]), dtype=np.float32)
        score = float(scores[keywords].max())
        if score > best_score:
            best, best_score = scores, score
    assert best is not None  # the loop runs at least once: padded is longer than window + hop
    return best


def top_predictions(scores: np.ndarray, labels: tuple[str, ...] | list[str], top_k: int = 5) -> list[dict[str, Any]]:
    """``[{"score": float, "label": str}, ...]``, best first, as the transformers pipeline returns."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"top_k must be a positive integer, got {top_k!r}")
    order = np.argsort(-scores, kind="stable")[: min(top_k, len(labels))]
    return [{"score": float(scores[i]), "label": labels[i]} for i in order]
