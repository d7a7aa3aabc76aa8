"""Voice-activity gate: webrtcvad decisions with a hangover, in samples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wakeword.errors import ConfigError, DependencyError
from wakeword.pcm import SAMPLE_RATE

__all__ = ["VadConfig", "VadGate"]


@dataclass(frozen=True)
class VadConfig:
    """``aggressiveness`` 0 (lenient) to 3 (strict); ``frame_ms`` 10, 20 or 30;
    ``hangover_ms`` keeps the gate open after the last speech frame: a word fills the classifier's window only
    once it has ended, and the smoothed score needs a few hops more (with 300 ms, 4 of the 33 "marvin"s of the
    README's eval stream stayed below threshold 0.6 for the default model of commit 12ba3cd; with 600 ms, 2)."""

    enabled: bool = True
    aggressiveness: int = 2
    frame_ms: int = 30
    hangover_ms: int = 600

    def __post_init__(self) -> None:
        if self.aggressiveness not in (0, 1, 2, 3):
            raise ConfigError(f"vad_aggressiveness must be 0, 1, 2 or 3, got {self.aggressiveness!r}")
        if self.frame_ms not in (10, 20, 30):
            raise ConfigError(f"vad_frame_ms must be 10, 20 or 30, got {self.frame_ms!r}")
        if self.hangover_ms < 0:
            raise ConfigError(f"vad_hangover_ms must be >= 0, got {self.hangover_ms!r}")


class VadGate:
    """Decides, per hop, whether the classifier should run.

    ``update(hop)`` feeds float32 16 kHz samples of any length (frames are
    carried across calls) and returns True while speech was heard in this hop
    or within ``hangover_ms`` before its end. State: the partial frame, the
    sample index of the last speech frame's end, and samples seen.
    """

    def __init__(self, config: VadConfig = VadConfig()) -> None:
        self.config = config
        self.frame_samples = SAMPLE_RATE * config.frame_ms // 1000
        self.hangover_samples = SAMPLE_RATE * config.hangover_ms // 1000
        self._vad = None
        self._pcm = np.zeros(self.frame_samples, dtype=np.int16)
        self._pcm_bytes = self._pcm.data.cast("B")  # webrtcvad reads it without a copy
        self._scratch = np.zeros(self.frame_samples, dtype=np.float32)
        self.reset_states()

    def reset_states(self) -> None:
        """Forget everything heard so far (a fresh webrtcvad instance, clock at zero)."""
        if self.config.enabled:
            try:
                import webrtcvad
            except ImportError as e:
                raise DependencyError(f"webrtcvad is not installed ({e}); pip install webrtcvad-wheels") from e
            self._vad = webrtcvad.Vad(self.config.aggressiveness)
        self._fill = 0
        self.hop_had_speech = False
        self._seen = 0
        self._last_speech_end = -(10**18)
        self.speech_frames = 0
        self.frames = 0

    @property
    def is_open(self) -> bool:
        return self._vad is None or self._seen - self._last_speech_end <= self.hangover_samples

    def update(self, hop: np.ndarray) -> bool:
        """Feed one hop; True while the gate is open. ``hop_had_speech`` tells whether this hop itself held speech."""
        if self._vad is None:
            self._seen += hop.shape[0]
            self.hop_had_speech = True
            return True
        speech_before = self.speech_frames
        fs = self.frame_samples
        i = 0
        n = hop.shape[0]
        while i < n:
            take = min(fs - self._fill, n - i)
            # float [-1, 1] -> int16 with clipping, into the preallocated frame
            scratch = self._scratch[:take]
            np.multiply(hop[i : i + take], 32767.0, out=scratch)
            np.clip(scratch, -32768.0, 32767.0, out=scratch)
            self._pcm[self._fill : self._fill + take] = scratch
            self._fill += take
            i += take
            self._seen += take
            if self._fill == fs:
                self._fill = 0
                self.frames += 1
                if self._vad.is_speech(self._pcm_bytes, SAMPLE_RATE, fs):
                    self.speech_frames += 1
                    self._last_speech_end = self._seen
        self.hop_had_speech = self.speech_frames > speech_before
        return self.is_open
