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

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from wakeword.errors import ConfigError, DependencyError, ModelError
from wakeword.manifest import sha256_file
from wakeword.pcm import SAMPLE_RATE

__all__ = [
    "DEFAULT_MODEL",
    "MANIFEST_FORMAT",
    "SUPPORTED_MODEL_TYPES",
    "ExportOptions",
    "ExportResult",
    "add_parser",
    "export",
    "run",
    "sha256_file",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "MIT/ast-finetuned-speech-commands-v2"
TASK = "audio-classification"
ASR_TASK = "automatic-speech-recognition"  # Whisper, for the hand-off: see wakeword.export.whisper
MANIFEST_FORMAT = "wakeword-onnx-classifier"
MANIFEST_VERSION = 1
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
# Real speech for the parity check where Debian's pocketsphinx-testdata is installed.
DEFAULT_PARITY_AUDIO = "/usr/share/pocketsphinx/test/data/librivox/*.wav"
# Hub ids are NAME or OWNER/NAME; anything else must be an existing directory.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
_PROTOBUF_LIMIT = 2_000_000_000  # bytes; bigger graphs keep their weights in external data


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


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how.

    ``window_samples`` is the audio the streaming engine feeds per score (16 kHz
    samples); ``None`` picks the model's natural clip: the whole seconds that
    fit in an AST's ``max_length`` frames (1 s for Speech Commands, 10 s for
    AudioSet), 1 s for wav2vec2, ``chunk_length`` (30 s) for Whisper.
    ``parity_audio`` lists speech files for the parity check (``None``: the
    LibriVox clips of pocketsphinx-testdata where installed).
    """

    task: str = TASK
    quantize: str = "int8"  # "int8" or "none"
    force: bool = False
    window_samples: int | None = None
    opset: int | None = None  # None: optimum's default for the architecture
    parity_audio: tuple[str, ...] | None = None
    parity_clips: int = 3  # speech clips used from parity_audio, plus two random signals
    quantize_op_types: tuple[str, ...] = ("MatMul",)
    per_channel: bool = False

    def __post_init__(self) -> None:
        if self.task not in (TASK, ASR_TASK):
            raise ConfigError(
                f"unsupported task {self.task!r}: wakeword exports {TASK!r} and {ASR_TASK!r} (Whisper) models"
            )
        if self.quantize not in ("int8", "none"):
            raise ConfigError(f"--quantize must be int8 or none, got {self.quantize!r}")
        if self.window_samples is not None and self.window_samples <= 0:
            raise ConfigError(f"window length must be positive, got {self.window_samples} samples")
        if self.opset is not None and not 11 <= self.opset <= 23:
            raise ConfigError(f"--opset must be between 11 and 23, got {self.opset}")
        if self.parity_clips < 0:
            raise ConfigError("parity_clips must be >= 0")


@dataclass(frozen=True)
class ExportResult:
    """Where the export went and what the parity check found."""

    out_dir: Path
    manifest: dict[str, Any]
    parity: dict[str, Any]
    files: dict[str, int] = field(default_factory=dict)  # name -> bytes


# --------------------------------------------------------------------- helpers


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class _Stages:
    """Numbered progress lines for the long steps, through logging and an optional callback."""

    def __init__(self, total: int, progress: Callable[[str], None] | None) -> None:
        self.total, self.progress, self.index = total, progress, 0
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        self.index += 1
        line = f"[{self.index}/{self.total}] {message}"
        log.info("%s", line)
        if self.progress is not None:
            self.progress(line)

    def done(self, message: str) -> None:
        line = f"done in {time.perf_counter() - self.started:.1f} s: {message}"
        log.info("%s", line)
        if self.progress is not None:
            self.progress(line)


def _import_export_stack() -> dict[str, Any]:
    try:
        import torch
        import transformers
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from optimum.exporters.onnx import onnx_export_from_model
    except ImportError as e:
        raise DependencyError(
            f"exporting needs torch, transformers, optimum and onnx ({e.name or e} is missing): "
            "pip install 'wakeword[export]'"
        ) from e
    return {
        "torch": torch,
        "transformers": transformers,
        "onnx_export_from_model": onnx_export_from_model,
        "quantize_dynamic": quantize_dynamic,
        "QuantType": QuantType,
    }


def _versions() -> dict[str, str]:
    from importlib import metadata

    from wakeword import __version__

    out = {"wakeword": __version__, "python": sys.version.split()[0]}
    for name in ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _check_out_dir(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"output directory {out} is not empty; pass --force to overwrite it")


def _resolve_source(model: str) -> tuple[str, bool]:
    """``(source, is_local)``; a missing path that cannot be a hub id is a ModelError."""
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path), True
    if path.exists():
        raise ModelError(f"{model}: not a model directory (expected a save_pretrained directory or a hub id)")
    if not _HUB_ID.match(model) or model.startswith("."):
        raise ModelError(f"{model}: no such model directory")
    if "/" in model and path.parent.is_dir():
        # "models/ast" next to an existing models/ is a mistyped path, not a hub id
        raise ModelError(
            f"{model}: no such model directory (and {path.parent} is a local directory, not a hub owner)"
        )
    return model, False


def _peek_model_type(path: Path) -> Any:
    """The ``model_type`` of a local checkpoint's config.json, read without transformers."""
    config = path / "config.json"
    if not config.is_file():
        raise ModelError(f"{path}: no config.json; expected a directory written by save_pretrained")
    try:
        return json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError) as e:
        raise ModelError(f"{config}: unreadable config ({_one_line(e)})") from e


