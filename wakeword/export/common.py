"""What every export shares: options and result, the staged progress lines, the optional export
stack (torch, transformers, optimum) imported on demand, checkpoint resolution, error translation and
the parity inputs.
"""

from __future__ import annotations

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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wakeword.errors import ConfigError, DependencyError, ModelError
from wakeword.manifest import sha256_file, write_manifest
from wakeword.pcm import SAMPLE_RATE

__all__ = [
    "ASR_TASK",
    "DEFAULT_PARITY_AUDIO",
    "HUB_ID",
    "PROTOBUF_LIMIT",
    "TASK",
    "Checkpoint",
    "ExportOptions",
    "ExportResult",
    "Stages",
    "check_out_dir",
    "check_sample_rate",
    "export_with_optimum",
    "file_records",
    "import_export_stack",
    "install",
    "load_config",
    "one_line",
    "parity_inputs",
    "peek_model_type",
    "provenance",
    "quantization_record",
    "quantize_int8",
    "quiet_export_chatter",
    "resolve_source",
    "source_record",
    "staging_dir",
    "step_errors",
    "transformers_errors_only",
    "versions",
]

log = logging.getLogger(__name__)

TASK = "audio-classification"


ASR_TASK = "automatic-speech-recognition"  # Whisper, for the hand-off: see wakeword.export.whisper


# Real speech for the parity check where Debian's pocketsphinx-testdata is installed.
DEFAULT_PARITY_AUDIO = "/usr/share/pocketsphinx/test/data/librivox/*.wav"


# Hub ids are NAME or OWNER/NAME; anything else must be an existing directory.
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")


PROTOBUF_LIMIT = 2_000_000_000  # bytes; bigger graphs keep their weights in external data


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


def one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class Stages:
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


def import_export_stack() -> dict[str, Any]:
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


def versions() -> dict[str, str]:
    from importlib import metadata

    from wakeword import __version__

    out = {"wakeword": __version__, "python": sys.version.split()[0]}
    for name in ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def check_out_dir(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"output directory {out} is not empty; pass --force to overwrite it")


def resolve_source(model: str) -> tuple[str, bool]:
    """``(source, is_local)``; a missing path that cannot be a hub id is a ModelError."""
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path), True
    if path.exists():
        raise ModelError(f"{model}: not a model directory (expected a save_pretrained directory or a hub id)")
    if not HUB_ID.match(model) or model.startswith("."):
        raise ModelError(f"{model}: no such model directory")
    if "/" in model and path.parent.is_dir():
        # "models/ast" next to an existing models/ is a mistyped path, not a hub id
        raise ModelError(f"{model}: no such model directory (and {path.parent} is a local directory, not a hub owner)")
    return model, False


def peek_model_type(path: Path) -> Any:
    """The ``model_type`` of a local checkpoint's config.json, read without transformers."""
    config = path / "config.json"
    if not config.is_file():
        raise ModelError(f"{path}: no config.json; expected a directory written by save_pretrained")
    try:
        return json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError) as e:
        raise ModelError(f"{config}: unreadable config ({one_line(e)})") from e


@contextlib.contextmanager
def step_errors(what: str) -> Iterator[None]:
    """A failure inside optimum or onnxruntime becomes one ModelError line; the cause stays chained."""
    try:
        yield
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as e:  # these libraries raise anything from ValueError to their own types
        raise ModelError(f"{what}: {type(e).__name__}: {one_line(e)}") from e


@contextlib.contextmanager
def quiet_export_chatter() -> Iterator[None]:
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


def parity_inputs(options: ExportOptions, window: int) -> list[tuple[str, str, Any]]:
    """``(name, kind, audio)``: up to ``parity_clips`` speech clips cut to the window, plus random audio."""
    import glob

    import numpy as np

    from wakeword.audio.sources import read_file
    from wakeword.errors import AudioError

    paths = list(options.parity_audio) if options.parity_audio is not None else sorted(glob.glob(DEFAULT_PARITY_AUDIO))
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


@contextlib.contextmanager
def transformers_errors_only(transformers: Any) -> Iterator[None]:
    """Silence transformers' "slow processor"-style hints: not actionable for an export."""
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)


