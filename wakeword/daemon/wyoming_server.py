"""``--wyoming``: a wake-word service for Home Assistant's Wyoming protocol.

Each client connection gets its own :class:`Engine` (its own stream clock,
buffers, VAD and detector state) over one classifier shared behind a lock
(the speech-embedding front end keeps a cache that is not thread-safe).
Audio chunks of any rate, width and channel count are converted by the
project's :class:`Conditioner`; classification runs on a small named
executor so the network loop never waits for it.

Events: ``describe`` → ``info`` (one ``WakeProgram`` listing the model's
keywords); ``detect`` (optional ``names`` filter) → ``audio-start`` /
``audio-chunk``\\* / ``audio-stop``; a ``detection`` (name, timestamp in ms)
for each keyword that fires, and ``not-detected`` at ``audio-stop`` if none did.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from wakeword import __version__
from wakeword.audio.sources import Conditioner
from wakeword.classifiers.base import Classifier, ModelInfo, ScoreStream, StreamingClassifier
from wakeword.daemon.address import Address
from wakeword.engine import Engine, EngineConfig
from wakeword.errors import DependencyError, WakewordError
from wakeword.pcm import SAMPLE_RATE

if TYPE_CHECKING:  # wyoming is the optional `serve` extra, imported when --wyoming is used
    from wyoming.server import AsyncServer

__all__ = ["SharedClassifier", "WyomingServer"]

log = logging.getLogger(__name__)

WIDTH_DTYPES: dict[int, np.dtype] = {1: np.dtype("u1"), 2: np.dtype("<i2"), 4: np.dtype("<i4")}


def _wyoming():
    try:
        import wyoming  # noqa: F401
    except ImportError as e:
        raise DependencyError("--wyoming needs the wyoming package: pip install 'wakeword[serve]'") from e


class SharedClassifier:
    """A classifier several engines may call from several threads: one call at a time."""

    def __init__(self, inner: Classifier) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    @property
    def info(self) -> ModelInfo:
        return self._inner.info

    def open_stream(self, hop_samples: int) -> ScoreStream | None:
        """Each connection's own streaming state over the shared sessions (ONNX Runtime runs them concurrently)."""
        return self._inner.open_stream(hop_samples) if isinstance(self._inner, StreamingClassifier) else None

    def scores(self, window: np.ndarray) -> np.ndarray:
        with self._lock:
            return self._inner.scores(window)


class WyomingServer:
    """Serves Wyoming wake-word clients on ``address`` until ``close()``."""

    def __init__(
        self,
        net,
        address: Address,
        classifier: Classifier,
        engine_config: Callable[[], EngineConfig],
        language: str | None = None,
    ) -> None:
        _wyoming()
        self.net = net
        self.address = address
        self.classifier = SharedClassifier(classifier)
        self.engine_config = engine_config  # read per stream: a reload applies to the next one
        self.languages = [language] if language else []
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="wakeword-wyoming")
        self.clients = 0
        self.connected_total = 0
        self.detections = 0
        self.streams = 0
        self._server: AsyncServer | None = None
        self._started = False

    @property
    def keywords(self) -> tuple[str, ...]:
        return Engine(self.classifier, self.engine_config()).keywords

    def info_event(self):
        from wyoming.info import Attribution, Info, WakeModel, WakeProgram

        attribution = Attribution(name="wakeword", url="https://pypi.org/project/wakeword/")
        models = [
            WakeModel(
                name=kw,
                attribution=attribution,
                installed=True,
                description=f"wake word {kw!r}",
                version=__version__,
                languages=list(self.languages),
                phrase=kw,
            )
            for kw in self.keywords
        ]
        program = WakeProgram(
            name="wakeword",
            attribution=attribution,
            installed=True,
            description="On-device wake-word engine",
            version=__version__,
            models=models,
        )
        return Info(wake=[program]).event()

    def start(self) -> None:
        from wyoming.server import AsyncServer

        from wakeword.daemon.address import prepare_unix_path

        uri = f"unix://{self.address.path}" if self.address.scheme == "unix" else str(self.address)
        if self.address.scheme == "unix":
            prepare_unix_path(self.address.path, "--wyoming")
        server = self._server = AsyncServer.from_uri(uri)

        async def start() -> None:
            try:
                await server.start(self._make_handler)
            except OSError as e:
                from wakeword.errors import ConfigError

                raise ConfigError(f"--wyoming: cannot listen on {self.address} ({e.strerror or e})") from None

        self.net.call(start())
        self._started = True
        log.info("--wyoming listening on %s (keywords: %s)", self.address, ", ".join(self.keywords))

    def _make_handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        return _make_handler_class()(self, reader, writer)

    def close(self) -> None:
        if self._started and self._server is not None:  # its stop() removes the socket path: only once it is ours
            self.net.call(self._server.stop())
        self.executor.shutdown(wait=True, cancel_futures=True)

    def stats(self) -> dict[str, int]:
        return {
            "clients": self.clients,
            "connected_total": self.connected_total,
            "streams": self.streams,
            "detections": self.detections,
        }


