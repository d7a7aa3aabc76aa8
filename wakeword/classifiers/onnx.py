"""Run an exported audio classifier on ONNX Runtime, without torch or transformers.

A model directory (written by :mod:`wakeword.export.classifier`) holds ``manifest.json``
and ``model.onnx`` / ``model.int8.onnx``. :class:`OnnxClassifier` checks the
sha256 of the file it loads against the manifest, computes the model's input
features in numpy (:mod:`wakeword.features`), and scores with one
``InferenceSession`` whose threads are set once, in the constructor. It
implements the engine's :class:`~wakeword.classifiers.base.Classifier` seam and
registers itself as the ``onnx`` backend, so ``load_classifier("models/ast")``
and ``wakeword run --model models/ast`` use it.

:func:`classify` scores a whole clip (any rate, any channel count) and returns
what the transformers audio-classification pipeline returns:
``[{"score": 0.99, "label": "backward"}, ...]``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from wakeword.classifiers.base import ModelInfo, softmax
from wakeword.classifiers.clips import top_predictions
from wakeword.errors import ConfigError, InvalidAudioError, ModelError
from wakeword.features import FeatureExtractor, build_feature_extractor
from wakeword.manifest import MANIFEST, read_manifest, verified_bytes, verified_file
from wakeword.onnxrt import default_threads, open_session
from wakeword.pcm import SAMPLE_RATE

__all__ = ["OnnxClassifier", "classify", "from_spec"]

log = logging.getLogger(__name__)

MANIFEST_FORMAT = "wakeword-onnx-classifier"
MANIFEST_VERSION = 1
PRECISIONS = ("int8", "fp32")


def _load_manifest(model_dir: Path) -> dict[str, Any]:
    manifest = read_manifest(model_dir, hint="create the directory with `wakeword export`")
    path = model_dir / MANIFEST
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ModelError(f"{path}: not a wakeword model manifest (format should be {MANIFEST_FORMAT!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > MANIFEST_VERSION:
        raise ModelError(f"{path}: manifest format_version {version!r} is newer than this wakeword reads")
    required = {
        "labels": list,
        "sampling_rate": int,
        "window_samples": int,
        "features": dict,
        "models": dict,
        "files": dict,
        "input_name": str,
        "output_name": str,
    }
    for key, kind in required.items():
        if not isinstance(manifest.get(key), kind):
            raise ModelError(f"{path}: manifest field {key!r} missing or not a {kind.__name__}")
    labels = manifest["labels"]
    if not labels or not all(isinstance(label, str) for label in labels):
        raise ModelError(f"{path}: manifest 'labels' must be a non-empty list of strings")
    if manifest["sampling_rate"] != SAMPLE_RATE:
        raise ModelError(
            f"{model_dir}: the model expects {manifest['sampling_rate']} Hz audio; the engine feeds {SAMPLE_RATE} Hz"
        )
    if manifest["window_samples"] <= 0:
        raise ModelError(f"{path}: window_samples must be positive")
    return manifest


def _sigmoid(logits: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.negative(logits, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)
    return out


class OnnxClassifier:
    """An exported model directory as a :class:`~wakeword.classifiers.base.Classifier`.

    ``precision`` picks ``model.int8.onnx`` or ``model.onnx`` (``None``: int8
    when the directory has it); ``threads`` sets ONNX Runtime's intra-op
    threads (``None``: :func:`default_threads`). Raises ``ModelError`` for a
    missing or corrupt directory, a checksum mismatch, or a model that does
    not take 16 kHz audio.
    """

    def __init__(
        self,
        model_dir: str | Path,
        precision: str | None = None,
        threads: int | None = None,
        *,
        verify_checksums: bool = True,
    ) -> None:
        if not str(model_dir):
            raise ModelError("the onnx backend needs a model directory: --model DIR or --model onnx:DIR")
        self.model_dir = Path(model_dir).expanduser()
        self.manifest = manifest = _load_manifest(self.model_dir)
        models = manifest["models"]
        if precision is None:
            precision = "int8" if "int8" in models else "fp32"
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be int8 or fp32, got {precision!r}")
        if precision not in models:
            have = ", ".join(sorted(models)) or "none"
            raise ModelError(f"{self.model_dir}: no {precision} model in the manifest (it has: {have})")
        if threads is None:
            threads = default_threads()
        self.precision = precision
        self.threads = threads
        self._labels = tuple(manifest["labels"])
        self._window_samples = int(manifest["window_samples"])
        self.info = ModelInfo(labels=self._labels, window_samples=self._window_samples)
        self._multi_label = bool(manifest.get("multi_label", False))
        self.features: FeatureExtractor = build_feature_extractor(manifest["features"])
        if self.features.options.sample_rate != manifest["sampling_rate"]:
            raise ModelError(f"{self.model_dir}: feature sampling rate disagrees with the manifest's")
        self._input_name = manifest["input_name"]
        self._output_name = manifest["output_name"]
        self._session = self._open_session(models[precision], verify_checksums)
        self._check_io()

        # preallocated model input and output, bound once: scores() allocates only its return value
        import onnxruntime as ort

        self._input = np.zeros(self.features.input_shape(self._window_samples), dtype=np.float32)
        self._logits = np.zeros((1, len(self._labels)), dtype=np.float32)
        self._scores = np.empty(len(self._labels), dtype=np.float32)
        self._binding = self._session.io_binding()
        self._input_value = ort.OrtValue.ortvalue_from_numpy(self._input)
        self._output_value = ort.OrtValue.ortvalue_from_numpy(self._logits)
        self._binding.bind_ortvalue_input(self._input_name, self._input_value)
        self._binding.bind_ortvalue_output(self._output_name, self._output_value)
        log.info(
            "loaded %s (%s, %s, %d labels, %d-sample window, %d thread(s))",
            self.model_dir,
            manifest.get("architecture", "?"),
            precision,
            len(self._labels),
            self._window_samples,
            threads,
        )

    # -- Classifier protocol

    def scores(self, window: np.ndarray) -> np.ndarray:
        """Probabilities for one window of exactly ``window_samples`` 16 kHz samples."""
        if window.shape != (self._window_samples,):
            raise InvalidAudioError(
                f"classifier window must be {self._window_samples} mono samples, got shape {window.shape}"
            )
        self.features(window, out=self._input)
        self._run_bound()
        return self._probabilities(self._logits[0], self._scores).copy()

    # -- whole clips

    def clip_scores(self, audio: np.ndarray) -> np.ndarray:
        """Probabilities for a whole 16 kHz mono clip of any length, as the transformers pipeline scores it.

        AST and Whisper see the clip padded or truncated to their fixed input;
        waveform models (wav2vec2) see all of it.
        """
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1 or audio.shape[0] == 0:
            raise InvalidAudioError(f"expected a non-empty mono clip, got shape {audio.shape}")
        features = self.features(audio)
        try:
            logits = self._session.run([self._output_name], {self._input_name: features})[0]
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"{self.model_dir}: ONNX Runtime failed on a {audio.shape[0]}-sample clip: {e}") from e
        return self._probabilities(logits[0], np.empty(len(self._labels), dtype=np.float32))

    def __repr__(self) -> str:
        return (
            f"OnnxClassifier({str(self.model_dir)!r}, precision={self.precision!r}, threads={self.threads}, "
            f"labels={len(self._labels)}, window_samples={self._window_samples})"
        )

    # -- internals

    def _probabilities(self, logits: np.ndarray, out: np.ndarray) -> np.ndarray:
        return _sigmoid(logits, out) if self._multi_label else softmax(logits, out)

    def _run_bound(self) -> None:
        try:
            self._session.run_with_iobinding(self._binding)
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"{self.model_dir}: ONNX Runtime failed: {e}") from e

    def _open_session(self, names: Any, verify: bool) -> Any:
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ModelError(f"{self.model_dir / MANIFEST}: models.{self.precision} must list file names")
        files = self.manifest["files"]
        first = self.model_dir / names[0]
        if verify and len(names) == 1:  # one read: ONNX Runtime loads exactly the checked bytes
            return open_session(
                verified_bytes(self.model_dir, names[0], (files.get(names[0]) or {}).get("sha256")),
                self.threads,
                name=first,
            )
        for name in names:
            if verify:
                verified_file(self.model_dir, name, (files.get(name) or {}).get("sha256"))
            elif not (self.model_dir / name).is_file():
                raise ModelError(f"{self.model_dir / name}: missing model file")
        return open_session(first, self.threads, name=first)

    def _check_io(self) -> None:
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name for o in self._session.get_outputs()}
        if self._input_name not in inputs or self._output_name not in outputs:
            raise ModelError(
                f"{self.model_dir}: the ONNX model's inputs {sorted(inputs)} / outputs {sorted(outputs)} "
                f"do not match the manifest ({self._input_name!r} -> {self._output_name!r})"
            )
        expected = self.features.input_shape(self._window_samples)
        declared = inputs[self._input_name].shape
        fixed = [(i, d) for i, d in enumerate(declared) if isinstance(d, int) and i > 0]
        if len(declared) != len(expected) or any(expected[i] != d for i, d in fixed):
            raise ModelError(
                f"{self.model_dir}: the features have shape {expected}, the ONNX model takes {tuple(declared)}"
            )


def classify(
    audio: np.ndarray,
    sample_rate: int,
    model: str | Path | OnnxClassifier,
    top_k: int = 5,
    *,
    precision: str | None = None,
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """Top-k labels of one clip: ``audio`` is ``(frames,)`` or ``(frames, channels)``, any rate and dtype.

    ``model`` is a model directory or a loaded :class:`OnnxClassifier` (load
    it once to classify many clips). Channels are averaged and the rate is
    converted to 16 kHz with soxr, as the engine's sources do.
    """
    from wakeword.audio.sources import Conditioner

    classifier = model if isinstance(model, OnnxClassifier) else OnnxClassifier(model, precision, threads)
    array = np.asarray(audio)
    if array.ndim not in (1, 2):
        raise InvalidAudioError(f"audio must be (frames,) or (frames, channels), got shape {array.shape}")
    channels = 1 if array.ndim == 1 else array.shape[1]
    mono = Conditioner(sample_rate, channels, "audio")(array, last=True)
    if mono.shape[0] == 0:
        raise InvalidAudioError("audio: no samples")
    return top_predictions(classifier.clip_scores(mono), classifier.info.labels, top_k)


def from_spec(spec: str, threads: int | None = None) -> OnnxClassifier:
    """``--model onnx:DIR``: an exported model directory."""
    return OnnxClassifier(spec, threads=threads)
