"""Audio in: sources (files, raw streams, arrays, microphones) that deliver the engine's internal format."""

from wakeword.audio.sources import *  # noqa: F403  # the package's surface is its sources module's __all__
from wakeword.audio.sources import __all__ as __all__
