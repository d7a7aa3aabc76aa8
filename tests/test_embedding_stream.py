"""The streaming speech-embedding front end: what each hop adds, the same scores as the whole window, flat memory.

The whole-window path (``SpeechEmbeddingClassifier.scores``) runs the mel model over the 1.5 s window every hop;
the stream (``open_stream``) runs it over the hop's new samples and computes each embedding once. Real speech:
pocketsphinx-testdata's LibriVox clips and the bundled example.
"""

from __future__ import annotations

import gc
import glob
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import soxr

from wakeword.audio.sources import ArraySource, FileSource
from wakeword.classifiers import load_classifier
from wakeword.classifiers.embedding_stream import EmbeddingStream
from wakeword.classifiers.shipped import models_dir
from wakeword.engine import Engine, EngineConfig
from wakeword.events import Detection
from wakeword.stream.vad import VadConfig

HOP = 1280


@pytest.fixture(scope="module")
def model():
    return load_classifier("default", threads=1)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """About 42 s of real speech, 16 kHz mono."""
    parts = []
    files = sorted(glob.glob("/usr/share/pocketsphinx/test/data/librivox/*.wav"))
    for path in [*files, str(models_dir() / "examples" / "marvin-stream.wav")]:
        audio, rate = sf.read(path, dtype="float32")
        audio = audio.mean(axis=1) if audio.ndim > 1 else audio
        parts.append(audio if rate == 16_000 else soxr.resample(audio, rate, 16_000).astype(np.float32))
    assert len(parts) >= 2
    return np.concatenate(parts)


def windows(audio: np.ndarray, window: int):
    """(end sample, the window ending there) for every hop, zeros before the stream's start, as the ring has it."""
    padded = np.concatenate([np.zeros(window, np.float32), audio])
    for end in range(HOP, audio.shape[0] + 1, HOP):
        yield end, padded[end : end + window]


def stream_of(model, refloor: bool) -> EmbeddingStream:
    stream = model.open_stream(HOP, refloor=refloor)
    assert isinstance(stream, EmbeddingStream)
    return stream


def test_the_stream_scores_like_the_whole_window_on_real_speech_with_pauses(model, speech):
    exact, default = stream_of(model, refloor=True), model.open_stream(HOP)
    marvin = model.info.labels.index("marvin")
    worst_exact = worst_default = worst_marvin = 0.0
    hops = 0
    for k, (end, window) in enumerate(windows(speech, model.info.window_samples)):
        if k % 50 in range(30, 40):
            continue  # 10 hops the gate keeps closed: the next window is cold
        reference = model.scores(window)
        worst_exact = max(worst_exact, float(np.abs(exact.scores(window, end) - reference).max()))
        d = np.abs(default.scores(window, end) - reference)
        worst_default, worst_marvin = max(worst_default, float(d.max())), max(worst_marvin, float(d[marvin]))
        hops += 1
    assert hops > 400
    assert worst_exact < 2e-3  # float rounding only: the same features
    # the default never recomputes an embedding when the window's 80 dB floor moves
    assert worst_default < 0.08 and worst_marvin < 0.02, (worst_default, worst_marvin)


def test_a_warm_hop_computes_its_new_frames_and_one_embedding(model, speech):
    stream = model.open_stream(HOP)
    ends = list(windows(speech[: 10 * 16_000], model.info.window_samples))
    for end, window in ends[:2]:  # cold: the whole window, then the embeddings of the other phase (step 16, hop 8)
        stream.scores(window, end)
    mel, emb = stream.mel_frames_computed, stream.embeddings_computed
    for end, window in ends[2:]:
        stream.scores(window, end)
    hops = len(ends) - 2
    assert stream.mel_frames_computed - mel == 8 * hops  # 1,280 new samples = 8 frames per hop
    assert stream.embeddings_computed - emb == hops  # one embedding per hop, computed once


def test_a_cold_window_after_a_pause_equals_a_warm_one(model, speech):
    warm, cold = stream_of(model, refloor=True), stream_of(model, refloor=True)
    ends = list(windows(speech[: 20 * 16_000], model.info.window_samples))
    for end, window in ends[:60]:
        warm.scores(window, end)
    for end, window in ends[:20]:
        cold.scores(window, end)
    end, window = ends[60]  # 40 hops later, no frame of this window in the cold stream
    assert np.abs(warm.scores(window, end) - cold.scores(window, end)).max() < 1e-5


@pytest.mark.parametrize(
    "name", ["marvin-stream.wav", *[f"commands/marvin-command-{c}.wav" for c in ("de", "en", "es", "fr", "it")]]
)
def test_detections_are_the_same_as_the_whole_window_paths(model, name):
    def detections(streaming: bool) -> list[tuple[str, int]]:
        engine = Engine(model, EngineConfig())
        if not streaming:
            engine.scorer = None
        else:
            assert engine.scorer is not None
        events = engine.run(FileSource(models_dir() / "examples" / name))
        return [(e.keyword, e.sample) for e in events if isinstance(e, Detection)]

    assert detections(True) == detections(False) != []


def test_a_long_real_speech_stream_detects_the_same(model, speech):
    """Three passes over the real speech with the gate on: the same detections, sample for sample."""
    audio = np.tile(speech, 3)
    runs = []
    for streaming in (True, False):
        engine = Engine(model, EngineConfig())
        if not streaming:
            engine.scorer = None
        runs.append([(e.keyword, e.sample) for e in engine.run(ArraySource(audio)) if isinstance(e, Detection)])
    assert runs[0] == runs[1]


def test_10000_hops_of_the_default_model_allocate_nothing_per_hop(model, speech):
    """Flat memory, and no hop allocates anything the size of a window (the old path copied 96 KB per hop)."""
    engine = Engine(model, EngineConfig(vad=VadConfig(enabled=False)))
    assert engine.scorer is not None
    audio = speech[: 60 * 16_000]
    blocks = [audio[i : i + HOP] for i in range(0, audio.shape[0] - HOP, HOP)]
    for block in blocks[:200]:
        engine.process(block)  # warm-up: first calls, ONNX Runtime arenas
    tracemalloc.start()
    try:
        gc.collect()
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        hops = 0
        while hops < 10_000:
            for block in blocks:
                engine.process(block)
                hops += 1
                if hops == 10_000:
                    break
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert engine.stats.classified_hops >= 10_000
    assert current - start < 64 * 1024, f"memory grew by {current - start} bytes over 10,000 hops"
    assert peak - start < 16 * 1024, f"a hop allocated up to {peak - start} bytes at once"