_HANDLER_CLASS = None


# long: the handler class is defined inside a function so that wyoming is imported only when --wyoming is used
def _make_handler_class():
    """The handler subclasses wyoming's, which is imported only when --wyoming is used."""
    global _HANDLER_CLASS
    if _HANDLER_CLASS is not None:
        return _HANDLER_CLASS
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.info import Describe
    from wyoming.server import AsyncEventHandler
    from wyoming.wake import Detect, Detection, NotDetected

    class WakewordHandler(AsyncEventHandler):
        def __init__(self, service: WyomingServer, reader, writer) -> None:
            super().__init__(reader, writer)
            self.service = service
            self.names: set[str] | None = None
            self.engine: Engine | None = None
            self.convert: Conditioner | None = None
            self.format: tuple[int, int, int] | None = None
            self.detected = False
            service.clients += 1
            service.connected_total += 1

        async def disconnect(self) -> None:
            self.service.clients -= 1

        def _start_stream(self, rate: int, width: int, channels: int) -> None:
            if width not in WIDTH_DTYPES:
                raise WakewordError(f"unsupported sample width {width} bytes (1, 2 or 4)")
            self.engine = Engine(self.service.classifier, self.service.engine_config())
            self.convert = Conditioner(rate, channels, "wyoming client")
            self.format = (rate, width, channels)
            self.detected = False
            self.service.streams += 1

        def _process(self, chunk) -> list:
            assert self.engine is not None and self.convert is not None and self.format is not None
            rate, width, channels = self.format
            frames = len(chunk.audio) // (width * channels)
            samples = np.frombuffer(chunk.audio[: frames * width * channels], dtype=WIDTH_DTYPES[width])
            block = self.convert(samples.reshape(frames, channels))
            return [e for e in self.engine.process(block) if e.kind == "detection"]

        async def handle_event(self, event) -> bool:
            try:
                return await self._handle(event)
            except WakewordError as e:
                log.warning("wyoming client: %s", e)
                from wyoming.error import Error

                await self.write_event(Error(text=str(e), code="wakeword-error").event())
                return False

        async def _handle(self, event) -> bool:
            if Describe.is_type(event.type):
                await self.write_event(self.service.info_event())
            elif Detect.is_type(event.type):
                detect = Detect.from_event(event)
                self.names = set(detect.names) if detect.names else None
            elif AudioStart.is_type(event.type):
                start = AudioStart.from_event(event)
                self._start_stream(start.rate, start.width, start.channels)
            elif AudioChunk.is_type(event.type):
                chunk = AudioChunk.from_event(event)
                if self.engine is None or self.format != (chunk.rate, chunk.width, chunk.channels):
                    self._start_stream(chunk.rate, chunk.width, chunk.channels)  # no audio-start, or a new format
                loop = asyncio.get_running_loop()
                detections = await loop.run_in_executor(self.service.executor, self._process, chunk)
                for d in detections:
                    if self.names is not None and d.keyword not in self.names:
                        continue
                    self.detected = True
                    self.service.detections += 1
                    timestamp = chunk.timestamp if chunk.timestamp is not None else d.sample * 1000 // SAMPLE_RATE
                    log.info("wyoming detection %s %.3f at %.2f s", d.keyword, d.score, d.time_s)
                    await self.write_event(Detection(name=d.keyword, timestamp=timestamp).event())
            elif AudioStop.is_type(event.type):
                if not self.detected:
                    await self.write_event(NotDetected().event())
                self.engine = self.convert = self.format = None
                self.detected = False
            return True

    _HANDLER_CLASS = WakewordHandler
    return WakewordHandler
