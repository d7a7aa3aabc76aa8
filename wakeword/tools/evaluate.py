"""``wakeword eval --data MANIFEST``: accuracy, recall, false accepts per hour and a DET curve.

The manifest lists labelled audio, paths relative to the manifest's folder:

* CSV with a header row. Columns ``path`` (required), ``label``,
  ``keyword``, ``onset_s``, ``offset_s``. A row with a ``label`` is a *clip*
  (one utterance, scored as a whole). A row with ``keyword``, ``onset_s``
  and ``offset_s`` marks one keyword in a *stream* (rows with the same path
  make one stream). A row with only a path is a stream with no keyword in it
  (negative audio, for false accepts).
* JSON: a list of objects with the same fields; a stream may instead carry
  ``"keywords": [{"keyword": ..., "onset_s": ..., "offset_s": ...}, ...]``.

Clips give accuracy and a confusion matrix. Streams run through the real
engine once; the recorded per-hop scores are then replayed through the
detector at every threshold of a sweep (:mod:`wakeword.tools.metrics`), giving
recall, false accepts per hour, the false-reject rate at 0.1, 0.5 and 1 false
accepts per hour, a DET curve, detection latency and a recommended
threshold. ``--peer openwakeword[:NAME]`` runs openWakeWord's head on the
same streams. A bad manifest stops before any audio is processed, with one
line naming the row.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wakeword.config import add_command_parser, positive_int
from wakeword.errors import AudioError, ConfigError
from wakeword.pcm import SAMPLE_RATE

__all__ = ["EVAL_SCHEMA", "Manifest", "Scoring", "add_parser", "evaluate", "load_manifest", "run"]

log = logging.getLogger(__name__)

CSV_COLUMNS = ("path", "label", "keyword", "onset_s", "offset_s")


@dataclass(frozen=True)
class Clip:
    path: Path
    label: str
    row: str  # "manifest.csv row 4", for error messages


@dataclass
class Stream:
    path: Path
    row: str
    keywords: list[tuple[str, float, float, str]] = field(default_factory=list)  # keyword, onset, offset, row


@dataclass
class Manifest:
    path: Path
    clips: list[Clip]
    streams: list[Stream]


# --- the manifest -------------------------------------------------------------


def _number(value: Any, name: str, where: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {name} {value!r} is not a number") from None
    if not math.isfinite(x) or x < 0:
        raise ConfigError(f"{where}: {name} {value!r} must be a finite number >= 0")
    return x


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _json_rows(name: str, text: str) -> list[tuple[str, Any]]:
    """``(where, item)`` of a JSON manifest: a list of objects."""
    try:
        items = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"{name}: not valid JSON ({e})") from None
    if not isinstance(items, list):
        raise ConfigError(f"{name}: expected a JSON list of objects")
    return [(f"{name} item {i + 1}", item) for i, item in enumerate(items)]


def _csv_rows(name: str, text: str) -> list[tuple[str, Any]]:
    """``(where, row)`` of a CSV manifest, its header checked against :data:`CSV_COLUMNS`."""
    reader = csv.DictReader(text.splitlines())
    fields = [f.strip() for f in reader.fieldnames or []]
    if "path" not in fields:
        raise ConfigError(f"{name}: no 'path' column in the header (columns: {', '.join(CSV_COLUMNS)})")
    unknown = [f for f in fields if f not in CSV_COLUMNS]
    if unknown:
        raise ConfigError(f"{name}: unknown column(s) {', '.join(unknown)}; valid: {', '.join(CSV_COLUMNS)}")
    reader.fieldnames = fields
    return [(f"{name} row {reader.line_num}", row) for row in reader]


def load_manifest(path: str | Path) -> Manifest:
    """Parse and check a manifest (files exist, onsets before offsets); errors name the row."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such manifest file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read manifest ({e})") from None
    rows = _json_rows(path.name, text) if path.suffix.lower() == ".json" else _csv_rows(path.name, text)
    clips: list[Clip] = []
    streams: dict[Path, Stream] = {}
    for where, row in rows:
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: expected an object with a 'path'")
        rel = _text(row.get("path"))
        if not rel:
            raise ConfigError(f"{where}: empty path")
        audio = (path.parent / rel).resolve()
        if not audio.is_file():
            raise ConfigError(f"{where}: audio file {rel} not found")
        label = _text(row.get("label"))
        marks = list(row.get("keywords") or [])
        if _text(row.get("keyword")) or row.get("onset_s") not in (None, "") or row.get("offset_s") not in (None, ""):
            marks.append({k: row.get(k) for k in ("keyword", "onset_s", "offset_s")})
        if label and marks:
            raise ConfigError(f"{where}: a row is either a clip (label) or a stream (keyword, onset_s, offset_s)")
        if label:
            clips.append(Clip(audio, label, where))
            continue
        stream = streams.setdefault(audio, Stream(audio, where))
        for mark in marks:
            if not isinstance(mark, dict):
                raise ConfigError(f"{where}: keywords must be objects with keyword, onset_s, offset_s")
            keyword = _text(mark.get("keyword"))
            if not keyword:
                raise ConfigError(f"{where}: keyword missing (onset_s/offset_s given)")
            onset = _number(mark.get("onset_s"), "onset_s", where)
            offset = _number(mark.get("offset_s"), "offset_s", where)
            if onset > offset:
                raise ConfigError(f"{where}: onset_s {onset:g} after offset_s {offset:g}")
            stream.keywords.append((keyword, onset, offset, where))
    if not clips and not streams:
        raise ConfigError(f"{path.name}: no clips or streams listed")
    return Manifest(path, clips, list(streams.values()))


