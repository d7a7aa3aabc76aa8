"""``wakeword transcribe FILE``: the Whisper hand-off stage alone, on a file, for checking.

The file may have any rate and channel count (the engine's own file source
converts it to 16 kHz mono). Prints ``[language probability] text``, or one
JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

from wakeword.audio.sources import read_file
from wakeword.config import add_command_parser, positive_int
from wakeword.errors import ConfigError

__all__ = ["add_parser", "run"]

log = logging.getLogger(__name__)


def _language_list(text: str) -> list[str]:
    codes = [c.strip() for c in text.split(",") if c.strip()]
    if not codes:
        raise argparse.ArgumentTypeError(f"expected comma-separated language codes, got {text!r}")
    return codes


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``wakeword transcribe``: light to build, the backend is imported only in ``run``."""
    p = add_command_parser(
        subparsers,
        "transcribe",
        help="transcribe a spoken command with Whisper (language ID + text)",
        description="Run the Whisper hand-off stage alone on an audio file (any rate and channel count): "
        "identify the language and transcribe. Default model: the multilingual Whisper base from the "
        "wakeword[whisper] extra, int8 on the CPU.",
    )
    p.add_argument("file", metavar="FILE", help="audio file (WAV, FLAC, OGG...)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--language", default=None, help="force this language (ISO code, e.g. fr); skips language ID")
    g.add_argument(
        "--languages",
        type=_language_list,
        default=None,
        metavar="xx,yy",
        help="restrict language ID to these candidates, e.g. en,fr,de",
    )
    p.add_argument(
        "--asr-model",
        default="base",
        help="'base' (bundled), a local CTranslate2 Whisper directory, or a hub name; with "
        "--asr-backend onnx: 'base' (~/.cache/wakeword/whisper-base-onnx) or an export directory "
        "(base)",
    )
    p.add_argument(
        "--asr-backend",
        default="faster-whisper",
        help="transcriber backend: faster-whisper, or onnx (wakeword export ... --task "
        "automatic-speech-recognition) (faster-whisper)",
    )
    p.add_argument(
        "--compute-type",
        default="int8",
        help="int8, int8_float32, float32 (int8); the onnx backend runs its int8 or fp32 export",
    )
    p.add_argument("--beam-size", type=positive_int, default=1, help="beam size; 1 is greedy (1)")
    p.add_argument("--threads", type=positive_int, default=2, help="CPU threads (2)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``wakeword transcribe``; returns the exit code."""
    if args.beam_size < 1 or args.threads < 1:
        raise ConfigError("--beam-size and --threads must be positive")
    from wakeword.asr.base import make_transcriber

    audio = read_file(args.file)  # bad input fails before the model loads
    t0 = time.monotonic()
    transcriber = make_transcriber(
        args.asr_backend,
        model=args.asr_model,
        compute_type=args.compute_type,
        beam_size=args.beam_size,
        threads=args.threads,
    )
    t1 = time.monotonic()
    result = transcriber.transcribe(audio, language=args.language, languages=args.languages)
    t2 = time.monotonic()
    log.info("model loaded in %.2f s, transcribed %.2f s of audio in %.2f s", t1 - t0, result.duration_s, t2 - t1)
    if args.json:
        print(
            json.dumps(
                {
                    "file": args.file,
                    "language": result.language,
                    "language_probability": round(result.language_probability, 4),
                    "text": result.text,
                    "duration_s": round(result.duration_s, 3),
                    "transcribe_s": round(t2 - t1, 3),
                },
                ensure_ascii=False,
            )
        )
    else:
        print(f"[{result.language} {result.language_probability:.2f}] {result.text}")
    return 0
