"""Fine-tuning the speech-embedding model's last blocks, and the training data additions around it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from wakeword.classifiers.shipped import models_dir  # noqa: E402

EMBEDDING = models_dir() / "speech-embedding" / "embedding_model.onnx"


def windows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 76, 32, 1)) + 1.0).astype(np.float32)


@pytest.mark.parametrize("blocks, cut_shape", [(1, (96, 10, 2)), (2, (72, 14, 4)), (3, (48, 32, 8))])
def test_the_hand_built_tail_computes_what_onnx_runtime_computes(tmp_path, blocks, cut_shape):
    from wakeword.training.finetune import load_tail, split_model

    front, tail_path = split_model(EMBEDDING, blocks, tmp_path)
    x = windows(16)
    mid = ort.InferenceSession(str(front)).run(None, {"input_1": x})[0]
    assert mid.shape == (16, *cut_shape)
    want = ort.InferenceSession(str(EMBEDDING)).run(None, {"input_1": x})[0]
    tail = load_tail(tail_path)
    with torch.no_grad():
        got = tail(torch.from_numpy(mid)).numpy()
    assert got.shape == want.shape == (16, 1, 1, 96)
    assert np.abs(got - want).max() < 1e-4 * np.abs(want).max()
    trainable = [p for p in tail.parameters() if p.requires_grad]
    assert len(trainable) == 2 * 4 + 1 + 8 * (blocks - 1)  # convs with bias, the last without


def test_the_written_model_changes_only_the_tuned_weights(tmp_path):
    from onnx import numpy_helper

    from wakeword.training.finetune import load_tail, split_model, write_tuned_embedding

    front, tail_path = split_model(EMBEDDING, 1, tmp_path)
    tail = load_tail(tail_path)
    with torch.no_grad():
        for _, conv in tail.onnx_names():
            conv.weight.mul_(1.1)
    diff = write_tuned_embedding(EMBEDDING, tail, tmp_path / "tuned.onnx", front)
    assert diff < 1e-3
    old, new = onnx.load(str(EMBEDDING)).graph, onnx.load(str(tmp_path / "tuned.onnx")).graph
    assert [(n.op_type, list(n.input)) for n in old.node] == [(n.op_type, list(n.input)) for n in new.node]
    tuned_names = {name for name, _ in tail.onnx_names()}
    tuned_inputs = {i for n in old.node if n.name in tuned_names for i in n.input[1:]}
    changed = {
        i.name
        for i, j in zip(old.initializer, new.initializer)
        if not np.array_equal(numpy_helper.to_array(i), numpy_helper.to_array(j))
    }
    assert changed and changed <= tuned_inputs  # the frozen blocks' weights are untouched
    x = windows(4, seed=1)
    a = ort.InferenceSession(str(EMBEDDING)).run(None, {"input_1": x})[0]
    b = ort.InferenceSession(str(tmp_path / "tuned.onnx")).run(None, {"input_1": x})[0]
    assert np.abs(a - b).max() > 1e-2


@pytest.mark.parametrize("n, step", [(9, 16), (9, 8), (8, 16), (10, 24), (1, 16)])
def test_head_positions_are_the_windows_every_step_keeps(n, step):
    from wakeword.classifiers.speech_embedding import every_step
    from wakeword.training.finetune import head_positions

    index = np.arange(n, dtype=np.float32)[:, None].repeat(96, axis=1)
    assert head_positions(n, step) == every_step(index, step)[:, 0].astype(int).tolist()


@pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox")
def test_pitch_shift_moves_a_tone_by_the_given_cents():
    from wakeword.training.augment import shift_pitch

    t = np.arange(16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    for cents, want_hz in ((1200, 400.0), (-1200, 100.0), (700, 200 * 2 ** (7 / 12))):
        out = shift_pitch(tone, cents)
        assert abs(len(out) - len(tone)) <= 160  # same duration
        spectrum = np.abs(np.fft.rfft(out[2000:14000] * np.hanning(12000)))
        assert abs(np.argmax(spectrum) * 16000 / 12000 - want_hz) < 3


@pytest.mark.skipif(shutil.which("flite") is None, reason="needs flite")
def test_flite_adds_training_voices_and_leaves_the_held_out_set_alone():
    from wakeword.training.dataset import plan

    kw = ["marvin", "sheila"]
    with_flite = plan(
        kw, seed=0, per_keyword=20, per_unknown_word=2, test_per_keyword=5, unknown_words=("zoo",), with_festival=False
    )
    without = plan(
        kw,
        seed=0,
        per_keyword=20,
        per_unknown_word=2,
        test_per_keyword=5,
        unknown_words=("zoo",),
        with_festival=False,
        with_flite=False,
    )
    flite = [i for i in with_flite if i.voice.engine == "flite"]
    assert len(flite) == 10 + 10 + 2
    assert {i.voice.name for i in flite} <= {"awb", "rms", "kal16"}  # never slt, festival's held-out speaker
    assert all(i.split in ("train", "val") for i in flite)
    assert [i for i in with_flite if i.split == "test"] == [i for i in without if i.split == "test"]
    assert [i for i in with_flite if i.voice.engine != "flite"] == without


def test_nonfree_voices_add_training_clips_and_leave_the_held_out_set_alone(monkeypatch):
    from wakeword.training import dataset

    # the pools only need the installed voice names: pretend both engines are there, so this runs in CI too
    monkeypatch.setattr(dataset, "pico_voices", lambda: ("en-US", "en-GB"))
    monkeypatch.setattr(dataset, "rhvoice_voices", lambda: ("alan", "bdl", "clb"))
    kw = ["marvin", "sheila"]
    args = dict(
        seed=0,
        per_keyword=20,
        per_unknown_word=2,
        test_per_keyword=5,
        unknown_words=("zoo", "dig"),
        with_festival=False,
        with_flite=False,
    )
    with_nonfree = dataset.plan(kw, **args)
    without = dataset.plan(kw, **args, with_nonfree=False)
    extra = [i for i in with_nonfree if i.voice.engine in ("pico", "rhvoice")]
    for engine in ("pico", "rhvoice"):  # 20 per keyword, 2 per unknown word, from each engine
        assert len([i for i in extra if i.voice.engine == engine]) == 2 * 20 + 2 * 2
    assert {i.voice.name for i in extra} == {"en-US", "en-GB", "alan", "bdl", "clb"}  # never RHVoice's slt
    assert all(i.split in ("train", "val") for i in extra)
    assert {i.label for i in extra} == {"marvin", "sheila", "_unknown_"}
    assert [i for i in with_nonfree if i.split == "test"] == [i for i in without if i.split == "test"]
    assert [i for i in with_nonfree if i.voice.engine not in ("pico", "rhvoice")] == without


@pytest.mark.parametrize("engine,name,exe", [("pico", "en-US", "pico2wave"), ("rhvoice", "clb", "RHVoice-test")])
def test_nonfree_voices_speak_at_the_asked_speed_and_pitch(engine, name, exe):
    from wakeword.training.dataset import trim
    from wakeword.training.voices import Voice, synthesise

    if shutil.which(exe) is None:
        pytest.skip(f"needs {exe} (scripts/install_voices.sh)")
    import soxr

    def spoken(speed: float, pitch: int) -> np.ndarray:
        audio, rate = synthesise(Voice(engine, name, speed=speed, pitch=pitch), "marvin")
        return trim(soxr.resample(audio, rate, 16000) if rate != 16000 else audio)

    def median_f0(audio: np.ndarray) -> float:  # autocorrelation peak (80-500 Hz) of the loudest 40 ms frames
        frames = audio[: len(audio) // 640 * 640].reshape(-1, 640)
        loud = frames[np.argsort((frames**2).sum(axis=1))[-5:]]
        f0 = []
        for frame in loud:
            ac = np.correlate(frame, frame, "full")[639:]
            lag = 32 + int(np.argmax(ac[32:200]))
            f0.append(16000 / lag)
        return float(np.median(f0))

    base, slow, low, high = spoken(1.0, 100), spoken(0.8, 100), spoken(1.0, 85), spoken(1.0, 130)
    assert 0.3 < len(base) / 16000 < 1.5  # one word, not silence or a whole sentence
    assert len(slow) > 1.1 * len(base)
    assert median_f0(low) < 0.95 * median_f0(base) < 0.95 * median_f0(high)


def test_training_clips_are_the_same_in_every_process(tmp_path):
    """The clip generator is seeded from the split's name: a salted hash() made every process differ."""
    code = (
        "import hashlib, numpy as np\n"
        "from pathlib import Path\n"
        "from wakeword.training.dataset import Item\n"
        "from wakeword.training.voices import Voice\n"
        "from wakeword.training.train import TrainConfig, build_clips\n"
        f"c = TrainConfig(keywords=('yes',), out=Path('x'), cache_dir=Path(r'{tmp_path}'))\n"
        "x, y = build_clips(c, [], 'train', None, ('yes', '_silence_', '_unknown_'), 1, silence=3)\n"
        "print(hashlib.sha256(x.tobytes()).hexdigest(), y.tolist())\n"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1 and "[1, 1, 1]" in outs.pop()


def test_bad_tune_blocks_is_a_config_error():
    from wakeword.errors import ConfigError
    from wakeword.training.train import TrainConfig

    with pytest.raises(ConfigError, match="tune-blocks"):
        TrainConfig(keywords=("yes",), out=Path("x"), tune_blocks=4)


def _centroid(mel: np.ndarray) -> float:
    return float((mel[0] * np.arange(mel.shape[1])).sum() / mel[0].sum())


@pytest.mark.parametrize("alpha", [0.9, 1.1])
def test_mel_warp_moves_a_formant_by_alpha_and_keeps_the_band_edges(alpha):
    from wakeword.training.augment import AugmentConfig, augment_mel

    bins = np.arange(32, dtype=np.float32)
    mel = np.exp(-0.5 * ((bins - 10) / 1.5) ** 2)[None].repeat(6, axis=0).astype(np.float32)
    out = augment_mel(np.random.default_rng(0), mel, AugmentConfig(mel_warp_p=1.0, mel_warp_range=(alpha, alpha)))
    assert out.shape == mel.shape
    assert abs(_centroid(out) - 10 * alpha) < 0.15  # a peak at bin 10 moves to bin 10 * alpha
    ramp = bins[None].repeat(3, axis=0)
    warped = augment_mel(np.random.default_rng(0), ramp, AugmentConfig(mel_warp_p=1.0, mel_warp_range=(alpha, alpha)))
    assert warped[0, 0] == 0 and warped[0, -1] == 31 and np.all(np.diff(warped[0]) > 0)


def test_mel_mask_sets_one_band_to_the_clip_mean_and_nothing_else():
    from wakeword.training.augment import AugmentConfig, augment_mel

    mel = np.random.default_rng(1).standard_normal((50, 32)).astype(np.float32)
    for seed in range(20):
        out = augment_mel(np.random.default_rng(seed), mel, AugmentConfig(mel_mask_p=1.0, mel_mask_bins=4))
        changed = np.flatnonzero(np.any(out != mel, axis=0))
        assert 1 <= len(changed) <= 4 and np.all(np.diff(changed) == 1)
        np.testing.assert_allclose(out[:, changed], mel.mean(), rtol=1e-6)
    off = augment_mel(np.random.default_rng(0), mel, AugmentConfig())
    np.testing.assert_array_equal(off, mel)  # both probabilities default to 0: no change
    assert off is not mel  # the caller's array is never written to


@pytest.fixture(scope="module")
def fe():
    from wakeword.classifiers.speech_embedding import EmbeddingFrontEnd

    return EmbeddingFrontEnd(
        models_dir() / "speech-embedding" / "melspectrogram.onnx", EMBEDDING, threads=1, cache_size=0
    )


def test_windows_pass_each_clips_log_mel_through_the_augmentation(fe):
    clips = (np.random.default_rng(2).standard_normal((3, 24000)) * 0.05).astype(np.float32)
    seen = []

    def shift(mel):
        seen.append(mel.shape)
        return mel + 1.0

    np.testing.assert_allclose(fe.windows(clips, shift), fe.windows(clips) + 1.0, rtol=1e-6)
    assert len(seen) == 3 and all(s[1] == 32 for s in seen)


def test_the_frozen_front_end_path_applies_the_augmentation_and_accepts_an_empty_split(fe):
    from wakeword.training.train import embed

    clips = (np.random.default_rng(3).standard_normal((2, 24000)) * 0.05).astype(np.float32)
    plain = embed(fe, clips)
    assert plain.shape == (2, 9, 96)
    assert np.abs(embed(fe, clips, mel_augment=lambda m: m[:, ::-1].copy()) - plain).max() > 1e-2
    np.testing.assert_allclose(embed(fe, clips, mel_augment=lambda m: m), plain, rtol=1e-6)
    assert embed(fe, clips[:0]).shape == (0, 9, 96)  # a split with no clips (tiny configurations)


def test_cached_features_are_recomputed_when_a_planned_voice_changes(tmp_path):
    """A changed voice keeps the count and the options: the cache key must see it (it once did not)."""
    from dataclasses import replace

    from wakeword.training.dataset import plan, plan_digest
    from wakeword.training.train import TrainConfig, _cached_features

    items = plan(
        ["marvin"],
        seed=0,
        per_keyword=4,
        per_unknown_word=0,
        test_per_keyword=0,
        unknown_words=(),
        with_festival=False,
        with_flite=False,
        with_nonfree=False,
    )
    espeak = next(k for k, i in enumerate(items) if i.voice.engine == "espeak")
    other = list(items)
    accent = "en-gb" if items[espeak].voice.name != "en-gb" else "en-us"
    other[espeak] = replace(items[espeak], voice=replace(items[espeak].voice, name=accent))
    config = TrainConfig(keywords=("marvin",), out=tmp_path / "m", cache_dir=tmp_path)
    made = []

    def features(plan_items):
        def make():
            made.append(1)
            return np.full((1, 3), float(len(made)), np.float32), np.zeros(1, np.int64)

        return _cached_features(config, "train", make, lambda x: x, f"train:{plan_digest(plan_items)}", lambda m: None)[
            0
        ]

    assert features(items)[0, 0] == 1.0
    assert features(items)[0, 0] == 1.0 and len(made) == 1  # same plan: from the cache
    assert features(other)[0, 0] == 2.0 and len(made) == 2
