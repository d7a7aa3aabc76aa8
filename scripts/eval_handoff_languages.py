#!/usr/bin/env python3
"""Wake word + command files in five languages through the full engine, per Whisper backend.

Reads the ``commands.json`` that ``scripts/make_command_examples.py`` writes
(default ``models/examples/commands``), runs each file through the engine
(default keyword model, VAD, command capture, hand-off) once per backend, and
reports per file: whether the wake word fired, the detected language and its
probability, the text, and the word error rate against the spoken text (for
every language; the issue's bar is English WER <= 0.2). The speech is
synthetic (piper for English, espeak-ng for the rest): say so next to any
figure. One JSON object on stdout (or ``--out FILE``), a table on stderr.

    python scripts/eval_handoff_languages.py [--examples DIR] [--backends faster-whisper,onnx]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EXAMPLES = ROOT / "models" / "examples" / "commands"


def _words(text: str) -> list[str]:
    """Lower-case words without punctuation (Whisper's casing and commas are not errors here)."""
    text = unicodedata.normalize("NFC", text).lower()
    return re.sub(r"[^\w\s']", " ", text).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by word-level edit distance."""
    ref, hyp = _words(reference), _words(hypothesis)
    if not ref:
        return float(bool(hyp))
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / len(ref)


def evaluate(
    backend: str,
    compute_type: str,
    model: str,
    examples: Path,
    entries: list[dict],
    languages: tuple[str, ...] | None = None,
    command_silence_s: float | None = None,
) -> dict:
    from wakeword.audio.sources import FileSource
    from wakeword.config import Settings, build_engine

    command_silence_s = command_silence_s or Settings().command_silence_s
    t0 = time.monotonic()
    engine = build_engine(
        Settings(
            asr_backend=backend,
            asr_model=model,
            compute_type=compute_type,
            languages=languages,
            command_silence_s=command_silence_s,
        )
    )
    load_s = time.monotonic() - t0
    rows = []
    with engine:
        for entry in entries:
            engine.reset()
            events = engine.run(FileSource(str(examples / entry["file"])))
            detections = [e for e in events if e.kind == "detection"]
            transcripts = [e for e in events if e.kind == "transcript"]
            t = transcripts[0] if transcripts else None
            rows.append(
                {
                    "file": entry["file"],
                    "expected_language": entry["language"],
                    "reference": entry["text"],
                    "wake_word": [d.keyword for d in detections],
                    "language": t.language if t else None,
                    "language_probability": round(t.language_probability, 3) if t else None,
                    "language_correct": bool(t and t.language == entry["language"]),
                    "text": t.text if t else None,
                    "wer": round(word_error_rate(entry["text"], t.text), 3) if t else 1.0,
                    "latency_s": round(t.latency_s, 3) if t else None,
                    # the span the engine handed off vs where the files say the command lies
                    "captured_s": [round(t.start_sample / 16000, 2), round(t.end_sample / 16000, 2)] if t else None,
                    "command_s": [entry["command_start_s"], entry["command_end_s"]],
                    "wake_end_s": entry["wake_end_s"],
                }
            )
    english = [r["wer"] for r in rows if r["expected_language"] == "en"]
    return {
        "backend": backend,
        "compute_type": compute_type,
        "model": model,
        "candidate_languages": languages,
        "command_silence_s": command_silence_s,
        "load_s": round(load_s, 2),
        "languages_correct": sum(r["language_correct"] for r in rows),
        "files": len(rows),
        "english_wer": max(english) if english else None,
        "english_wer_target_met": bool(english) and max(english) <= 0.2,
        "per_file": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=Path, default=DEFAULT_EXAMPLES, help="dir with commands.json")
    parser.add_argument(
        "--backends",
        default="faster-whisper,onnx,onnx:float32",
        help="comma-separated BACKEND[:COMPUTE_TYPE][=MODEL] (defaults: int8, base)",
    )
    parser.add_argument("--languages", default=None, help="restrict language ID to these, e.g. en,fr,de,es,it")
    parser.add_argument(
        "--command-silence-s", type=float, default=None, help="silence that ends a command (the engine's default)"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    entries = json.loads((args.examples / "commands.json").read_text(encoding="utf-8"))
    from wakeword.errors import WakewordError

    report = {"examples": str(args.examples), "speech": "synthetic: piper joe (en), espeak-ng (others)", "backends": []}
    for item in args.backends.split(","):
        spec, _, model = item.partition("=")
        backend, _, compute_type = spec.partition(":")
        try:
            result = evaluate(
                backend,
                compute_type or "int8",
                model or "base",
                args.examples,
                entries,
                tuple(args.languages.split(",")) if args.languages else None,
                args.command_silence_s,
            )
        except WakewordError as e:
            print(f"{backend}: skipped ({e})", file=sys.stderr)
            report["backends"].append({"backend": spec, "skipped": str(e)})
            continue
        report["backends"].append(result)
        print(
            f"\n{backend} {compute_type or 'int8'} ({model or 'base'}): {result['languages_correct']}/{result['files']} languages right, "
            f"English WER {result['english_wer']}",
            file=sys.stderr,
        )
        for r in result["per_file"]:
            print(
                f"  {r['file']:<26} wake {','.join(r['wake_word']) or '-':<8} "
                f"[{r['language']} {r['language_probability']}] WER {r['wer']:.2f}  {r['text']}",
                file=sys.stderr,
            )
    text = json.dumps(report, ensure_ascii=False, indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