def _peek_local_config(path: Path) -> None:
    """Reject a local checkpoint of an unsupported type before importing torch."""
    _check_model_type(_peek_model_type(path), str(path))


def _check_model_type(model_type: Any, source: str) -> _Architecture:
    arch = SUPPORTED_MODEL_TYPES.get(model_type)
    if arch is None:
        valid = ", ".join(sorted(SUPPORTED_MODEL_TYPES))
        raise ModelError(f"{source}: unsupported model type {model_type!r} (supported: {valid})")
    return arch


def _default_window_samples(kind: str, features: Any) -> int:
    if kind == "ast_fbank":
        fits = (features.max_length - 1) * features.hop_length + features.frame_length
        whole_seconds = (features.max_length * features.hop_length) // features.sample_rate
        return whole_seconds * features.sample_rate if whole_seconds else fits
    if kind == "whisper_log_mel":
        return features.n_samples
    return features.sample_rate  # waveform models: 1 s


def _feature_options(arch: _Architecture, extractor: Any, config: Any, source: str) -> Any:
    from wakeword.features import AstFbankOptions, WaveformOptions, WhisperLogMelOptions

    if type(extractor).__name__ != arch.extractor:
        raise ModelError(
            f"{source}: {config.model_type} expects a {arch.extractor}, "
            f"the checkpoint has {type(extractor).__name__}"
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


@contextlib.contextmanager
def _step_errors(what: str) -> Iterator[None]:
    """A failure inside optimum or onnxruntime becomes one ModelError line; the cause stays chained."""
    try:
        yield
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as e:  # these libraries raise anything from ValueError to their own types
        raise ModelError(f"{what}: {type(e).__name__}: {_one_line(e)}") from e


@contextlib.contextmanager
def _quiet_export_chatter() -> Iterator[None]:
    """Hide tracer warnings and ORT's 'consider pre-processing' hint: expected, and not actionable here."""

    class _DropHint(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            # ORT's quantizer logs through the root logger: one INFO line per tensor
            if record.name == "root" and record.levelno < logging.WARNING:
                return False
            return "pre-processing before quantization" not in record.getMessage()

    hint = _DropHint()
    root = logging.getLogger()
    root.addFilter(hint)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*TracerWarning.*")
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\..*")
            with contextlib.suppress(ImportError):
                from torch.jit import TracerWarning

                warnings.filterwarnings("ignore", category=TracerWarning)
            yield
    finally:
        root.removeFilter(hint)


# ------------------------------------------------------------------- parity


def _parity_inputs(options: ExportOptions, window: int) -> list[tuple[str, str, Any]]:
    """``(name, kind, audio)``: up to ``parity_clips`` speech clips cut to the window, plus random audio."""
    import glob

    import numpy as np

    from wakeword.audio.sources import read_file
    from wakeword.errors import AudioError

    paths = (
        list(options.parity_audio)
        if options.parity_audio is not None
        else sorted(glob.glob(DEFAULT_PARITY_AUDIO))
    )
    inputs: list[tuple[str, str, Any]] = []
    for path in paths[: options.parity_clips]:
        try:
            audio = read_file(path)
        except AudioError as e:
            if options.parity_audio is not None:
                raise
            log.warning("parity: skipping %s (%s)", path, e)
            continue
        clip = np.zeros(window, dtype=np.float32)
        clip[: min(window, audio.shape[0])] = audio[:window]
        inputs.append((f"speech:{Path(path).name}", "speech", clip))
    if not inputs:
        log.warning("parity: no speech clips found (install pocketsphinx-testdata or pass parity audio)")
    rng = np.random.default_rng(20240601)
    inputs.append(("uniform-noise", "random", rng.uniform(-0.5, 0.5, window).astype(np.float32)))
    inputs.append(("quiet-gaussian-noise", "random", (0.01 * rng.standard_normal(window)).astype(np.float32)))
    return inputs


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
            "top1_agreement_with_torch": sum(r[f"{precision}_top1"] == r["torch_top1"] for r in rows)
            / len(rows),
        }

    return {
        "inputs": len(rows),
        "features_max_abs_diff": max(r["feature_max_abs_diff"] for r in rows),
        **{precision: summary(precision) for precision in sessions},
        "per_input": rows,
    }


# --------------------------------------------------------------------- export


def export(
    model: str = DEFAULT_MODEL,
    out: str | Path | None = None,
    options: ExportOptions | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    **overrides: Any,
) -> ExportResult:
    """Export ``model`` (hub id or local directory) into ``out``; keyword overrides update ``options``.

    ``export("path/to/checkpoint", "models/x", force=True, quantize="none")``.
    Raises ``ConfigError`` (bad option, non-empty ``out`` without force),
    ``ModelError`` (missing, unreadable or unsupported checkpoint) or
    ``DependencyError`` (export extra not installed).
    """
    if options is None:
        options = ExportOptions(**overrides)
    elif overrides:
        from dataclasses import replace

        options = replace(options, **overrides)
    if out is None:
        raise ConfigError("an output directory is required")
    out = Path(out).expanduser()
    _check_out_dir(out, options.force)
    source, is_local = _resolve_source(model)
    if options.task == ASR_TASK:
        from wakeword.export.whisper import export_whisper

        return export_whisper(model, out, options, source, is_local, progress)
    if is_local:
        _peek_local_config(Path(source))

    stages = _Stages(5 if options.quantize == "int8" else 4, progress)
    stages(f"loading {model} with transformers")
    stack = _import_export_stack()
    torch, transformers = stack["torch"], stack["transformers"]
    with _transformers_errors_only(transformers):
        config, extractor, hf_model = _load_checkpoint(transformers, source, is_local)
    arch = _check_model_type(config.model_type, model)
    features = _feature_options(arch, extractor, config, model)
    if features.sample_rate != SAMPLE_RATE:
        raise ModelError(
            f"{model}: the model expects {features.sample_rate} Hz audio; "
            f"the engine feeds {SAMPLE_RATE} Hz"
        )
    window = options.window_samples or _default_window_samples(arch.feature_kind, features)
    labels = [str(config.id2label[i]) for i in range(config.num_labels)]
    n_params = sum(p.numel() for p in hf_model.parameters())
    log.info(
        "%s: %s, %.1fM parameters, %d labels", model, type(hf_model).__name__, n_params / 1e6, len(labels)
    )

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".wakeword-export-", dir=out.parent))
    try:
        with _quiet_export_chatter(), _transformers_errors_only(transformers):
            stages(f"exporting to ONNX with optimum ({n_params:,} parameters)")
            with _step_errors(f"optimum could not export {model}"):
                stack["onnx_export_from_model"](
                    hf_model,
                    staging / "optimum",
                    task=TASK,
                    opset=options.opset,
                    do_validation=False,
                    preprocessors=[extractor],
                )
            exported = staging / "optimum"
            fp32_files = sorted(p.name for p in exported.iterdir() if p.name.startswith(FP32_FILE))
            for name in fp32_files:
                shutil.move(str(exported / name), staging / name)
            models = {"fp32": fp32_files}
            if options.quantize == "int8":
                stages("quantizing weights to int8 (onnxruntime quantize_dynamic, QInt8)")
                fp32_bytes = sum((staging / n).stat().st_size for n in fp32_files)
                with _step_errors("onnxruntime could not quantize the model (try --quantize none)"):
                    stack["quantize_dynamic"](
                        str(staging / FP32_FILE),
                        str(staging / INT8_FILE),
                        weight_type=stack["QuantType"].QInt8,
                        op_types_to_quantize=list(options.quantize_op_types),
                        per_channel=options.per_channel,
                        use_external_data_format=fp32_bytes > _PROTOBUF_LIMIT,
                    )
                models["int8"] = sorted(p.name for p in staging.iterdir() if p.name.startswith(INT8_FILE))
        stages("checking torch vs ONNX on speech and random audio")
        parity = _run_parity(hf_model, extractor, features, staging, models, labels, options, window, torch)
        _write_json(staging / "parity.json", parity)

        stages("writing manifest.json")
        names = [n for files in models.values() for n in files] + ["parity.json"]
        manifest = _manifest(
            model,
            is_local,
            config,
            hf_model,
            features,
            window,
            labels,
            models,
            options,
            {n: {"sha256": sha256_file(staging / n), "bytes": (staging / n).stat().st_size} for n in names},
            staging / FP32_FILE,
        )
        out.mkdir(parents=True, exist_ok=True)
        (out / "manifest.json").unlink(missing_ok=True)  # an interrupted overwrite leaves no stale manifest
        for name in names:
            os.replace(staging / name, out / name)
        _write_json(out / "manifest.json", manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    sizes = {n: (out / n).stat().st_size for n in names}
    stages.done(", ".join(f"{n} {b / 1e6:.1f} MB" for n, b in sizes.items() if n != "parity.json"))
    return ExportResult(out_dir=out, manifest=manifest, parity=parity, files=sizes)


@contextlib.contextmanager
def _transformers_errors_only(transformers: Any) -> Iterator[None]:
    """Silence transformers' "slow processor"-style hints: not actionable for an export."""
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)


