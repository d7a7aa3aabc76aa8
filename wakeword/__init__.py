"""wakeword: an on-device wake-word streaming engine.

>>> from wakeword import Engine, FileSource, load_classifier
>>> engine = Engine(load_classifier("tone"))
>>> for event in engine.stream(FileSource("clip.wav")):  # doctest: +SKIP
...     print(event)
"""

__version__ = "0.1.0"

from wakeword.audio import ArraySource, AudioSource, FileSource, MicrophoneSource, RawStreamSource, Reframer
from wakeword.classifiers import Classifier, ModelInfo, load_classifier, register_backend
from wakeword.classifiers.tone import ToneClassifier
from wakeword.engine import Engine, EngineConfig, EngineStats
from wakeword.errors import (
    AudioError,
    AudioFileError,
    ConfigError,
    DependencyError,
    DeviceError,
    InvalidAudioError,
    ModelError,
    WakewordError,
)
from wakeword.events import Detection, Event, event_to_dict, event_to_json
from wakeword.stream.buffer import RingBuffer
from wakeword.stream.detector import Detector, DetectorConfig
from wakeword.stream.vad import VadConfig, VadGate

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
    "ModelInfo",
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
    "register_backend",
]
