"""``wakeword bench``: what the engine costs on this machine, per stage and per backend.

Each backend of the model runs in its own process, one after the other (so
peak memory, start-up time and thread pools are its own), over the same
input file, through the real engine with timing proxies around its
components (:mod:`wakeword.tools.probes`). Per row:

* per-stage latency p50/p95/p99: ``source`` (file read + resampling, per
  block), ``vad`` (per hop), ``features`` and ``inference`` (per classified
  hop), ``detector`` (per classified hop), ``handoff`` (Whisper per command;
  only with ``--handoff`` and faster-whisper installed, else null) and
  ``block`` (``engine.process`` per block);
* CPU seconds per audio hour, peak resident memory, time from the command's
  start to the first processed block;
* detection latency p50/p95 when the input has labels (``--labels`` or a
  ``FILE.json`` next to it, as ``models/examples/marvin-stream.json``);
* MACs per classified hop from the ONNX graphs and an *estimate* of the
  cost on a Raspberry Pi 4/5 derived from them (:mod:`wakeword.tools.opcount`).

Backends: a speech-embedding model runs its int8 and fp32 heads; an exported
Hugging Face model (``wakeword export``) runs ONNX int8, ONNX fp32 and, when
torch and transformers are installed and the checkpoint it came from is on
disk, the transformers pipeline. ``--peer openwakeword[:NAME]`` adds
openWakeWord's head on the same audio. Ratios compare CPU per audio hour
with the baseline row (the transformers pipeline, else ONNX fp32) and with
the peer.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from wakeword.classifiers.base import ModelInfo
from wakeword.config import positive_int
from wakeword.errors import ConfigError, DependencyError, ModelError, WakewordError
from wakeword.pcm import SAMPLE_RATE

__all__ = ["BENCH_SCHEMA", "add_parser", "machine_info", "plan_backends", "run"]

log = logging.getLogger(__name__)

STAGES = ("source", "vad", "features", "inference", "detector", "handoff", "block")
PEER_PREFIX = "peer:"  # a peer's keyword head on our engine and front end ("same front end")
ENGINE_PREFIX = "engine:"  # a peer's own engine, as its users run it


# --- which backends --------------------------------------------------------------


def resolve_model(model: str) -> str:
    """``--model`` as the worker processes get it: a directory path where it names one (``default`` included)."""
    from wakeword.classifiers.registry import model_directory

    path = model_directory(model)
    return model if path is None else str(path)


def _manifest(model: str) -> dict[str, Any] | None:
    """A model directory's manifest; ``None`` for a ``NAME[:SPEC]`` backend."""
    from wakeword.classifiers.registry import model_directory
    from wakeword.manifest import read_manifest

    path = model_directory(model)
    return None if path is None else read_manifest(path)


def transformers_source(manifest: dict[str, Any]) -> str | None:
    """The checkpoint an exported model came from, if it is on disk and torch + transformers are installed."""
    source = manifest.get("source") or {}
    path = source.get("model")
    if not (source.get("local") and path and (Path(path) / "config.json").is_file()):
        return None
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
        return None
    return str(path)


def plan_backends(model: str) -> list[str]:
    """Backends of one model, fastest expected first."""
    manifest = _manifest(model)
    if manifest is None:
        return ["default"]
    if manifest.get("architecture") == "speech-embedding-head":
        return [f"onnx-{p}" for p, key in (("int8", "head_int8"), ("fp32", "head")) if key in manifest["files"]]
    if manifest.get("format") == "wakeword-onnx-classifier":
        rows = [f"onnx-{p}" for p in ("int8", "fp32") if p in manifest.get("models", {})]
        if transformers_source(manifest):
            rows.append("transformers")
        return rows
    return ["default"]


# --- one backend, in a worker process ------------------------------------------------------


