"""The classifier seam: a window of 16 kHz audio in, one score per label out.

Backends are looked up by name in :data:`CLASSIFIERS` (``load_classifier``);
the ONNX backend registers itself there. :class:`ToneClassifier` is a small,
deterministic classifier used by the tests and the benchmarks: it scores each
label by the share of spectral energy near that label's frequency, so its
output depends on the audio alone and the streaming invariants can be checked
without a trained model.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from .errors import ModelError

__all__ = [
    "CLASSIFIERS",
    "Classifier",
    "ToneClassifier",
    "load_classifier",
    "register_classifier",
]

SAMPLE_RATE = 16_000


@runtime_checkable
class Classifier(Protocol):
    """Scores the latest window of audio.

    ``scores(window)`` receives a float32 array of exactly ``window_samples``
    samples at ``sample_rate`` (16 kHz, mono, oldest sample first) and returns
    a float32 array of shape ``(len(labels),)`` with one probability-like score
    in [0, 1] per label. It must not keep a reference to ``window``: the
    engine reuses that memory.
    """

    @property
    def labels(self) -> tuple[str, ...]: ...

    @property
    def window_samples(self) -> int: ...

    @property
    def sample_rate(self) -> int: ...

    def scores(self, window: np.ndarray) -> np.ndarray: ...


def default_keywords(labels: tuple[str, ...]) -> tuple[str, ...]:
    """Labels that name a keyword: all but the ``_silence_``/``_unknown_`` style ones."""
    return tuple(label for label in labels if not label.startswith("_"))


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
        n_bins = self._window_samples // 2 + 1
        bin_hz = SAMPLE_RATE / self._window_samples
        centres = np.arange(n_bins) * bin_hz
        self._masks = np.zeros((len(freqs_hz), n_bins), dtype=np.float32)
        for i, freq in enumerate(freqs_hz.values()):
            self._masks[i] = np.abs(centres - freq) <= bandwidth_hz
        self._hann = np.hanning(self._window_samples).astype(np.float32)
        self._spectrum = np.empty(n_bins, dtype=np.float32)
        self._out = np.empty(len(self._labels), dtype=np.float32)

    @property
    def labels(self) -> tuple[str, ...]:
        return self._labels

    @property
    def window_samples(self) -> int:
        return self._window_samples

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

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


ClassifierFactory = Callable[[str], Classifier]
CLASSIFIERS: dict[str, ClassifierFactory] = {}


def register_classifier(name: str, factory: ClassifierFactory) -> None:
    """Register a backend; ``factory(spec)`` gets the text after ``name:``."""
    CLASSIFIERS[name] = factory


def _tone_factory(spec: str) -> Classifier:
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


register_classifier("tone", _tone_factory)


def load_classifier(model: str = "default", threads: int | None = None) -> Classifier:
    """Build a classifier from ``--model``: ``default`` (the shipped keyword model),
    ``NAME[:SPEC]`` for a registered backend, or a model directory."""
    if model == "default":
        from .models import default_model_dir

        path = default_model_dir()
        if not (path / "manifest.json").exists():
            raise ModelError(f"the default model is missing from {path}; reinstall wakeword or pass --model")
        return _load_directory(path, threads)
    name, _, spec = model.partition(":")
    if name in CLASSIFIERS:
        return CLASSIFIERS[name](spec)
    path = Path(model)
    if path.is_dir():
        return _load_directory(path, threads)
    if path.exists():
        raise ModelError(f"model {model!r} is not a directory; expected a model directory with a manifest.json")
    valid = ", ".join(sorted(CLASSIFIERS))
    raise ModelError(f"unknown model {model!r}: not a directory and not one of the built-in backends ({valid})")


def _load_directory(path: Path, threads: int | None) -> Classifier:
    """Dispatch on the manifest's architecture: our speech-embedding heads, else exported HF models."""
    import json

    manifest = path / "manifest.json"
    try:
        architecture = json.loads(manifest.read_text()).get("architecture")
    except FileNotFoundError:
        raise ModelError(f"{path}: no manifest.json; not a wakeword model directory") from None
    except (ValueError, UnicodeDecodeError, AttributeError) as e:
        raise ModelError(f"{manifest}: not a valid manifest ({e})") from None
    from .speech_embedding import ARCHITECTURE, SpeechEmbeddingClassifier

    if architecture == ARCHITECTURE:
        return SpeechEmbeddingClassifier(path, threads=threads)
    try:
        from .onnx_classifier import OnnxClassifier
    except ImportError as e:
        raise ModelError(f"the ONNX classifier backend is unavailable: {e}") from e
    return OnnxClassifier(path, threads=threads)

