"""End-to-end behaviour of the streaming engine on labelled synthetic streams."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import BURSTS, SR, tone_stream

from wakeword import (
    ArraySource,
    ConfigError,
    Detection,
    DetectorConfig,
    Engine,
    EngineConfig,
    FileSource,
    ModelError,
    ToneClassifier,
    VadConfig,
)

KEYWORD_OF = {440.0: "marvin", 660.0: "sheila", 880.0: "go"}


DEFAULT_CONFIG = EngineConfig()


def events_for(audio, block_size, config=DEFAULT_CONFIG, rate=SR):
    engine = Engine(ToneClassifier(), config)
    return engine.run(ArraySource(audio, rate, block_size=block_size)), engine


def test_each_burst_fires_its_keyword_once_shortly_after_onset(stream):
    events, engine = events_for(stream, 1600)
    assert [e.keyword for e in events] == [KEYWORD_OF[f] for f, _, _ in BURSTS]
    for event, (_, start, dur) in zip(events, BURSTS):
        assert start < event.time_s <= start + min(dur, 0.4)
        assert event.score >= 0.5
    # the gate kept the classifier off most of the time (silence between bursts)
    assert engine.stats.classified_hops < 0.6 * engine.stats.hops


@pytest.mark.parametrize("block_size", [160, 512, 1280, 1600, 4096, "random"])
def test_events_do_not_depend_on_block_size(stream, block_size):
    reference, _ = events_for(stream, 1600)
    if block_size == "random":
        rng = np.random.default_rng(42)
        sizes = rng.integers(1, 5000, size=10_000)
        block_size = lambda k: int(sizes[k])  # noqa: E731
    events, _ = events_for(stream, block_size)
    assert events == reference  # keyword, score and sample, exactly


def test_48k_stereo_copy_gives_the_same_detections(tmp_path, stream):
    mono16 = tmp_path / "mono16.wav"
    stereo48 = tmp_path / "stereo48.wav"
    sf.write(mono16, stream, SR, subtype="PCM_16")
    up = soxr.resample(stream, SR, 48_000)
    sf.write(stereo48, np.stack([up, up * 0.9], axis=1), 48_000, subtype="PCM_16")
    a = Engine(ToneClassifier()).run(FileSource(mono16))
    b = Engine(ToneClassifier()).run(FileSource(stereo48))
    assert [e.keyword for e in b] == [e.keyword for e in a]
    assert [e.sample for e in b] == [e.sample for e in a]  # same hop: the resampler keeps time
    assert np.allclose([e.score for e in b], [e.score for e in a], atol=0.02)


def test_time_comes_from_the_sample_counter_not_the_clock(stream):
    events, _ = events_for(stream, 1600)
    assert all(e.sample % 1600 == 0 for e in events)
    assert events[0].time_s == events[0].sample / SR


def test_refractory_time_makes_one_long_utterance_fire_once():
    long_tone = tone_stream([(440.0, 0.5, 4.0)], duration_s=5.0)
    events, _ = events_for(long_tone, 1600, EngineConfig(detector=DetectorConfig(refractory_s=1.0)))
    assert [e.keyword for e in events] == ["marvin"]


def test_two_utterances_closer_than_refractory_fire_once():
    close = tone_stream([(440.0, 0.5, 0.4), (440.0, 2.2, 0.4)], duration_s=4.0)
    once, _ = events_for(close, 1600, EngineConfig(detector=DetectorConfig(refractory_s=3.0)))
    twice, _ = events_for(close, 1600, EngineConfig(detector=DetectorConfig(refractory_s=0.2)))
    assert len(once) == 1 and len(twice) == 2
    assert 2.2 < twice[1].time_s < 2.6


def test_a_pause_does_not_let_the_same_utterance_fire_again_while_it_is_in_the_window():
    """The gate closing re-arms a keyword, but the audio that fired it is still in the window."""
    from wakeword.stream.detector import Detector

    hop, window = 1280, 24_000
    config = DetectorConfig(smoothing_hops=1, refractory_s=0.2)
    high = np.array([0.9, 0.0], np.float32)

    def fires(detector, pause_hops):
        events = detector.update(high, hop)
        for _ in range(pause_hops):
            detector.idle()
        return events + detector.update(high, hop * (2 + pause_hops))

    windowed = Detector(("marvin", "_unknown_"), config, window_samples=window)
    assert len(fires(windowed, 5)) == 1  # 6 hops = 0.48 s later: still inside the 1.5 s window
    assert len(fires(Detector(("marvin", "_unknown_"), config, window_samples=window), 20)) == 2  # 1.68 s later
    assert len(fires(Detector(("marvin", "_unknown_"), config), 5)) == 2  # without the window rule it fired twice


def test_per_keyword_thresholds_decide_between_equal_scores():
    both = tone_stream([(440.0, 0.5, 1.0), (660.0, 0.5, 1.0)], duration_s=2.5)  # each scores ~0.5

    def fired(thresholds):
        # gate off: webrtcvad adapts to a steady two-tone chord and would close on it
        config = EngineConfig(vad=VadConfig(enabled=False), detector=DetectorConfig(thresholds=thresholds))
        events, _ = events_for(both, 1600, config)
        return [e.keyword for e in events]

    assert fired({"marvin": 0.4, "sheila": 0.6}) == ["marvin"]
    assert fired({"marvin": 0.6, "sheila": 0.4}) == ["sheila"]


def test_keyword_selection(stream):
    only, _ = events_for(stream, 1600, EngineConfig(detector=DetectorConfig(keywords=("sheila",))))
    assert [e.keyword for e in only] == ["sheila"]


def test_smoothing_delays_detection_by_whole_hops(stream):
    fast, _ = events_for(stream, 1600, EngineConfig(detector=DetectorConfig(smoothing_hops=1)))
    slow, _ = events_for(stream, 1600, EngineConfig(detector=DetectorConfig(smoothing_hops=5)))
    assert [e.keyword for e in fast] == [e.keyword for e in slow]
    assert all(s.sample >= f.sample for f, s in zip(fast, slow))
    assert any(s.sample > f.sample for f, s in zip(fast, slow))


def test_vad_gate_closed_on_silence_costs_no_classification():
    class Counting(ToneClassifier):
        calls = 0

        def scores(self, window):
            Counting.calls += 1
            return super().scores(window)

    silence = np.zeros(10 * SR, dtype=np.float32)
    engine = Engine(Counting())
    assert engine.run(ArraySource(silence)) == []
    assert engine.stats.hops == 100
    assert Counting.calls == engine.stats.classified_hops <= 2  # webrtcvad's first frames only
    ungated = Engine(ToneClassifier(), EngineConfig(vad=VadConfig(enabled=False)))
    ungated.run(ArraySource(silence))
    assert ungated.stats.classified_hops == 100


def test_vad_gate_opens_on_real_speech():
    from pathlib import Path

    clip = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav")
    if not clip.exists():
        pytest.skip("Debian package pocketsphinx-testdata is not installed")
    speech, rate = sf.read(clip, dtype="float32")
    padded = np.concatenate([np.zeros(3 * rate, np.float32), speech, np.zeros(3 * rate, np.float32)])
    engine = Engine(ToneClassifier())
    engine.run(ArraySource(padded, rate))
    speech_hops = len(speech) // 1600
    assert 0.7 * speech_hops <= engine.stats.classified_hops <= speech_hops + 10


def test_callbacks_run_off_the_audio_thread_and_errors_are_not_fatal(stream, caplog):
    seen: list[tuple[str, str]] = []

    def record(event: Detection) -> None:
        seen.append((event.keyword, threading.current_thread().name))

    def broken(event: Detection) -> None:
        raise RuntimeError("boom")

    with Engine(ToneClassifier()) as engine:
        engine.on("marvin", broken)
        engine.on("marvin", record)
        engine.on("*", lambda e: seen.append(("any:" + e.keyword, threading.current_thread().name)))
        events = engine.run(ArraySource(stream))
        engine.wait_callbacks()
    assert [k for k, _ in seen if not k.startswith("any:")] == ["marvin"] * 3
    assert len([k for k, _ in seen if k.startswith("any:")]) == len(events)
    assert {name for _, name in seen} == {"wakeword-callbacks"}
    assert engine.stats.callback_errors == 3
    assert "boom" in caplog.text


def test_a_slow_callback_does_not_slow_detection(stream):
    release = threading.Event()
    audio_thread = threading.current_thread()
    entered: list[str] = []
    finished: list[str] = []
    inline: list[str] = []

    def slow(event: Detection) -> None:
        if threading.current_thread() is audio_thread:  # it would block detection: record it, fail below
            inline.append(event.keyword)
            return
        entered.append(event.keyword)
        release.wait(60)  # a hang guard only: the test releases it
        finished.append(event.keyword)

    with Engine(ToneClassifier()) as engine:
        engine.on("*", slow)
        events = engine.run(ArraySource(stream))
        # every wake word was detected while the first callback was still blocked
        assert len(events) == len(BURSTS) and finished == [] and inline == []
        release.set()
        engine.wait_callbacks()
    assert finished == [e.keyword for e in events] and entered == finished
    assert engine.stats.callbacks_dropped == 0


def test_callback_for_an_unknown_keyword_is_refused():
    with pytest.raises(ConfigError, match="not a keyword"):
        Engine(ToneClassifier()).on("alexa", print)


def test_unknown_keyword_in_config_lists_the_models_labels():
    with pytest.raises(ConfigError, match="the model knows: marvin, sheila, go"):
        Engine(ToneClassifier(), EngineConfig(detector=DetectorConfig(keywords=("alexa",))))


def test_model_with_another_sample_rate_is_refused():
    telephone = ToneClassifier()
    telephone.info = dataclasses.replace(telephone.info, sample_rate=8000)
    with pytest.raises(ModelError, match="8000 Hz"):
        Engine(telephone)


def test_reset_starts_a_new_stream(stream):
    engine = Engine(ToneClassifier())
    first = engine.run(ArraySource(stream))
    engine.reset()
    assert engine.run(ArraySource(stream)) == first


def test_realtime_pacing_delivers_a_file_no_faster_than_real_time(tmp_path, monkeypatch):
    import types

    import wakeword.audio.sources as sources_module

    class FakeClock:
        """The sources' clock: only the pacer's sleeps move it, so delivery times are exact."""

        def __init__(self) -> None:
            self.now = 50.0
            self.sleeps: list[float] = []

        def monotonic(self) -> float:
            return self.now

        def sleep(self, seconds: float) -> None:
            self.sleeps.append(seconds)
            self.now += seconds

    clock = FakeClock()
    monkeypatch.setattr(sources_module, "time", types.SimpleNamespace(monotonic=clock.monotonic, sleep=clock.sleep))
    path = tmp_path / "one_second.wav"
    sf.write(path, tone_stream([(440.0, 0.2, 0.5)], duration_s=1.0), SR)

    def delivery(realtime: bool) -> tuple[list[float], list[float]]:
        """(seconds of audio delivered, clock time since the start) at each block."""
        start, audio, at = clock.now, [], []
        total = 0
        for block in FileSource(path, block_frames=1600, realtime=realtime).blocks():
            total += len(block)
            audio.append(total / SR)
            at.append(clock.now - start)
        return audio, at

    audio, at = delivery(realtime=True)
    assert audio[-1] == 1.0 and len(audio) == 10
    # no block is delivered before the real time of its last sample
    assert all(t >= a - 1e-9 for a, t in zip(audio, at)) and at[-1] == pytest.approx(1.0)
    assert sum(clock.sleeps) == pytest.approx(1.0)
    paced_sleeps = len(clock.sleeps)
    audio, at = delivery(realtime=False)
    assert audio[-1] == 1.0 and at == [0.0] * len(audio)  # unpaced: as fast as it is read, no sleep at all
    assert len(clock.sleeps) == paced_sleeps