def load_config(transformers: Any, source: str, is_local: bool) -> tuple[Any, str]:
    """``(config, where)``: ``where`` names the source in errors (a hub id says the hub was tried)."""
    where = source if is_local else f"{source} (not a local directory; tried the Hugging Face Hub)"
    try:
        return transformers.AutoConfig.from_pretrained(source), where
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"could not load the config of {where}: {one_line(e)}") from e


def check_sample_rate(features: Any, model: str) -> None:
    """The engine feeds 16 kHz audio: a model that expects another rate is refused."""
    if features.sample_rate != SAMPLE_RATE:
        raise ModelError(
            f"{model}: the model expects {features.sample_rate} Hz audio; the engine feeds {SAMPLE_RATE} Hz"
        )


@contextlib.contextmanager
def staging_dir(out: Path) -> Iterator[Path]:
    """A fresh directory next to ``out`` for the export's files, removed afterwards whatever happens."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".wakeword-export-", dir=out.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint and what every export reads off it; each export adds its own fields."""

    model: str  # as the user named it
    is_local: bool
    hf_model: Any
    extractor: Any  # transformers' feature extractor
    features: Any  # the numpy runtime's feature options
    n_params: int


def export_with_optimum(
    stack: dict[str, Any], checkpoint: Checkpoint, staging: Path, task: str, opset: int | None
) -> Path:
    """optimum's ONNX export of the checkpoint into ``staging/optimum`` (returned); a failure is one ModelError."""
    with step_errors(f"optimum could not export {checkpoint.model}"):
        stack["onnx_export_from_model"](
            checkpoint.hf_model,
            staging / "optimum",
            task=task,
            opset=opset,
            do_validation=False,
            preprocessors=[checkpoint.extractor],
        )
    return staging / "optimum"


def quantize_int8(
    stack: dict[str, Any], src: Path, dst: Path, options: ExportOptions, per_channel: bool, what: str, **extra: Any
) -> None:
    """ONNX Runtime's dynamic int8 quantization (QInt8 weights) of ``src`` into ``dst``; ``extra`` goes to
    ``quantize_dynamic`` as is; a failure is one ModelError line starting with ``what``."""
    with step_errors(what):
        stack["quantize_dynamic"](
            str(src),
            str(dst),
            weight_type=stack["QuantType"].QInt8,
            op_types_to_quantize=list(options.quantize_op_types),
            per_channel=per_channel,
            **extra,
        )


def source_record(model: str, is_local: bool, config: Any) -> dict[str, Any]:
    """The manifest's ``source``: the checkpoint as named (a local one resolved), and its hub revision."""
    return {
        "model": str(Path(model).expanduser().resolve()) if is_local else model,
        "local": is_local,
        "revision": getattr(config, "_commit_hash", None),
    }


def quantization_record(models: dict[str, Any], options: ExportOptions, per_channel: bool, **extra: Any) -> Any:
    """The manifest's ``quantization``: how the int8 files were made, or ``None`` without them."""
    if "int8" not in models:
        return None
    return {
        "method": "onnxruntime.quantization.quantize_dynamic",
        "weight_type": "QInt8",
        "op_types": list(options.quantize_op_types),
        "per_channel": per_channel,
        **extra,
    }


def file_records(directory: Path, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The manifest's ``files``: sha256 and size of each file."""
    return {n: {"sha256": sha256_file(directory / n), "bytes": (directory / n).stat().st_size} for n in names}


def provenance() -> dict[str, Any]:
    """The manifest's closing keys: the versions that made it, the exporter and the time."""
    return {
        "versions": versions(),
        "exporter": "optimum.exporters.onnx.onnx_export_from_model",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def install(staging: Path, out: Path, names: Iterable[str], manifest: dict[str, Any]) -> None:
    """Move the staged files into ``out``, ``manifest.json`` last: a directory without it is unfinished."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)  # an interrupted overwrite leaves no stale manifest
    for name in names:
        os.replace(staging / name, out / name)
    write_manifest(out / "manifest.json", manifest)
