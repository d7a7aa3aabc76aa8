"""``wakeword classify FILE...``: whole clips through any model (the default one unless ``--model``), JSON out.

One file prints the transformers pipeline's shape,
``[{"score": 0.99, "label": "backward"}, ...]``; several files or a directory
print one JSON line per file, ``{"file": "...", "predictions": [...]}``, with
the model loaded once. Files may have any rate and channel count (soundfile
reads them, soxr resamples). A file that cannot be read is reported on stderr
and the others are still classified; the exit code is then non-zero.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wakeword.audio.sources import read_file
from wakeword.config import add_command_parser, positive_int
from wakeword.errors import AudioError, AudioFileError, ConfigError

__all__ = ["add_parser", "audio_files", "run"]

log = logging.getLogger(__name__)

_EXTRA_EXTENSIONS = {"aif", "oga", "opus"}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``wakeword classify``: light to build, nothing heavy is imported here."""
    p = add_command_parser(
        subparsers,
        "classify",
        help="classify whole clips with a model",
        description="Classify audio files (WAV, FLAC, OGG..., any rate and channel count) with any model: "
        "the shipped default, a model directory (a keyword model from `wakeword train`, a classifier from "
        "`wakeword export`) or NAME[:SPEC]. One file prints a JSON list of {score, label}; several files or a "
        "directory print one JSON line per file.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files or directories of audio files")
    p.add_argument(
        "--model",
        "-m",
        default="default",
        help="default (the shipped keyword model), a model directory, or NAME[:SPEC] (default)",
    )
    p.add_argument(
        "--precision",
        choices=("int8", "fp32"),
        default=None,
        help="which model file to run (default: int8 when the directory has it)",
    )
    p.add_argument("--top-k", type=positive_int, default=5, help="labels per file (5)")
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="ONNX Runtime threads (default: 1 on up to 2 cores, else 2)",
    )
    return p


def _audio_extensions() -> set[str]:
    import soundfile as sf

    return {name.lower() for name in sf.available_formats()} | _EXTRA_EXTENSIONS


def audio_files(inputs: list[str]) -> Iterator[Path]:
    """Each input as given; a directory expands to its audio files (by extension, sorted, not recursive)."""
    extensions: set[str] | None = None
    for name in inputs:
        path = Path(name)
        if not path.is_dir():
            yield path
            continue
        if extensions is None:
            extensions = _audio_extensions()
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix[1:].lower() in extensions)
        if not found:
            raise AudioFileError(f"{path}: no audio files in this directory")
        yield from found


def run(args: argparse.Namespace) -> int:
    """Run ``wakeword classify``; returns the exit code."""
    if args.top_k < 1:
        raise ConfigError(f"--top-k must be positive, got {args.top_k}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be positive, got {args.threads}")
    from wakeword.classifiers import load_classifier
    from wakeword.classifiers.clips import clip_scores, top_predictions

    classifier = load_classifier(args.model, threads=args.threads, precision=args.precision)
    single = len(args.files) == 1 and not Path(args.files[0]).is_dir()
    if single:
        clip = read_file(args.files[0])
        print(json.dumps(top_predictions(clip_scores(classifier, clip), classifier.info.labels, args.top_k)))
        return 0
    failures = 0
    for path in audio_files(args.files):
        try:
            clip = read_file(path)
        except AudioError as e:
            failures += 1
            print(f"wakeword: error: {e}", file=sys.stderr)
            continue
        predictions = top_predictions(clip_scores(classifier, clip), classifier.info.labels, args.top_k)
        print(json.dumps({"file": str(path), "predictions": predictions}), flush=True)
    if failures:
        log.warning("%d file(s) could not be classified", failures)
        return AudioFileError.exit_code
    return 0
