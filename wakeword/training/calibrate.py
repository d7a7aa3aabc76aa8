"""Each wake word's threshold, chosen by ``wakeword train`` on real speech it never trained on.

The calibration speech is the real-speech set's calibration speakers (a share of its train speakers, kept
out of training) and, where installed, Asterisk's English, French and Russian prompts (training uses only
the Spanish and Italian ones). The model runs over it through the engine (VAD gate, smoothing, refractory
period) once, with the validation clips of the wake word inserted into the talkers at 0-20 dB: detections
within a clip (or a second after it) give the recall, all others are false accepts. The rule: the lowest threshold whose false accepts
per hour are within the target, then the highest one at most 0.15 above it that loses no more than two
points of recall (further from the false accepts at almost the same recall).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wakeword.pcm import SAMPLE_RATE

ASTERISK_CALIBRATION = (
    "/usr/share/asterisk/sounds/en_US_f_Allison",
    "/usr/share/asterisk/sounds/fr_CA_f_June",
    "/usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU",
)
GRID = tuple(round(0.2 + 0.025 * i, 3) for i in range(31))  # 0.2 ... 0.95


@dataclass(frozen=True)
class Calibration:
    keyword: str
    threshold: float
    hours: float
    false_accepts_per_hour: dict[float, float]
    recall: dict[float, float]
    positives: int
    met_target: bool

    def summary(self) -> dict:
        return {
            "threshold": self.threshold,
            "hours": round(self.hours, 3),
            "positives": self.positives,
            "met_target": self.met_target,
            "false_accepts_per_hour": {str(k): round(v, 3) for k, v in self.false_accepts_per_hour.items()},
            "recall": {str(k): round(v, 4) for k, v in self.recall.items()},
        }


def calibration_speech(real_cache: Path, rng: np.random.Generator) -> np.ndarray:
    """The calibration talkers, one file after another with 0.2-1.0 s pauses."""
    from wakeword.audio.sources import read_file
    from wakeword.errors import AudioFileError
    from wakeword.training.real_speech import RealSpeech, calibration_files, speech_stream

    rs = RealSpeech(real_cache)
    talk, _ = speech_stream(rs, calibration_files(rs), rng)
    parts = [talk]
    for d in ASTERISK_CALIBRATION:
        for p in sorted(Path(d).rglob("*.wav")) if Path(d).is_dir() else ():
            try:
                x = read_file(p)
            except AudioFileError:  # a few Debian prompts are empty files
                continue
            parts += [x, np.zeros(int(rng.uniform(0.2, 1.0) * SAMPLE_RATE), np.float32)]
    return np.concatenate(parts).astype(np.float32)


def choose(
    fa: dict[float, float], recall: dict[float, float], target: float, grid: Sequence[float] = GRID
) -> tuple[float, bool]:
    """The threshold rule of the module docstring; (threshold, whether the target was met)."""
    within = [t for t in grid if fa[t] <= target]
    if not within:
        return max(grid), False
    low = min(within)
    best = max(t for t in grid if low <= t <= low + 0.15 + 1e-9 and fa[t] <= target and recall[t] >= recall[low] - 0.02)
    return best, True


def score_trace(clf, audio: np.ndarray, keyword: str, hop_ms: int | None = None):
    """Per-hop scores of ``keyword`` over ``audio`` through the engine (replayable at any threshold), and the
    engine (its counters); ``hop_ms`` overrides the model's hop."""
    from wakeword.audio.sources import ArraySource
    from wakeword.engine import EngineConfig
    from wakeword.stream.detector import DetectorConfig
    from wakeword.tools.probes import record_trace

    config = EngineConfig(hop_ms=hop_ms, detector=DetectorConfig(keywords=(keyword,), threshold=0.5))
    trace, _, engine = record_trace(clf, ArraySource(audio, block_size=16000), config, (keyword,))
    return trace, engine


def fired(trace, keyword: str, threshold: float) -> list[int]:
    """Detection samples of ``keyword`` at ``threshold`` (the engine's detector replayed over ``trace``)."""
    from wakeword.stream.detector import DetectorConfig
    from wakeword.tools.metrics import replay

    return [s for _, s in replay(trace, DetectorConfig(keywords=(keyword,), threshold=threshold))]


def calibrate(
    model_dir: Path,
    keyword: str,
    positives: Sequence[np.ndarray],
    real_cache: Path,
    target_fa_per_hour: float,
    seed: int = 0,
) -> Calibration:
    """Run the model in ``model_dir`` over the calibration speech and choose ``keyword``'s threshold."""
    from wakeword.classifiers.speech_embedding import SpeechEmbeddingClassifier
    from wakeword.training.real_speech import insert_clips

    rng = np.random.default_rng([seed, 23])
    talk = calibration_speech(real_cache, rng)
    clf = SpeechEmbeddingClassifier(model_dir)
    # one pass: the clips inserted into the talkers; a detection outside every clip is a false accept
    mixed, spans = insert_clips(talk, list(positives), rng)
    trace, _ = score_trace(clf, mixed, keyword)
    hours = (len(mixed) - sum(b - a for a, b, _ in spans)) / SAMPLE_RATE / 3600
    fa, recall = {}, {}
    for t in GRID:
        hits = fired(trace, keyword, t)
        inside = [any(a <= f <= b + SAMPLE_RATE for a, b, _ in spans) for f in hits]
        fa[t] = (len(hits) - sum(inside)) / hours
        recall[t] = sum(any(a <= f <= b + SAMPLE_RATE for f in hits) for a, b, _ in spans) / max(1, len(spans))
    threshold, met = choose(fa, recall, target_fa_per_hour)
    return Calibration(keyword, threshold, hours, fa, recall, len(spans), met)
