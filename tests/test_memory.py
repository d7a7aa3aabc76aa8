"""Memory stays flat on long streams: nothing grows per block, files are never loaded whole.

tracemalloc sees every Python and numpy allocation; RSS (psutil) is the coarse
check on what C libraries (libsndfile, soxr) might hold.
"""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import psutil
import pytest
import soundfile as sf
from conftest import SR

from wakeword.audio.sources import FileSource
from wakeword.classifiers.tone import ToneClassifier
from wakeword.engine import Engine

FLAT_BYTES = 64 * 1024


def speech_like(duration_s: float, rate: int = SR, seed: int = 0) -> np.ndarray:
    """A voiced harmonic complex (gliding f0, 4 Hz syllables) with a 440 Hz "marvin" burst every 7 s.

    webrtcvad calls it speech throughout, so the gate stays open and the
    classifier runs on every hop; the bursts make the detector fire.
    """
    rng = np.random.default_rng(seed)
    n = int(duration_s * rate)
    t = np.arange(n) / rate
    f0 = 150.0 + 50.0 * np.sin(2 * np.pi * 0.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 15))
    x = 0.1 * (0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t)) * voiced + 0.002 * rng.standard_normal(n)
    for start in np.arange(2.0, duration_s - 1.0, 7.0):
        i0, m = int(start * rate), int(0.8 * rate)
        x[i0 : i0 + m] = 0.3 * np.sin(2 * np.pi * 440.0 * t[:m]) + 0.002 * rng.standard_normal(m)
    return x.astype(np.float32)


def traced_now() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@pytest.fixture
def tracing():
    tracemalloc.start()
    yield
    tracemalloc.stop()


def test_engine_memory_is_flat_over_5000_blocks_of_random_sizes(tracing):
    base = speech_like(60.0)
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 3200, size=5000)  # 1 sample to 200 ms; mean 100 ms, ~8 min of audio
    starts = np.cumsum(sizes) - sizes
    engine = Engine(ToneClassifier())
    detections = 0

    def feed(first: int, last: int) -> None:
        nonlocal detections
        for k in range(first, last):
            i = int(starts[k]) % (base.shape[0] - 3200)
            detections += len(engine.process(base[i : i + int(sizes[k])]))

    feed(0, 500)  # warm-up: first-call allocations, caches, interned ints
    after_warmup = traced_now()
    feed(500, 5000)
    growth = traced_now() - after_warmup

    stats = engine.stats
    assert stats.blocks == 5000
    assert stats.classified_hops / stats.hops > 0.95  # the gate was open: the classifier ran
    assert detections > 20
    assert growth < FLAT_BYTES, f"traced memory grew by {growth} bytes over 4500 blocks"


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory) -> str:
    """5 minutes, 48 kHz stereo, 16-bit: 57.6 MB of PCM, written 10 s at a time."""
    rate = 48_000
    path = tmp_path_factory.mktemp("long") / "five_minutes_48k_stereo.wav"
    chunk = speech_like(10.0, rate=rate)
    with sf.SoundFile(path, "w", samplerate=rate, channels=2, subtype="PCM_16") as f:
        for k in range(30):
            f.write(np.stack([chunk, np.roll(chunk, 480 * k)], axis=1))
    return str(path)


def test_file_source_memory_is_flat_and_the_file_is_streamed(tracing, long_wav):
    process = psutil.Process()
    source = FileSource(long_wav)
    assert source.duration_s == pytest.approx(300.0)
    pcm_bytes = source.frames * source.channels * 2
    engine = Engine(ToneClassifier())
    samples = []  # (block index, traced bytes) after the warm-up
    after_warmup = rss_after_warmup = 0
    rss_max = 0
    for k, block in enumerate(source.blocks()):
        engine.process(block)
        if k == 200:  # ~17 s of audio
            after_warmup = traced_now()
            tracemalloc.reset_peak()
            rss_after_warmup = process.memory_info().rss
        elif k > 200 and k % 250 == 0:
            samples.append((k, traced_now()))
            rss_max = max(rss_max, process.memory_info().rss)
    peak = tracemalloc.get_traced_memory()[1]
    final = traced_now()

    assert engine.stats.audio_s == pytest.approx(300.0, abs=0.01)
    assert engine.stats.classified_hops / engine.stats.hops > 0.95
    assert len(samples) >= 10
    growth = max(traced for _, traced in samples) - after_warmup
    assert growth < FLAT_BYTES, f"traced memory grew by {growth} bytes while streaming: {samples}"
    assert final - after_warmup < FLAT_BYTES
    # the largest transient is one decoded block and the classifier's FFT, not the file
    assert peak - after_warmup < 2 * 1024 * 1024 < pcm_bytes / 20
    assert rss_max - rss_after_warmup < 16 * 1024 * 1024 < pcm_bytes / 3
