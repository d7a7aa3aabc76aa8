"""Whisper on ONNX Runtime, torch-free: the second hand-off backend (``--asr-backend onnx``).

Reads a directory written by ``wakeword export MODEL --task
automatic-speech-recognition``: optimum's encoder and merged past-key-value
decoder (fp32 and int8), the ``tokenizer.json``, and a manifest with the
special and language token ids. One transcription is:

1. the numpy log-mel of :mod:`wakeword.features` (the audio padded to 30 s);
2. one encoder pass;
3. language ID: one decoder step on ``<|startoftranscript|>``, a softmax over
   the language tokens' logits (restricted to candidates if given), as
   transformers' ``detect_language`` and faster-whisper do;
4. greedy decoding (temperature 0, ``<|notimestamps|>``) with the decoder's
   key/value cache, suppressing the model's ``suppress_tokens`` on every step
   and ``begin_suppress_tokens`` on the first, as transformers' ``generate``.

Only numpy, onnxruntime and the ``tokenizers`` package are imported; a
missing, incomplete or altered model directory is a one-line ``ModelError``
that says how to make one.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wakeword.asr.base import TranscriptResult, check_language, command_audio
from wakeword.errors import ConfigError, DependencyError, ModelError
from wakeword.features import WhisperLogMel, WhisperLogMelOptions, feature_options_from_dict
from wakeword.manifest import sha256_file
from wakeword.pcm import SAMPLE_RATE

__all__ = [
    "EXPORT_HINT",
    "MANIFEST_FORMAT",
    "OnnxWhisperTranscriber",
    "WhisperTokens",
    "default_onnx_dir",
    "load_manifest",
]

log = logging.getLogger(__name__)

MANIFEST_FORMAT = "wakeword-onnx-whisper"
MANIFEST_VERSION = 1
PRECISIONS = ("int8", "fp32")
EXPORT_HINT = (
    "make it with: wakeword export CHECKPOINT --task automatic-speech-recognition --out DIR "
    "(for Whisper base: python scripts/ct2_whisper_to_transformers.py, then export its output "
    "to ~/.cache/wakeword/whisper-base-onnx)"
)
# compute types of the faster-whisper backend, mapped to the exported precisions
_COMPUTE_TYPES = {"int8": "int8", "int8_float32": "int8", "float32": "fp32", "default": None, "auto": None}


def default_onnx_dir() -> Path:
    """Where ``--asr-model base`` of this backend is looked for: ``~/.cache/wakeword/whisper-base-onnx``."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "wakeword" / "whisper-base-onnx"


