"""The shipped default keyword model and the speech-embedding runtime classifier."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import run_cli_torch_free

from wakeword import ModelError, load_classifier
from wakeword.classifiers.shipped import default_model_dir, models_dir
from wakeword.classifiers.speech_embedding import (
    EmbeddingFrontEnd,
    SpeechEmbeddingClassifier,
    embedding_count,
    every_step,
)

EXAMPLE = models_dir() / "examples" / "marvin-stream.wav"


@pytest.fixture(scope="module")
def model() -> SpeechEmbeddingClassifier:
    return SpeechEmbeddingClassifier(default_model_dir())


def test_default_model_is_the_speech_commands_model(model):
    words = [label for label in model.info.labels if not label.startswith("_")]
    assert len(words) == 35 and {"marvin", "sheila", "visual", "zero"} <= set(words)
    assert set(model.info.labels) - set(words) == {"_silence_", "_unknown_"}
    assert model.info.keywords == ("marvin",)
    assert load_classifier("default").info.labels == model.info.labels


def test_streaming_cache_is_exact_and_computes_one_embedding_per_80ms_hop(model):
    """Cold, a window runs every embedding it needs; once the hops behind it ran, one per hop."""
    rng = np.random.default_rng(0)
    audio = (0.05 * rng.standard_normal(model.info.window_samples + 20 * 1280)).astype(np.float32)
    fresh = SpeechEmbeddingClassifier(default_model_dir())
    model.frontend._cache.clear()
    for k in range(20):
        window = audio[k * 1280 : k * 1280 + model.info.window_samples]
        before = model.frontend.computed
        streamed = model.scores(window)
        fresh.frontend._cache.clear()
        assert np.array_equal(streamed, fresh.scores(window))
        n = embedding_count(model.info.window_samples, model.frontend.step)
        warm_after = model.frontend.step // 8  # hops of 80 ms before the embeddings it needs were all seen
        expected_new = n if k < warm_after else 1
        assert model.frontend.computed - before == expected_new


def test_batch_and_streaming_front_ends_agree(model):
    rng = np.random.default_rng(1)
    clips = (0.1 * rng.standard_normal((3, model.info.window_samples))).astype(np.float32)
    batch = every_step(model.frontend.batch(clips), model.frontend.step)
    for clip, expected in zip(clips, batch):
        np.testing.assert_allclose(model.frontend(clip), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("step", [8, 16, 24])
def test_a_coarser_embedding_step_picks_the_same_embeddings_ending_at_the_window_end(model, step):
    rng = np.random.default_rng(2)
    audio = (0.1 * rng.standard_normal(model.info.window_samples)).astype(np.float32)
    files = model.manifest["files"]
    every8 = EmbeddingFrontEnd(
        model.model_dir / files["melspectrogram"]["path"], model.model_dir / files["embedding"]["path"], step=8
    )(audio)
    coarse = EmbeddingFrontEnd(
        model.model_dir / files["melspectrogram"]["path"], model.model_dir / files["embedding"]["path"], step=step
    )(audio)
    assert len(coarse) == embedding_count(model.info.window_samples, step)
    np.testing.assert_array_equal(coarse, every_step(every8, step))
    np.testing.assert_array_equal(coarse[-1], every8[-1])  # aligned to the end of the window
    ramp = np.arange(9 * 2, dtype=np.float32).reshape(9, 2)
    assert every_step(ramp, 16)[:, 0].tolist() == [0, 4, 8, 12, 16]
    assert every_step(ramp, 24)[:, 0].tolist() == [4, 10, 16]


def test_an_embedding_step_that_is_not_a_multiple_of_8_frames_is_refused(model):
    files = model.manifest["files"]
    with pytest.raises(ModelError, match="multiple of 8"):
        EmbeddingFrontEnd(
            model.model_dir / files["melspectrogram"]["path"], model.model_dir / files["embedding"]["path"], step=12
        )


@pytest.fixture
def model_copy(tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(default_model_dir(), dst)
    return dst


def test_a_corrupt_file_is_refused(model_copy):
    head = model_copy / json.loads((model_copy / "manifest.json").read_text())["files"]["head_int8"]["path"]
    data = bytearray(head.read_bytes())
    data[len(data) // 2] ^= 0xFF
    head.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum mismatch"):
        SpeechEmbeddingClassifier(model_copy)


def test_a_missing_file_or_manifest_is_refused(model_copy, tmp_path):
    (model_copy / "embedding_model.onnx").unlink()
    with pytest.raises(ModelError, match="missing model file"):
        load_classifier(str(model_copy))
    with pytest.raises(ModelError, match="no manifest.json"):
        load_classifier(str(tmp_path))


def test_a_model_at_another_rate_is_refused(model_copy):
    manifest = json.loads((model_copy / "manifest.json").read_text())
    manifest["sampling_rate"] = 8000
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="8000 Hz"):
        load_classifier(str(model_copy))


def test_run_detects_marvin_in_the_bundled_example():
    marks = json.loads(EXAMPLE.with_suffix(".json").read_text())["keywords"]
    out = run_cli_torch_free("run", "--input", str(EXAMPLE), "--json", "--no-handoff")
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    # both wake words are spoken by voices held out from training; the model card reports a
    # recall of 79% on such voices, so every detection must be a true one but one may be missed
    assert events and all(e["keyword"] == "marvin" for e in events)
    for event in events:
        assert any(m["start_s"] < event["time_s"] <= m["end_s"] + 1.0 for m in marks), event


def test_the_default_model_ships_a_recommended_wake_word_threshold(model):
    assert set(model.manifest["thresholds"]) == {"marvin"}
    assert 0.0 < model.info.thresholds["marvin"] < 1.0


def test_the_models_recommended_threshold_applies_unless_the_user_sets_one(model_copy):
    from wakeword import Engine
    from wakeword.engine import EngineConfig
    from wakeword.stream.detector import DetectorConfig

    manifest = json.loads((model_copy / "manifest.json").read_text())
    manifest["thresholds"] = {"marvin": 0.62}  # unlike the detector's fallback of 0.5, so the two can be told apart
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    model = SpeechEmbeddingClassifier(model_copy)
    recommended = 0.62
    assert model.info.thresholds == {"marvin": recommended}
    assert Engine(model).detector.thresholds() == {"marvin": recommended}
    explicit = Engine(model, EngineConfig(detector=DetectorConfig(threshold=0.5)))
    assert explicit.detector.thresholds() == {"marvin": 0.5}
    per_keyword = Engine(model, EngineConfig(detector=DetectorConfig(threshold=0.3, thresholds={"marvin": 0.7})))
    assert per_keyword.detector.thresholds() == {"marvin": 0.7}
    others = Engine(model, EngineConfig(detector=DetectorConfig(keywords=("marvin", "sheila"))))
    assert others.detector.thresholds() == {"marvin": recommended, "sheila": 0.5}


def test_a_bad_recommended_threshold_is_refused(model_copy):
    manifest = json.loads((model_copy / "manifest.json").read_text())
    manifest["thresholds"] = {"marvin": 1.5}
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="recommended threshold"):
        SpeechEmbeddingClassifier(model_copy)


def test_the_default_gate_scores_a_wake_word_said_right_after_other_speech_until_that_speech_has_moved_on(model):
    """The classifier sees a word best once the speech before it has left the window, after the word ended:
    the default 600 ms hangover keeps the gate open for those hops; 300 ms (the old default) closed it early."""
    import io
    import subprocess

    import soundfile as sf
    import soxr

    from wakeword.audio.sources import ArraySource
    from wakeword.engine import EngineConfig
    from wakeword.stream.detector import DetectorConfig
    from wakeword.stream.vad import VadConfig
    from wakeword.tools.probes import record_trace

    if shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng")

    def say(voice: str, text: str) -> np.ndarray:
        wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True).stdout
        audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
        return soxr.resample(audio, rate, 16000).astype(np.float32)

    def peak(audio: np.ndarray, vad: VadConfig) -> tuple[float, int]:
        config = EngineConfig(vad=vad, detector=DetectorConfig(keywords=("marvin",), threshold=0.6))
        trace, found, _ = record_trace(model, ArraySource(audio, block_size=16000), config, ("marvin",))
        smoothed = np.convolve(trace.scores[:, 0], np.ones(3) / 3)[: trace.hops]  # the detector's 3-hop mean
        return float(smoothed.max()), len(found)

    gains = []
    for voice in ("en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-us+m3"):
        silence = np.zeros(2400, np.float32)  # 150 ms between the sentence and the wake word
        audio = np.concatenate(
            [
                say(voice, "please turn on the light in the kitchen"),
                silence,
                say(voice, "marvin"),
                np.zeros(32000, np.float32),
            ]
        )
        now, found = peak(audio, VadConfig())
        old, _ = peak(audio, VadConfig(hangover_ms=300))
        assert found == 1
        gains.append(now - old)
    # measured: 0.12-0.17, mean 0.15 with the default model of commit 3369111; 0.02-0.16, mean 0.08 with 12ba3cd;
    # 0.008-0.083, mean 0.029 with today's, trained on words said right after real talkers: it needs the
    # hangover less, and the hangover still never lowers the score
    assert min(gains) >= 0.0 and np.mean(gains) > 0.01
