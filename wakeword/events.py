"""Events the engine emits: frozen dataclasses, serialised to JSON in one place."""

from __future__ import annotations

import json
from dataclasses import dataclass

from wakeword.pcm import SAMPLE_RATE

__all__ = ["Detection", "Event", "Transcript", "event_to_dict", "event_to_json"]


@dataclass(frozen=True)
class Detection:
    """``keyword`` fired with smoothed ``score`` at the end of the hop ending at ``sample``.

    ``sample`` counts 16 kHz samples from the start of the stream; ``time_s``
    is the same instant in seconds, for display.
    """

    keyword: str
    score: float
    sample: int

    kind = "detection"

    @property
    def time_s(self) -> float:
        return self.sample / SAMPLE_RATE


@dataclass(frozen=True)
class Transcript:
    """The command spoken after ``keyword``, samples ``[start_sample, end_sample)``, as Whisper heard it.

    ``latency_s``: from the end of the command (submission to the worker) to the result.
    """

    keyword: str
    language: str
    language_probability: float
    text: str
    start_sample: int
    end_sample: int
    latency_s: float

    kind = "transcript"

    @property
    def time_s(self) -> float:
        return self.end_sample / SAMPLE_RATE

    def to_dict(self) -> dict[str, object]:
        return event_to_dict(self)


Event = Detection | Transcript


def event_to_dict(event: Event) -> dict[str, object]:
    """The JSON object of an event; the one place where event fields meet their JSON names."""
    if isinstance(event, Detection):
        return {
            "event": event.kind,
            "keyword": event.keyword,
            "score": round(float(event.score), 4),
            "time_s": round(event.time_s, 3),
        }
    if isinstance(event, Transcript):
        return {
            "event": event.kind,
            "keyword": event.keyword,
            "language": event.language,
            "language_probability": round(float(event.language_probability), 4),
            "text": event.text,
            "start_s": round(event.start_sample / SAMPLE_RATE, 3),
            "end_s": round(event.end_sample / SAMPLE_RATE, 3),
            "latency_s": round(event.latency_s, 3),
        }
    raise TypeError(f"not an event: {event!r}")


def event_to_json(event: Event) -> str:
    return json.dumps(event_to_dict(event), ensure_ascii=False)
