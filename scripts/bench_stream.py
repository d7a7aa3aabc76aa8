#!/usr/bin/env python
"""File-mode throughput of the streaming engine: VAD gate mostly closed, mostly open, and off.

Builds two test streams of ``--minutes`` each: real speech (the LibriVox clips
of Debian's pocketsphinx-testdata, looped, with 0.3-1.2 s pauses of room
noise between clips) and pure low-level noise. Each configuration runs
``--repeats`` times through a fresh engine, one hop-sized block at a time:

* (a) gate on, noise stream: the gate stays mostly closed
* (b) gate on, speech stream: the gate stays mostly open
* (c) gate off (``VadConfig(enabled=False)``), speech stream: the classifier runs every hop

each with the classifier (ToneClassifier, or ``--model DIR``) and with a
constant-score stand-in, so the engine's own cost (reframer, ring buffer, VAD,
detector) is visible. ``--source file`` writes each stream to a 48 kHz stereo
WAV first and reads it through ``FileSource``, adding decode and resampling.

    python scripts/bench_stream.py [--minutes 10] [--repeats 5] [--source array|file] [--model DIR] [--json]

Times per block are pooled over the repeats and reported as p50/p95/p99;
throughput and CPU are medians over the repeats. Single-threaded apart from
the classifier's own runtime.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from wakeword.audio.sources import SAMPLE_RATE, ArraySource, FileSource
from wakeword.classifiers import load_classifier
from wakeword.classifiers.base import Classifier
from wakeword.classifiers.tone import ToneClassifier
from wakeword.engine import Engine, EngineConfig
from wakeword.errors import WakewordError
from wakeword.stream.vad import VadConfig
from wakeword.tools.bench import machine_info
from wakeword.tools.metrics import percentiles

SPEECH_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")
NOISE_RMS = 0.001  # -60 dBFS white noise: a quiet room
FILE_RATE = 48_000


class ConstantClassifier:
    """Scores "silence" without looking at the audio: what the engine costs around a classifier."""

    def __init__(self, like: Classifier) -> None:
        self.info = like.info
        self._scores = np.zeros(len(self.info.labels), dtype=np.float32)
        if self.info.labels[-1].startswith("_"):
            self._scores[-1] = 1.0

    def scores(self, window: np.ndarray) -> np.ndarray:
        return self._scores


def load_speech_clips(directory: Path) -> list[np.ndarray]:
    import soundfile as sf
    import soxr

    clips = []
    for path in sorted(directory.glob("*.wav")):
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
        mono = audio.mean(axis=1, dtype=np.float32)
        clips.append(mono if rate == SAMPLE_RATE else soxr.resample(mono, rate, SAMPLE_RATE))
    return clips


def speech_stream(clips: list[np.ndarray], seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Clips looped end to end, each followed by a pause of room noise, cut to ``seconds``."""
    n = int(seconds * SAMPLE_RATE)
    out = (NOISE_RMS * rng.standard_normal(n)).astype(np.float32)
    i = k = 0
    while i < n:
        clip = clips[k % len(clips)]
        take = min(clip.shape[0], n - i)
        out[i : i + take] += clip[:take]
        i += take + int(rng.uniform(0.3, 1.2) * SAMPLE_RATE)
        k += 1
    return out