def _load_config(transformers: Any, source: str, is_local: bool) -> tuple[Any, str]:
    """``(config, where)``: ``where`` names the source in errors (a hub id says the hub was tried)."""
    where = source if is_local else f"{source} (not a local directory; tried the Hugging Face Hub)"
    try:
        return transformers.AutoConfig.from_pretrained(source), where
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"could not load the config of {where}: {_one_line(e)}") from e


def _load_checkpoint(transformers: Any, source: str, is_local: bool) -> tuple[Any, Any, Any]:
    config, where = _load_config(transformers, source, is_local)
    _check_model_type(getattr(config, "model_type", None), source)
    _check_head(config, source)
    try:
        extractor = transformers.AutoFeatureExtractor.from_pretrained(source)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"could not load the feature extractor of {where}: {_one_line(e)}") from e
    try:
        model = transformers.AutoModelForAudioClassification.from_pretrained(source)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"could not load the model of {where}: {_one_line(e)}") from e
    model.eval()
    return config, extractor, model


def _check_head(config: Any, source: str) -> None:
    heads = [
        a
        for a in (config.architectures or [])
        if a.endswith(("ForAudioClassification", "ForSequenceClassification"))
    ]
    if config.architectures and not heads:
        raise ModelError(
            f"{source}: {', '.join(config.architectures)} has no audio-classification head; "
            "export a checkpoint fine-tuned for audio classification"
        )