@dataclass(frozen=True)
class WhisperTokens:
    """The special token ids a Whisper prompt and greedy decoding need, read from the manifest."""

    start_of_transcript: int
    end_of_text: int
    transcribe: int
    no_timestamps: int
    languages: dict[str, int]  # ISO code -> token id; empty for an English-only model
    suppress: tuple[int, ...]
    begin_suppress: tuple[int, ...]

    @classmethod
    def from_manifest(cls, spec: dict[str, Any]) -> WhisperTokens:
        try:
            return cls(
                start_of_transcript=int(spec["start_of_transcript"]),
                end_of_text=int(spec["end_of_text"]),
                transcribe=int(spec["transcribe"]),
                no_timestamps=int(spec["no_timestamps"]),
                languages={str(k): int(v) for k, v in spec["languages"].items()},
                suppress=tuple(int(t) for t in spec["suppress"]),
                begin_suppress=tuple(int(t) for t in spec["begin_suppress"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ModelError(f"the manifest's 'tokens' object is incomplete or malformed ({e!r}); {EXPORT_HINT}") from e


def load_manifest(model_dir: Path) -> dict[str, Any]:
    """The manifest of an ONNX Whisper export; anything missing or foreign is a one-line ModelError."""
    if not model_dir.is_dir():
        raise ModelError(f"no ONNX Whisper model at {model_dir}; {EXPORT_HINT}")
    path = model_dir / "manifest.json"
    if not path.is_file():
        raise ModelError(
            f"{model_dir}: no manifest.json (not an ONNX Whisper export, or an unfinished one); {EXPORT_HINT}"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: unreadable manifest ({e}); {EXPORT_HINT}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ModelError(f"{path}: format {found!r} is not {MANIFEST_FORMAT!r}; {EXPORT_HINT}")
    if manifest.get("format_version") != MANIFEST_VERSION:
        raise ModelError(
            f"{path}: format version {manifest.get('format_version')!r} is not {MANIFEST_VERSION}; "
            f"export the model again with this wakeword"
        )
    return manifest


def _verify_files(model_dir: Path, manifest: dict[str, Any], names: Sequence[str]) -> None:
    files = manifest.get("files") or {}
    for name in names:
        path = model_dir / name
        entry = files.get(name)
        if entry is None:
            raise ModelError(f"{model_dir}: the manifest lists no checksum for {name}; {EXPORT_HINT}")
        if not path.is_file():
            raise ModelError(f"{model_dir}: {name} is missing; {EXPORT_HINT}")
        if path.stat().st_size != entry.get("bytes") or sha256_file(path) != entry.get("sha256"):
            raise ModelError(f"{path}: checksum mismatch (corrupt or altered file); {EXPORT_HINT}")


def _check_options(compute_type: str, beam_size: int, threads: int, max_new_tokens: int | None) -> None:
    if beam_size != 1:
        raise ConfigError(f"the onnx backend decodes greedily (beam size 1), got beam size {beam_size}")
    if threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    if compute_type not in _COMPUTE_TYPES:
        raise ConfigError(
            f"unknown compute type {compute_type!r} for the onnx backend; choose one of: {', '.join(_COMPUTE_TYPES)}"
        )
    if max_new_tokens is not None and max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")


def _model_files(model_dir: Path, manifest: dict[str, Any], compute_type: str) -> tuple[str, str, str]:
    """``(precision, encoder file, decoder file)`` that ``compute_type`` picks among the manifest's models."""
    models = manifest.get("models") or {}
    precision = _COMPUTE_TYPES[compute_type] or ("int8" if "int8" in models else "fp32")
    if precision not in models:
        raise ModelError(
            f"{model_dir} has no {precision} model (it has {', '.join(models) or 'none'}); "
            f"export with --quantize {'int8' if precision == 'int8' else 'none'}"
        )
    files = models[precision]
    try:
        return precision, files["encoder"], files["decoder"]
    except (KeyError, TypeError):
        raise ModelError(f"{model_dir}: the manifest names no encoder/decoder for {precision}; {EXPORT_HINT}") from None


class OnnxWhisperTranscriber:
    """A :class:`~wakeword.asr.faster_whisper.Transcriber` on an ONNX Whisper export (greedy, temperature 0).

    ``model``: ``"base"`` (:func:`default_onnx_dir`) or an export directory.
    ``compute_type``: ``int8`` (default), ``float32``, or ``default``/``auto``
    (int8 where exported). ``threads``: ONNX Runtime intra-op threads.
    ``max_new_tokens``: cap on generated tokens (None: up to the model's 448
    positions). ``verify``: check every file used against the manifest's sha256.
    """

    def __init__(
        self,
        model: str | Path = "base",
        compute_type: str = "int8",
        beam_size: int = 1,
        threads: int = 2,
        max_new_tokens: int | None = None,
        verify: bool = True,
    ) -> None:
        _check_options(compute_type, beam_size, threads, max_new_tokens)
        model_dir = default_onnx_dir() if str(model) == "base" else Path(model).expanduser()
        manifest = load_manifest(model_dir)
        precision, encoder_file, decoder_file = _model_files(model_dir, manifest, compute_type)
        tokenizer_file = manifest.get("tokenizer", "tokenizer.json")
        if verify:
            _verify_files(model_dir, manifest, [encoder_file, decoder_file, tokenizer_file])
        self.model_dir = model_dir
        self.precision = precision
        self.manifest = manifest
        self.tokens = WhisperTokens.from_manifest(manifest.get("tokens") or {})
        self.supported_languages = tuple(self.tokens.languages) or ("en",)
        self.max_positions = int(manifest.get("max_target_positions", 448))
        self.max_new_tokens = max_new_tokens
        features = feature_options_from_dict(manifest.get("features") or {})
        if not isinstance(features, WhisperLogMelOptions):
            raise ModelError(f"{model_dir}: Whisper needs whisper_log_mel features, the manifest has {features.kind}")
        self._features = WhisperLogMel(features)
        self._lang_codes = list(self.tokens.languages)
        self._lang_ids = np.array([self.tokens.languages[c] for c in self._lang_codes], dtype=np.int64)
        self._load_runtime(model_dir, tokenizer_file, encoder_file, decoder_file, threads)
        self._past_names = [i.name for i in self._decoder.get_inputs() if i.name.startswith("past_key_values.")]
        self._empty_past = {}
        for i in self._decoder.get_inputs():
            if i.name.startswith("past_key_values."):
                heads, head_dim = i.shape[1], i.shape[3]
                self._empty_past[i.name] = np.zeros((1, heads, 0, head_dim), dtype=np.float32)
        self._present_names = [o.name for o in self._decoder.get_outputs()]
        suppress = np.zeros(self._decoder.get_outputs()[0].shape[-1], dtype=bool)
        suppress[list(self.tokens.suppress)] = True
        self._suppress = suppress
        self._begin_suppress = np.array(self.tokens.begin_suppress, dtype=np.int64)

    def _load_runtime(
        self, model_dir: Path, tokenizer_file: str, encoder_file: str, decoder_file: str, threads: int
    ) -> None:
        """The tokenizer and the two ONNX Runtime sessions; a missing package or bad file is one error line."""
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as e:
            raise DependencyError(
                f"the onnx Whisper backend needs onnxruntime and tokenizers ({e.name} is missing): "
                "pip install 'wakeword[whisper]'"
            ) from e
        try:
            self._tokenizer = Tokenizer.from_file(str(model_dir / tokenizer_file))
        except Exception as e:  # tokenizers raises a bare Exception on a bad file
            raise ModelError(f"{model_dir / tokenizer_file}: unreadable tokenizer ({e}); {EXPORT_HINT}") from e
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._encoder = ort.InferenceSession(
                str(model_dir / encoder_file), options, providers=["CPUExecutionProvider"]
            )
            self._decoder = ort.InferenceSession(
                str(model_dir / decoder_file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime's own exception types
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"cannot load {model_dir} with ONNX Runtime ({first}); {EXPORT_HINT}") from e

    # ---------------------------------------------------------------- steps

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """Encoder output ``(1, frames, d_model)`` for up to 30 s of 16 kHz audio."""
        features = self._features(audio)
        return self._encoder.run(None, {"input_features": features})[0]

    def _step(
        self, ids: Sequence[int], encoder_out: np.ndarray, past: dict[str, np.ndarray] | None
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Run the merged decoder on ``ids``; returns the last position's logits and the new cache."""
        feeds: dict[str, Any] = {
            "input_ids": np.asarray([ids], dtype=np.int64),
            "encoder_hidden_states": encoder_out,
            "use_cache_branch": np.array([past is not None]),
        }
        feeds.update(self._empty_past if past is None else past)
        outputs = self._decoder.run(None, feeds)
        cache = {}
        for name, value in zip(self._present_names[1:], outputs[1:]):
            key = "past_key_values." + name[len("present.") :]
            # the encoder's keys and values come out of the first step only; later steps return them unchanged
            cache[key] = value if past is None or ".decoder." in name else past[key]
        return outputs[0][0, -1], cache

    def _language_probabilities(self, logits: np.ndarray) -> np.ndarray:
        lang = logits[self._lang_ids].astype(np.float64)
        lang = np.exp(lang - lang.max())
        return lang / lang.sum()

    def _pick(self, probabilities: np.ndarray, languages: Sequence[str] | None) -> tuple[str, float]:
        if languages:
            for code in languages:
                self._check_language(code)
            candidates = [self._lang_codes.index(c) for c in languages]
        else:
            candidates = list(range(len(self._lang_codes)))
        best = max(candidates, key=lambda i: probabilities[i])
        return self._lang_codes[best], float(probabilities[best])

    def _check_language(self, code: str) -> str:
        return check_language(code, self.supported_languages)

    def generate(
        self,
        audio: np.ndarray,
        language: str | None = None,
        languages: Sequence[str] | None = None,
    ) -> tuple[list[int], str, float]:
        """``(token ids from <|startoftranscript|> on, language, its probability)``: the sequence
        transformers' ``generate`` returns, without the final ``<|endoftext|>``."""
        t = self.tokens
        encoder_out = self.encode(audio)
        if not t.languages:  # English-only model: no language token in the prompt
            if language not in (None, "en"):
                self._check_language(language)
            prompt, past = [t.start_of_transcript, t.no_timestamps], None
            code, probability = "en", 1.0
        elif language is not None:
            code, probability = self._check_language(language), 1.0
            prompt, past = [t.start_of_transcript, t.languages[code], t.transcribe, t.no_timestamps], None
        else:
            logits, past = self._step([t.start_of_transcript], encoder_out, None)
            code, probability = self._pick(self._language_probabilities(logits), languages)
            prompt = [t.start_of_transcript, t.languages[code], t.transcribe, t.no_timestamps]
        sequence = list(prompt)
        pending = prompt if past is None else prompt[1:]  # what the cache has not seen yet
        limit = self.max_positions - len(prompt)
        if self.max_new_tokens is not None:
            limit = min(limit, self.max_new_tokens)
        for step in range(limit):
            logits, past = self._step(pending, encoder_out, past)
            logits = logits.copy()
            logits[self._suppress] = -np.inf
            if step == 0:
                logits[self._begin_suppress] = -np.inf
            token = int(np.argmax(logits))
            if token == t.end_of_text:
                break
            sequence.append(token)
            pending = [token]
        return sequence, code, probability

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` without special or timestamp tokens."""
        text_ids = [i for i in ids if i < self.tokens.end_of_text]
        return self._tokenizer.decode(text_ids, skip_special_tokens=True).strip()

    def transcribe(
        self,
        audio: np.ndarray,
        language: str | None = None,
        languages: Sequence[str] | None = None,
    ) -> TranscriptResult:
        audio = command_audio(audio)
        duration_s = audio.shape[0] / SAMPLE_RATE
        if audio.shape[0] > self._features.options.n_samples:
            log.warning(
                "command of %.1f s: the onnx backend transcribes the first %d s",
                duration_s,
                self._features.options.chunk_length,
            )
        ids, code, probability = self.generate(audio, language, languages)
        return TranscriptResult(self.decode(ids), code, probability, duration_s)