class PipelineClassifier:
    """The transformers audio-classification pipeline behind the Classifier protocol (benchmark baseline).

    ``frontend`` is the pipeline's ``preprocess`` (feature extraction);
    ``scores`` adds ``forward`` and ``postprocess`` (softmax, top-k), exactly
    what ``pipeline(window, top_k=all)`` runs.
    """

    def __init__(self, checkpoint: str, window_samples: int, threads: int | None) -> None:
        import torch
        from transformers import pipeline

        torch.set_num_threads(threads or 1)
        self.pipe = pipeline("audio-classification", model=checkpoint, device="cpu")
        id2label = self.pipe.model.config.id2label
        if id2label is None:
            raise ModelError(f"{checkpoint}: the model's config has no id2label")
        self.labels = tuple(id2label[i] for i in range(len(id2label)))
        self._index = {label: i for i, label in enumerate(self.labels)}
        self.info = ModelInfo(labels=self.labels, window_samples=int(window_samples))
        self.frontend = self.pipe.preprocess

    def scores(self, window):
        import numpy as np

        inputs = self.frontend(np.array(window, dtype=np.float32))
        ranked = self.pipe.postprocess(self.pipe.forward(inputs), top_k=len(self.labels))
        out = np.zeros(len(self.labels), dtype=np.float32)
        for item in ranked:
            out[self._index[item["label"]]] = item["score"]
        return out


def load_backend(model: str, backend: str, threads: int | None):
    if backend.startswith(PEER_PREFIX):
        from wakeword.tools.peers import load_peer

        return load_peer(backend[len(PEER_PREFIX) :], threads)
    from wakeword.classifiers import load_classifier

    if backend == "default":
        return load_classifier(model, threads=threads)
    if backend == "transformers":
        manifest = _manifest(model) or {}
        source = transformers_source(manifest)
        if source is None:
            raise DependencyError("the transformers backend needs torch, transformers and the source checkpoint")
        return PipelineClassifier(source, manifest["window_samples"], threads)
    return load_classifier(model, threads=threads, precision=backend.removeprefix("onnx-"))


