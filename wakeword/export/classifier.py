"""Export a Hugging Face audio classifier to ONNX (fp32 and dynamic int8) for the torch-free runtime.

``export("MIT/ast-finetuned-speech-commands-v2", "models/ast")`` loads the
checkpoint (hub id or ``save_pretrained`` directory) with transformers, exports
it with optimum's ONNX exporter, quantizes the weights of its MatMuls to int8
with ONNX Runtime, checks torch against ONNX on real and random audio, and
writes into the output directory::

    model.onnx        fp32 graph, as optimum exports it
    model.int8.onnx   onnxruntime.quantization.quantize_dynamic, QInt8 weights
    parity.json       torch vs ONNX fp32 vs int8 logits, numpy vs transformers features
    manifest.json     labels, rates, window, feature settings, versions, sha256 of every file

``manifest.json`` is written last: a directory without it is an unfinished
export. torch, transformers, optimum and onnx are imported only when an export
runs (``pip install 'wakeword[export]'``).

Command line: ``wakeword export [MODEL] --out DIR [--quantize int8|none] [--force]``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wakeword.errors import ModelError
from wakeword.export.common import (
    PROTOBUF_LIMIT,
    TASK,
    Checkpoint,
    ExportOptions,
    ExportResult,
    Stages,
    check_sample_rate,
    export_with_optimum,
    file_records,
    import_export_stack,
    install,
    load_config,
    one_line,
    parity_inputs,
    peek_model_type,
    provenance,
    quantization_record,
    quantize_int8,
    quiet_export_chatter,
    source_record,
    staging_dir,
    transformers_errors_only,
)
from wakeword.manifest import write_manifest

__all__ = ["DEFAULT_MODEL", "MANIFEST_FORMAT", "SUPPORTED_MODEL_TYPES", "export_classifier", "feature_options"]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "MIT/ast-finetuned-speech-commands-v2"


MANIFEST_FORMAT = "wakeword-onnx-classifier"


MANIFEST_VERSION = 1


FP32_FILE = "model.onnx"


INT8_FILE = "model.int8.onnx"


@dataclass(frozen=True)
class _Architecture:
    feature_kind: str
    extractor: str  # transformers' feature extractor class the checkpoint must use
    example: str


# model_type -> how its input is computed; each is tested with a tiny random model
SUPPORTED_MODEL_TYPES: dict[str, _Architecture] = {
    "audio-spectrogram-transformer": _Architecture(
        "ast_fbank", "ASTFeatureExtractor", "MIT/ast-finetuned-speech-commands-v2"
    ),
    "wav2vec2": _Architecture("waveform", "Wav2Vec2FeatureExtractor", "anton-l/xtreme_s_xlsr_300m_minds14"),
    "whisper": _Architecture(
        "whisper_log_mel", "WhisperFeatureExtractor", "sanchit-gandhi/whisper-medium-fleurs-lang-id"
    ),
}


def _check_model_type(model_type: Any, source: str) -> _Architecture:
    arch = SUPPORTED_MODEL_TYPES.get(model_type)
    if arch is None:
        valid = ", ".join(sorted(SUPPORTED_MODEL_TYPES))
        raise ModelError(f"{source}: unsupported model type {model_type!r} (supported: {valid})")
    return arch


def _peek_local_config(path: Path) -> None:
    """Reject a local checkpoint of an unsupported type before importing torch."""
    _check_model_type(peek_model_type(path), str(path))


def _default_window_samples(kind: str, features: Any) -> int:
    if kind == "ast_fbank":
        fits = (features.max_length - 1) * features.hop_length + features.frame_length
        whole_seconds = (features.max_length * features.hop_length) // features.sample_rate
        return whole_seconds * features.sample_rate if whole_seconds else fits
    if kind == "whisper_log_mel":
        return features.n_samples
    return features.sample_rate  # waveform models: 1 s


def feature_options(arch: _Architecture, extractor: Any, config: Any, source: str) -> Any:
    from wakeword.features import AstFbankOptions, WaveformOptions, WhisperLogMelOptions

    if type(extractor).__name__ != arch.extractor:
        raise ModelError(
            f"{source}: {config.model_type} expects a {arch.extractor}, the checkpoint has {type(extractor).__name__}"
        )
    rate = int(extractor.sampling_rate)
    if arch.feature_kind == "ast_fbank":
        max_length, mel_bins = int(config.max_length), int(config.num_mel_bins)
        if (extractor.max_length, extractor.num_mel_bins) != (max_length, mel_bins):
            # the model's position embeddings fix the input shape; the pipeline would fail otherwise
            log.warning(
                "feature extractor says max_length=%s num_mel_bins=%s, the model %s x %s: using the model's",
                extractor.max_length,
                extractor.num_mel_bins,
                max_length,
                mel_bins,
            )
        return AstFbankOptions(
            sample_rate=rate,
            num_mel_bins=mel_bins,
            max_length=max_length,
            do_normalize=bool(extractor.do_normalize),
            mean=float(extractor.mean),
            std=float(extractor.std),
        )
    if arch.feature_kind == "waveform":
        return WaveformOptions(sample_rate=rate, do_normalize=bool(extractor.do_normalize))
    if getattr(extractor, "dither", 0.0):
        log.warning("the feature extractor dithers (dither=%s); the numpy runtime does not", extractor.dither)
    options = WhisperLogMelOptions(
        sample_rate=rate,
        feature_size=int(extractor.feature_size),
        n_fft=int(extractor.n_fft),
        hop_length=int(extractor.hop_length),
        chunk_length=int(extractor.chunk_length),
    )
    if options.feature_size != config.num_mel_bins or options.n_frames != 2 * config.max_source_positions:
        raise ModelError(
            f"{source}: feature extractor gives {options.feature_size} x {options.n_frames} features, "
            f"the model expects {config.num_mel_bins} x {2 * config.max_source_positions}"
        )
    return options


def _parity(
    model: Any,
    extractor: Any,
    features: Any,
    sessions: dict[str, Any],
    inputs: list,
    labels: list[str],
    torch: Any,
) -> dict[str, Any]:
    import numpy as np

    from wakeword.features import build_feature_extractor

    ours = build_feature_extractor(features)
    rows = []
    for name, kind, audio in inputs:
        theirs = extractor(audio, sampling_rate=features.sample_rate, return_tensors="np")[ours.input_name]
        mine = ours(audio)
        with torch.no_grad():
            torch_logits = model(**{ours.input_name: torch.from_numpy(mine)}).logits.numpy()[0]
            pipeline_logits = model(**{ours.input_name: torch.from_numpy(theirs)}).logits.numpy()[0]
        row: dict[str, Any] = {
            "input": name,
            "kind": kind,
            "feature_max_abs_diff": float(np.abs(mine - theirs).max()),
            "torch_top1": labels[int(torch_logits.argmax())],
        }
        for precision, session in sessions.items():
            logits = session.run(None, {ours.input_name: mine})[0][0]
            row[f"{precision}_top1"] = labels[int(logits.argmax())]
            row[f"{precision}_max_abs_diff"] = float(np.abs(logits - torch_logits).max())
            # what a user sees: transformers features + torch vs numpy features + ONNX
            row[f"{precision}_end_to_end_max_abs_diff"] = float(np.abs(logits - pipeline_logits).max())
        rows.append(row)

    def summary(precision: str) -> dict[str, Any]:
        return {
            "max_abs_diff_logits_vs_torch": max(r[f"{precision}_max_abs_diff"] for r in rows),
            "end_to_end_max_abs_diff_logits": max(r[f"{precision}_end_to_end_max_abs_diff"] for r in rows),
            "top1_agreement_with_torch": sum(r[f"{precision}_top1"] == r["torch_top1"] for r in rows) / len(rows),
        }

    return {
        "inputs": len(rows),
        "features_max_abs_diff": max(r["feature_max_abs_diff"] for r in rows),
        **{precision: summary(precision) for precision in sessions},
        "per_input": rows,
    }


@dataclass(frozen=True)
class _Checkpoint(Checkpoint):
    """A loaded classifier checkpoint."""

    config: Any
    window: int  # samples per engine score
    labels: list[str]


def export_classifier(
    model: str,
    out: Path,
    options: ExportOptions,
    source: str,
    is_local: bool,
    progress: Callable[[str], None] | None,
) -> ExportResult:
    """The ``audio-classification`` branch of :func:`wakeword.export.command.export`."""
    if is_local:
        _peek_local_config(Path(source))

    stages = Stages(5 if options.quantize == "int8" else 4, progress)
    stages(f"loading {model} with transformers")
    stack = import_export_stack()
    ckpt = _load(stack["transformers"], model, source, is_local, options)
    with staging_dir(out) as staging:
        models = _export_onnx(ckpt, stack, staging, options, stages)
        stages("checking torch vs ONNX on speech and random audio")
        parity = _run_parity(ckpt, staging, models, options, stack["torch"])
        write_manifest(staging / "parity.json", parity)

        stages("writing manifest.json")
        names = [n for files in models.values() for n in files] + ["parity.json"]
        manifest = _manifest(ckpt, models, options, file_records(staging, names), staging / FP32_FILE)
        install(staging, out, names, manifest)
    sizes = {n: (out / n).stat().st_size for n in names}
    stages.done(", ".join(f"{n} {b / 1e6:.1f} MB" for n, b in sizes.items() if n != "parity.json"))
    return ExportResult(out_dir=out, manifest=manifest, parity=parity, files=sizes)


def _load(transformers: Any, model: str, source: str, is_local: bool, options: ExportOptions) -> _Checkpoint:
    with transformers_errors_only(transformers):
        config, extractor, hf_model = _load_checkpoint(transformers, source, is_local)
    arch = _check_model_type(config.model_type, model)
    features = feature_options(arch, extractor, config, model)
    check_sample_rate(features, model)
    window = options.window_samples or _default_window_samples(arch.feature_kind, features)
    labels = [str(config.id2label[i]) for i in range(config.num_labels)]
    n_params = sum(p.numel() for p in hf_model.parameters())
    log.info("%s: %s, %.1fM parameters, %d labels", model, type(hf_model).__name__, n_params / 1e6, len(labels))
    return _Checkpoint(model, is_local, hf_model, extractor, features, n_params, config, window, labels)


def _export_onnx(
    ckpt: _Checkpoint, stack: dict[str, Any], staging: Path, options: ExportOptions, stages: Stages
) -> dict[str, list[str]]:
    """optimum's fp32 graph and, unless ``--quantize none``, its int8 copy, in ``staging``: their file names."""
    with quiet_export_chatter(), transformers_errors_only(stack["transformers"]):
        stages(f"exporting to ONNX with optimum ({ckpt.n_params:,} parameters)")
        exported = export_with_optimum(stack, ckpt, staging, TASK, options.opset)
        fp32_files = sorted(p.name for p in exported.iterdir() if p.name.startswith(FP32_FILE))
        for name in fp32_files:
            shutil.move(str(exported / name), staging / name)
        models = {"fp32": fp32_files}
        if options.quantize == "int8":
            stages("quantizing weights to int8 (onnxruntime quantize_dynamic, QInt8)")
            fp32_bytes = sum((staging / n).stat().st_size for n in fp32_files)
            quantize_int8(
                stack,
                staging / FP32_FILE,
                staging / INT8_FILE,
                options,
                options.per_channel,
                "onnxruntime could not quantize the model (try --quantize none)",
                use_external_data_format=fp32_bytes > PROTOBUF_LIMIT,
            )
            models["int8"] = sorted(p.name for p in staging.iterdir() if p.name.startswith(INT8_FILE))
    return models


