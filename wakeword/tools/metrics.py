"""Detection metrics on labelled audio: score traces, threshold sweeps, false accepts per hour, DET points.

A :class:`ScoreTrace` is what one pass of the engine over a stream leaves
behind: for every hop, whether the VAD gate was open and, if so, the
classifier's scores for the keywords. :func:`replay` feeds a trace back
through the engine's own :class:`~wakeword.stream.detector.Detector` at any
threshold, so a sweep of fifty thresholds costs one model pass, and the
detections at the configured threshold are exactly the engine's.

Counting rules (documented in the README's eval section):

* a detection of keyword ``k`` is a *hit* when it falls in a labelled span of
  ``k`` from its onset to its offset plus ``tolerance_s``; the first hit of a
  span counts, later ones in the same span are *duplicates* (neither hits nor
  false accepts);
* every other detection is a *false accept*; false accepts per hour divide by
  the total duration of the streams;
* recall is the share of labelled spans hit; the false-reject rate is
  ``1 - recall``;
* detection latency is the hit's sample minus the keyword's offset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from wakeword.pcm import SAMPLE_RATE
from wakeword.stream.detector import Detector, DetectorConfig

__all__ = [
    "FA_BUDGETS",
    "KeywordSpan",
    "OperatingPoint",
    "ScoreTrace",
    "StreamResult",
    "det_points",
    "frr_at_budgets",
    "match_detections",
    "percentiles",
    "recommend_threshold",
    "replay",
    "sweep",
    "threshold_grid",
]

FA_BUDGETS = (0.1, 0.5, 1.0)  # false accepts per hour at which the false-reject rate is reported


def percentiles(values: Iterable[float], qs: Sequence[int] = (50, 95, 99)) -> dict[str, float | int | None]:
    """``{"count": n, "p50": ..., "p95": ..., "p99": ...}`` (linear interpolation); None when empty."""
    arr = np.asarray(list(values), dtype=np.float64)
    out: dict[str, float | int | None] = {"count": int(arr.size)}
    for q in qs:
        out[f"p{q}"] = float(np.percentile(arr, q)) if arr.size else None
    return out


@dataclass(frozen=True)
class KeywordSpan:
    """``keyword`` spoken over samples ``[onset, offset]`` of a stream."""

    keyword: str
    onset: int
    offset: int


@dataclass
class ScoreTrace:
    """Per-hop record of one stream: hop ``i`` ends at sample ``(i + 1) * hop_samples``.

    ``gate_open[i]``: the classifier ran on hop ``i``; ``scores[i]``: its
    scores for ``keywords`` (zeros on closed hops).
    """

    keywords: tuple[str, ...]
    hop_samples: int
    gate_open: np.ndarray  # bool (hops,)
    scores: np.ndarray  # float32 (hops, keywords)
    window_samples: int = 0  # the classifier's window: the detector's minimum quiet time after a detection

    @property
    def hops(self) -> int:
        return int(self.gate_open.shape[0])

    @property
    def samples(self) -> int:
        return self.hops * self.hop_samples


def replay(trace: ScoreTrace, config: DetectorConfig) -> list[tuple[str, int]]:
    """Run the engine's detector over a recorded trace: ``[(keyword, sample), ...]``.

    ``config.keywords`` (default: all of the trace's) selects which may fire.
    A run of closed hops calls ``idle()`` once: it is idempotent.
    """
    detector = Detector(trace.keywords, config, window_samples=trace.window_samples)
    fired: list[tuple[str, int]] = []
    hop = trace.hop_samples
    idle = False
    for i in range(trace.hops):
        if not trace.gate_open[i]:
            if not idle:
                detector.idle()
                idle = True
            continue
        idle = False
        for d in detector.update(trace.scores[i], (i + 1) * hop):
            fired.append((d.keyword, d.sample))
    return fired


@dataclass
class StreamResult:
    """Outcome of one threshold on a set of streams."""

    threshold: float
    spans: int = 0
    hits: int = 0
    false_accepts: int = 0
    duplicates: int = 0
    latencies_samples: list[int] = field(default_factory=list)
    false_accept_samples: list[tuple[int, str, int]] = field(default_factory=list)  # (stream, keyword, sample)

    @property
    def recall(self) -> float | None:
        return self.hits / self.spans if self.spans else None


def match_detections(
    detections: Sequence[tuple[str, int]], spans: Sequence[KeywordSpan], tolerance_samples: int
) -> tuple[list[int | None], list[tuple[str, int]], int]:
    """Match detections to labelled spans.

    Returns (per span: the hit's sample or None; the false accepts; the number of duplicates).
    """
    first: list[int | None] = [None] * len(spans)
    false_accepts: list[tuple[str, int]] = []
    duplicates = 0
    for keyword, sample in detections:
        matched = False
        for j, span in enumerate(spans):
            if span.keyword == keyword and span.onset <= sample <= span.offset + tolerance_samples:
                matched = True
                if first[j] is None:
                    first[j] = sample
                    break
        else:
            if matched:
                duplicates += 1
            else:
                false_accepts.append((keyword, sample))
    return first, false_accepts, duplicates


def sweep(
    traces: Sequence[tuple[ScoreTrace, Sequence[KeywordSpan]]],
    thresholds: Sequence[float],
    base: DetectorConfig,
    tolerance_s: float,
) -> list[StreamResult]:
    """One :class:`StreamResult` per threshold over all ``(trace, spans)`` streams.

    Spans of keywords the detector does not fire for are ignored (they are
    neither hits nor misses, and detections inside them are false accepts).
    """
    tolerance = int(round(tolerance_s * SAMPLE_RATE))
    results = []
    for threshold in thresholds:
        config = DetectorConfig(
            threshold=float(threshold),
            smoothing_hops=base.smoothing_hops,
            refractory_s=base.refractory_s,
            keywords=base.keywords,
        )
        result = StreamResult(threshold=float(threshold))
        for index, (trace, spans) in enumerate(traces):
            keywords = set(base.keywords or trace.keywords)
            relevant = [s for s in spans if s.keyword in keywords]
            detections = replay(trace, config)
            first, fa, dup = match_detections(detections, relevant, tolerance)
            result.spans += len(relevant)
            result.hits += sum(f is not None for f in first)
            result.false_accepts += len(fa)
            result.duplicates += dup
            result.latencies_samples += [f - s.offset for f, s in zip(first, relevant) if f is not None]
            result.false_accept_samples += [(index, k, s) for k, s in fa]
        results.append(result)
    return results


def threshold_grid(step: float = 0.02) -> list[float]:
    """Thresholds swept for the DET curve: a regular grid plus a fine tail near 1."""
    grid = set(np.round(np.arange(step, 1.0, step), 4).tolist())
    grid |= {0.95, 0.97, 0.98, 0.99, 0.995, 0.999}
    return sorted(float(t) for t in grid)


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    false_accepts_per_hour: float
    false_reject_rate: float | None


def det_points(results: Sequence[StreamResult], hours: float) -> list[OperatingPoint]:
    """(threshold, false accepts per hour, false-reject rate) for each swept threshold."""
    return [
        OperatingPoint(
            r.threshold, r.false_accepts / hours if hours > 0 else 0.0, None if r.recall is None else 1.0 - r.recall
        )
        for r in results
    ]


def frr_at_budgets(
    points: Sequence[OperatingPoint], budgets: Sequence[float] = FA_BUDGETS
) -> dict[str, dict[str, float | None]]:
    """For each budget, the lowest false-reject rate among swept thresholds within it (and that threshold).

    Ties go to the middle of the tied thresholds. No interpolation: a budget no swept
    threshold meets gives None.
    """
    out: dict[str, dict[str, float | None]] = {}
    for budget in budgets:
        best = _best_within(points, budget)
        out[f"{budget:g}"] = {
            "false_reject_rate": None if best is None else best.false_reject_rate,
            "threshold": None if best is None else best.threshold,
            "false_accepts_per_hour": None if best is None else best.false_accepts_per_hour,
        }
    return out


def _best_within(points: Sequence[OperatingPoint], budget: float) -> OperatingPoint | None:
    ok = [
        (p.false_reject_rate, p)
        for p in points
        if p.false_accepts_per_hour <= budget + 1e-12 and p.false_reject_rate is not None
    ]
    if not ok:
        return None
    lowest = min(rate for rate, _ in ok)
    tied = sorted((p for rate, p in ok if rate == lowest), key=lambda p: p.threshold)
    return tied[(len(tied) - 1) // 2]  # the middle of a plateau leaves margin on both sides


def recommend_threshold(points: Sequence[OperatingPoint], target_fa_per_hour: float) -> OperatingPoint | None:
    """The threshold with the lowest false-reject rate whose false accepts per hour stay within the target.

    Without labelled keywords (false-reject rate unknown) it is the lowest
    threshold within the target. None when no threshold meets it while
    detecting at least one keyword.
    """
    best = _best_within(points, target_fa_per_hour)
    if best is not None:
        # _best_within picks only points with a false-reject rate
        return best if best.false_reject_rate is not None and best.false_reject_rate < 1.0 else None
    if any(p.false_reject_rate is not None for p in points):
        return None
    within = [p for p in points if p.false_accepts_per_hour <= target_fa_per_hour + 1e-12]
    return min(within, key=lambda p: p.threshold) if within else None