def check_labels(manifest: Manifest, labels: Sequence[str], keywords: Sequence[str]) -> None:
    """Every clip label is one of the model's labels; every stream keyword one it detects."""
    for clip in manifest.clips:
        if clip.label not in labels:
            raise ConfigError(f"{clip.row}: unknown label {clip.label!r}; the model knows: {_short(labels)}")
    for stream in manifest.streams:
        for keyword, _, _, where in stream.keywords:
            if keyword not in keywords:
                raise ConfigError(f"{where}: unknown keyword {keyword!r}; the model detects: {_short(keywords)}")


def _short(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def clip_scores(classifier: Any, audio: np.ndarray, hop_samples: int) -> np.ndarray:
    """Scores of one clip: centred in the window if shorter; if longer, the window (every hop) whose
    best non-background label (not starting with ``_``) is the most confident."""
    w = int(classifier.info.window_samples)
    if audio.shape[0] <= w:
        window = np.zeros(w, np.float32)
        start = (w - audio.shape[0]) // 2
        window[start : start + audio.shape[0]] = audio
        return np.asarray(classifier.scores(window), dtype=np.float32).copy()
    foreground = np.array([not label.startswith("_") for label in classifier.info.labels])
    best, best_score = None, -1.0
    for start in range(0, audio.shape[0] - w + 1, hop_samples):
        s = np.asarray(classifier.scores(np.ascontiguousarray(audio[start : start + w])), dtype=np.float32)
        top = float(s[foreground].max()) if foreground.any() else float(s.max())
        if top > best_score:
            best, best_score = s.copy(), top
    assert best is not None
    return best


# --- evaluation -------------------------------------------------------------------


class Progress:
    """A tqdm bar over seconds of audio on stderr, or nothing."""

    def __init__(self, total_s: float, enabled: bool) -> None:
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=round(total_s, 1),
                unit="s",
                desc="eval",
                file=sys.stderr,
                leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]",
            )

    def advance(self, samples: int) -> None:
        if self._bar is not None:
            self._bar.update(samples / SAMPLE_RATE)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _evaluate_clips(classifier: Any, clips: Sequence[Clip], hop_samples: int, progress: Progress) -> dict:
    labels = list(classifier.info.labels)
    truth, predicted = [], []
    for clip in clips:
        from wakeword.audio.sources import read_file

        audio = read_file(clip.path, require_audio=False)
        scores = clip_scores(classifier, audio, hop_samples)
        truth.append(clip.label)
        predicted.append(labels[int(np.argmax(scores))])
        progress.advance(audio.shape[0])
    shown = [label for label in labels if label in set(truth) | set(predicted)]
    index = {label: i for i, label in enumerate(shown)}
    matrix = np.zeros((len(shown), len(shown)), dtype=int)
    for t, p in zip(truth, predicted):
        matrix[index[t], index[p]] += 1
    return {
        "count": len(clips),
        "accuracy": float(np.mean([t == p for t, p in zip(truth, predicted)])),
        "confusion": {"labels": shown, "matrix": matrix.tolist()},
    }


