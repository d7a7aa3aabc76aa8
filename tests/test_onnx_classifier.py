"""OnnxClassifier: the torch-free runtime of exported models.

The model directories come from tiny random checkpoints exported with the
export extra, so these tests skip without it; what they check at run time
(manifest, checksums, features, ONNX Runtime) uses no torch.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from conftest_export import KINDS, checkpoint, exported, session_root

from wakeword.classifiers import load_classifier
from wakeword.classifiers.base import Classifier
from wakeword.classifiers.clips import top_predictions
from wakeword.classifiers.onnx import OnnxClassifier, classify
from wakeword.errors import ConfigError, InvalidAudioError, ModelError
from wakeword.onnxrt import default_threads

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("optimum.exporters.onnx")

pytestmark = pytest.mark.export
LIBRIVOX = sorted(Path("/usr/share/pocketsphinx/test/data/librivox").glob("*.wav"))


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return session_root(tmp_path_factory)


@pytest.fixture(scope="module")
def ast_dir(root) -> Path:
    return exported("ast", root)


@pytest.fixture
def ast_copy(ast_dir, tmp_path) -> Path:
    """A private copy to corrupt."""
    return Path(shutil.copytree(ast_dir, tmp_path / "model"))


def _edit_manifest(model_dir: Path, **changes) -> None:
    path = model_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def _speech(seconds: float = 3.0) -> np.ndarray:
    if LIBRIVOX:
        import soundfile as sf

        audio, _ = sf.read(LIBRIVOX[1], dtype="float32")
        return audio[: int(seconds * 16_000)]
    return (0.2 * np.random.default_rng(0).standard_normal(int(seconds * 16_000))).astype(np.float32)


def test_satisfies_the_classifier_protocol(ast_dir):
    c = OnnxClassifier(ast_dir)
    assert isinstance(c, Classifier)
    assert c.precision == "int8" and c.threads == default_threads()
    assert c.info.labels[:3] == ("backward", "bed", "bird") and len(c.info.labels) == 35
    assert c.info.window_samples == 16_000 and c.info.sample_rate == 16_000
    window = np.random.default_rng(1).uniform(-0.5, 0.5, c.info.window_samples).astype(np.float32)
    before = window.copy()
    scores = c.scores(window)
    assert scores.dtype == np.float32 and scores.shape == (35,)
    assert np.all((scores >= 0) & (scores <= 1)) and abs(float(scores.sum()) - 1.0) < 1e-5
    np.testing.assert_array_equal(window, before)
    # no state carried between windows; returned arrays are not reused
    other = c.scores(np.zeros(c.info.window_samples, np.float32))
    np.testing.assert_array_equal(c.scores(window), scores)
    assert not np.array_equal(other, scores)
    window[:] = 0.0
    np.testing.assert_array_equal(c.scores(before), scores)


@pytest.mark.parametrize("kind", KINDS)
def test_scores_equal_softmax_of_torch_logits(root, kind):
    import torch
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    model_dir = exported(kind, root)
    c = OnnxClassifier(model_dir, precision="fp32")
    model = AutoModelForAudioClassification.from_pretrained(checkpoint(kind, root)).eval()
    extractor = AutoFeatureExtractor.from_pretrained(checkpoint(kind, root))
    window = np.zeros(c.info.window_samples, np.float32)
    speech = _speech(c.info.window_samples / 16_000)
    window[: speech.shape[0]] = speech
    inputs = extractor(window, sampling_rate=16_000, return_tensors="pt")
    with torch.no_grad():
        logits = model(**{k: v for k, v in inputs.items() if k != "attention_mask"}).logits
    expected = torch.softmax(logits, -1).numpy()[0]
    assert np.abs(c.scores(window) - expected).max() <= 1e-5
    int8 = OnnxClassifier(model_dir).scores(window)
    assert np.abs(int8 - expected).max() < 0.05


def test_load_classifier_finds_the_onnx_backend(ast_dir):
    for spec in (str(ast_dir), f"onnx:{ast_dir}"):
        c = load_classifier(spec)
        assert isinstance(c, OnnxClassifier) and c.info.labels[0] == "backward"
    with pytest.raises(ModelError, match="needs a model directory"):
        load_classifier("onnx:")


def test_precision_and_threads(ast_dir, tmp_path):
    assert OnnxClassifier(ast_dir, precision="fp32").precision == "fp32"
    c = OnnxClassifier(ast_dir, threads=1)
    assert c.threads == 1
    assert c._session.get_session_options().intra_op_num_threads == 1
    assert c._session.get_session_options().inter_op_num_threads == 1
    with pytest.raises(ConfigError, match="precision must be int8 or fp32"):
        OnnxClassifier(ast_dir, precision="fp16")
    with pytest.raises(ConfigError, match="threads must be a positive integer"):
        OnnxClassifier(ast_dir, threads=0)
    fp32_only = Path(shutil.copytree(ast_dir, tmp_path / "fp32"))
    (fp32_only / "model.int8.onnx").unlink()
    _edit_manifest(fp32_only, models={"fp32": ["model.onnx"]})
    assert OnnxClassifier(fp32_only).precision == "fp32"  # auto falls back
    with pytest.raises(ModelError, match="no int8 model in the manifest \\(it has: fp32\\)"):
        OnnxClassifier(fp32_only, precision="int8")


def test_checksum_mismatch_names_the_file(ast_copy):
    data = bytearray((ast_copy / "model.int8.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (ast_copy / "model.int8.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"model\.int8\.onnx: checksum mismatch"):
        OnnxClassifier(ast_copy)
    OnnxClassifier(ast_copy, precision="fp32")  # only the file being loaded is checked
    with pytest.raises(ModelError, match="checksum mismatch"):
        load_classifier(str(ast_copy))


def test_manifest_at_8_khz_is_refused(ast_copy):
    _edit_manifest(ast_copy, sampling_rate=8000)
    with pytest.raises(ModelError, match="expects 8000 Hz audio; the engine feeds 16000 Hz"):
        OnnxClassifier(ast_copy)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda d: shutil.rmtree(d), "no such model directory"),
        (lambda d: (d / "manifest.json").unlink(), "no manifest.json"),
        (lambda d: (d / "manifest.json").write_text("{not json"), "unreadable manifest"),
        (lambda d: _edit_manifest(d, format="something-else"), "not a wakeword model manifest"),
        (lambda d: _edit_manifest(d, format_version=99), "format_version 99 is newer"),
        (lambda d: _edit_manifest(d, labels=[]), "non-empty list of strings"),
        (lambda d: _edit_manifest(d, window_samples="16000"), "'window_samples' missing or not a int"),
        (lambda d: _edit_manifest(d, features={"kind": "mfcc"}), "unknown feature kind 'mfcc'"),
        (lambda d: _edit_manifest(d, input_name="input_features"), "do not match the manifest"),
        (lambda d: (d / "model.int8.onnx").unlink(), "model.int8.onnx: missing model file"),
        (lambda d: _edit_manifest(d, files={}), "no sha256 recorded for model.int8.onnx"),
        (lambda d: _edit_manifest(d, models={"int8": ["../model.onnx"]}), "must be a plain file name"),
    ],
)
def test_broken_model_directories_are_model_errors(ast_copy, breakage, message):
    breakage(ast_copy)
    with pytest.raises(ModelError, match=message):
        OnnxClassifier(ast_copy)


def test_feature_shape_that_does_not_fit_the_graph(ast_copy):
    manifest = json.loads((ast_copy / "manifest.json").read_text())
    _edit_manifest(ast_copy, features={**manifest["features"], "max_length": 64})
    with pytest.raises(ModelError, match="the features have shape"):
        OnnxClassifier(ast_copy)


def test_garbage_model_file_with_matching_checksum(ast_copy):
    from wakeword.manifest import sha256_file

    (ast_copy / "model.int8.onnx").write_bytes(b"not an onnx graph")
    manifest = json.loads((ast_copy / "manifest.json").read_text())
    manifest["files"]["model.int8.onnx"]["sha256"] = sha256_file(ast_copy / "model.int8.onnx")
    (ast_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="ONNX Runtime cannot load it"):
        OnnxClassifier(ast_copy)


def test_multi_label_models_use_sigmoid(ast_copy):
    reference = OnnxClassifier(ast_copy, precision="fp32")
    _edit_manifest(ast_copy, multi_label=True)
    c = OnnxClassifier(ast_copy, precision="fp32")
    window = _speech(1.0)
    softmax = reference.scores(window)
    logits = np.log(softmax)  # softmax logits up to a constant
    sigmoid = c.scores(window)
    assert not np.isclose(float(sigmoid.sum()), 1.0)
    # sigmoid is monotonic: same ranking, and consistent with the logits' differences
    np.testing.assert_array_equal(np.argsort(sigmoid), np.argsort(softmax))
    recovered = np.log(sigmoid / (1 - sigmoid))
    np.testing.assert_allclose(recovered - recovered[0], logits - logits[0], atol=1e-4)


def test_window_of_the_wrong_length(ast_dir):
    c = OnnxClassifier(ast_dir)
    with pytest.raises(InvalidAudioError, match="must be 16000 mono samples"):
        c.scores(np.zeros(8000, np.float32))


@pytest.mark.parametrize("kind", KINDS)
def test_classify_matches_the_transformers_pipeline(root, kind):
    from transformers import pipeline

    model_dir = exported(kind, root)
    audio = _speech(3.0)
    expected = pipeline("audio-classification", model=str(checkpoint(kind, root)), device="cpu")(audio.copy(), top_k=3)
    got = classify(audio, 16_000, model_dir, top_k=3, precision="fp32")
    assert [p["label"] for p in got] == [p["label"] for p in expected]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(got, expected)) <= 1e-5
    assert all(isinstance(p["score"], float) and isinstance(p["label"], str) for p in got)


def test_classify_any_rate_channels_and_dtype(ast_dir):
    import soxr

    c = OnnxClassifier(ast_dir, precision="fp32")
    mono = _speech(1.0)
    reference = classify(mono, 16_000, c, top_k=35)
    stereo48k = np.repeat(soxr.resample(mono, 16_000, 48_000)[:, None], 2, axis=1)
    resampled = classify(stereo48k, 48_000, c, top_k=35)
    scores = {p["label"]: p["score"] for p in reference}
    assert max(abs(p["score"] - scores[p["label"]]) for p in resampled) < 0.02
    as_int16 = classify((mono * 32767).astype(np.int16), 16_000, c, top_k=35)
    assert max(abs(p["score"] - scores[p["label"]]) for p in as_int16) < 1e-3
    assert len(classify(mono, 16_000, c, top_k=100)) == 35  # top_k beyond the labels: all of them
    assert [p["score"] for p in reference] == sorted((p["score"] for p in reference), reverse=True)


def test_classify_rejects_bad_audio(ast_dir):
    c = OnnxClassifier(ast_dir)
    with pytest.raises(InvalidAudioError, match="non-finite"):
        classify(np.array([0.0, np.nan, 0.1], np.float32), 16_000, c)
    with pytest.raises(InvalidAudioError, match="no samples"):
        classify(np.zeros(0, np.float32), 16_000, c)
    with pytest.raises(InvalidAudioError, match="invalid sample rate"):
        classify(np.zeros(100, np.float32), 0, c)
    with pytest.raises(InvalidAudioError, match="shape"):
        classify(np.zeros((2, 2, 2), np.float32), 16_000, c)
    with pytest.raises(ConfigError, match="top_k must be a positive integer"):
        classify(np.zeros(100, np.float32), 16_000, c, top_k=0)


def test_top_predictions_ties_keep_label_order():
    scores = np.array([0.25, 0.5, 0.25], np.float32)
    assert top_predictions(scores, ("a", "b", "c"), 3) == [
        {"score": 0.5, "label": "b"},
        {"score": 0.25, "label": "a"},
        {"score": 0.25, "label": "c"},
    ]


def test_memory_stays_flat_over_many_windows(ast_dir):
    c = OnnxClassifier(ast_dir)
    window = _speech(1.0)
    for _ in range(50):
        c.scores(window)
    tracemalloc.start()
    try:
        first = tracemalloc.take_snapshot()
        for _ in range(500):
            c.scores(window)
        growth = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(first, "filename"))
    finally:
        tracemalloc.stop()
    assert growth < 64 * 1024


def test_engine_streams_with_the_onnx_classifier(ast_dir):
    from wakeword import ArraySource, Engine

    c = load_classifier(str(ast_dir))
    audio = np.concatenate([np.zeros(8000, np.float32), _speech(2.0), np.zeros(8000, np.float32)])
    with Engine(c) as engine:
        list(engine.stream(ArraySource(audio, block_size=512)))
        assert engine.stats.samples == audio.shape[0]


def test_runtime_never_imports_torch(ast_dir, root):
    whisper_dir = exported("whisper", root)
    code = (
        "import sys, numpy as np\n"
        "from wakeword.classifiers import load_classifier\n"
        "from wakeword.classifiers.onnx import OnnxClassifier, classify\n"
        f"c = load_classifier({str(ast_dir)!r})\n"
        "c.scores(np.zeros(c.info.window_samples, np.float32))\n"
        "print(classify(np.random.default_rng(0).uniform(-1, 1, 44100), 44100, c, top_k=2))\n"
        f"w = OnnxClassifier({str(whisper_dir)!r}, precision='fp32', threads=1)\n"
        "w.scores(np.zeros(w.info.window_samples, np.float32))\n"
        "bad = [m for m in ('torch', 'transformers', 'optimum', 'onnx') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("[{'score': ")


def test_the_exported_model_path_keeps_memory_flat_and_per_hop_scratch_bounded(ast_dir):
    """2,000 hops of an exported AST through Engine.process: flat memory, and per hop no more transient memory
    than numpy's own scratch (its ufunc iterator buffers 8,192 elements, pocketfft pads the 400-sample frames):
    the feature buffers, model input and output are preallocated. Measured: 269 KB here, 578 KB before."""
    import gc
    import tracemalloc

    from wakeword.engine import Engine, EngineConfig
    from wakeword.stream.vad import VadConfig

    classifier = OnnxClassifier(ast_dir, threads=1)
    engine = Engine(classifier, EngineConfig(vad=VadConfig(enabled=False), hop_ms=80))
    rng = np.random.default_rng(0)
    blocks = [(0.05 * rng.standard_normal(1280)).astype(np.float32) for _ in range(50)]
    for block in blocks * 4:
        engine.process(block)  # warm-up
    tracemalloc.start()
    try:
        gc.collect()
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for block in blocks * 40:
            engine.process(block)
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert engine.stats.classified_hops >= 2000
    assert current - start < 64 * 1024, f"memory grew by {current - start} bytes over 2,000 hops"
    assert peak - start < 320 * 1024, f"a hop allocated up to {peak - start} bytes at once"