def _load_checkpoint(transformers: Any, source: str, is_local: bool) -> tuple[Any, Any, Any]:
    config, where = load_config(transformers, source, is_local)
    _check_model_type(getattr(config, "model_type", None), source)
    _check_head(config, source)
    try:
        extractor = transformers.AutoFeatureExtractor.from_pretrained(source)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"could not load the feature extractor of {where}: {one_line(e)}") from e
    try:
        model = transformers.AutoModelForAudioClassification.from_pretrained(source)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"could not load the model of {where}: {one_line(e)}") from e
    model.eval()
    return config, extractor, model


def _check_head(config: Any, source: str) -> None:
    heads = [
        a for a in (config.architectures or []) if a.endswith(("ForAudioClassification", "ForSequenceClassification"))
    ]
    if config.architectures and not heads:
        raise ModelError(
            f"{source}: {', '.join(config.architectures)} has no audio-classification head; "
            "export a checkpoint fine-tuned for audio classification"
        )


def _run_parity(
    ckpt: _Checkpoint, staging: Path, models: dict[str, list[str]], options: ExportOptions, torch: Any
) -> dict[str, Any]:
    import onnxruntime as ort

    sessions = {}
    for precision, files in models.items():
        so = ort.SessionOptions()
        so.log_severity_level = 3
        sessions[precision] = ort.InferenceSession(str(staging / files[0]), so, providers=["CPUExecutionProvider"])
    inputs = parity_inputs(options, ckpt.window)
    parity = _parity(ckpt.hf_model, ckpt.extractor, ckpt.features, sessions, inputs, ckpt.labels, torch)
    parity["window_samples"] = ckpt.window
    for precision in sessions:
        summary = parity[precision]
        log.info(
            "parity %s: max |logit diff| vs torch %.2e, top-1 agreement %.0f%%",
            precision,
            summary["max_abs_diff_logits_vs_torch"],
            100 * summary["top1_agreement_with_torch"],
        )
    if parity["features_max_abs_diff"] > 1e-4:
        log.warning("numpy features differ from transformers' by %.2e (> 1e-4)", parity["features_max_abs_diff"])
    if parity["fp32"]["max_abs_diff_logits_vs_torch"] > 1e-3:
        log.warning("ONNX fp32 logits differ from torch by %.2e", parity["fp32"]["max_abs_diff_logits_vs_torch"])
    return parity


def _manifest(
    ckpt: _Checkpoint,
    models: dict[str, list[str]],
    options: ExportOptions,
    files: dict[str, dict[str, Any]],
    fp32_path: Path,
) -> dict[str, Any]:
    import onnx

    from wakeword.features import feature_options_to_dict

    graph = onnx.load(str(fp32_path), load_external_data=False)
    opset = next((o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")), None)
    input_name = graph.graph.input[0].name
    config = ckpt.config
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "source": source_record(ckpt.model, ckpt.is_local, config),
        "task": options.task,
        "architecture": type(ckpt.hf_model).__name__,
        "model_type": config.model_type,
        "labels": ckpt.labels,
        "multi_label": getattr(config, "problem_type", None) == "multi_label_classification",
        "sampling_rate": ckpt.features.sample_rate,
        "window_samples": int(ckpt.window),
        "features": feature_options_to_dict(ckpt.features),
        "input_name": input_name,
        "output_name": graph.graph.output[0].name,
        "models": models,
        "onnx_opset": opset,
        "quantization": quantization_record(models, options, options.per_channel),
        "files": files,
        **provenance(),
    }
    return manifest
