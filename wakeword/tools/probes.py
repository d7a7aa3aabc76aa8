"""Timing and recording proxies around the engine's components, for ``bench`` and ``eval``.

The engine is used as it is (its public attributes ``classifier``, ``gate``
and ``detector`` are swapped for proxies that forward every call), so what
is measured is the real pipeline, not a copy of it:

* :class:`StageClock` collects durations per stage (nanoseconds);
* :func:`instrument` times the VAD, the classifier (split into features and
  inference when the backend exposes its feature stage) and the detector;
* :func:`record_trace` runs a stream once and keeps, per hop, whether the
  gate was open and the keyword scores, for :func:`wakeword.tools.metrics.replay`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from wakeword.audio.sources import AudioSource
from wakeword.classifiers.base import Classifier, ScoreStream, StreamingClassifier
from wakeword.engine import Engine, EngineConfig
from wakeword.events import Detection
from wakeword.tools.metrics import ScoreTrace

__all__ = ["StageClock", "instrument", "record_trace", "split_features"]

# Attributes under which the backends keep their feature stage (called once per window):
# SpeechEmbeddingClassifier and the openWakeWord peer: ``frontend``; OnnxClassifier: ``features``.
FEATURE_ATTRIBUTES = (
    "frontend",
    "features",
    "embed",
)  # the public feature stage of our backends and the pipeline baseline


class StageClock:
    """Durations per stage name, in nanoseconds."""

    def __init__(self) -> None:
        self.ns: dict[str, list[int]] = defaultdict(list)

    def add(self, stage: str, ns: int) -> None:
        self.ns[stage].append(ns)

    def timed(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        perf = time.perf_counter_ns

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = perf()
            try:
                return fn(*args, **kwargs)
            finally:
                self.ns[stage].append(perf() - t0)

        return wrapper

    def clear(self) -> None:
        self.ns.clear()


class _Forwarding:
    """Forwards attribute reads to the wrapped object."""

    def __init__(self, inner: Any) -> None:
        object.__setattr__(self, "_inner", inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _TimedCallable(_Forwarding):
    def __init__(self, inner: Any, clock: StageClock, stage: str) -> None:
        super().__init__(inner)
        object.__setattr__(self, "_call", clock.timed(stage, inner))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(*args, **kwargs)


def split_features(classifier: Any, clock: StageClock) -> bool:
    """Time the backend's feature stage as ``features``; False when it has none we know of."""
    for name in FEATURE_ATTRIBUTES:
        inner = getattr(classifier, name, None)
        if callable(inner):
            setattr(classifier, name, _TimedCallable(inner, clock, "features"))
            return True
    return False


class _ScoreRecorder:
    """Times a scoring call as ``classifier`` and keeps the scores of ``columns``: shared by both paths."""

    def __init__(self, clock: StageClock, keep: list[np.ndarray] | None, columns: np.ndarray | None) -> None:
        self.clock, self.keep, self.columns = clock, keep, columns

    def __call__(self, score: Callable[..., np.ndarray], *args: Any) -> np.ndarray:
        t0 = time.perf_counter_ns()
        out = score(*args)
        self.clock.add("classifier", time.perf_counter_ns() - t0)
        if self.keep is not None:
            self.keep.append(np.array(out[self.columns], dtype=np.float32))
        return out


class _TimedClassifier(_Forwarding):
    """The classifier, timed as ``classifier`` (features + inference + softmax)."""

    def __init__(self, inner: Classifier, clock: StageClock, record: _ScoreRecorder, time_features: bool) -> None:
        super().__init__(inner)
        object.__setattr__(self, "_clock", clock)
        object.__setattr__(self, "_record", record)
        object.__setattr__(self, "_time_features", time_features)

    def scores(self, window: np.ndarray) -> np.ndarray:
        return self._record(self._inner.scores, window)

    def open_stream(self, hop_samples: int) -> _TimedStream | None:
        """The inner classifier's streaming scorer, timed and recorded like ``scores``."""
        if not isinstance(self._inner, StreamingClassifier):
            return None
        inner = self._inner.open_stream(hop_samples)
        if inner is None:
            return None
        if self._time_features:
            split_features(inner, self._clock)
        return _TimedStream(inner, self._record)


class _TimedStream(_Forwarding):
    """A classifier's stream, timed and recorded like the whole-window path."""

    def __init__(self, inner: ScoreStream, record: _ScoreRecorder) -> None:
        super().__init__(inner)
        object.__setattr__(self, "_record", record)

    def scores(self, window: np.ndarray, end_sample: int) -> np.ndarray:
        return self._record(self._inner.scores, window, end_sample)

    def reset(self) -> None:
        self._inner.reset()


