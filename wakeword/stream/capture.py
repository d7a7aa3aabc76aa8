"""Which span of the stream is the command after a wake word.

:class:`CommandCapture` is a pure state machine on sample counts: from the end
of the wake word to ``silence_s`` of non-speech after speech, or ``max_s``. It
never touches audio: the engine cuts the span from its ring buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

from wakeword.errors import ConfigError
from wakeword.pcm import SAMPLE_RATE

__all__ = ["CaptureConfig", "CaptureResult", "CommandCapture"]


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
