"""``wakeword export``: the command line, and :func:`export`, which picks the classifier or the Whisper export."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wakeword.config import add_command_parser
from wakeword.errors import ConfigError
from wakeword.export.common import ASR_TASK, TASK, ExportOptions, ExportResult, check_out_dir, resolve_source
from wakeword.pcm import SAMPLE_RATE

__all__ = ["add_parser", "export", "run"]

log = logging.getLogger(__name__)


DEFAULT_MODEL = "MIT/ast-finetuned-speech-commands-v2"


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
    check_out_dir(out, options.force)
    source, is_local = resolve_source(model)
    if options.task == ASR_TASK:
        from wakeword.export.whisper import export_whisper

        return export_whisper(model, out, options, source, is_local, progress)
    from wakeword.export.classifier import export_classifier

    return export_classifier(model, out, options, source, is_local, progress)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``wakeword export``: light to build, nothing heavy is imported here."""
    p = add_command_parser(
        subparsers,
        "export",
        help="export a Hugging Face audio classifier or Whisper to (quantized) ONNX",
        description="Export a Hugging Face audio-classification checkpoint, or a Whisper checkpoint with "
        f"--task {ASR_TASK} (for --asr-backend onnx), (hub id or save_pretrained directory) "
        "to ONNX fp32 and int8, with a manifest and a torch-vs-ONNX parity report. "
        "Needs the export extra: pip install 'wakeword[export]'.",
    )
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"hub id or local directory ({DEFAULT_MODEL})")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="output directory (must be empty unless --force)")
    p.add_argument("--quantize", choices=("int8", "none"), default="int8", help="also write model.int8.onnx (int8)")
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
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``wakeword export``; prints stage lines on stderr and a summary on stdout."""
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