@dataclass(frozen=True)
class Scoring:
    """How streamed detections are scored: a detection up to ``tolerance_s`` after a keyword's offset is a
    hit; the recommended threshold keeps within ``target_fa_per_hour``; ``keyword_names`` renames a manifest's
    keywords to the model's."""

    tolerance_s: float = 1.0
    target_fa_per_hour: float = 0.5
    keyword_names: dict[str, str] = field(default_factory=dict)


def _spans(stream: Stream, duration: float, keyword_names: dict[str, str]) -> list:
    """The stream's keyword marks as :class:`~wakeword.tools.metrics.KeywordSpan` in samples, each onset
    checked against the audio's ``duration`` in seconds."""
    from wakeword.tools.metrics import KeywordSpan

    spans = []
    for keyword, onset, offset, where in stream.keywords:
        if onset > duration:
            raise ConfigError(f"{where}: onset_s {onset:g} is past the end of {stream.path.name} ({duration:.3f} s)")
        spans.append(
            KeywordSpan(
                keyword_names.get(keyword, keyword),
                int(round(onset * SAMPLE_RATE)),
                int(round(offset * SAMPLE_RATE)),
            )
        )
    return spans


@dataclass(frozen=True)
class _Recording:
    """Every stream through the real engine once: per-hop score traces with their keyword spans."""

    traces: list[tuple[Any, list]]
    engine_detections: int
    hours: float
    cpu_s: float


def _record_streams(
    classifier: Any, streams: Sequence[Stream], config: Any, keyword_names: dict[str, str], progress: Progress
) -> _Recording:
    from wakeword.audio.sources import FileSource
    from wakeword.tools.probes import record_trace

    keywords = tuple(config.detector.keywords)
    traces = []
    engine_detections = 0
    total_samples = 0
    cpu0 = time.process_time()
    for stream in streams:
        source = FileSource(stream.path)
        trace, detections, engine = record_trace(classifier, source, config, keywords, on_block=progress.advance)
        engine_detections += len(detections)
        total_samples += engine.stats.samples
        traces.append((trace, _spans(stream, engine.stats.samples / SAMPLE_RATE, keyword_names)))
    cpu = time.process_time() - cpu0
    return _Recording(traces, engine_detections, total_samples / SAMPLE_RATE / 3600, cpu)


def _evaluate_streams(
    classifier: Any, streams: Sequence[Stream], config: Any, scoring: Scoring, progress: Progress
) -> dict:
    from wakeword.tools.metrics import det_points, recommend_threshold, sweep, threshold_grid

    recording = _record_streams(classifier, streams, config, scoring.keyword_names, progress)
    thresholds = sorted(set(threshold_grid()) | {float(config.detector.threshold)})
    results = sweep(recording.traces, thresholds, config.detector, scoring.tolerance_s)
    points = det_points(results, recording.hours)
    at = next(r for r in results if r.threshold == float(config.detector.threshold))
    if at.hits + at.false_accepts + at.duplicates != recording.engine_detections:  # replay must match the engine
        raise RuntimeError("replayed detections differ from the engine's")
    chosen = recommend_threshold(points, scoring.target_fa_per_hour)
    chosen_result = next((r for r in results if chosen is not None and r.threshold == chosen.threshold), None)
    return _streams_report(len(streams), recording, at, points, scoring.target_fa_per_hour, chosen, chosen_result)


