"""The streaming engine: hops → ring buffer → VAD gate → classifier → detector → events.

The core is synchronous and push-based (``process(block) -> events``); the
generator ``stream(source)`` and the callbacks are thin layers over it.
Callbacks run on one named dispatcher thread, never on the audio path, and
their exceptions are logged, not raised.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from wakeword.asr.base import Transcriber
from wakeword.asr.worker import TranscriptWorker
from wakeword.audio.sources import AudioSource, Reframer
from wakeword.classifiers.base import Classifier, ScoreStream, StreamingClassifier
from wakeword.errors import ConfigError, ModelError
from wakeword.events import Detection, Event, Transcript
from wakeword.pcm import SAMPLE_RATE
from wakeword.stream.buffer import RingBuffer
from wakeword.stream.capture import CaptureConfig, CommandCapture
from wakeword.stream.detector import Detector, DetectorConfig
from wakeword.stream.vad import VadConfig, VadGate

__all__ = ["Engine", "EngineConfig", "EngineStats"]

log = logging.getLogger(__name__)

Callback = Callable[[Event], object]
ANY_KEYWORD = "*"


@dataclass(frozen=True)
class EngineConfig:
    """``hop_ms``: how often the classifier runs while the gate is open (None:
    the model's preferred hop, else 100 ms). ``preroll_s``: audio kept in the
    ring buffer beyond the classifier window. ``handoff``: how the command
    after a wake word is captured for the transcriber given to the engine."""

    hop_ms: int | None = None
    preroll_s: float = 2.0
    vad: VadConfig = field(default_factory=VadConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    handoff: CaptureConfig = field(default_factory=CaptureConfig)
    callback_queue: int = 256

    def __post_init__(self) -> None:
        if self.hop_ms is not None and not 10 <= self.hop_ms <= 2000:
            raise ConfigError(f"hop_ms must be between 10 and 2000, got {self.hop_ms!r}")
        if self.preroll_s < 0:
            raise ConfigError(f"preroll_s must be >= 0, got {self.preroll_s!r}")


DEFAULT_HOP_MS = 100


@dataclass
class EngineStats:
    """Counters for one engine; ``samples`` is the engine's clock."""

    blocks: int = 0
    samples: int = 0
    hops: int = 0
    classified_hops: int = 0
    detections: int = 0
    callback_errors: int = 0
    callbacks_dropped: int = 0
    commands: int = 0
    transcripts: int = 0

    @property
    def audio_s(self) -> float:
        return self.samples / SAMPLE_RATE


class Engine:
    """Runs one classifier over one stream at a time. Not thread-safe: feed it from one thread.

    With a ``transcriber``, the command spoken after each detection is
    captured (until ``config.handoff.silence_s`` of silence or ``max_s``) and
    transcribed on a worker thread; its :class:`Transcript` comes out of a
    later ``process`` call (or of ``flush`` at the end of a stream), so the
    audio path never waits for Whisper.
    """

    def __init__(
        self,
        classifier: Classifier,
        config: EngineConfig = EngineConfig(),
        transcriber: Transcriber | None = None,
        language: str | None = None,
        languages: tuple[str, ...] | None = None,
    ) -> None:
        info = classifier.info
        if info.sample_rate != SAMPLE_RATE:
            raise ModelError(f"the model expects {info.sample_rate} Hz audio; the engine feeds {SAMPLE_RATE} Hz")
        self.classifier = classifier
        self.config = config
        hop_ms = config.hop_ms or info.hop_ms or DEFAULT_HOP_MS
        self.hop_samples = SAMPLE_RATE * hop_ms // 1000
        self.window_samples = info.window_samples
        capacity = self.window_samples + int(round(config.preroll_s * SAMPLE_RATE))
        if transcriber is not None:  # the whole command must still be in the ring when it ends
            capacity += config.handoff.max_samples
        self.ring = RingBuffer(max(capacity, self.hop_samples))
        self.reframer = Reframer(self.hop_samples)
        self.gate = VadGate(config.vad)
        self.detector = Detector(
            info.labels,
            config.detector,
            default_keywords=info.keywords,
            window_samples=self.window_samples,
            model_thresholds=info.thresholds,
        )
        # a streaming classifier computes only what each hop adds; any other scores the whole window
        self.scorer: ScoreStream | None = (
            classifier.open_stream(self.hop_samples) if isinstance(classifier, StreamingClassifier) else None
        )
        self.stats = EngineStats()
        self._callbacks: dict[str, list[Callback]] = {}
        self._transcript_callbacks: list[Callback] = []
        self.capture = CommandCapture(config.handoff)
        self._capture_keyword = ""
        self._transcripts: queue.SimpleQueue[Transcript] = queue.SimpleQueue()
        self.worker = (
            TranscriptWorker(transcriber, self._transcripts.put, language=language, languages=languages)
            if transcriber is not None
            else None
        )
        self._dispatch_queue: queue.Queue[tuple[Callback, Event] | None] | None = None
        self._dispatcher: threading.Thread | None = None

    @property
    def keywords(self) -> tuple[str, ...]:
        return self.detector.keywords

    # --- core -----------------------------------------------------------------

    def process(self, block: np.ndarray) -> list[Event]:
        """Feed 16 kHz mono float32 samples (any length); return the events they complete."""
        self.stats.blocks += 1
        self.stats.samples += block.shape[0]
        events: list[Event] = []
        for hop in self.reframer.push(block):
            events.extend(self._process_hop(hop))
        if self.worker is not None:
            events.extend(self._finished_transcripts())
        if events and (self._callbacks or self._transcript_callbacks):
            for event in events:
                self._dispatch(event)
        return events

    def _process_hop(self, hop: np.ndarray) -> list[Detection]:
        self.stats.hops += 1
        self.ring.write(hop)
        gate_open = self.gate.update(hop)
        if self.capture.active:
            self._submit(self.capture.update(self.ring.total, self.gate.hop_had_speech))
        if not gate_open:
            self.detector.idle()
            return []
        self.stats.classified_hops += 1
        window = self.ring.latest(self.window_samples)
        if self.scorer is not None:
            scores = self.scorer.scores(window, self.ring.total)
        else:
            scores = self.classifier.scores(window)
        detections = self.detector.update(scores, self.ring.total)
        self.stats.detections += len(detections)
        if detections and self.worker is not None and not self.capture.active:
            self._capture_keyword = detections[0].keyword
            self.capture.start(detections[0].sample)
        return detections

    def _submit(self, command) -> None:
        """Hand a finished command to the worker (a copy of its audio; never blocks)."""
        if command is None or not command.has_speech or self.worker is None:
            return
        audio = self.ring.since(command.start_sample)[: command.end_sample - command.start_sample]
        if self.worker.submit(self._capture_keyword, command.start_sample, command.end_sample, audio):
            self.stats.commands += 1

    def _finished_transcripts(self) -> list[Transcript]:
        out: list[Transcript] = []
        while True:
            try:
                out.append(self._transcripts.get_nowait())
            except queue.Empty:
                break
        self.stats.transcripts += len(out)
        return out

    def flush(self) -> list[Event]:
        """End of stream: hand off a command still being spoken and wait for every transcript."""
        if self.worker is None:
            return []
        self._submit(self.capture.end_of_stream())
        self.worker.wait()
        events: list[Event] = list(self._finished_transcripts())
        for event in events:
            if self._transcript_callbacks:
                self._dispatch(event)
        return events

    def reset(self) -> None:
        """Start a new stream: clock, buffers, VAD and detector state back to zero."""
        self.ring.reset()
        self.reframer.reset()
        self.gate.reset_states()
        self.detector.reset_states()
        self.capture.reset_states()
        if self.scorer is not None:
            self.scorer.reset()
        self.stats = EngineStats()

    def stream(self, source: AudioSource) -> Iterator[Event]:
        """Run ``source`` through the engine, yielding events as they happen."""
        try:
            for block in source.blocks():
                yield from self.process(block)
            yield from self.flush()
        finally:
            source.close()

    def run(self, source: AudioSource) -> list[Event]:
        """Process a whole source and return every event (for files and tests)."""
        return list(self.stream(source))

    # --- callbacks ------------------------------------------------------------

    def on(self, keyword: str, fn: Callback) -> Callback:
        """Call ``fn(event)`` for each detection of ``keyword`` (``"*"``: every keyword).

        Callbacks run on the dispatcher thread, in order; an exception is
        logged and counted, never raised into the audio path.
        """
        if keyword != ANY_KEYWORD and keyword not in self.detector.keywords:
            raise ConfigError(
                f"cannot register a callback for {keyword!r}: not a keyword of this engine "
                f"({', '.join(self.detector.keywords)})"
            )
        self._callbacks.setdefault(keyword, []).append(fn)
        self._start_dispatcher()
        return fn

    def on_transcript(self, fn: Callback) -> Callback:
        """Call ``fn(transcript)`` for every transcribed command, on the dispatcher thread."""
        self._transcript_callbacks.append(fn)
        self._start_dispatcher()
        return fn

    def _start_dispatcher(self) -> None:
        if self._dispatcher is not None:
            return
        self._dispatch_queue = queue.Queue(maxsize=self.config.callback_queue)
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="wakeword-callbacks", daemon=True)
        self._dispatcher.start()

    def _dispatch(self, event: Event) -> None:
        if self._dispatch_queue is None:
            return
        if isinstance(event, Transcript):
            targets: tuple[Callback, ...] = tuple(self._transcript_callbacks)
        else:
            targets = (*self._callbacks.get(event.keyword, ()), *self._callbacks.get(ANY_KEYWORD, ()))
        for fn in targets:
            try:
                self._dispatch_queue.put_nowait((fn, event))
            except queue.Full:
                self.stats.callbacks_dropped += 1
                log.warning("callback queue full: dropped a %s event for %r", event.kind, fn)

    def _dispatch_loop(self) -> None:
        assert self._dispatch_queue is not None
        while True:
            item = self._dispatch_queue.get()
            if item is None:
                return
            fn, event = item
            try:
                fn(event)
            except Exception:
                self.stats.callback_errors += 1
                log.exception("callback %r failed on %r", fn, event)
            finally:
                self._dispatch_queue.task_done()

    def _worker_idle_within(self, timeout_s: float) -> bool:
        import time

        assert self.worker is not None
        deadline = time.monotonic() + timeout_s
        while self.worker.completed + self.worker.errors < self.worker.submitted:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def wait_callbacks(self) -> None:
        """Block until every queued callback has run."""
        if self._dispatch_queue is not None:
            self._dispatch_queue.join()

    def close(self, timeout_s: float | None = None) -> list[Event]:
        """Finish queued transcriptions and callbacks, then stop the worker and dispatcher threads.

        With ``timeout_s`` (a daemon shutting down), transcriptions still
        running after that long are abandoned: the worker is a daemon thread
        and its results are discarded. A command still being captured is
        cancelled either way (``flush`` hands it off instead). Returns the
        transcripts that finished meanwhile (also given to the callbacks).
        """
        late: list[Event] = []
        if self.worker is not None:
            if timeout_s is None or self._worker_idle_within(timeout_s):
                self.worker.close()
            else:
                pending = self.worker.submitted - self.worker.completed - self.worker.errors
                log.warning("shutdown: abandoned %d transcription(s) still running", pending)
            late.extend(self._finished_transcripts())
            for event in late:
                self._dispatch(event)
        if self._dispatcher is not None and self._dispatch_queue is not None:
            self._dispatch_queue.put(None)
            self._dispatcher.join()
            self._dispatcher = None
            self._dispatch_queue = None
        return late

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
