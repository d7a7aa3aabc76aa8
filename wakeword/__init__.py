"""wakeword: an on-device wake-word streaming engine.

>>> from wakeword import Engine, FileSource, load_classifier
>>> engine = Engine(load_classifier("tone"))
>>> for event in engine.stream(FileSource("clip.wav")):  # doctest: +SKIP
...     print(event)
"""

from .audio import ArraySource, AudioSource, FileSource, MicrophoneSource, RawStreamSource, Reframer
from .buffer import RingBuffer
from .classifier import Classifier, ToneClassifier, load_classifier, register_classifier
from .detector import Detector, DetectorConfig
from .engine import Engine, EngineConfig, EngineStats
from .errors import (
    AudioError,
    AudioFileError,
    ConfigError,
    DependencyError,
    DeviceError,
    InvalidAudioError,
    ModelError,
    WakewordError,
)
from .events import Detection, Event, event_to_dict, event_to_json
from .vad import VadConfig, VadGate

__version__ = "0.1.0"

__all__ = [
    "ArraySource",
    "AudioError",
    "AudioFileError",
    "AudioSource",
    "Classifier",
    "ConfigError",
    "DependencyError",
    "Detection",
    "Detector",
    "DetectorConfig",
    "DeviceError",
    "Engine",
    "EngineConfig",
    "EngineStats",
    "Event",
    "FileSource",
    "InvalidAudioError",
    "MicrophoneSource",
    "ModelError",
    "RawStreamSource",
    "Reframer",
    "RingBuffer",
    "ToneClassifier",
    "VadConfig",
    "VadGate",
    "WakewordError",
    "event_to_dict",
    "event_to_json",
    "load_classifier",
    "register_classifier",
]