def _streams_report(
    count: int, recording: _Recording, at: Any, points: list, target_fa: float, chosen: Any, chosen_result: Any
) -> dict:
    """``models[].streams`` of :data:`EVAL_SCHEMA`: the figures at the headline threshold ``at``, the DET
    points and the recommended threshold ``chosen`` (with its sweep result) if one keeps ``target_fa``."""
    from wakeword.tools.metrics import frr_at_budgets, percentiles

    hours = recording.hours
    return {
        "count": count,
        "hours": hours,
        "keywords": at.spans,
        "threshold": at.threshold,
        "recall": at.recall,
        "false_reject_rate": None if at.recall is None else 1.0 - at.recall,
        "false_accepts": at.false_accepts,
        "false_accepts_per_hour": at.false_accepts / hours if hours else 0.0,
        "detection_latency_ms": _ms(percentiles(at.latencies_samples, (50, 95))),
        "frr_at_fa_per_hour": frr_at_budgets(points),
        "det": [
            {
                "threshold": p.threshold,
                "false_accepts_per_hour": p.false_accepts_per_hour,
                "false_reject_rate": p.false_reject_rate,
            }
            for p in points
        ],
        "recommended": None
        if chosen is None
        else {
            "threshold": chosen.threshold,
            "target_fa_per_hour": target_fa,
            "false_accepts_per_hour": chosen.false_accepts_per_hour,
            "false_reject_rate": chosen.false_reject_rate,
            "detection_latency_ms": _ms(percentiles(chosen_result.latencies_samples, (50, 95)))
            if chosen_result
            else None,
        },
        "cpu_s_per_audio_hour": recording.cpu_s / hours if hours else None,
    }


def _ms(stats: dict) -> dict:
    """Percentiles of sample counts -> milliseconds."""
    return {k: (v if k == "count" or v is None else 1000.0 * v / SAMPLE_RATE) for k, v in stats.items()}


def evaluate(
    manifest: Manifest,
    classifier: Any,
    config: Any,
    name: str,
    scoring: Scoring | None = None,
    *,
    clips: bool = True,
    progress: Progress | None = None,
) -> dict:
    """Metrics of one model on one manifest (see :data:`EVAL_SCHEMA`, ``models[]``)."""
    progress = progress or Progress(0, False)
    hop = SAMPLE_RATE * (config.hop_ms or classifier.info.hop_ms or 100) // 1000
    out: dict[str, Any] = {"name": name, "clips": None, "streams": None}
    if clips and manifest.clips:
        out["clips"] = _evaluate_clips(classifier, manifest.clips, hop, progress)
    if manifest.streams:
        out["streams"] = _evaluate_streams(classifier, manifest.streams, config, scoring or Scoring(), progress)
    return out


# --- the documented output ------------------------------------------------------------

_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_LATENCY = {
    "type": ["object", "null"],
    "required": ["count", "p50", "p95"],
    "properties": {"count": {"type": "integer"}, "p50": _NUM_OR_NULL, "p95": _NUM_OR_NULL},
}
_OPERATING = {
    "type": "object",
    "required": ["threshold", "false_accepts_per_hour", "false_reject_rate"],
    "properties": {
        "threshold": _NUM_OR_NULL,
        "false_accepts_per_hour": _NUM_OR_NULL,
        "false_reject_rate": _NUM_OR_NULL,
    },
}
EVAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["schema", "manifest", "tolerance_s", "target_fa_per_hour", "models", "plot"],
    "additionalProperties": False,
    "properties": {
        "schema": {"enum": ["wakeword-eval/1"]},
        "manifest": {"type": "string"},
        "tolerance_s": _NUM,
        "target_fa_per_hour": _NUM,
        "plot": {"type": ["string", "null"]},
        "models": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "model", "clips", "streams"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "model": {"type": "string"},
                    "clips": {
                        "type": ["object", "null"],
                        "required": ["count", "accuracy", "confusion"],
                        "additionalProperties": False,
                        "properties": {
                            "count": {"type": "integer", "minimum": 1},
                            "accuracy": {"type": "number", "minimum": 0},
                            "confusion": {
                                "type": "object",
                                "required": ["labels", "matrix"],
                                "properties": {
                                    "labels": {"type": "array", "items": {"type": "string"}},
                                    "matrix": {
                                        "type": "array",
                                        "items": {"type": "array", "items": {"type": "integer"}},
                                    },
                                },
                            },
                        },
                    },
                    "streams": {
                        "type": ["object", "null"],
                        "required": [
                            "count",
                            "hours",
                            "keywords",
                            "threshold",
                            "recall",
                            "false_reject_rate",
                            "false_accepts",
                            "false_accepts_per_hour",
                            "detection_latency_ms",
                            "frr_at_fa_per_hour",
                            "det",
                            "recommended",
                            "cpu_s_per_audio_hour",
                        ],
                        "additionalProperties": False,
                        "properties": {
                            "count": {"type": "integer", "minimum": 1},
                            "hours": _NUM,
                            "keywords": {"type": "integer", "minimum": 0},
                            "threshold": _NUM,
                            "recall": _NUM_OR_NULL,
                            "false_reject_rate": _NUM_OR_NULL,
                            "false_accepts": {"type": "integer", "minimum": 0},
                            "false_accepts_per_hour": _NUM,
                            "detection_latency_ms": _LATENCY,
                            "frr_at_fa_per_hour": {
                                "type": "object",
                                "required": ["0.1", "0.5", "1"],
                                "additionalProperties": _OPERATING,
                            },
                            "det": {"type": "array", "items": _OPERATING},
                            "recommended": {
                                "type": ["object", "null"],
                                "required": [
                                    "threshold",
                                    "target_fa_per_hour",
                                    "false_accepts_per_hour",
                                    "false_reject_rate",
                                    "detection_latency_ms",
                                ],
                                "properties": {
                                    "threshold": _NUM,
                                    "target_fa_per_hour": _NUM,
                                    "false_accepts_per_hour": _NUM,
                                    "false_reject_rate": _NUM_OR_NULL,
                                    "detection_latency_ms": _LATENCY,
                                },
                            },
                            "cpu_s_per_audio_hour": _NUM_OR_NULL,
                        },
                    },
                },
            },
        },
    },
}


