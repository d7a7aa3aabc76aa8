#!/usr/bin/env python
"""Soak test of ``wakeword serve``: hours of audio through the daemon, memory sampled as it goes.

Runs ``wakeword serve --input -`` with the default model, a command hook, the
event socket (one subscriber reading) and the control socket, and writes
``--hours`` of 16 kHz audio to its standard input as fast as the daemon takes
it (the pipe paces it; the default model runs far faster than real time on
room noise). The audio is a loop of ``--segment-s`` segments, each one room
noise with, at a random place, the marvin example (a detection per segment)
and a LibriVox clip of Debian's pocketsphinx-testdata when installed (speech
without the keyword). Each segment has fresh noise and a random gain, so no
two are alike (the front end's cache sees new audio every time).

Every ``--sample-s`` seconds of wall time it records the daemon's resident
memory (psutil) and its audio clock (``wakeword status``). Growth is reported
from the end of the warm-up (``--warmup-h`` hours of audio) to the end, with
the largest RSS seen and a least-squares slope in MB per hour of audio.

    nice python scripts/soak_serve.py [--hours 8] [--handoff] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf

SR = 16_000
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "models" / "examples" / "marvin-stream.wav"
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


def load_speech() -> list[np.ndarray]:
    clips = []
    for path in sorted(LIBRIVOX.glob("*.wav"))[:4] if LIBRIVOX.is_dir() else []:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
        if rate == SR:
            clips.append(audio.mean(axis=1)[: 8 * SR])
    return clips


def segments(segment_s: float, rng: np.random.Generator):
    """Endless segments of int16 PCM: noise, the marvin example, maybe a speech clip."""
    marvin, rate = sf.read(EXAMPLE, dtype="float32")
    assert rate == SR
    speech = load_speech()
    n = int(segment_s * SR)
    k = 0
    while True:
        x = (0.003 * rng.standard_normal(n)).astype(np.float32)
        start = int(rng.integers(0, n - marvin.shape[0] - 10 * SR))
        x[start : start + marvin.shape[0]] += rng.uniform(0.7, 1.0) * marvin
        if speech:
            clip = speech[k % len(speech)]
            s0 = start + marvin.shape[0] + SR
            x[s0 : s0 + clip.shape[0]] += rng.uniform(0.5, 1.0) * clip
        k += 1
        yield (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def status(control: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "wakeword", "status", "--control", control, "--json"], capture_output=True, timeout=30
    )
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=8.0, help="hours of audio (8)")
    ap.add_argument("--segment-s", type=float, default=300.0, help="seconds per segment, one marvin each (300)")
    ap.add_argument("--warmup-h", type=float, default=0.5, help="hours of audio before growth is measured (0.5)")
    ap.add_argument("--sample-s", type=float, default=5.0, help="wall seconds between memory samples (5)")
    ap.add_argument("--handoff", action="store_true", help="also transcribe each command with Whisper")
    ap.add_argument("--model", default="default")
    ap.add_argument("--json", metavar="OUT", help="write every sample and the summary here")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="wakeword-soak-"))
    control, events = f"unix:{tmp}/control.sock", f"unix:{tmp}/events.sock"
    cmd = [
        sys.executable,
        "-m",
        "wakeword",
        "serve",
        "--input",
        "-",
        "--model",
        args.model,
        "--json",
        "--control",
        control,
        "--events",
        events,
        "--exec",
        "true {keyword} {time_s}",
    ]
    if not args.handoff:
        cmd.append("--no-handoff")
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    daemon = psutil.Process(proc.pid)
    counts = {"stdout_events": 0, "socket_events": 0}

    def drain(stream, key):
        for _ in stream:
            counts[key] += 1

    threading.Thread(target=drain, args=(proc.stdout, "stdout_events"), name="soak-stdout", daemon=True).start()
    stderr_lines: list[bytes] = []
    threading.Thread(target=lambda: stderr_lines.extend(proc.stderr), name="soak-stderr", daemon=True).start()

    def subscribe():
        import socket

        while not (tmp / "events.sock").exists():
            if proc.poll() is not None:
                return
            time.sleep(0.1)
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(tmp / "events.sock"))
        drain(sock.makefile("rb"), "socket_events")

    threading.Thread(target=subscribe, name="soak-subscriber", daemon=True).start()

    total_segments = int(np.ceil(args.hours * 3600 / args.segment_s))

    def feed():
        rng = np.random.default_rng(0)
        try:
            for _, pcm in zip(range(total_segments), segments(args.segment_s, rng)):
                proc.stdin.write(pcm)
            proc.stdin.close()
        except BrokenPipeError:
            pass

    started = time.monotonic()
    writer = threading.Thread(target=feed, name="soak-writer")
    writer.start()
    samples = []
    while proc.poll() is None:
        time.sleep(args.sample_s)
        try:
            rss = daemon.memory_info().rss
        except psutil.NoSuchProcess:
            break
        st = status(control) if (tmp / "control.sock").exists() else {}
        if st:
            samples.append(
                {
                    "wall_s": round(time.monotonic() - started, 1),
                    "audio_s": st["audio_s"],
                    "rss_mb": round(rss / 2**20, 2),
                    "detections": st["detections"],
                    "transcripts": st["transcripts"],
                    "hooks": st.get("hooks", {}).get("runs", 0),
                }
            )
            print(json.dumps(samples[-1]), flush=True)
    writer.join()
    rc = proc.wait()
    wall = time.monotonic() - started
    warm = [s for s in samples if s["audio_s"] >= args.warmup_h * 3600]
    if rc != 0 or len(warm) < 2:
        sys.stderr.write(b"".join(stderr_lines[-20:]).decode(errors="replace"))
        print(f"soak failed: exit {rc}, {len(warm)} samples after warm-up", file=sys.stderr)
        return 1
    hours = np.array([s["audio_s"] / 3600 for s in warm])
    rss = np.array([s["rss_mb"] for s in warm])
    slope = float(np.polyfit(hours, rss, 1)[0])
    summary = {
        "audio_fed_h": round(total_segments * args.segment_s / 3600, 2),
        "audio_h_at_last_sample": round(samples[-1]["audio_s"] / 3600, 2),
        "wall_s": round(wall, 1),
        "speed_x_realtime": round(total_segments * args.segment_s / wall, 1),
        "rss_start_mb": samples[0]["rss_mb"],
        "rss_after_warmup_mb": warm[0]["rss_mb"],
        "rss_end_mb": warm[-1]["rss_mb"],
        "rss_max_mb": float(max(s["rss_mb"] for s in samples)),
        "growth_after_warmup_mb": round(warm[-1]["rss_mb"] - warm[0]["rss_mb"], 2),
        "slope_mb_per_audio_h": round(slope, 3),
        "detections": samples[-1]["detections"],
        "segments": total_segments,
        "transcripts": samples[-1]["transcripts"],
        **counts,
        "handoff": args.handoff,
        "cpus": os.cpu_count(),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "samples": samples}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
