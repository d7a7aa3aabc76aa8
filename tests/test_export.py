"""wakeword.export.classifier: tiny random checkpoints of each architecture through optimum to ONNX fp32 + int8.

Needs the export extra (torch, transformers, optimum); skipped cleanly without it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest_export import (
    FLEURS_LANGUAGES,
    KINDS,
    MINDS14_INTENTS,
    SPEECH_COMMANDS_V2,
    build_checkpoint,
    checkpoint,
    exported,
    session_root,
)

from wakeword.errors import ConfigError, DependencyError, ModelError
from wakeword.export.command import ExportOptions, add_parser, export, run
from wakeword.features import build_feature_extractor
from wakeword.manifest import sha256_file

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("optimum.exporters.onnx")
ort = pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.export

LIBRIVOX = sorted(Path("/usr/share/pocketsphinx/test/data/librivox").glob("*.wav"))
EXPECTED = {
    "ast": (
        "ASTForAudioClassification",
        "audio-spectrogram-transformer",
        SPEECH_COMMANDS_V2,
        16_000,
        "ast_fbank",
    ),
    "wav2vec2": ("Wav2Vec2ForSequenceClassification", "wav2vec2", MINDS14_INTENTS, 16_000, "waveform"),
    "whisper": ("WhisperForAudioClassification", "whisper", FLEURS_LANGUAGES, 480_000, "whisper_log_mel"),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return session_root(tmp_path_factory)


def _audio_inputs(window: int) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    inputs = [
        rng.uniform(-0.8, 0.8, window).astype(np.float32),
        (0.05 * rng.standard_normal(window)).astype(np.float32),
    ]
    if LIBRIVOX:
        import soundfile as sf

        speech, _ = sf.read(LIBRIVOX[0], dtype="float32")
        clip = np.zeros(window, np.float32)
        clip[: min(window, speech.shape[0])] = speech[:window]
        inputs.append(clip)
    return inputs


@pytest.mark.parametrize("kind", KINDS)
def test_export_writes_models_manifest_and_parity(root, kind):
    out = exported(kind, root)
    architecture, model_type, labels, window, feature_kind = EXPECTED[kind]
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "model.int8.onnx",
        "model.onnx",
        "parity.json",
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "wakeword-onnx-classifier" and manifest["format_version"] == 1
    assert manifest["architecture"] == architecture and manifest["model_type"] == model_type
    assert manifest["labels"] == list(labels)
    assert manifest["sampling_rate"] == 16_000 and manifest["window_samples"] == window
    assert manifest["features"]["kind"] == feature_kind
    assert manifest["task"] == "audio-classification" and manifest["multi_label"] is False
    assert manifest["models"] == {"fp32": ["model.onnx"], "int8": ["model.int8.onnx"]}
    assert manifest["source"]["local"] is True and manifest["source"]["model"].endswith(f"{kind}-checkpoint")
    assert manifest["quantization"]["weight_type"] == "QInt8"
    for name in ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "wakeword"):
        assert manifest["versions"][name] != "not installed"
    assert set(manifest["files"]) == {"model.onnx", "model.int8.onnx", "parity.json"}
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(out / name)
        assert entry["bytes"] == (out / name).stat().st_size

    parity = json.loads((out / "parity.json").read_text())
    assert parity["features_max_abs_diff"] <= 1e-4
    assert parity["fp32"]["max_abs_diff_logits_vs_torch"] <= 1e-4
    assert parity["fp32"]["end_to_end_max_abs_diff_logits"] <= 1e-4
    assert parity["fp32"]["top1_agreement_with_torch"] == 1.0
    assert 0.0 <= parity["int8"]["top1_agreement_with_torch"] <= 1.0  # recorded; random weights prove little
    assert parity["int8"]["max_abs_diff_logits_vs_torch"] < 0.5
    kinds = [row["kind"] for row in parity["per_input"]]
    assert kinds.count("random") == 2
    if LIBRIVOX:
        assert kinds.count("speech") == 3


@pytest.mark.parametrize("kind", KINDS)
def test_onnx_fp32_logits_match_torch(root, kind):
    """Independent of parity.json: same numpy features into torch and ONNX Runtime."""
    import torch
    from transformers import AutoModelForAudioClassification

    out = exported(kind, root)
    manifest = json.loads((out / "manifest.json").read_text())
    model = AutoModelForAudioClassification.from_pretrained(checkpoint(kind, root)).eval()
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    features = build_feature_extractor(manifest["features"])
    for audio in _audio_inputs(manifest["window_samples"]):
        x = features(audio)
        with torch.no_grad():
            expected = model(**{features.input_name: torch.from_numpy(x)}).logits.numpy()
        got = session.run(None, {manifest["input_name"]: x})[0]
        assert np.abs(got - expected).max() <= 1e-4


def test_refuses_a_non_empty_directory_without_force(root, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not empty; pass --force"):
        export(str(checkpoint("ast", root)), out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    result = export(str(checkpoint("ast", root)), out, force=True, quantize="none")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["manifest.json", "model.onnx", "notes.txt", "parity.json"]
    assert (out / "notes.txt").read_text() == "keep me"
    assert result.manifest["models"] == {"fp32": ["model.onnx"]} and result.manifest["quantization"] is None
    assert "int8" not in result.parity
    assert not any(p.name.startswith(".wakeword-export-") for p in tmp_path.iterdir())  # staging cleaned


def test_output_path_that_is_a_file(root, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        export(str(checkpoint("ast", root)), target, force=True)


@pytest.mark.parametrize("model_type", ["bert", "not-a-real-model-type"])
def test_unknown_model_type(tmp_path, model_type):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    with pytest.raises(ModelError, match=f"unsupported model type '{model_type}' \\(supported: "):
        export(str(tmp_path), tmp_path / "out")


def test_missing_model_directory(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="no such model directory"):
        export(str(tmp_path / "missing" / "dir" / "x"), tmp_path / "out")
    with pytest.raises(ModelError, match="no such model directory"):
        export("./not-here", tmp_path / "out")
    # OWNER/NAME whose OWNER is a local directory is a mistyped path, not a hub id
    monkeypatch.chdir(tmp_path)
    Path("models").mkdir()
    with pytest.raises(ModelError, match="models/ast: no such model directory"):
        export("models/ast", tmp_path / "out")


def test_directory_without_config(tmp_path):
    (tmp_path / "ckpt").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        export(str(tmp_path / "ckpt"), tmp_path / "out")


@pytest.mark.parametrize("task", ["automatic-speech-recognition-with-past", "audio-frame-classification", "auto"])
def test_unsupported_task(root, tmp_path, task):
    with pytest.raises(ConfigError, match=f"unsupported task '{task}'"):
        export(str(checkpoint("ast", root)), tmp_path / "out", task=task)


def test_bad_quantize_option():
    with pytest.raises(ConfigError, match="--quantize must be int8 or none"):
        ExportOptions(quantize="uint4")


def test_checkpoint_without_classification_head(tmp_path):
    import transformers as tf

    config = tf.ASTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_mel_bins=64,
        max_length=100,
    )
    tf.ASTModel(config).save_pretrained(tmp_path / "base")
    tf.ASTFeatureExtractor(num_mel_bins=64, max_length=100).save_pretrained(tmp_path / "base")
    with pytest.raises(ModelError, match="ASTModel has no audio-classification head"):
        export(str(tmp_path / "base"), tmp_path / "out")


def test_model_at_8_khz_is_refused(tmp_path):
    import transformers as tf

    path = build_checkpoint("ast", tmp_path / "ast8k")
    tf.ASTFeatureExtractor(num_mel_bins=64, max_length=100, sampling_rate=8000).save_pretrained(path)
    with pytest.raises(ModelError, match="expects 8000 Hz audio; the engine feeds 16000 Hz"):
        export(str(path), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_window_override_and_multi_label(tmp_path):
    path = build_checkpoint("ast", tmp_path / "ml", problem_type="multi_label_classification")
    result = export(str(path), tmp_path / "out", quantize="none", window_samples=12_000, parity_audio=())
    assert result.manifest["multi_label"] is True
    assert result.manifest["window_samples"] == 12_000
    assert result.parity["inputs"] == 2  # no speech clips asked for


def test_missing_export_extra_is_a_dependency_error(monkeypatch, root, tmp_path):
    monkeypatch.setitem(sys.modules, "optimum.exporters.onnx", None)
    with pytest.raises(DependencyError, match=r"pip install 'wakeword\[export\]'") as info:
        export(str(checkpoint("ast", root)), tmp_path / "out")
    assert isinstance(info.value.__cause__, ImportError)


def test_a_failing_quantizer_is_a_one_line_model_error(monkeypatch, root, tmp_path):
    import wakeword.export.classifier as export_module

    real = export_module.import_export_stack

    def broken_stack():
        stack = real()

        def quantize_dynamic(*args, **kwargs):
            raise RuntimeError("Unable to find data type for weight_name='x'.\nsecond line")

        return {**stack, "quantize_dynamic": quantize_dynamic}

    monkeypatch.setattr(export_module, "import_export_stack", broken_stack)
    with pytest.raises(
        ModelError, match="could not quantize the model \\(try --quantize none\\): RuntimeError"
    ) as info:
        export(str(checkpoint("ast", root)), tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not any(p.name.startswith(".wakeword-export-") for p in tmp_path.iterdir())


def test_hub_id_that_cannot_be_fetched_is_one_line(tmp_path):
    code = (
        "from wakeword.export.command import export\n"
        "from wakeword.errors import ModelError\n"
        "try:\n"
        f"    export('MIT/ast-finetuned-speech-commands-v2', {str(tmp_path / 'out')!r})\n"
        "except ModelError as e:\n"
        "    print(e)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env, timeout=120
    )
    message = done.stdout.strip()
    assert "\n" not in message
    assert message.startswith("could not load the config of MIT/ast-finetuned-speech-commands-v2")
    assert "Hugging Face Hub" in message


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="wakeword")
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["export", *argv])


def test_command_line_export(root, tmp_path, capsys):
    args = _parse([str(checkpoint("whisper", root)), "--out", str(tmp_path / "w"), "--window-ms", "2000"])
    assert args.quantize == "int8" and args.task == "audio-classification" and not args.force
    assert run(args) == 0
    captured = capsys.readouterr()
    assert "[1/5] loading" in captured.err and "[5/5] writing manifest.json" in captured.err
    assert "model.int8.onnx" in captured.out and "top-1 agreement" in captured.out
    manifest = json.loads((tmp_path / "w" / "manifest.json").read_text())
    assert manifest["window_samples"] == 32_000
    with pytest.raises(ConfigError, match="not empty"):
        run(args)


def test_default_model_is_the_speech_commands_ast():
    args = _parse(["--out", "x"])
    assert args.model == "MIT/ast-finetuned-speech-commands-v2"


def test_command_modules_import_no_torch():
    code = (
        "import sys, argparse\n"
        "import wakeword.export.command, wakeword.cli.classify, wakeword.classifiers.onnx\n"
        "p = argparse.ArgumentParser(); s = p.add_subparsers()\n"
        "wakeword.export.command.add_parser(s); wakeword.cli.classify.add_parser(s)\n"
        "bad = [m for m in ('torch', 'transformers', 'optimum', 'onnx') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_full_speech_commands_geometry(tmp_path):
    """MIT/ast-finetuned-speech-commands-v2's shape with random weights: 85M parameters, 35 labels."""
    import onnx

    path = build_checkpoint("ast-full", tmp_path / "ckpt")
    result = export(str(path), tmp_path / "ast-sc")
    manifest, parity = result.manifest, result.parity
    assert manifest["labels"] == list(SPEECH_COMMANDS_V2)
    assert manifest["window_samples"] == 16_000
    assert manifest["features"] == {
        "kind": "ast_fbank",
        "sample_rate": 16_000,
        "num_mel_bins": 128,
        "max_length": 128,
        "do_normalize": True,
        "mean": -6.845978,
        "std": 5.5654526,
        "frame_length": 400,
        "hop_length": 160,
        "fft_length": 512,
        "preemphasis": 0.97,
        "low_freq_hz": 20.0,
    }
    inputs = onnx.load(str(tmp_path / "ast-sc" / "model.onnx"), load_external_data=False).graph.input
    assert [d.dim_value or d.dim_param for d in inputs[0].type.tensor_type.shape.dim] == [
        "batch_size",
        128,
        128,
    ]
    assert parity["features_max_abs_diff"] <= 1e-4
    assert parity["fp32"]["max_abs_diff_logits_vs_torch"] <= 1e-4
    assert parity["fp32"]["top1_agreement_with_torch"] == 1.0
    # int8 is about a quarter of fp32: MatMul weights stored as int8
    assert 300e6 < result.files["model.onnx"] < 400e6
    assert result.files["model.int8.onnx"] < 0.3 * result.files["model.onnx"]
    print(json.dumps({"sizes": result.files, "int8": parity["int8"]}, indent=1))
    shutil.rmtree(tmp_path / "ckpt")