# --- the command -------------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = add_command_parser(
        subparsers,
        "eval",
        help="accuracy, recall, false accepts per hour and a DET curve on labelled audio",
        description="Evaluate a model on labelled audio listed in a manifest (CSV: path,label for clips; "
        "path,keyword,onset_s,offset_s for keywords in long streams; a row with only a path is a stream "
        "without keywords). Prints clip accuracy, streaming recall, false accepts per hour, the false-reject "
        "rate at 0.1/0.5/1 false accepts per hour and a recommended threshold.",
    )
    p.add_argument("--data", required=True, metavar="MANIFEST", help="manifest file (.csv or .json)")
    p.add_argument("--model", default="default", help="model directory or built-in backend (default)")
    p.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="openwakeword[:NAME]",
        help="also run a peer's model on the same streams (benchmark only), e.g. openwakeword:hey_jarvis",
    )
    p.add_argument("--plot", metavar="PNG", help="write the DET curve here (needs matplotlib)")
    p.add_argument("--force", action="store_true", help="let --plot overwrite an existing file")
    p.add_argument("--json", action="store_true", help="print one JSON document (schema: README, eval section)")
    p.add_argument("--progress", action="store_true", help="show a progress bar even when stderr is not a terminal")
    g = p.add_argument_group("detection (as in `wakeword run`)")
    g.add_argument("--keywords", default=None, help="comma-separated keywords (default: the model's)")
    g.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="threshold the headline figures use (default: the model's recommended one, else 0.5)",
    )
    g.add_argument("--smoothing-hops", type=positive_int, default=3, help="average scores over N hops (3)")
    g.add_argument("--refractory-s", type=float, default=1.0, help="seconds before a keyword may fire again (1.0)")
    g.add_argument("--hop-ms", type=int, default=None, help="classifier hop (default: the model's)")
    g.add_argument("--no-vad", dest="vad", action="store_false", help="classify every hop, speech or not")
    g.add_argument(
        "--vad-hangover-ms",
        type=int,
        default=None,
        help="keep the gate open this long after speech (default: the engine's, 600)",
    )
    g.add_argument(
        "--tolerance-s",
        type=float,
        default=1.0,
        help="a detection up to this long after a keyword's offset still counts as a hit (1.0)",
    )
    g.add_argument(
        "--target-fa-per-hour",
        type=float,
        default=0.5,
        help="false accepts per hour the recommended threshold must stay within (0.5)",
    )
    p.add_argument("--threads", type=positive_int, default=None, help="ONNX Runtime threads")
    return p


