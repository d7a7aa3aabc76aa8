"""Keyword models on a frozen speech-embedding front end, run with ONNX Runtime alone.

The front end is Google's speech-embedding model (Apache-2.0) as two ONNX
files: ``melspectrogram.onnx`` (32 log-mel bins, 25 ms frames every 10 ms, no
centre padding) and ``embedding_model.onnx`` (76 mel frames → one 96-d
embedding, computed every 8 frames = 80 ms). A small trained head maps the
window's embeddings to one score per label.

Because mel frames are frame-local, the embedding of the same stretch of
audio is bit-identical from one hop to the next; :class:`EmbeddingFrontEnd`
keeps the recent ones keyed by their input, so a hop of 80 ms computes one
new embedding instead of the whole window.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wakeword.classifiers.base import ModelInfo, softmax
from wakeword.classifiers.embedding_stream import (  # the front end's geometry, defined once
    EMBEDDING_DIM,
    EMBEDDING_FRAMES,
    EMBEDDING_STRIDE,
    INT16_SCALE,
    MEL_HOP,
    MEL_WINDOW,
    EmbeddingStream,
)
from wakeword.errors import ModelError
from wakeword.manifest import MANIFEST, read_manifest, verified_file
from wakeword.onnxrt import open_session
from wakeword.pcm import SAMPLE_RATE

__all__ = [
    "ARCHITECTURE",
    "EMBEDDING_DIM",
    "EMBEDDING_FRAMES",
    "EMBEDDING_STRIDE",
    "MEL_HOP",
    "MEL_WINDOW",
    "EmbeddingFrontEnd",
    "SpeechEmbeddingClassifier",
    "embedding_count",
    "mel_frames",
]

log = logging.getLogger(__name__)

ARCHITECTURE = "speech-embedding-head"


def _session(path: Path, threads: int | None):
    return open_session(path, threads)


def mel_frames(n_samples: int) -> int:
    return max(0, (n_samples - MEL_WINDOW) // MEL_HOP + 1)


def embedding_count(n_samples: int, step: int = EMBEDDING_STRIDE) -> int:
    """Embeddings in a window of ``n_samples`` when consecutive ones are ``step`` mel frames apart."""
    return max(0, (mel_frames(n_samples) - EMBEDDING_FRAMES) // step + 1)


class EmbeddingFrontEnd:
    """Audio (16 kHz float32 in [-1, 1]) → (n, 96) speech embeddings, the last aligned to the audio's end."""

    def __init__(
        self,
        mel_path: Path,
        embedding_path: Path,
        threads: int | None = None,
        cache_size: int = 64,
        step: int = EMBEDDING_STRIDE,
    ):
        if step <= 0 or step % EMBEDDING_STRIDE:
            raise ModelError(f"embedding step {step} must be a positive multiple of {EMBEDDING_STRIDE} mel frames")
        self.step = step
        self._mel = _session(mel_path, threads)
        self._emb = _session(embedding_path, threads)
        self.mel_session = self._mel  # the shipped mel model (benchmarks, parity scripts)
        self.embedding_session = self._emb  # shared with the streaming front end
        self._mel_input = self._mel.get_inputs()[0].name
        self._emb_input = self._emb.get_inputs()[0].name
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self.computed = 0  # embeddings actually run through the model (for benchmarks)

    def mel(self, audio: np.ndarray) -> np.ndarray:
        """(frames, 32) log-mel features, scaled as the embedding model expects."""
        x = (audio * INT16_SCALE).astype(np.float32, copy=False)[None, :]
        mel = self._mel.run(None, {self._mel_input: x})[0]
        return mel.reshape(-1, 32) / 10.0 + 2.0

    def embed_mel(self, mel: np.ndarray) -> np.ndarray:
        """Embeddings of 76-frame windows of ``mel``, ``step`` frames apart, the last ending at its end."""
        step = self.step
        n = (mel.shape[0] - EMBEDDING_FRAMES) // step + 1
        if n <= 0:
            raise ModelError(f"audio too short for the speech-embedding front end ({mel.shape[0]} mel frames)")
        start = mel.shape[0] - EMBEDDING_FRAMES - (n - 1) * step
        windows = np.lib.stride_tricks.sliding_window_view(mel[start:], (EMBEDDING_FRAMES, 32))[::step, 0]
        out = np.empty((n, EMBEDDING_DIM), dtype=np.float32)
        missing = []
        keys = []
        for i in range(n):
            key = windows[i].tobytes()
            keys.append(key)
            hit = self._cache.get(key)
            if hit is None:
                missing.append(i)
            else:
                out[i] = hit
        if missing:
            batch = np.ascontiguousarray(windows[missing])[..., None]
            result = self._emb.run(None, {self._emb_input: batch})[0].reshape(len(missing), EMBEDDING_DIM)
            self.computed += len(missing)
            for j, i in enumerate(missing):
                out[i] = result[j]
                self._cache[keys[i]] = result[j].copy()
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return out

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        return self.embed_mel(self.mel(audio))

    def windows(self, clips: np.ndarray, mel_augment: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """The 76-frame log-mel windows of many equal-length clips, every 8 frames, the last ending at the
        clip's end: (clips, n, 76, 32). What the embedding model sees (training, fine-tuning).
        ``mel_augment`` maps each clip's (frames, 32) log-mel to another (training augmentation)."""
        x = (clips * INT16_SCALE).astype(np.float32)
        per_clip = [self._mel.run(None, {self._mel_input: c[None]})[0].reshape(-1, 32) / 10 + 2 for c in x]
        mels = np.stack([mel_augment(m) for m in per_clip] if mel_augment else per_clip)
        n = (mels.shape[1] - EMBEDDING_FRAMES) // EMBEDDING_STRIDE + 1
        start = mels.shape[1] - EMBEDDING_FRAMES - (n - 1) * EMBEDDING_STRIDE
        win = np.lib.stride_tricks.sliding_window_view(mels[:, start:], (EMBEDDING_FRAMES, 32), axis=(1, 2))
        return np.ascontiguousarray(win[:, ::EMBEDDING_STRIDE, 0])

    def batch(self, clips: np.ndarray, mel_augment: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """Embeddings of many equal-length clips at once (training), no caching: (clips, n, 96), every
        8 frames whatever ``step`` is, so one feature cache serves heads of any step (:func:`every_step`)."""
        win = self.windows(clips, mel_augment)
        n = win.shape[1]
        flat = win.reshape(-1, EMBEDDING_FRAMES, 32, 1)
        out = np.concatenate(
            [self._emb.run(None, {self._emb_input: flat[i : i + 512]})[0] for i in range(0, len(flat), 512)]
        )
        return out.reshape(len(clips), n, EMBEDDING_DIM)


def every_step(embeddings: np.ndarray, step: int) -> np.ndarray:
    """From embeddings 8 frames apart (..., n, 96), those ``step`` frames apart, the last one kept."""
    k = step // EMBEDDING_STRIDE
    n = (embeddings.shape[-2] - 1) // k + 1
    return embeddings[..., embeddings.shape[-2] - 1 - (n - 1) * k :: k, :]


class SpeechEmbeddingClassifier:
    """A model directory: ``manifest.json``, the two front-end files and ``head.onnx`` (or ``head.int8.onnx``).

    Implements the engine's ``Classifier`` protocol; ``keywords`` (from the
    manifest) are the labels that fire by default, e.g. only "marvin".
    """

    def __init__(self, model_dir: str | Path, precision: str | None = None, threads: int | None = None) -> None:
        self.model_dir = Path(model_dir)
        manifest = read_manifest(self.model_dir, hint="not a keyword model directory (made by `wakeword train`)")
        if manifest.get("architecture") != ARCHITECTURE:
            raise ModelError(f"{self.model_dir}: architecture {manifest.get('architecture')!r} is not {ARCHITECTURE!r}")
        if manifest.get("sampling_rate") != SAMPLE_RATE:
            raise ModelError(
                f"{self.model_dir}: model expects {manifest.get('sampling_rate')} Hz; the engine feeds {SAMPLE_RATE} Hz"
            )
        self.manifest = manifest
        files = manifest.get("files")
        if not isinstance(files, dict):
            raise ModelError(f"{self.model_dir / MANIFEST}: no 'files' table")
        head_key = {"int8": "head_int8", "fp32": "head", None: manifest.get("default_head", "head")}.get(precision)
        if head_key is None or head_key not in files:
            raise ModelError(f"{self.model_dir}: no {precision or 'default'} head in the manifest")
        paths = {k: self._verified(files.get(k)) for k in ("melspectrogram", "embedding", head_key)}
        # frames between the embeddings the head sees; older models (no key) used every embedding
        step = int(manifest.get("embedding_step_frames", EMBEDDING_STRIDE))
        self.frontend = EmbeddingFrontEnd(paths["melspectrogram"], paths["embedding"], threads, step=step)
        self._head = _session(paths[head_key], threads)
        self._head_input = self._head.get_inputs()[0].name
        # the mel model without its window-wide floor, for the streaming front end (models since it exists)
        self._raw_mel_path = self._verified(files["melspectrogram_raw"]) if "melspectrogram_raw" in files else None
        self._raw_mel: Any = None
        self._threads = threads
        # per-keyword thresholds chosen by `wakeword train` on real speech; the detector uses them unless told otherwise
        thresholds = {str(k): float(v) for k, v in (manifest.get("thresholds") or {}).items()}
        try:
            self.info = ModelInfo(
                labels=tuple(manifest["labels"]),
                window_samples=int(manifest["window_samples"]),
                hop_ms=int(manifest.get("hop_ms", 80)),
                keywords=tuple(manifest.get("keywords") or ()),
                thresholds=thresholds,
            )
        except (KeyError, TypeError, ValueError, ModelError) as e:
            raise ModelError(f"{self.model_dir / MANIFEST}: {e}") from None
        self.precision = "int8" if head_key == "head_int8" else "fp32"

    def _verified(self, entry: object) -> Path:
        if not isinstance(entry, dict):
            raise ModelError(f"{self.model_dir / MANIFEST}: a file entry must be {{path, sha256}}, got {entry!r}")
        return verified_file(self.model_dir, entry.get("path"), entry.get("sha256"))

    def open_stream(self, hop_samples: int, refloor: bool = False) -> EmbeddingStream | None:
        """A streaming scorer for one stream (``None``: this model or hop cannot stream; the engine then
        scores whole windows). Streams share the ONNX Runtime sessions, not their state. ``refloor``: see
        :class:`EmbeddingStream` (exact parity with :meth:`scores`, more embeddings)."""
        if self._raw_mel_path is None or hop_samples % MEL_HOP or self.info.window_samples % MEL_HOP:
            return None
        if self._raw_mel is None:
            self._raw_mel = _session(self._raw_mel_path, self._threads)
        return EmbeddingStream(
            self._raw_mel,
            self.frontend.embedding_session,
            self._head,
            self.info.window_samples,
            self.frontend.step,
            hop_samples,
            refloor=refloor,
        )

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        return self._head.run(None, {self._head_input: embeddings[None].astype(np.float32, copy=False)})[0][0]

    def scores(self, window: np.ndarray) -> np.ndarray:
        z = self.logits(self.frontend(window))
        return softmax(z, np.empty(z.shape, dtype=np.float32))