def _run_parity(
    hf_model: Any,
    extractor: Any,
    features: Any,
    staging: Path,
    models: dict[str, list[str]],
    labels: list[str],
    options: ExportOptions,
    window: int,
    torch: Any,
) -> dict[str, Any]:
    import onnxruntime as ort

    sessions = {}
    for precision, files in models.items():
        so = ort.SessionOptions()
        so.log_severity_level = 3
        sessions[precision] = ort.InferenceSession(
            str(staging / files[0]), so, providers=["CPUExecutionProvider"]
        )
    inputs = _parity_inputs(options, window)
    parity = _parity(hf_model, extractor, features, sessions, inputs, labels, torch)
    parity["window_samples"] = window
    for precision in sessions:
        summary = parity[precision]
        log.info(
            "parity %s: max |logit diff| vs torch %.2e, top-1 agreement %.0f%%",
            precision,
            summary["max_abs_diff_logits_vs_torch"],
            100 * summary["top1_agreement_with_torch"],
        )
    if parity["features_max_abs_diff"] > 1e-4:
        log.warning(
            "numpy features differ from transformers' by %.2e (> 1e-4)", parity["features_max_abs_diff"]
        )
    if parity["fp32"]["max_abs_diff_logits_vs_torch"] > 1e-3:
        log.warning(
            "ONNX fp32 logits differ from torch by %.2e", parity["fp32"]["max_abs_diff_logits_vs_torch"]
        )
    return parity