def _engine_config(args: argparse.Namespace, keywords: tuple[str, ...]):
    from wakeword.engine import EngineConfig
    from wakeword.stream.detector import DetectorConfig
    from wakeword.stream.vad import VadConfig

    hangover = {} if args.vad_hangover_ms is None else {"hangover_ms": args.vad_hangover_ms}
    return EngineConfig(
        hop_ms=args.hop_ms,
        vad=VadConfig(enabled=args.vad, **hangover),
        detector=DetectorConfig(
            threshold=args.threshold,
            smoothing_hops=args.smoothing_hops,
            refractory_s=args.refractory_s,
            keywords=keywords,
        ),
    )


def run(args: argparse.Namespace) -> int:
    for name in ("tolerance_s", "target_fa_per_hour", "refractory_s"):
        value = getattr(args, name)
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be a number >= 0, got {value!r}")
    plot = Path(args.plot) if args.plot else None
    if plot is not None and plot.exists() and not args.force:
        raise ConfigError(f"{plot}: already exists; pass --force to overwrite it")
    manifest = load_manifest(args.data)  # structure and files: before any model loads
    classifier, config, peers = _load_models(args, manifest)
    report = {
        "schema": "wakeword-eval/1",
        "manifest": str(manifest.path),
        "tolerance_s": args.tolerance_s,
        "target_fa_per_hour": args.target_fa_per_hour,
        "models": _evaluate_models(args, manifest, classifier, config, peers),
        "plot": str(plot) if plot else None,
    }
    if plot is not None:
        write_det_plot(report, plot)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(summary(report))
    return 0


def _load_models(args: argparse.Namespace, manifest: Manifest) -> tuple[Any, Any, list[tuple[str, Any]]]:
    """``(classifier, engine config, [(spec, peer)])`` with the manifest's labels and keywords checked against
    them; a missing ``--threshold`` becomes the model's recommended one for its first keyword, else 0.5."""
    from wakeword.classifiers import load_classifier
    from wakeword.tools.peers import load_peer

    peers = [(spec, load_peer(spec, args.threads)) for spec in args.peer]
    classifier = load_classifier(args.model, threads=args.threads)
    labels = tuple(classifier.info.labels)
    if args.keywords:
        keywords = tuple(k.strip() for k in args.keywords.split(",") if k.strip())
    else:
        keywords = classifier.info.default_keywords
    if args.threshold is None:
        args.threshold = classifier.info.thresholds.get(keywords[0], 0.5) if keywords else 0.5
    config = _engine_config(args, keywords)  # validates thresholds and keywords
    from wakeword.stream.detector import Detector

    Detector(labels, config.detector)
    stream_keywords = sorted({k for s in manifest.streams for k, *_ in s.keywords})
    check_labels(
        manifest, labels, [*keywords, *[p.info.keywords[0] for _, p in peers if p.info.keywords[0] in stream_keywords]]
    )
    return classifier, config, peers


def _evaluate_models(
    args: argparse.Namespace, manifest: Manifest, classifier: Any, config: Any, peers: list[tuple[str, Any]]
) -> list[dict]:
    """``models[]`` of the report: ours on clips and streams, then each peer on the streams only."""
    scoring = Scoring(tolerance_s=args.tolerance_s, target_fa_per_hour=args.target_fa_per_hour)
    stream_s = sum(_duration(s.path, s.row) for s in manifest.streams)
    total_s = sum(_duration(c.path, c.row) for c in manifest.clips) + (1 + len(peers)) * stream_s
    progress = Progress(total_s, args.progress or sys.stderr.isatty())
    try:
        results = [
            {"model": args.model, **evaluate(manifest, classifier, config, "wakeword", scoring, progress=progress)}
        ]
        for spec, peer in peers:
            if not manifest.streams:
                break
            peer_config = _engine_config(args, peer.info.keywords)
            results.append(
                {
                    "model": str(peer.head_path),
                    **evaluate(manifest, peer, peer_config, spec, scoring, clips=False, progress=progress),
                }
            )
    finally:
        progress.close()
    return results


def _duration(path: Path, where: str) -> float:
    """Seconds of audio in ``path``; an unreadable file is reported with its manifest row."""
    from wakeword.audio.sources import FileSource

    try:
        source = FileSource(path)
    except AudioError as e:
        raise AudioError(f"{where}: {e}") from None
    source.close()
    return source.duration_s


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "n/a" if x is None else format(x, fmt)


