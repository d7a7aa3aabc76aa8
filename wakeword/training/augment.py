"""Augmentation of synthesised words into realistic fixed-length clips.

Speed (resampling), gain, synthetic reverberation, and background noise at a
drawn SNR: synthetic white, pink and brown noise, and babble made of real
recorded speech. All randomness comes from the ``numpy.random.Generator``
passed in, so a seed reproduces a dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

SAMPLE_RATE = 16_000


def coloured_noise(rng: np.random.Generator, n: int, colour: str) -> np.ndarray:
    """White, pink (1/f) or brown (1/f²) noise with unit RMS."""
    white = rng.standard_normal(n)
    if colour == "white":
        x = white
    else:
        spectrum = np.fft.rfft(white)
        f = np.fft.rfftfreq(n)
        f[0] = f[1]
        spectrum /= np.sqrt(f) if colour == "pink" else f
        x = np.fft.irfft(spectrum, n)
    return (x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


def synthetic_rir(rng: np.random.Generator, rt60_s: float) -> np.ndarray:
    """An exponentially decaying noise impulse response with a direct path."""
    n = int(rt60_s * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    rir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60_s)
    rir[0] = 1.0 / 0.3
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2) + 1e-12))


@dataclass
class Background:
    """Real recordings to draw babble from (16 kHz float32), concatenated once."""

    audio: np.ndarray

    @classmethod
    def from_files(cls, paths: Sequence[Path], max_seconds: float = 1800.0) -> "Background":
        import soundfile as sf
        import soxr

        parts, total = [], 0
        for p in paths:
            x, rate = sf.read(str(p), dtype="float32", always_2d=True)
            x = x.mean(axis=1)
            if rate != SAMPLE_RATE:
                x = soxr.resample(x, rate, SAMPLE_RATE)
            if rms(x) > 1e-4:
                parts.append(x / rms(x) * 0.1)
                total += len(x)
            if total > max_seconds * SAMPLE_RATE:
                break
        if not parts:
            return cls(np.zeros(SAMPLE_RATE, np.float32))
        return cls(np.concatenate(parts).astype(np.float32))

    def babble(self, rng: np.random.Generator, n: int, talkers: int = 3) -> np.ndarray:
        out = np.zeros(n, np.float32)
        for _ in range(talkers):
            start = int(rng.integers(0, max(1, len(self.audio) - n)))
            seg = self.audio[start : start + n]
            out[: len(seg)] += seg
        return out / (rms(out) + 1e-12)


@dataclass(frozen=True)
class AugmentConfig:
    clip_samples: int = 24_000
    speed_range: tuple[float, float] = (0.9, 1.1)
    gain_db_range: tuple[float, float] = (-12.0, 3.0)
    reverb_p: float = 0.3
    noise_p: float = 0.8
    snr_db_range: tuple[float, float] = (0.0, 25.0)
    # pitch and formants moved together by sox (150-600 cents up or down): a new speaker from an old one
    pitch_p: float = 0.3
    pitch_cents_range: tuple[float, float] = (150.0, 600.0)
    # on the log-mel input of the embedding model, training clips only (:func:`augment_mel`): the mel axis
    # stretched or squeezed (a vocal-tract-length change, pitch unchanged) and a band of mel bins masked
    mel_warp_p: float = 0.0
    mel_warp_range: tuple[float, float] = (0.88, 1.12)
    mel_mask_p: float = 0.0
    mel_mask_bins: int = 4


def place(rng: np.random.Generator, word: np.ndarray, n: int, margin: int = 800) -> np.ndarray:
    """Put ``word`` at a random position fully inside ``n`` samples (cropped if longer)."""
    out = np.zeros(n, np.float32)
    word = word[: n - 2 * margin]
    start = int(rng.integers(margin, n - margin - len(word) + 1))
    out[start : start + len(word)] = word
    return out


def add_noise(rng: np.random.Generator, clip: np.ndarray, snr_db: float, background: Background | None,
              kind: str | None = None) -> np.ndarray:
    kinds = ["white", "pink", "brown"] + (["babble", "babble"] if background is not None else [])
    kind = kind or kinds[int(rng.integers(len(kinds)))]
    noise = background.babble(rng, len(clip)) if kind == "babble" else coloured_noise(rng, len(clip), kind)
    signal_rms = rms(clip[np.abs(clip) > 1e-4]) if np.any(np.abs(clip) > 1e-4) else 0.05
    return clip + noise * signal_rms / (10 ** (snr_db / 20))


def shift_pitch(word: np.ndarray, cents: float) -> np.ndarray:
    """``word`` a number of cents higher (or lower), same duration (sox's ``pitch``: WSOLA + resampling)."""
    import shutil
    import subprocess

    from ..errors import DependencyError

    exe = shutil.which("sox")
    if exe is None:
        raise DependencyError("sox is not installed: apt-get install sox")
    raw = ["-t", "raw", "-e", "floating-point", "-b", "32", "-r", str(SAMPLE_RATE), "-c", "1"]
    out = subprocess.run([exe, *raw, "-", *raw, "-", "pitch", f"{cents:.0f}"],
                         input=np.ascontiguousarray(word, np.float32).tobytes(), capture_output=True, check=True)
    return np.frombuffer(out.stdout, np.float32).copy()


def augment_word(rng: np.random.Generator, word: np.ndarray, config: AugmentConfig,
                 background: Background | None) -> np.ndarray:
    import soxr

    if config.pitch_p and rng.random() < config.pitch_p:
        cents = rng.uniform(*config.pitch_cents_range) * (1 if rng.random() < 0.55 else -1)
        word = shift_pitch(word, cents)
    speed = rng.uniform(*config.speed_range)
    if abs(speed - 1.0) > 1e-3:
        word = soxr.resample(word, SAMPLE_RATE * speed, SAMPLE_RATE).astype(np.float32)
    if rng.random() < config.reverb_p:
        rir = synthetic_rir(rng, rng.uniform(0.15, 0.7))
        word = np.convolve(word, rir)[: len(word) + len(rir) // 4].astype(np.float32)
    clip = place(rng, word, config.clip_samples)
    clip *= 10 ** (rng.uniform(*config.gain_db_range) / 20)
    if rng.random() < config.noise_p:
        clip = add_noise(rng, clip, rng.uniform(*config.snr_db_range), background)
    return np.clip(clip, -1.0, 1.0).astype(np.float32)


def augment_mel(rng: np.random.Generator, mel: np.ndarray, config: AugmentConfig) -> np.ndarray:
    """One clip's log-mel frames (frames, bins), warped along the bin axis and band-masked (a new array).

    Vocal tract length perturbation (Jaitly & Hinton 2013) done on the mel bins, where the embedding model's
    input already is: bin i takes the value at i / alpha up to a knee, then a straight line to the top bin so
    the band edges stay put. A mask sets 1..mel_mask_bins adjacent bins to the clip's mean (SpecAugment)."""
    mel = np.array(mel, dtype=np.float32)
    bins = mel.shape[1]
    if config.mel_warp_p and rng.random() < config.mel_warp_p:
        alpha = rng.uniform(*config.mel_warp_range)
        top = bins - 1.0
        knee = 0.8 * top * min(alpha, 1.0)
        i = np.arange(bins, dtype=np.float64)
        src = np.where(i <= knee, i / alpha, knee / alpha + (i - knee) * (top - knee / alpha) / (top - knee))
        lo = np.clip(np.floor(src).astype(int), 0, bins - 1)
        hi = np.minimum(lo + 1, bins - 1)
        w = (src - lo).astype(np.float32)
        mel = mel[:, lo] * (1 - w) + mel[:, hi] * w
    if config.mel_mask_p and rng.random() < config.mel_mask_p:
        width = int(rng.integers(1, config.mel_mask_bins + 1))
        start = int(rng.integers(0, bins - width + 1))
        mel[:, start : start + width] = mel.mean()
    return mel


def silence_clip(rng: np.random.Generator, config: AugmentConfig, background: Background | None) -> np.ndarray:
    """A clip without any word: quiet or loud noise, or distant babble."""
    n = config.clip_samples
    level = 10 ** (rng.uniform(-70, -20) / 20)
    kinds = ["white", "pink", "brown", "zero"] + (["babble"] if background is not None else [])
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "zero":
        return (rng.standard_normal(n) * 1e-4).astype(np.float32)
    if kind == "babble":
        return (background.babble(rng, n) * level).astype(np.float32)
    return (coloured_noise(rng, n, kind) * level).astype(np.float32)
