"""Run a transcriber off the audio path: one named daemon thread, a bounded queue, a non-blocking ``submit``."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from wakeword.asr.base import Transcriber
from wakeword.errors import ConfigError
from wakeword.events import Transcript
from wakeword.pcm import SAMPLE_RATE

__all__ = ["TranscriptWorker"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Job:
    keyword: str
    start_sample: int
    end_sample: int
    audio: np.ndarray
    submitted_at: float


class TranscriptWorker:
    """Runs a :class:`Transcriber` on one named daemon thread; ``submit`` never blocks.

    A full queue drops the job (counted in ``dropped``, logged); a failing
    transcriber or callback is logged and counted in ``errors``. ``close()``
    finishes the queued jobs, then joins the thread.
    """

    def __init__(
        self,
        transcriber: Transcriber,
        callback: Callable[[Transcript], object],
        *,
        language: str | None = None,
        languages: Sequence[str] | None = None,
        queue_size: int = 4,
        name: str = "wakeword-transcriber",
    ) -> None:
        if queue_size < 1:
            raise ConfigError(f"queue_size must be >= 1, got {queue_size}")
        self.transcriber = transcriber
        self.callback = callback
        self.language = language
        self.languages = tuple(languages) if languages else None
        self.submitted = 0
        self.completed = 0
        self.dropped = 0
        self.errors = 0
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(
        self,
        keyword: str,
        start_sample: int,
        end_sample: int,
        audio: np.ndarray,
        submitted_at: float | None = None,
    ) -> bool:
        """Queue a command (``audio`` is copied, so a ring-buffer view is fine); False if dropped."""
        if self._thread is None:
            raise RuntimeError("the transcript worker is closed")
        job = _Job(
            keyword,
            int(start_sample),
            int(end_sample),
            np.array(audio, dtype=np.float32, copy=True),
            time.monotonic() if submitted_at is None else submitted_at,
        )
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.dropped += 1
            log.warning(
                "transcription queue full: dropped the command after %r at %.2f s", keyword, start_sample / SAMPLE_RATE
            )
            return False
        self.submitted += 1
        return True

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._run(job)
            finally:
                self._queue.task_done()

    def _run(self, job: _Job) -> None:
        try:
            result = self.transcriber.transcribe(job.audio, language=self.language, languages=self.languages)
        except Exception:
            self.errors += 1
            log.exception("transcription of the command after %r failed", job.keyword)
            return
        transcript = Transcript(
            keyword=job.keyword,
            language=result.language,
            language_probability=result.language_probability,
            text=result.text,
            start_sample=job.start_sample,
            end_sample=job.end_sample,
            latency_s=time.monotonic() - job.submitted_at,
        )
        self.completed += 1
        try:
            self.callback(transcript)
        except Exception:
            self.errors += 1
            log.exception("transcript callback %r failed", self.callback)

    def wait(self) -> None:
        """Block until every queued job has been transcribed and delivered."""
        self._queue.join()

    def close(self) -> None:
        """Finish the queued jobs, then stop and join the thread. Idempotent."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join()
        self._thread = None

    def __enter__(self) -> TranscriptWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