def synthetic_speech(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A voiced harmonic complex with 4 Hz syllables: a stand-in when no real speech is installed."""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(150.0 + 50.0 * np.sin(2 * np.pi * 0.3 * t)) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 15))
    x = 0.1 * (0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t)) * voiced + NOISE_RMS * rng.standard_normal(n)
    return x.astype(np.float32)


def write_wav_48k_stereo(audio16: np.ndarray, path: Path) -> None:
    import soundfile as sf
    import soxr

    resampler = soxr.ResampleStream(SAMPLE_RATE, FILE_RATE, 1, dtype="float32", quality="HQ")
    step = 60 * SAMPLE_RATE
    with sf.SoundFile(path, "w", samplerate=FILE_RATE, channels=2, subtype="PCM_16") as f:
        for i in range(0, audio16.shape[0], step):
            chunk = resampler.resample_chunk(audio16[i : i + step], last=i + step >= audio16.shape[0])
            f.write(np.stack([chunk, chunk], axis=1))


@dataclass
class Row:
    case: str
    stream: str
    gate: bool
    classifier: str
    source: str
    audio_s: float
    repeats: int
    x_realtime: float
    cpu_s_per_audio_h: float
    classified_pct: float
    cpu_vs_gate_off: float
    block_p50_ms: float
    block_p95_ms: float
    block_p99_ms: float
    detections: int


def run_once(engine: Engine, source, times_ns: list[int]) -> tuple[float, float]:
    """One pass; appends the time of each ``next(block)`` + ``process(block)``. Returns (wall s, CPU s)."""
    perf = time.perf_counter_ns
    wall0, cpu0 = time.perf_counter(), time.process_time()
    blocks = source.blocks()
    try:
        while True:
            t0 = perf()
            block = next(blocks, None)
            if block is None:
                break
            engine.process(block)
            times_ns.append(perf() - t0)
    finally:
        source.close()
    return time.perf_counter() - wall0, time.process_time() - cpu0


def measure(
    case: str,
    stream: str,
    audio: np.ndarray,
    wav: Path | None,
    gate: bool,
    classifier: Classifier,
    classifier_name: str,
    repeats: int,
) -> Row:
    engine = Engine(classifier, EngineConfig(vad=VadConfig(enabled=gate)))
    hop = engine.hop_samples
    walls, cpus, times_ns = [], [], []
    detections = 0
    for _ in range(repeats):
        engine.reset()
        if wav is None:
            source = ArraySource(audio, block_size=hop, name=stream)
        else:
            source = FileSource(wav, block_frames=hop * FILE_RATE // SAMPLE_RATE)
        wall, cpu = run_once(engine, source, times_ns)
        walls.append(wall)
        cpus.append(cpu)
        detections = engine.stats.detections
    stats = engine.stats
    audio_s = stats.audio_s
    block_ms = percentiles(np.asarray(times_ns) / 1e6)
    p50, p95, p99 = block_ms["p50"], block_ms["p95"], block_ms["p99"]
    return Row(
        case=case,
        stream=stream,
        gate=gate,
        classifier=classifier_name,
        source="array" if wav is None else "file",
        audio_s=round(audio_s, 3),
        repeats=repeats,
        x_realtime=audio_s / statistics.median(walls),
        cpu_s_per_audio_h=statistics.median(cpus) / audio_s * 3600,
        classified_pct=100.0 * stats.classified_hops / max(1, stats.hops),
        cpu_vs_gate_off=float("nan"),
        block_p50_ms=float(p50),
        block_p95_ms=float(p95),
        block_p99_ms=float(p99),
        detections=detections,
    )


def machine() -> dict[str, object]:
    info = machine_info()
    return {
        "cpu": info["cpu"],
        "cores": info["cores"],
        "python": info["python"],
        "numpy": np.__version__,
        "load_1min_at_start": info["load_1min"],
    }


def markdown(rows: list[Row], info: dict[str, object]) -> str:
    lines = [
        f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, numpy {info['numpy']}, "
        f"load {info['load_1min_at_start']} at start; source: {rows[0].source}; {info['speech']}",
        f"{rows[0].audio_s / 60:.1f} min of audio per stream, {rows[0].repeats} repeats; "
        f"block = one {info.get('hop_ms', '?')} ms hop; CPU vs (c): CPU time relative to gate off with the classifier",
        "",
        "| case | stream | gate | classifier | × real time | CPU s / audio h | hops classified "
        "| CPU vs (c) | block p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.case} | {r.stream} | {'on' if r.gate else 'off'} | {r.classifier} | {r.x_realtime:,.0f} "
            f"| {r.cpu_s_per_audio_h:.1f} | {r.classified_pct:.1f} % | {r.cpu_vs_gate_off:.2f} "
            f"| {r.block_p50_ms:.3f} | {r.block_p95_ms:.3f} | {r.block_p99_ms:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of each test stream (10)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per configuration (5)")
    parser.add_argument(
        "--source",
        choices=("array", "file"),
        default="array",
        help="array: 16 kHz in memory; file: a 48 kHz stereo WAV through FileSource",
    )
    parser.add_argument("--model", help="model directory or backend name for load_classifier (default: tone)")
    parser.add_argument("--speech-dir", type=Path, default=SPEECH_DIR, help="directory of speech WAVs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.repeats < 1:
        parser.error("--minutes must be positive and --repeats at least 1")

    rng = np.random.default_rng(args.seed)
    seconds = args.minutes * 60
    clips = load_speech_clips(args.speech_dir) if args.speech_dir.is_dir() else []
    if clips:
        speech = speech_stream(clips, seconds, rng)
        speech_note = f"speech: {len(clips)} LibriVox clips from {args.speech_dir}, looped"
    else:
        speech = synthetic_speech(seconds, rng)
        speech_note = f"speech: SYNTHETIC (no WAVs in {args.speech_dir})"
    noise = (NOISE_RMS * rng.standard_normal(speech.shape[0])).astype(np.float32)
    try:
        classifier = load_classifier(args.model) if args.model else ToneClassifier()
    except WakewordError as e:
        print(f"bench_stream: error: {e}", file=sys.stderr)
        return 1
    name = Path(args.model).name if args.model else "tone"
    bare = ConstantClassifier(classifier)

    with tempfile.TemporaryDirectory(prefix="bench_stream_") as tmp:
        wavs: dict[str, Path | None] = {"noise": None, "speech": None}
        if args.source == "file":
            for stream, audio in (("noise", noise), ("speech", speech)):
                wavs[stream] = Path(tmp) / f"{stream}_48k_stereo.wav"
                write_wav_48k_stereo(audio, wavs[stream])
        audio_of = {"noise": noise, "speech": speech}
        plan = [("a", "noise", True), ("b", "speech", True), ("c", "speech", False)]
        rows = []
        for clf, clf_name in ((classifier, name), (bare, "constant (engine only)")):
            for case, stream, gate in plan:
                rows.append(measure(case, stream, audio_of[stream], wavs[stream], gate, clf, clf_name, args.repeats))
    baseline = rows[2].cpu_s_per_audio_h  # (c) with the real classifier
    for row in rows:
        row.cpu_vs_gate_off = row.cpu_s_per_audio_h / baseline

    info = {**machine(), "speech": speech_note, "hop_ms": Engine(classifier).hop_samples * 1000 // SAMPLE_RATE}
    if args.json:
        print(json.dumps({"machine": info, "rows": [asdict(r) for r in rows]}, indent=2))
    else:
        print(markdown(rows, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
