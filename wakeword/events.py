"""Events the engine emits: frozen dataclasses, serialised to JSON in one place."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Union

__all__ = ["Detection", "Event", "event_to_dict", "event_to_json"]

SAMPLE_RATE = 16_000


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


Event = Union[Detection]


def event_to_dict(event: Event) -> dict[str, object]:
    """The JSON object of an event; the one place where event fields meet their JSON names."""
    if isinstance(event, Detection):
        return {
            "event": event.kind,
            "keyword": event.keyword,
            "score": round(float(event.score), 4),
            "time_s": round(event.time_s, 3),
        }
    raise TypeError(f"not an event: {event!r}")


def event_to_json(event: Event) -> str:
    return json.dumps(event_to_dict(event), ensure_ascii=False)
