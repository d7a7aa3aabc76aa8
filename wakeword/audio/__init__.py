"""Audio in: sources (files, raw streams, arrays, microphones) that deliver the engine's internal format."""

from wakeword.audio.sources import (
    ArraySource,
    AudioSource,
    Conditioner,
    FileSource,
    MicrophoneSource,
    RawStreamSource,
    Reframer,
    list_input_devices,
    read_file,
)

__all__ = [
    "ArraySource",
    "AudioSource",
    "Conditioner",
    "FileSource",
    "MicrophoneSource",
    "RawStreamSource",
    "Reframer",
    "list_input_devices",
    "read_file",
]