def _manifest(
    model: str,
    is_local: bool,
    config: Any,
    hf_model: Any,
    features: Any,
    window: int,
    labels: list[str],
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
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "source": {
            "model": model if not is_local else str(Path(model).expanduser().resolve()),
            "local": is_local,
            "revision": getattr(config, "_commit_hash", None),
        },
        "task": options.task,
        "architecture": type(hf_model).__name__,
        "model_type": config.model_type,
        "labels": labels,
        "multi_label": getattr(config, "problem_type", None) == "multi_label_classification",
        "sampling_rate": features.sample_rate,
        "window_samples": int(window),
        "features": feature_options_to_dict(features),
        "input_name": input_name,
        "output_name": graph.graph.output[0].name,
        "models": models,
        "onnx_opset": opset,
        "quantization": None
        if "int8" not in models
        else {
            "method": "onnxruntime.quantization.quantize_dynamic",
            "weight_type": "QInt8",
            "op_types": list(options.quantize_op_types),
            "per_channel": options.per_channel,
        },
        "files": files,
        "versions": _versions(),
        "exporter": "optimum.exporters.onnx.onnx_export_from_model",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return manifest


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------ CLI


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``wakeword export``: light to build, nothing heavy is imported here."""
    p = subparsers.add_parser(
        "export",
        help="export a Hugging Face audio classifier or Whisper to (quantized) ONNX",
        description="Export a Hugging Face audio-classification checkpoint, or a Whisper checkpoint with "
        f"--task {ASR_TASK} (for --asr-backend onnx), (hub id or save_pretrained directory) "
        "to ONNX fp32 and int8, with a manifest and a torch-vs-ONNX parity report. "
        "Needs the export extra: pip install 'wakeword[export]'.",
    )
    p.add_argument(
        "model", nargs="?", default=DEFAULT_MODEL, help=f"hub id or local directory ({DEFAULT_MODEL})"
    )
    p.add_argument(
        "--out", "-o", required=True, metavar="DIR", help="output directory (must be empty unless --force)"
    )
    p.add_argument(
        "--quantize", choices=("int8", "none"), default="int8", help="also write model.int8.onnx (int8)"
    )
    p.add_argument(
        "--task",
        default=TASK,
        help=f"{TASK} (a classifier, default) or {ASR_TASK} (Whisper with past key values, for --asr-backend onnx)",
    )
    p.add_argument("--force", action="store_true", help="overwrite the model files in a non-empty DIR")
    p.add_argument(
        "--window-ms",
        type=float,
        default=None,
        help="audio per engine score in ms (default: the model's clip: 1000 for Speech Commands AST)",
    )
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: optimum's)")
    p.add_argument(
        "--parity-audio",
        nargs="+",
        metavar="FILE",
        default=None,
        help="speech files for the parity check (default: pocketsphinx-testdata clips if installed)",
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="log details on stderr")
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``wakeword export``; prints stage lines on stderr and a summary on stdout."""
    if getattr(args, "verbose", 0):
        logging.getLogger("wakeword").setLevel(logging.INFO if args.verbose == 1 else logging.DEBUG)
    window = None
    if args.window_ms is not None:
        if args.window_ms <= 0:
            raise ConfigError(f"--window-ms must be positive, got {args.window_ms}")
        window = round(args.window_ms * SAMPLE_RATE / 1000)
    options = ExportOptions(
        task=args.task,
        quantize=args.quantize,
        force=args.force,
        window_samples=window,
        opset=args.opset,
        parity_audio=tuple(args.parity_audio) if args.parity_audio else None,
    )

    def progress(line: str) -> None:
        print(f"wakeword export: {line}", file=sys.stderr, flush=True)

    result = export(args.model, args.out, options, progress=progress)
    parity = result.parity
    if options.task == ASR_TASK:
        print(f"wrote {result.out_dir}:")
        for name, size in result.files.items():
            print(f"  {name:<32} {size / 1e6:9.1f} MB")
        for precision in result.manifest["models"]:
            print(
                f"  {precision}: tokens equal to transformers' generate on {parity[f'{precision}_tokens_equal']:.0%}, "
                f"language on {parity[f'{precision}_language_equal']:.0%} of {parity['inputs']} inputs"
            )
        return 0
    print(f"wrote {result.out_dir}:")
    for name, size in result.files.items():
        print(f"  {name:<18} {size / 1e6:9.1f} MB")
    for precision in result.manifest["models"]:
        p = parity[precision]
        print(
            f"  {precision}: max |logit diff| vs torch {p['max_abs_diff_logits_vs_torch']:.2e}, "
            f"top-1 agreement {p['top1_agreement_with_torch']:.0%} on {parity['inputs']} inputs"
        )
    return 0
