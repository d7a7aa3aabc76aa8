#!/usr/bin/env python3
"""End of speech → transcript latency of the Whisper hand-off, on a ~3 s spoken command.

The command (piper "joe", or espeak-ng) is fed hop by hop through the VAD and
:class:`~wakeword.handoff.CommandCapture`; the captured span goes to a
:class:`~wakeword.handoff.TranscriptWorker` running faster-whisper. Two
latencies per run: ``worker`` (submit → transcript, what the Whisper stage
costs) and ``end of speech`` (the capture's ``silence_s`` wait, in stream
time, plus ``worker``). p50/p95/max over ``--runs`` runs after one warm-up, for
several language settings, plus faster-whisper's own two-pass language ID
(``detect_language`` then ``transcribe``) for comparison.

    python scripts/bench_handoff.py [--runs 10] [--threads 2] [--compute-type int8] [--model base]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import threading
import time

import numpy as np
import soxr

from wakeword.errors import DependencyError
from wakeword.handoff import (
    CaptureConfig,
    CommandCapture,
    FasterWhisperTranscriber,
    Transcript,
    TranscriptWorker,
)
from wakeword.training.voices import Voice, synthesise
from wakeword.vad import VadConfig, VadGate

SR = 16_000
HOP = 1600
COMMAND = "please turn on the lights in the kitchen and close the blinds"
CANDIDATES = ("en", "fr", "de", "es", "it")


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


class TwoPass:
    """faster-whisper's own way: detect_language (one encoder pass), then transcribe (another)."""

    def __init__(self, inner: FasterWhisperTranscriber) -> None:
        self.inner = inner

    def transcribe(self, audio, language=None, languages=None):
        lang, probability = self.inner.detect_language(audio, languages)
        return dataclasses.replace(self.inner.transcribe(audio, language=lang), language_probability=probability)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--model", default="base")
    parser.add_argument("--silence-s", type=float, default=0.8)
    args = parser.parse_args()

    stream, speech_s = command_stream()
    result = capture(stream, CaptureConfig(silence_s=args.silence_s))
    audio = stream[result.start_sample : result.end_sample]
    wait_s = (result.end_sample - result.speech_end_sample) / SR
    t0 = time.monotonic()
    transcriber = FasterWhisperTranscriber(args.model, compute_type=args.compute_type, threads=args.threads)
    load_s = time.monotonic() - t0
    print(f"command: {speech_s:.2f} s of speech ({COMMAND!r}); captured {result.duration_s:.2f} s, "
          f"end of speech detected {wait_s:.2f} s after it ended (silence_s={args.silence_s})")
    print(f"model {args.model} {args.compute_type}, {args.threads} threads, loaded in {load_s:.2f} s; "
          f"{os.cpu_count()} cores; {args.runs} runs after 1 warm-up; load average {os.getloadavg()[0]:.2f}")

    modes = [
        ("language ID, all languages (1 pass)", transcriber, {}),
        ("language ID, en,fr,de,es,it (1 pass)", transcriber, {"languages": CANDIDATES}),
        ("forced --language en", transcriber, {"language": "en"}),
        ("faster-whisper 2-pass LID (baseline)", TwoPass(transcriber), {"languages": CANDIDATES}),
    ]
    header = f"{'mode':<40} {'worker p50':>10} {'p95':>6} {'max':>6} {'EoS→text p50':>13} {'p95':>6}  text"
    print(header)
    print("-" * len(header))
    for name, tr, options in modes:
        got: list[Transcript] = []
        done = threading.Event()

        def deliver(t: Transcript, got: list[Transcript] = got, done: threading.Event = done) -> None:
            got.append(t)
            done.set()

        with TranscriptWorker(tr, deliver, **options) as worker:
            latencies = []
            for run in range(args.runs + 1):
                done.clear()
                worker.submit("marvin", result.start_sample, result.end_sample, audio)
                done.wait(60)
                if run:
                    latencies.append(got[-1].latency_s)
        eos = [wait_s + x for x in latencies]
        last = got[-1]
        print(f"{name:<40} {statistics.median(latencies):>10.3f} {percentile(latencies, 95):>6.3f} "
              f"{max(latencies):>6.3f} {statistics.median(eos):>13.3f} {percentile(eos, 95):>6.3f}  "
              f"[{last.language} {last.language_probability:.2f}] {last.text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
