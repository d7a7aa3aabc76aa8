"""The training pipeline end to end on a tiny configuration, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("piper")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    out = root / "model"
    cmd = [
        sys.executable,
        "-m",
        "wakeword",
        "train",
        "yes",
        "go home",
        "--out",
        str(out),
        "--cache",
        str(root / "cache"),
        "--samples",
        "6",
        "--unknown-samples",
        "1",
        "--test-samples",
        "2",
        "--copies",
        "1",
        "--silence-clips",
        "8",
        "--epochs",
        "1",
        "--no-festival",
        "--no-background",
        "--mel-augment",
        "0.5",
        "--no-real-speech",
    ]
    proc = subprocess.run(cmd, capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return out, proc, cmd


def test_train_writes_a_loadable_model_with_checksums(tiny_model):
    from wakeword.classifiers.speech_embedding import SpeechEmbeddingClassifier
    from wakeword.manifest import sha256_file

    out, proc, _ = tiny_model
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["labels"] == ["yes", "go home", "_silence_", "_unknown_"]
    assert manifest["window_samples"] == 32_000  # a phrase gets a 2 s window
    assert manifest["embedding_step_frames"] == 16
    assert manifest["embedding_tuned_blocks"] == 2  # the last two blocks of the embedding model trained with the head
    assert manifest["training"]["mel_warp_p"] == manifest["training"]["mel_mask_p"] == 0.5
    from wakeword.classifiers.shipped import models_dir

    shipped = models_dir() / "speech-embedding" / "embedding_model.onnx"
    assert sha256_file(out / "embedding_model.onnx") != sha256_file(shipped)
    assert sha256_file(out / "melspectrogram.onnx") == sha256_file(shipped.with_name("melspectrogram.onnx"))
    # the streaming front end's mel graph comes along, so the trained model streams
    assert manifest["files"]["melspectrogram_raw"]["sha256"] == sha256_file(
        shipped.with_name("melspectrogram_raw.onnx")
    )
    assert SpeechEmbeddingClassifier(out).open_stream(1280) is not None
    assert "changed by `wakeword train`" in (out / "NOTICE.speech-embedding").read_text()
    import onnx

    head_input = onnx.load(str(out / "head.onnx")).graph.input[0].type.tensor_type.shape.dim
    # 2 s = 197 mel frames: (197 - 76) // 16 + 1 = 8 embeddings, 160 ms apart
    assert [d.dim_value for d in head_input][1:] == [8, 96]
    for entry in manifest["files"].values():
        assert sha256_file(out / entry["path"]) == entry["sha256"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["head.onnx:clean"] <= 1.0
    clf = SpeechEmbeddingClassifier(out)
    scores = clf.scores(np.zeros(clf.info.window_samples, np.float32))
    assert scores.shape == (4,) and abs(float(scores.sum()) - 1.0) < 1e-4
    assert b"synthesised" in proc.stderr and b"epoch 1/1" in proc.stderr  # progress is shown


def test_the_engine_runs_the_trained_model(tiny_model, stream_wav):
    out, _, _ = tiny_model
    proc = subprocess.run(
        [sys.executable, "-m", "wakeword", "run", "--input", stream_wav, "--model", str(out), "--json", "--no-handoff"],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()


def test_train_refuses_to_overwrite_without_force(tiny_model):
    out, _, cmd = tiny_model
    proc = subprocess.run(cmd, capture_output=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.decode().strip().splitlines()[-1].startswith("wakeword: error:")
    assert "--force" in proc.stderr.decode()


@pytest.mark.parametrize("value", ["-0.1", "1.5"])
def test_a_mel_augment_share_outside_0_to_1_is_refused(tmp_path, value):
    proc = subprocess.run(
        [sys.executable, "-m", "wakeword", "train", "yes", "--out", str(tmp_path / "m"), "--mel-augment", value],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.decode().strip().splitlines() == [
        "wakeword: error: train: --mel-augment must be between 0 and 1"
    ]
    assert not (tmp_path / "m").exists()


def test_synthesis_is_cached_and_deterministic(tmp_path):
    from wakeword.training.dataset import plan, synthesise_item

    items = [
        i
        for i in plan(
            ["marvin"],
            seed=3,
            per_keyword=2,
            per_unknown_word=0,
            test_per_keyword=0,
            unknown_words=(),
            with_festival=False,
        )
    ]
    assert items == plan(
        ["marvin"], seed=3, per_keyword=2, per_unknown_word=0, test_per_keyword=0, unknown_words=(), with_festival=False
    )
    first = synthesise_item(tmp_path, items[0])
    again = synthesise_item(tmp_path, items[0])  # from the cache
    assert np.array_equal(first, again) and first.dtype == np.float32 and len(first) > 1600
