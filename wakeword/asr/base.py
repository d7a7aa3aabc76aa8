"""The transcriber seam: 16 kHz mono audio in, text and its language out.

Backends are named in :data:`TRANSCRIBERS` as ``"module:attr"`` and imported
only when asked for (:func:`make_transcriber`), so nothing depends on who
imported what first.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from wakeword.errors import ConfigError, InvalidAudioError

__all__ = ["TRANSCRIBERS", "Transcriber", "TranscriptResult", "check_language", "command_audio", "make_transcriber"]

INSTALL_HINT = "pip install 'wakeword[whisper]'"


@dataclass(frozen=True)
class TranscriptResult:
    """What a transcriber heard: ``text``, its ``language`` (ISO 639-1) and how sure language ID was."""

    text: str
    language: str
    language_probability: float
    duration_s: float


class Transcriber(Protocol):
    def transcribe(
        self,
        audio: np.ndarray,
        language: str | None = None,
        languages: Sequence[str] | None = None,
    ) -> TranscriptResult:
        """Transcribe 16 kHz mono float32 ``audio``. ``language`` forces one language;
        ``languages`` restricts language ID to these candidates."""
        ...


def command_audio(audio: np.ndarray) -> np.ndarray:
    """``audio`` as float32 mono, or InvalidAudioError: what every transcriber accepts."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise InvalidAudioError(f"expected mono audio (1-D), got shape {audio.shape}")
    if not np.isfinite(audio).all():
        raise InvalidAudioError("audio contains NaN or infinite samples")
    return audio


def check_language(code: str, supported: Sequence[str]) -> str:
    """``code`` if the model knows it, else a ConfigError."""
    if code not in supported:
        raise ConfigError(f"unknown language {code!r} for this model; e.g. en, fr, de, es, it")
    return code


TRANSCRIBERS: dict[str, str] = {
    "faster-whisper": "wakeword.asr.faster_whisper:FasterWhisperTranscriber",
    "onnx": "wakeword.asr.onnx_whisper:OnnxWhisperTranscriber",
}


def make_transcriber(name: str, **options: Any) -> Transcriber:
    """Build the transcriber registered as ``name`` with backend ``options``."""
    try:
        target = TRANSCRIBERS[name]
    except KeyError:
        raise ConfigError(f"unknown transcriber {name!r}; choose one of: {', '.join(sorted(TRANSCRIBERS))}") from None
    module, _, attr = target.partition(":")
    factory = getattr(importlib.import_module(module), attr)
    return factory(**options)  # a registered class implementing Transcriber