def summary(report: dict) -> str:
    """The human-readable report."""
    lines = [f"manifest: {report['manifest']}"]
    for m in report["models"]:
        lines.append(f"\n== {m['name']} ({m['model']})")
        c = m["clips"]
        if c:
            lines.append(f"clips: {c['count']}, accuracy {_pct(c['accuracy'])}")
            labels, matrix = c["confusion"]["labels"], c["confusion"]["matrix"]
            width = max(6, *(len(label) for label in labels))
            lines.append("confusion (rows: truth, columns: predicted)")
            lines.append(" " * (width + 1) + " ".join(f"{label[:width]:>{width}}" for label in labels))
            for label, row in zip(labels, matrix):
                lines.append(f"{label:>{width}} " + " ".join(f"{v:>{width}d}" for v in row))
        s = m["streams"]
        if s:
            lat = s["detection_latency_ms"]
            lines.append(
                f"streams: {s['count']} ({s['hours'] * 60:.1f} min), {s['keywords']} keyword(s); at threshold "
                f"{s['threshold']:g}: recall {_pct(s['recall'])}, {s['false_accepts']} false accept(s) = "
                f"{s['false_accepts_per_hour']:.2f}/h; detection latency p50 {_num(lat['p50'], '.0f')} ms, "
                f"p95 {_num(lat['p95'], '.0f')} ms after the keyword's end"
            )
            for budget, point in s["frr_at_fa_per_hour"].items():
                lines.append(
                    f"  false-reject rate at <= {budget} FA/h: {_pct(point['false_reject_rate'])} "
                    f"(threshold {_num(point['threshold'], 'g')})"
                )
            r = s["recommended"]
            if r:
                lines.append(
                    f"  recommended threshold {r['threshold']:g}: {r['false_accepts_per_hour']:.2f} FA/h, "
                    f"false-reject rate {_pct(r['false_reject_rate'])} (target <= {r['target_fa_per_hour']:g} FA/h)"
                )
            else:
                lines.append(
                    f"  no swept threshold stays within {report['target_fa_per_hour']:g} FA/h "
                    "and still detects a keyword"
                )
            lines.append(f"  CPU {_num(s['cpu_s_per_audio_hour'], '.0f')} s per audio hour")
    if report["plot"]:
        lines.append(f"\nDET curve: {report['plot']}")
    return "\n".join(lines)


def det_steps(det: list[dict]) -> list[tuple[float, float]]:
    """DET points as a step curve: by false accepts per hour, and at equal false accepts the highest miss
    rate first, so each horizontal step holds the best miss rate within that budget."""
    pts = [(p["false_accepts_per_hour"], p["false_reject_rate"]) for p in det]
    return sorted(pts, key=lambda p: (p[0], -p[1]))


def write_det_plot(report: dict, path: Path) -> None:
    """False-reject rate against false accepts per hour, one line per model, budgets and the pick marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        from wakeword.errors import DependencyError

        raise DependencyError(f"--plot needs matplotlib ({e}); pip install 'wakeword[eval]'") from e
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    plotted = False
    for m in report["models"]:
        s = m["streams"]
        if not s or s["recall"] is None:
            continue
        pts = det_steps(s["det"])
        ax.step([p[0] for p in pts], [100 * p[1] for p in pts], where="post", label=m["name"], marker=".")
        r = s["recommended"]
        if r and r["false_reject_rate"] is not None:
            ax.plot(
                [r["false_accepts_per_hour"]],
                [100 * r["false_reject_rate"]],
                "o",
                mfc="none",
                ms=10,
                label=f"{m['name']}: threshold {r['threshold']:g}",
            )
        plotted = True
    for budget in (0.1, 0.5, 1.0):
        ax.axvline(budget, color="0.8", lw=0.8, ls="--")
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_ylim(bottom=0, top=max(5.0, ax.get_ylim()[1]))
    ax.set_xlim(left=0)
    ax.set_xlabel("false accepts per hour")
    ax.set_ylabel("false-reject rate (%)")
    ax.set_title("DET curve" + ("" if plotted else " (no labelled keywords)"))
    ax.grid(True, which="both", alpha=0.3)
    if plotted:
        ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as e:
        raise ConfigError(f"{path}: cannot write the plot ({e.strerror or e})") from None
    finally:
        plt.close(fig)