def read_labels(path: Path) -> list[tuple[str, float, float]]:
    """Keyword spans of a labelled input: ``{"keywords": [{"keyword", "start_s", "end_s"}, ...]}``."""
    try:
        data = json.loads(path.read_text())
        return [(k["keyword"], float(k["start_s"]), float(k["end_s"])) for k in data["keywords"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: not a labels file with keywords[].keyword/start_s/end_s ({e})") from None


def _stage_stats(ns: list[int] | None) -> dict[str, Any] | None:
    if not ns:
        return None
    import numpy as np

    ms = np.asarray(ns, dtype=np.float64) / 1e6
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "count": int(ms.size),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "mean_ms": float(ms.mean()),
        "total_s": float(ms.sum() / 1e3),
    }


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc, 10 ms resolution), or None elsewhere."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def peak_rss_mb() -> float:
    """Peak resident memory of this process's own address space (Linux VmHWM).

    Not ``ru_maxrss``: that survives fork and exec, so a worker would inherit
    the peak of the process that started it.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# long: one measured run and its report row; the row's fields are the documented schema, listed where they are filled
def measure_backend(args: argparse.Namespace, started: float) -> dict[str, Any]:
    """Run one backend over the input ``args.repeat`` times; one result row (see BENCH_SCHEMA)."""
    from wakeword.audio.sources import FileSource
    from wakeword.engine import EngineConfig
    from wakeword.events import Detection
    from wakeword.stream.vad import VadConfig
    from wakeword.tools.metrics import percentiles
    from wakeword.tools.probes import StageClock, instrument, timed_blocks

    t0 = time.perf_counter()
    classifier = load_backend(args.model, args.worker, args.threads)
    transcriber = None
    if args.handoff:
        from wakeword.asr.base import make_transcriber

        transcriber = make_transcriber("faster-whisper", model="base", compute_type="int8", threads=args.threads or 1)
    load_ms = (time.perf_counter() - t0) * 1000
    clock = StageClock()
    engine = instrument(classifier, EngineConfig(vad=VadConfig(enabled=args.vad)), clock, transcriber)
    detections: list[Detection] = []
    startup_ms = None
    audio_s = 0.0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    perf = time.perf_counter_ns
    for rep in range(args.repeat):
        engine.reset()
        for block in timed_blocks(FileSource(args.input), clock):
            b0 = perf()
            events = engine.process(block)
            clock.add("block", perf() - b0)
            if startup_ms is None:  # from the process's start (interpreter, imports, model load)
                age = process_age_s()
                startup_ms = 1000 * (age if age is not None else time.perf_counter() - started)
            if rep == 0:
                detections += [e for e in events if isinstance(e, Detection)]
        engine.flush()
        audio_s += engine.stats.samples / SAMPLE_RATE
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    engine.close()
    ns = clock.ns
    if ns.get("features") and len(ns["features"]) == len(ns.get("classifier", ())):
        inference = [c - f for c, f in zip(ns["classifier"], ns["features"])]
    else:
        inference = ns.get("classifier", [])
    stages = {
        "source": _stage_stats(ns.get("source")),
        "vad": _stage_stats(ns.get("vad")),
        "features": _stage_stats(ns.get("features")),
        "inference": _stage_stats(inference),
        "detector": _stage_stats(ns.get("detector")),
        "handoff": _stage_stats(ns.get("handoff")),
        "block": _stage_stats(ns.get("block")),
    }
    latency = None
    if args.labels:
        latencies = []
        for keyword, start, end in read_labels(Path(args.labels)):
            hits = [d.time_s for d in detections if d.keyword == keyword and start <= d.time_s <= end + 1.0]
            if hits:
                latencies.append(1000 * (hits[0] - end))
        latency = {**percentiles(latencies, (50, 95)), "keywords": len(read_labels(Path(args.labels)))}
    return {
        "backend": args.worker,
        "model": args.model,
        "threads": args.threads,
        "audio_s": audio_s,
        "x_realtime": audio_s / wall if wall else None,
        "cpu_s_per_audio_hour": cpu / audio_s * 3600 if audio_s else None,
        "peak_rss_mb": peak_rss_mb(),
        "load_ms": load_ms,
        "startup_ms": startup_ms,
        "hop_ms": engine.hop_samples * 1000 / SAMPLE_RATE,
        "hops": engine.stats.hops,
        "classified_hops": engine.stats.classified_hops,
        "detections": [
            {"keyword": d.keyword, "time_s": round(d.time_s, 3), "score": round(d.score, 4)} for d in detections
        ],
        "detection_latency_ms": latency,
        "stages": stages,
        "torch_loaded": "torch" in sys.modules,
    }


def measure_peer_engine(args: argparse.Namespace) -> dict[str, Any]:
    """openWakeWord's own engine on the input: ``Model.predict`` on 1,280-sample int16 chunks, its own features
    and sessions, CPU of the loop (every thread of this process), as ``measure_backend`` reports ours."""
    import numpy as np

    from wakeword.audio.sources import FileSource
    from wakeword.tools.peers import DEFAULT_OWW_MODEL, openwakeword_head_path, peer_keyword

    name = args.worker[len(ENGINE_PREFIX) :].partition(":")[2] or DEFAULT_OWW_MODEL
    t0 = time.perf_counter()
    try:
        from openwakeword.model import Model
    except ImportError as e:
        raise DependencyError(f"the openWakeWord engine is not installed ({e}); see scripts/install.sh") from e
    import contextlib

    with contextlib.redirect_stdout(sys.stderr):  # it prints its model paths; stdout carries this row's JSON
        model = Model(wakeword_models=[str(openwakeword_head_path(name))], inference_framework="onnx")
    load_ms = (time.perf_counter() - t0) * 1000
    audio = np.concatenate(list(FileSource(args.input).blocks()))
    chunks = [(audio[i : i + 1280] * 32767).astype(np.int16) for i in range(0, audio.shape[0] - 1279, 1280)]
    keyword = peer_keyword(name)
    detections, last_fire = [], -1e9
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for rep in range(args.repeat):
        model.reset()
        for k, chunk in enumerate(chunks):
            score = max(model.predict(chunk).values())
            t = (k + 1) * 1280 / SAMPLE_RATE
            if rep == 0 and score >= 0.5 and t - last_fire > 1.0:
                detections.append({"keyword": keyword, "time_s": round(t, 3), "score": round(float(score), 4)})
                last_fire = t
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    audio_s = args.repeat * len(chunks) * 1280 / SAMPLE_RATE
    return {
        "backend": args.worker,
        "model": str(openwakeword_head_path(name)),
        "threads": 1,
        "audio_s": audio_s,
        "x_realtime": audio_s / wall if wall else None,
        "cpu_s_per_audio_hour": cpu / audio_s * 3600,
        "peak_rss_mb": peak_rss_mb(),
        "load_ms": load_ms,
        "startup_ms": None,
        "hop_ms": 80.0,
        "hops": len(chunks) * args.repeat,
        "classified_hops": len(chunks) * args.repeat,
        "detections": detections,
        "detection_latency_ms": None,
        "stages": {s: None for s in STAGES},
        "torch_loaded": "torch" in sys.modules,
    }


# --- cost estimates from operation counts --------------------------------------------------------


def backend_macs(model: str, backend: str, window_samples: int | None = None):
    """MACs per classified hop of a backend (the ONNX graphs it runs), or None when unknown."""
    from wakeword.classifiers.speech_embedding import EMBEDDING_DIM
    from wakeword.tools.opcount import MacCount, count_macs

    def speech_embedding(mel: Path, emb: Path, head: Path, mel_samples: int) -> MacCount:
        # per hop: the log-mel of mel_samples, one new embedding (the rest are kept), the head
        # (its number of embeddings is fixed in its graph)
        return (
            count_macs(mel, [1, mel_samples])
            + count_macs(emb, [1, 76, 32, 1])
            + count_macs(head, [1, -1, EMBEDDING_DIM])
        )

    if backend.startswith((PEER_PREFIX, ENGINE_PREFIX)):
        from wakeword.tools.peers import load_peer

        own = backend.startswith(ENGINE_PREFIX)
        peer = load_peer(backend.partition(":")[2], threads=1)
        # openWakeWord's own engine computes the mel of each 1,280-sample chunk plus 480 of context
        mel_samples = 1280 + 480 if own else peer.info.window_samples
        return speech_embedding(peer.mel_path, peer.embedding_path, peer.head_path, mel_samples)
    manifest = _manifest(model)
    if manifest is None:
        return None
    root = Path(model)
    if manifest.get("architecture") == "speech-embedding-head":
        files = manifest["files"]
        head = files["head_int8" if backend == "onnx-int8" else "head"]["path"]
        window = int(manifest["window_samples"])
        # the streaming front end (models with the raw mel graph) runs the mel over a hop's new samples + context
        hop = int(manifest.get("hop_ms", 80)) * SAMPLE_RATE // 1000
        mel_samples = hop + 512 - 160 if "melspectrogram_raw" in files else window
        return speech_embedding(
            root / files["melspectrogram"]["path"], root / files["embedding"]["path"], root / head, mel_samples
        )
    if manifest.get("format") == "wakeword-onnx-classifier":
        from wakeword.features import build_feature_extractor

        precision = "int8" if backend == "onnx-int8" else "fp32"  # the pipeline runs the fp32 graph's ops
        names = manifest["models"].get(precision)
        name = names if isinstance(names, str) else names[0]
        shape = build_feature_extractor(manifest["features"]).input_shape(int(manifest["window_samples"]))
        return count_macs(root / name, list(shape))
    return None


# --- the documented output ------------------------------------------------------------------------

_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_STAGE = {
    "type": ["object", "null"],
    "required": ["count", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "total_s"],
    "additionalProperties": False,
    "properties": {
        "count": {"type": "integer", "minimum": 1},
        "p50_ms": _NUM,
        "p95_ms": _NUM,
        "p99_ms": _NUM,
        "mean_ms": _NUM,
        "total_s": _NUM,
    },
}
BENCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["schema", "machine", "input", "model", "baseline", "peer", "pi_assumed_gmacs", "rows"],
    "additionalProperties": False,
    "properties": {
        "schema": {"enum": ["wakeword-bench/1"]},
        "machine": {
            "type": "object",
            "required": ["cpu", "cores", "python", "onnxruntime", "load_1min"],
            "properties": {
                "cpu": {"type": "string"},
                "cores": {"type": "integer"},
                "python": {"type": "string"},
                "onnxruntime": {"type": "string"},
                "load_1min": _NUM_OR_NULL,
            },
        },
        "input": {
            "type": "object",
            "required": ["path", "duration_s", "labels", "repeat"],
            "properties": {
                "path": {"type": "string"},
                "duration_s": _NUM,
                "labels": {"type": ["string", "null"]},
                "repeat": {"type": "integer", "minimum": 1},
            },
        },
        "model": {"type": "string"},
        "baseline": {"type": "string"},
        "peer": {"type": ["string", "null"]},
        "pi_assumed_gmacs": {"type": "object"},
        "rows": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "backend",
                    "model",
                    "threads",
                    "audio_s",
                    "x_realtime",
                    "cpu_s_per_audio_hour",
                    "peak_rss_mb",
                    "load_ms",
                    "startup_ms",
                    "hop_ms",
                    "hops",
                    "classified_hops",
                    "detections",
                    "detection_latency_ms",
                    "stages",
                    "torch_loaded",
                    "macs_per_hop",
                    "int8_macs_per_hop",
                    "pi_estimate",
                    "cpu_speedup_vs_baseline",
                    "cpu_speedup_vs_peer",
                ],
                "additionalProperties": False,
                "properties": {
                    "backend": {"type": "string"},
                    "model": {"type": "string"},
                    "threads": {"type": ["integer", "null"]},
                    "audio_s": _NUM,
                    "x_realtime": _NUM_OR_NULL,
                    "cpu_s_per_audio_hour": _NUM_OR_NULL,
                    "peak_rss_mb": _NUM,
                    "load_ms": _NUM,
                    "startup_ms": _NUM_OR_NULL,
                    "hop_ms": _NUM,
                    "hops": {"type": "integer", "minimum": 0},
                    "classified_hops": {"type": "integer", "minimum": 0},
                    "detections": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["keyword", "time_s", "score"],
                            "properties": {"keyword": {"type": "string"}, "time_s": _NUM, "score": _NUM},
                        },
                    },
                    "detection_latency_ms": {
                        "type": ["object", "null"],
                        "required": ["count", "p50", "p95", "keywords"],
                        "properties": {
                            "count": {"type": "integer"},
                            "p50": _NUM_OR_NULL,
                            "p95": _NUM_OR_NULL,
                            "keywords": {"type": "integer"},
                        },
                    },
                    "stages": {
                        "type": "object",
                        "required": list(STAGES),
                        "additionalProperties": False,
                        "properties": {name: _STAGE for name in STAGES},
                    },
                    "torch_loaded": {"type": "boolean"},
                    "macs_per_hop": {"type": ["integer", "null"]},
                    "int8_macs_per_hop": {"type": ["integer", "null"]},
                    "pi_estimate": {
                        "type": ["object", "null"],
                        "additionalProperties": {
                            "type": "object",
                            "required": ["ms_per_hop", "core_share_gate_open"],
                            "properties": {"ms_per_hop": _NUM, "core_share_gate_open": _NUM},
                        },
                    },
                    "cpu_speedup_vs_baseline": _NUM_OR_NULL,
                    "cpu_speedup_vs_peer": _NUM_OR_NULL,
                },
            },
        },
    },
}


# --- the command --------------------------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bench",
        help="latency, CPU and memory per stage, backends side by side",
        description="Measure the engine on this machine: per-stage latency (p50/p95/p99), CPU seconds per "
        "audio hour, peak memory and start-up time, for each backend of a model (one process each) on the same "
        "audio file, with an estimate of the cost on a Raspberry Pi from the models' operation counts.",
    )
    p.add_argument("--model", default="default", help="model directory or built-in backend (default)")
    p.add_argument(
        "--input",
        "-i",
        default=None,
        metavar="FILE",
        help="audio file (default: the bundled example, models/examples/marvin-stream.wav)",
    )
    p.add_argument(
        "--labels",
        default=None,
        metavar="JSON",
        help="keyword times of the input, for detection latency (default: FILE.json if present)",
    )
    p.add_argument("--threads", type=positive_int, default=None, help="ONNX Runtime / torch threads per backend")
    p.add_argument("--backends", default=None, help="comma-separated subset, e.g. onnx-int8,transformers")
    p.add_argument(
        "--peer",
        default=None,
        metavar="openwakeword[:NAME]",
        help="also run a peer's model on the same audio (benchmark only)",
    )
    p.add_argument("--repeat", type=positive_int, default=1, help="passes over the input per backend (1)")
    p.add_argument(
        "--handoff",
        action="store_true",
        help="also time the Whisper hand-off after each detection (needs faster-whisper)",
    )
    p.add_argument("--no-vad", dest="vad", action="store_false", help="classify every hop, speech or not")
    p.add_argument("--json", action="store_true", help="print one JSON document (schema: README, bench section)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("-v", "--verbose", action="count", default=0, help="log details on stderr")
    return p


def _default_input() -> Path:
    from wakeword.classifiers.shipped import models_dir

    path = models_dir() / "examples" / "marvin-stream.wav"
    if not path.exists():
        raise ConfigError("no bundled example audio here; pass --input FILE")
    return path


def machine_info() -> dict[str, Any]:
    """CPU model, core count, versions and load average: printed next to every figure."""
    import onnxruntime

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count() or 1,
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "load_1min": load,
    }


def _run_worker(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "wakeword",
        "bench",
        "--worker",
        backend,
        "--model",
        args.model,
        "--input",
        str(args.input),
        "--repeat",
        str(args.repeat),
    ]
    if args.labels:
        cmd += ["--labels", str(args.labels)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.handoff:
        cmd.append("--handoff")
    if not args.vad:
        cmd.append("--no-vad")
    log.info("running %s", backend)
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TOKENIZERS_PARALLELISM="false"))
    if done.returncode != 0:
        lines = [label for label in done.stderr.strip().splitlines() if label.strip()]
        message = lines[-1].removeprefix("wakeword: error: ") if lines else f"exit code {done.returncode}"
        raise WakewordError(f"bench {backend}: {message}")
    return json.loads(done.stdout)


# long: the bench command from plan to report: one worker per backend, then ratios against the baseline and the peer
def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if getattr(args, "verbose", 0):
        logging.getLogger("wakeword").setLevel(logging.INFO if args.verbose == 1 else logging.DEBUG)
    args.model = resolve_model(args.model)
    if args.worker:  # one backend, in this process
        row = measure_peer_engine(args) if args.worker.startswith(ENGINE_PREFIX) else measure_backend(args, started)
        print(json.dumps(row))
        return 0
    args.input = Path(args.input) if args.input else _default_input()
    from wakeword.audio.sources import FileSource

    duration_s = FileSource(args.input).duration_s  # a bad file fails here, once
    if args.labels is None and args.input.with_suffix(".json").is_file():
        args.labels = str(args.input.with_suffix(".json"))
    if args.labels:
        read_labels(Path(args.labels))
    backends = plan_backends(args.model)
    if args.backends:
        wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
        unknown = [b for b in wanted if b not in backends]
        if unknown:
            raise ConfigError(
                f"backend(s) {', '.join(unknown)} not available for {args.model}; available: {', '.join(backends)}"
            )
        backends = wanted
    if args.peer:
        from wakeword.tools.peers import load_peer

        load_peer(args.peer, threads=1)  # unknown or missing peer: fail before any run
        backends += [PEER_PREFIX + args.peer, ENGINE_PREFIX + args.peer]
    if args.handoff and importlib.util.find_spec("faster_whisper") is None:
        raise DependencyError("--handoff needs faster-whisper; pip install 'wakeword[whisper]'")
    rows = [_run_worker(args, backend) for backend in backends]
    for backend, row in zip(backends, rows):  # after the workers: loading big graphs grows this process
        try:
            macs = backend_macs(args.model, backend)
        except (WakewordError, ImportError) as e:  # an estimate is optional: no onnx package, odd graph
            log.info("no operation count for %s: %s", backend, e)
            macs = None
        from wakeword.tools.opcount import pi_estimate

        row["macs_per_hop"] = None if macs is None else macs.total
        row["int8_macs_per_hop"] = None if macs is None else macs.int8
        row["pi_estimate"] = None if macs is None else pi_estimate(macs, row["hop_ms"])
    ours = [r for r in rows if not r["backend"].startswith((PEER_PREFIX, ENGINE_PREFIX))]
    baseline = next((r for r in ours if r["backend"] == "transformers"), None) or next(
        (r for r in ours if r["backend"] == "onnx-fp32"), ours[-1]
    )
    # ratios against the peer as its users run it: its own engine
    peer = next((r for r in rows if r["backend"].startswith(ENGINE_PREFIX)), None)
    for r in rows:
        r["cpu_speedup_vs_baseline"] = _ratio(baseline["cpu_s_per_audio_hour"], r["cpu_s_per_audio_hour"])
        r["cpu_speedup_vs_peer"] = (
            None if peer is None else _ratio(peer["cpu_s_per_audio_hour"], r["cpu_s_per_audio_hour"])
        )
    from wakeword.tools.opcount import PI_GMACS

    report = {
        "schema": "wakeword-bench/1",
        "machine": machine_info(),
        "input": {"path": str(args.input), "duration_s": duration_s, "labels": args.labels, "repeat": args.repeat},
        "model": args.model,
        "baseline": baseline["backend"],
        "peer": None if peer is None else peer["backend"],
        "pi_assumed_gmacs": {k: {"fp32": v[0], "int8": v[1]} for k, v in PI_GMACS.items()},
        "rows": rows,
    }
    print(json.dumps(report, indent=1) if args.json else table(report))
    return 0


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _f(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def table(report: dict[str, Any]) -> str:
    """The human-readable tables."""
    m, inp = report["machine"], report["input"]
    lines = [
        f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, onnxruntime {m['onnxruntime']}, "
        f"load {m['load_1min']} at start",
        f"model {report['model']}; input {inp['path']} ({inp['duration_s']:.1f} s x {inp['repeat']}); "
        f"ratios: CPU per audio hour of {report['baseline']}"
        + (f" and of {report['peer']}" if report["peer"] else "")
        + " / this row's (higher is cheaper)",
        "",
        "| backend | x real time | CPU s / audio h | vs "
        + report["baseline"]
        + (" | vs peer" if report["peer"] else "")
        + " | peak RSS MB | start to 1st block ms "
        "| detection latency p50/p95 ms | MMAC / hop | Pi 4 est. ms / hop | Pi 5 est. ms / hop |",
        "|---|---:|---:|---:|" + ("---:|" if report["peer"] else "") + "---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        lat = r["detection_latency_ms"]
        lat_text = (
            "-"
            if not lat or lat["p50"] is None
            else f"{lat['p50']:.0f} / {lat['p95']:.0f} ({lat['count']}/{lat['keywords']})"
        )
        pi = r["pi_estimate"] or {}
        lines.append(
            f"| {r['backend']} | {_f(r['x_realtime'], ',.0f')} | {_f(r['cpu_s_per_audio_hour'], '.0f')} "
            f"| {_f(r['cpu_speedup_vs_baseline'], '.2f')}x"
            + (f" | {_f(r['cpu_speedup_vs_peer'], '.2f')}x" if report["peer"] else "")
            + f" | {r['peak_rss_mb']:.0f} | {_f(r['startup_ms'], '.0f')} | {lat_text} "
            f"| {_f(None if r['macs_per_hop'] is None else r['macs_per_hop'] / 1e6, '.1f')} "
            f"| {_f(pi.get('pi4', {}).get('ms_per_hop'), '.1f')} | {_f(pi.get('pi5', {}).get('ms_per_hop'), '.1f')} |"
        )
    lines += ["", "| backend | stage | count | p50 ms | p95 ms | p99 ms |", "|---|---|---:|---:|---:|---:|"]
    for r in report["rows"]:
        for name in STAGES:
            s = r["stages"][name]
            if s is None:
                note = "not run (--handoff)" if name == "handoff" else "not separable"
                lines.append(f"| {r['backend']} | {name} | - | {note} | | |")
            else:
                lines.append(
                    f"| {r['backend']} | {name} | {s['count']} | {s['p50_ms']:.3f} | {s['p95_ms']:.3f} "
                    f"| {s['p99_ms']:.3f} |"
                )
    return "\n".join(lines)
