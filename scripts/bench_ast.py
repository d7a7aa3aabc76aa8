#!/usr/bin/env python
"""Per-clip latency of the Speech Commands AST: transformers pipeline vs ONNX Runtime fp32 vs int8.

    python scripts/bench_ast.py [--runs 40] [--threads 1,2] [--workdir DIR]

The hub is unreachable on the machines this runs on, so the model is
MIT/ast-finetuned-speech-commands-v2's exact geometry (768 hidden, 12 layers,
12 heads, 128 mel bins x 128 frames, 35 labels: 85.4M parameters) with
random weights; latency does not depend on the weights' values. It is built
from its config, exported with ``wakeword.export.classifier`` (fp32 + dynamic int8), and
each (backend, threads) pair runs in its own process, one after the other, so
torch's and ONNX Runtime's thread pools never compete and the ORT processes
never import torch.

Every timing is one 1 s clip end to end, as a user would call it:
- ``pipeline``: ``transformers.pipeline("audio-classification")(clip, top_k=5)``
  (ASTFeatureExtractor + torch fp32 forward + softmax/top-k), with
  ``torch.set_num_threads(N)``;
- ``ort-fp32`` / ``ort-int8``: ``wakeword.classifiers.onnx.classify(clip, 16000,
  classifier, top_k=5)`` (numpy Kaldi fbank + ONNX Runtime with N intra-op
  threads + softmax/top-k).
The clip is LibriVox speech from pocketsphinx-testdata when installed, else noise.
Prints a markdown table with median, p95 and the speed-up over the pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from wakeword.tools.bench import machine_info
from wakeword.tools.metrics import percentiles

BACKENDS = ("pipeline", "ort-fp32", "ort-int8")
LIBRIVOX = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav"


def _clip() -> np.ndarray:
    if Path(LIBRIVOX).exists():
        import soundfile as sf

        audio, rate = sf.read(LIBRIVOX, dtype="float32")
        assert rate == 16_000
        return audio[16_000:32_000].copy()
    return (0.1 * np.random.default_rng(0).standard_normal(16_000)).astype(np.float32)


def _prepare(workdir: Path) -> tuple[Path, Path]:
    """The full-geometry checkpoint and its export, built once and reused from ``workdir``."""
    checkpoint, onnx_dir = workdir / "checkpoint", workdir / "onnx"
    if not (checkpoint / "config.json").exists():
        print("building a random AST at the Speech Commands geometry ...", file=sys.stderr, flush=True)
        import torch
        import transformers as tf

        torch.manual_seed(0)
        labels = [f"label_{i}" for i in range(35)]
        config = tf.ASTConfig(
            hidden_size=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            intermediate_size=3072,
            num_mel_bins=128,
            max_length=128,
            id2label=dict(enumerate(labels)),
            label2id={n: i for i, n in enumerate(labels)},
        )
        tf.ASTForAudioClassification(config).eval().save_pretrained(checkpoint)
        tf.ASTFeatureExtractor(num_mel_bins=128, max_length=128, mean=-6.845978, std=5.5654526).save_pretrained(
            checkpoint
        )
    if not (onnx_dir / "manifest.json").exists():
        from wakeword.export.command import export

        export(
            str(checkpoint),
            onnx_dir,
            force=True,
            progress=lambda line: print(f"export: {line}", file=sys.stderr, flush=True),
        )
    return checkpoint, onnx_dir


def _worker(backend: str, threads: int, workdir: Path, runs: int, warmup: int) -> dict:
    clip = np.load(workdir / "clip.npy")
    if backend == "pipeline":
        import torch
        from transformers import pipeline

        torch.set_num_threads(threads)
        pipe = pipeline("audio-classification", model=str(workdir / "checkpoint"), device="cpu")

        def once() -> None:
            pipe(clip.copy(), top_k=5)
    else:
        from wakeword.classifiers.onnx import OnnxClassifier, classify

        classifier = OnnxClassifier(workdir / "onnx", precision=backend.split("-")[1], threads=threads)

        def once() -> None:
            classify(clip, 16_000, classifier, top_k=5)

    for _ in range(warmup):
        once()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    ms = percentiles(np.array(times) * 1e3)
    return {
        "backend": backend,
        "threads": threads,
        "runs": runs,
        "median_ms": ms["p50"],
        "p95_ms": ms["p95"],
        "p99_ms": ms["p99"],
        "torch_loaded": "torch" in sys.modules,
    }


def _busy_seconds() -> float | None:
    """CPU seconds all processes have spent busy (Linux /proc/stat), or None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(v) for v in fields]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds() -> float:
    t = os.times()
    return t.children_user + t.children_system


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40, help="timed clips per configuration (40)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed clips first (5)")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (1,2)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the model here and reuse it")
    parser.add_argument("--json", action="store_true", help="also print the raw results as JSON")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(_worker(args.worker, args.worker_threads, args.workdir, args.runs, args.warmup)))
        return 0

    load_before = os.getloadavg()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="wakeword-bench-ast-"))
    workdir.mkdir(parents=True, exist_ok=True)
    _prepare(workdir)
    np.save(workdir / "clip.npy", _clip())
    threads = [int(t) for t in args.threads.split(",")]
    results = []
    for n in threads:
        for backend in BACKENDS:
            print(f"timing {backend} with {n} thread(s) ...", file=sys.stderr, flush=True)
            busy0, own0, wall0 = _busy_seconds(), _children_cpu_seconds(), time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    backend,
                    "--worker-threads",
                    str(n),
                    "--workdir",
                    str(workdir),
                    "--runs",
                    str(args.runs),
                    "--warmup",
                    str(args.warmup),
                ],
                check=False,
                capture_output=True,
                text=True,
                env=dict(os.environ, TOKENIZERS_PARALLELISM="false"),
            )
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            result = json.loads(done.stdout.strip().splitlines()[-1])
            busy1, own1, wall1 = _busy_seconds(), _children_cpu_seconds(), time.perf_counter()
            if busy0 is not None and busy1 is not None:
                # CPU used by everything but this benchmark, as a share of all cores, during this run
                others = max(0.0, (busy1 - busy0) - (own1 - own0))
                result["others_cpu_pct"] = 100.0 * others / ((wall1 - wall0) * (os.cpu_count() or 1))
            results.append(result)

    manifest = json.loads((workdir / "onnx" / "manifest.json").read_text())
    sizes = {name: entry["bytes"] for name, entry in manifest["files"].items()}
    base = {r["threads"]: r["median_ms"] for r in results if r["backend"] == "pipeline"}
    base1 = base.get(1)
    print(
        f"AST at the Speech Commands geometry (85.4M parameters, random weights), one 1 s clip per call; "
        f"{args.runs} timed runs after {args.warmup} warm-up."
    )
    print(
        f"CPU: {machine_info()['cpu']}, {os.cpu_count()} logical cores; torch {manifest['versions']['torch']}, "
        f"transformers {manifest['versions']['transformers']}, "
        f"onnxruntime {manifest['versions']['onnxruntime']}; "
        f"model.onnx {sizes['model.onnx'] / 1e6:.1f} MB, "
        f"model.int8.onnx {sizes['model.int8.onnx'] / 1e6:.1f} MB."
    )
    load_after = os.getloadavg()
    print(
        f"1-minute load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
        "(a busy machine inflates every figure, the 2-thread ones most)."
    )
    print()
    print(
        "| backend | threads | median ms | p95 ms "
        "| speed-up vs pipeline (same threads) | vs pipeline, 1 thread | other processes' CPU |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        same = base[r["threads"]] / r["median_ms"] if r["threads"] in base else float("nan")
        one = base1 / r["median_ms"] if base1 else float("nan")
        print(
            f"| {r['backend']} | {r['threads']} | {r['median_ms']:.1f} | {r['p95_ms']:.1f} "
            f"| {same:.2f}x | {one:.2f}x | {r.get('others_cpu_pct', float('nan')):.0f}% |"
        )
    if any(r["torch_loaded"] for r in results if r["backend"] != "pipeline"):
        print("\nWARNING: torch was imported in an ONNX Runtime run", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
