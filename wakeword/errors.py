"""Exceptions raised by wakeword.

Every error a user can cause derives from :class:`WakewordError`; the CLI turns
it into one line on stderr and a non-zero exit code. Lower-level errors
(PortAudio, soundfile, ONNX Runtime) are translated at the boundary with
``raise ... from e``::

    WakewordError
    ├── ConfigError          bad option value, unreadable/unwritable config file
    ├── AudioError           audio that cannot be used
    │   ├── AudioFileError   missing, unreadable, empty or truncated file
    │   ├── InvalidAudioError NaN/inf samples, unsupported rate or format
    │   └── DeviceError      unknown or failing input device
    ├── ModelError           missing, corrupt or unsupported model
    └── DependencyError      an optional extra is not installed
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "AudioFileError",
    "ConfigError",
    "DependencyError",
    "DeviceError",
    "InvalidAudioError",
    "ModelError",
    "WakewordError",
]


class WakewordError(Exception):
    """Base class of every error wakeword raises on purpose."""

    exit_code = 1


class ConfigError(WakewordError):
    """An option or configuration file is invalid."""

    exit_code = 2


class AudioError(WakewordError):
    """Audio input cannot be used."""


class AudioFileError(AudioError):
    """An audio file is missing, unreadable, empty or truncated."""


class InvalidAudioError(AudioError):
    """Audio samples or format are unusable (NaN samples, bad rate...)."""


class DeviceError(AudioError):
    """An input device is unknown or failed."""


class ModelError(WakewordError):
    """A model is missing, corrupt or unsupported."""


class DependencyError(WakewordError):
    """An optional dependency (an extra) is not installed."""