class _TimedGate(_Forwarding):
    def __init__(self, inner: Any, clock: StageClock, keep: list[bool] | None) -> None:
        super().__init__(inner)
        object.__setattr__(self, "_clock", clock)
        object.__setattr__(self, "_keep", keep)

    def update(self, hop: np.ndarray) -> bool:
        t0 = time.perf_counter_ns()
        gate_open = self._inner.update(hop)
        self._clock.add("vad", time.perf_counter_ns() - t0)
        if self._keep is not None:
            self._keep.append(bool(gate_open))
        return gate_open


class _TimedDetector(_Forwarding):
    def __init__(self, inner: Any, clock: StageClock) -> None:
        super().__init__(inner)
        object.__setattr__(self, "_update", clock.timed("detector", inner.update))

    def update(self, scores: np.ndarray, sample: int) -> list[Detection]:
        return self._update(scores, sample)


def instrument(
    classifier: Classifier,
    config: EngineConfig,
    clock: StageClock,
    transcriber: Any = None,
    *,
    keep_scores: list[np.ndarray] | None = None,
    keep_gate: list[bool] | None = None,
    score_columns: np.ndarray | None = None,
    features: bool = True,
) -> Engine:
    """An engine whose VAD, classifier, detector (and transcriber) report to ``clock``.

    ``features``: also time the classifier's feature stage (this wraps it in
    place, once per classifier). ``keep_gate``/``keep_scores``: lists that
    receive, per hop, the gate's decision and, per classified hop, the scores
    at ``score_columns``.
    """
    if features:
        split_features(classifier, clock)
    if transcriber is not None:
        transcriber = _TimedTranscriber(transcriber, clock)
    proxy = _TimedClassifier(classifier, clock, _ScoreRecorder(clock, keep_scores, score_columns), features)
    engine = Engine(proxy, config, transcriber=transcriber)
    engine.gate = _TimedGate(engine.gate, clock, keep_gate)  # type: ignore[assignment]  # a forwarding proxy, not a VadGate subclass
    engine.detector = _TimedDetector(engine.detector, clock)  # type: ignore[assignment]  # a forwarding proxy, not a Detector subclass
    return engine


class _TimedTranscriber(_Forwarding):
    def __init__(self, inner: Any, clock: StageClock) -> None:
        super().__init__(inner)
        object.__setattr__(self, "transcribe", clock.timed("handoff", inner.transcribe))


def timed_blocks(source: AudioSource, clock: StageClock) -> Iterator[np.ndarray]:
    """The source's blocks, each read (decode + resample) timed as ``source``."""
    blocks = source.blocks()
    perf = time.perf_counter_ns
    try:
        while True:
            t0 = perf()
            block = next(blocks, None)
            clock.add("source", perf() - t0)
            if block is None:
                return
            yield block
    finally:
        source.close()


def record_trace(
    classifier: Classifier,
    source: AudioSource,
    config: EngineConfig,
    keywords: tuple[str, ...],
    on_block: Callable[[int], object] | None = None,
) -> tuple[ScoreTrace, list[Detection], Engine]:
    """Run ``source`` once through an engine; return its per-hop trace, its detections and the engine.

    The trace holds the scores of ``keywords`` only; replaying it at
    ``config.detector``'s settings gives back exactly the engine's detections.
    ``on_block(samples)`` is called after each block (progress).
    """
    labels = tuple(classifier.info.labels)
    columns = np.array([labels.index(k) for k in keywords], dtype=np.intp)
    gate: list[bool] = []
    scores: list[np.ndarray] = []
    engine = instrument(
        classifier, config, StageClock(), keep_scores=scores, keep_gate=gate, score_columns=columns, features=False
    )
    detections: list[Detection] = []
    try:
        for block in source.blocks():
            detections += [e for e in engine.process(block) if isinstance(e, Detection)]
            if on_block is not None:
                on_block(block.shape[0])
    finally:
        source.close()
    gate_open = np.array(gate, dtype=bool)
    if int(gate_open.sum()) != len(scores):  # the engine must classify exactly the hops its gate opens
        raise RuntimeError(f"trace out of step: {int(gate_open.sum())} open hops, {len(scores)} classified")
    table = np.zeros((gate_open.shape[0], len(keywords)), dtype=np.float32)
    if scores:
        table[gate_open] = np.stack(scores)
    return ScoreTrace(tuple(keywords), engine.hop_samples, gate_open, table, engine.window_samples), detections, engine
