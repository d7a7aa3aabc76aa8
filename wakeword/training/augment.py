"""Augmentation of synthesised words into realistic fixed-length clips.

Speed (resampling), gain, synthetic reverberation, and background noise at a
drawn SNR: synthetic white, pink and brown noise, and babble made of real
recorded speech. All randomness comes from the ``numpy.random.Generator``
passed in, so a seed reproduces a dataset.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wakeword.pcm import SAMPLE_RATE


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
    def from_files(cls, paths: Sequence[Path], max_seconds: float = 1800.0) -> Background:
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
    # the word as the detector sees it when it has just ended, after other (real) speech (:func:`in_context`)
    context_p: float = 0.0
    after_p: float = 0.3  # of those, the share with the start of a following utterance in the tail
    # a simulated room (:class:`RoomBank`, replaces the synthetic reverberation) and a capture channel
    room_p: float = 0.0
    channel_p: float = 0.0
    music: bool = False  # music-like and TV-like (a talker over music) among the noises, and music negatives


def place(rng: np.random.Generator, word: np.ndarray, n: int, margin: int = 800) -> np.ndarray:
    """Put ``word`` at a random position fully inside ``n`` samples (cropped if longer)."""
    out = np.zeros(n, np.float32)
    word = word[: n - 2 * margin]
    start = int(rng.integers(margin, n - margin - len(word) + 1))
    out[start : start + len(word)] = word
    return out


def _babble_source(background: Background | None, kind: str) -> Background:
    """The recordings that ``kind`` noise (babble, tv) is drawn from."""
    if background is None:
        raise ValueError(f"{kind} noise needs a Background of real recordings")
    return background


def add_noise(
    rng: np.random.Generator,
    clip: np.ndarray,
    snr_db: float,
    background: Background | None,
    kind: str | None = None,
    with_music: bool = False,
) -> np.ndarray:
    kinds = ["white", "pink", "brown"] + (["babble", "babble"] if background is not None else [])
    if with_music:
        kinds += ["music", "tv"] if background is not None else ["music"]
    kind = kind or kinds[int(rng.integers(len(kinds)))]
    if kind == "babble":
        noise = _babble_source(background, kind).babble(rng, len(clip))
    elif kind == "music":
        noise = music_segment(rng, len(clip))
    elif kind == "tv":  # a talker over music, as from a television
        talker = _babble_source(background, kind).babble(rng, len(clip), talkers=1)
        noise = talker + music_segment(rng, len(clip)) * rng.uniform(0.2, 1.0)
        noise = noise / (rms(noise) + 1e-12)
    else:
        noise = coloured_noise(rng, len(clip), kind)
    signal_rms = rms(clip[np.abs(clip) > 1e-4]) if np.any(np.abs(clip) > 1e-4) else 0.05
    return clip + noise * signal_rms / (10 ** (snr_db / 20))


def shift_pitch(word: np.ndarray, cents: float) -> np.ndarray:
    """``word`` a number of cents higher (or lower), same duration (sox's ``pitch``: WSOLA + resampling)."""
    import shutil
    import subprocess

    from wakeword.errors import DependencyError

    exe = shutil.which("sox")
    if exe is None:
        raise DependencyError("sox is not installed: apt-get install sox")
    raw = ["-t", "raw", "-e", "floating-point", "-b", "32", "-r", str(SAMPLE_RATE), "-c", "1"]
    out = subprocess.run(
        [exe, *raw, "-", *raw, "-", "pitch", f"{cents:.0f}"],
        input=np.ascontiguousarray(word, np.float32).tobytes(),
        capture_output=True,
        check=True,
    )
    return np.frombuffer(out.stdout, np.float32).copy()


def augment_word(
    rng: np.random.Generator,
    word: np.ndarray,
    config: AugmentConfig,
    background: Background | None,
    context: Background | None = None,
    rooms: RoomBank | None = None,
) -> np.ndarray:
    """A training clip of ``word``: pitch, speed, reverberation, placement (alone, or after real speech from
    ``context``), gain, capture channel and noise, each drawn from ``rng`` with the probabilities of
    ``config``."""
    import soxr

    if config.pitch_p and rng.random() < config.pitch_p:
        cents = rng.uniform(*config.pitch_cents_range) * (1 if rng.random() < 0.55 else -1)
        word = shift_pitch(word, cents)
    speed = rng.uniform(*config.speed_range)
    if abs(speed - 1.0) > 1e-3:
        word = soxr.resample(word, SAMPLE_RATE * speed, SAMPLE_RATE).astype(np.float32)
    if rooms is None and rng.random() < config.reverb_p:
        rir = synthetic_rir(rng, rng.uniform(0.15, 0.7))
        word = np.convolve(word, rir)[: len(word) + len(rir) // 4].astype(np.float32)
    n = config.clip_samples
    if context is not None and rng.random() < config.context_p:
        after = context.babble(rng, n, talkers=1) if rng.random() < config.after_p else None
        clip = in_context(rng, word, n, context.babble(rng, n, talkers=1), after)
    else:
        clip = place(rng, word, n)
    if rooms is not None and rng.random() < config.room_p:
        clip = rooms.apply(rng, clip)
    if config.channel_p and rng.random() < config.channel_p:
        clip = channel(rng, clip)
    clip *= 10 ** (rng.uniform(*config.gain_db_range) / 20)
    if rng.random() < config.noise_p:
        clip = add_noise(rng, clip, rng.uniform(*config.snr_db_range), background, with_music=config.music)
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
        return (_babble_source(background, kind).babble(rng, n) * level).astype(np.float32)
    return (coloured_noise(rng, n, kind) * level).astype(np.float32)


class RoomBank:
    """Room impulse responses simulated once by pyroomacoustics (image source method in random shoebox rooms:
    size, wall absorption, talker and microphone positions drawn from the seed), then drawn per clip."""

    def __init__(self, seed: int, n: int = 160) -> None:
        try:
            import pyroomacoustics as pra
        except ImportError as e:
            from wakeword.errors import DependencyError

            raise DependencyError("room acoustics need pyroomacoustics: pip install 'wakeword[train]'") from e
        rng = np.random.default_rng([seed, 17])
        self.rirs: list[np.ndarray] = []
        for _ in range(n):
            dims = np.array([rng.uniform(3, 9), rng.uniform(2.5, 7), rng.uniform(2.3, 3.5)])
            absorption = float(rng.uniform(0.08, 0.6))
            room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=12)
            src = rng.uniform([0.4, 0.4, 1.0], dims - [0.4, 0.4, 1.0])
            mic = rng.uniform([0.3, 0.3, 0.5], dims - [0.3, 0.3, 0.8])
            room.add_source(src)
            room.add_microphone(mic)
            room.compute_rir()
            rir = np.asarray(room.rir[0][0], np.float64)[:SAMPLE_RATE]  # at most 1 s of tail
            self.rirs.append((rir / (np.abs(rir).max() + 1e-12)).astype(np.float32))

    def apply(self, rng: np.random.Generator, audio: np.ndarray) -> np.ndarray:
        from scipy.signal import fftconvolve

        rir = self.rirs[int(rng.integers(len(self.rirs)))]
        wet = fftconvolve(audio, rir)[: len(audio)]
        return (wet * rms(audio) / (rms(wet) + 1e-12)).astype(np.float32)


def channel(rng: np.random.Generator, clip: np.ndarray) -> np.ndarray:
    """A random capture channel: telephone band (8 kHz, 300-3400 Hz), a cheap microphone (high-pass and a
    resonant tilt), or a soft-clipping loud one; the same length."""
    import soxr

    kind = int(rng.integers(3))
    n = len(clip)
    if kind == 0:
        narrow = soxr.resample(clip, SAMPLE_RATE, 8000)
        spec = np.fft.rfft(narrow)
        f = np.fft.rfftfreq(len(narrow), 1 / 8000)
        spec *= 1 / (1 + (300 / np.maximum(f, 1)) ** 4) / (1 + (f / 3400) ** 8)
        out = soxr.resample(np.fft.irfft(spec, len(narrow)).astype(np.float32), 8000, SAMPLE_RATE)
        out = np.pad(out, (0, max(0, n - len(out))))[:n]
    elif kind == 1:
        spec = np.fft.rfft(clip)
        f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
        cut = rng.uniform(100, 500)
        peak, width, gain = rng.uniform(1500, 5000), rng.uniform(500, 2000), rng.uniform(-6, 9)
        shape = 1 / (1 + (cut / np.maximum(f, 1)) ** 2) * 10 ** (gain / 20 * np.exp(-(((f - peak) / width) ** 2)))
        out = np.fft.irfft(spec * shape, n)
    else:
        drive = rng.uniform(2, 8)
        out = np.tanh(clip * drive / (np.abs(clip).max() + 1e-9)) / np.tanh(drive) * np.abs(clip).max()
    return (out * rms(clip) / (rms(out) + 1e-12)).astype(np.float32)


def in_context(
    rng: np.random.Generator,
    word: np.ndarray,
    n: int,
    before: np.ndarray | None,
    after: np.ndarray | None,
    tail_s: tuple[float, float] = (0.05, 0.6),
) -> np.ndarray:
    """``word`` as the detector sees it when the word has just ended: its end ``tail_s`` before the end of
    the ``n``-sample window, other speech (``before``, real talkers) up to a short pause before it, and
    optionally the start of a following utterance (``after``, a command) in the tail."""
    out = np.zeros(n, np.float32)
    word = word[: n - int(tail_s[0] * SAMPLE_RATE)]
    end = n - int(rng.uniform(*tail_s) * SAMPLE_RATE)
    start = max(0, end - len(word))
    out[start:end] = word[len(word) - (end - start) :]
    w_rms = rms(word[np.abs(word) > 1e-4]) if np.any(np.abs(word) > 1e-4) else 0.05
    if before is not None and start > SAMPLE_RATE // 10:
        gap = int(rng.uniform(0.02, 0.35) * SAMPLE_RATE)
        m = start - gap
        level_db = rng.uniform(-8, 4)
        if m > SAMPLE_RATE // 20:
            seg = before[-m:]
            out[m - len(seg) : m] += seg * (w_rms * 10 ** (level_db / 20) / (rms(seg) + 1e-9))
    if after is not None and n - end > SAMPLE_RATE // 5:
        gap = int(rng.uniform(0.1, 0.3) * SAMPLE_RATE)
        level_db = rng.uniform(-8, 2)
        seg = after[: max(0, n - end - gap)]
        if len(seg) > SAMPLE_RATE // 20:
            out[end + gap : end + gap + len(seg)] += seg * (w_rms * 10 ** (level_db / 20) / (rms(seg) + 1e-9))
    return out


def music(rng: np.random.Generator, n: int) -> np.ndarray:
    """Music-like audio with unit RMS: a random melody and chords of harmonic notes (random timbre, attack and
    decay, vibrato), with noise-burst drums on a beat half of the time. No music recordings are available
    here; this is the closest stand-in: pitched, rhythmic and not speech."""
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros(n)
    beat = rng.uniform(0.25, 0.7)
    harmonics = rng.uniform(0.1, 1.0, 8) ** rng.uniform(1, 3)
    pos = 0
    while pos < n:
        length = int(beat * rng.choice([0.5, 1, 1, 2]) * SAMPLE_RATE)
        notes = rng.integers(40, 84, int(rng.integers(1, 4)))
        seg = t[: min(length, n - pos)]
        env = np.minimum(1.0, seg / rng.uniform(0.005, 0.05)) * np.exp(-seg / rng.uniform(0.1, 1.0))
        vibrato = 1 + 0.004 * np.sin(2 * np.pi * rng.uniform(4, 7) * seg)
        for note in notes:
            f0 = 440.0 * 2 ** ((note - 69) / 12)
            for h, a in enumerate(harmonics, start=1):
                if f0 * h < 7500:
                    out[pos : pos + len(seg)] += a * env * np.sin(2 * np.pi * f0 * h * seg * vibrato)
        pos += len(seg)
    if rng.random() < 0.5:
        step = int(beat * SAMPLE_RATE)
        hit = rng.standard_normal(min(2000, step)) * np.exp(-np.arange(min(2000, step)) / 300)
        for k in range(0, n - len(hit), step):
            out[k : k + len(hit)] += 3 * hit * rms(out[k : k + step] + 1e-6)
    return (out / (rms(out) + 1e-12)).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _music_bank() -> np.ndarray:
    """Four minutes of :func:`music` in 6 s pieces, made once per process from a fixed seed."""
    rng = np.random.default_rng(2024)
    return np.concatenate([music(rng, 6 * SAMPLE_RATE) for _ in range(40)])


def music_segment(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` samples of music-like audio (unit RMS) from a random place of a bank made once."""
    bank = _music_bank()
    start = int(rng.integers(0, len(bank) - n)) if n < len(bank) else 0
    seg = np.resize(bank[start : start + n], n)
    return (seg / (rms(seg) + 1e-12)).astype(np.float32)
