"""Audio sources: anything in, 16 kHz mono float32 blocks out.

Every source converts once, at the edge: channels are averaged, integer
samples scaled to [-1, 1], the rate converted with soxr's streaming
resampler, and non-finite samples rejected. Sources may yield blocks of any
size; the engine's :class:`Reframer` turns them into fixed hops.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import select
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

import numpy as np

from wakeword.errors import AudioFileError, ConfigError, DeviceError, InvalidAudioError
from wakeword.pcm import SAMPLE_RATE

__all__ = [
    "ArraySource",
    "AudioSource",
    "Conditioner",
    "FileSource",
    "LossCountingSource",
    "MicrophoneSource",
    "RawStreamSource",
    "Reframer",
    "StoppableSource",
    "list_input_devices",
    "read_file",
]

log = logging.getLogger(__name__)

RAW_FORMATS: dict[str, np.dtype] = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}


@runtime_checkable
class AudioSource(Protocol):
    """A source of 16 kHz mono float32 audio, in blocks of any size."""

    name: str

    def blocks(self) -> Iterator[np.ndarray]: ...

    def close(self) -> None: ...


@runtime_checkable
class StoppableSource(AudioSource, Protocol):
    """A source that another thread can end (a microphone, raw PCM on stdin)."""

    def stop(self) -> None: ...


@runtime_checkable
class LossCountingSource(AudioSource, Protocol):
    """A source fed in real time that counts what it lost: device overflows and blocks it had to drop."""

    overflows: int
    dropped_blocks: int


class Conditioner:
    """Converts blocks of one stream to 16 kHz mono float32, keeping resampler state.

    ``origin`` names the stream in error messages; ``rate`` and ``channels``
    describe the input. Non-finite samples raise :class:`InvalidAudioError`
    naming the time at which they occur.
    """

    def __init__(self, rate: float, channels: int, origin: str) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise InvalidAudioError(f"{origin}: invalid sample rate {rate!r}")
        if channels < 1:
            raise InvalidAudioError(f"{origin}: invalid channel count {channels!r}")
        self.rate = float(rate)
        self.channels = int(channels)
        self.origin = origin
        self._frames_in = 0
        self._resampler = None
        if self.rate != SAMPLE_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Convert one block of shape (frames,) or (frames, channels); ``last`` flushes the resampler."""
        block = np.asarray(block)
        if block.ndim not in (1, 2):
            raise InvalidAudioError(f"{self.origin}: expected 1-D or 2-D audio, got shape {block.shape}")
        if block.ndim == 2 and block.shape[1] != self.channels:
            raise InvalidAudioError(f"{self.origin}: expected {self.channels} channels, got {block.shape[1]}")
        if block.dtype.kind in "iu":
            info = np.iinfo(block.dtype)
            offset = (info.max + 1) // 2 if block.dtype.kind == "u" else 0
            scale = float(-info.min if block.dtype.kind == "i" else offset)
            block = (block.astype(np.float32) - offset) / scale
        elif block.dtype.kind != "f":
            raise InvalidAudioError(f"{self.origin}: unsupported sample type {block.dtype}")
        if block.ndim == 2:
            mono = block.mean(axis=1, dtype=np.float32) if self.channels > 1 else block[:, 0]
        else:
            mono = block
        mono = mono.astype(np.float32, copy=False)
        if mono.size and not np.isfinite(mono).all():
            bad = int(np.flatnonzero(~np.isfinite(mono))[0]) + self._frames_in
            raise InvalidAudioError(f"{self.origin}: non-finite sample (NaN or inf) at {bad / self.rate:.3f} s")
        self._frames_in += mono.shape[0]
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(np.ascontiguousarray(mono), last=last)
        return mono


class Reframer:
    """Cuts a stream of blocks of any size into fixed hops, carrying the remainder.

    ``push(block)`` yields zero or more views of an internal buffer of exactly
    ``hop`` samples each; a view is valid until the next ``push``.
    """

    def __init__(self, hop: int) -> None:
        if hop <= 0:
            raise ConfigError("hop must be positive")
        self.hop = hop
        self._buf = np.zeros(hop, dtype=np.float32)
        self._fill = 0

    @property
    def pending(self) -> int:
        """Samples held back until the next hop is complete."""
        return self._fill

    def push(self, block: np.ndarray) -> Iterator[np.ndarray]:
        n = block.shape[0]
        i = 0
        if self._fill:
            take = min(self.hop - self._fill, n)
            self._buf[self._fill : self._fill + take] = block[:take]
            self._fill += take
            i = take
            if self._fill < self.hop:
                return
            self._fill = 0
            yield self._buf
        while n - i >= self.hop:
            yield block[i : i + self.hop]
            i += self.hop
        rest = n - i
        if rest:
            self._buf[:rest] = block[i:]
            self._fill = rest

    def reset(self) -> None:
        self._fill = 0


class _Pacer:
    """Sleeps so that audio is delivered no faster than real time."""

    def __init__(self) -> None:
        self._start: float | None = None
        self._samples = 0

    def wait(self, samples: int) -> None:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        self._samples += samples
        ahead = self._samples / SAMPLE_RATE - (now - self._start)
        if ahead > 0:
            time.sleep(ahead)


class ArraySource:
    """An in-memory array (any rate, (frames,) or (frames, channels)) delivered in blocks."""

    def __init__(
        self,
        audio: np.ndarray,
        sample_rate: int = SAMPLE_RATE,
        block_size: int | Callable[[int], int] = 1600,
        name: str = "array",
    ) -> None:
        audio = np.asarray(audio)
        if audio.ndim not in (1, 2):
            raise InvalidAudioError(f"{name}: expected 1-D or 2-D audio, got shape {audio.shape}")
        self.audio = audio
        self.sample_rate = sample_rate
        self.block_size = block_size
        self.name = name

    def blocks(self) -> Iterator[np.ndarray]:
        channels = 1 if self.audio.ndim == 1 else self.audio.shape[1]
        convert = Conditioner(self.sample_rate, channels, self.name)
        n = self.audio.shape[0]
        i = k = 0
        while i < n:
            size = self.block_size(k) if callable(self.block_size) else self.block_size
            if size <= 0:
                raise ConfigError("block size must be positive")
            out = convert(self.audio[i : i + size], last=i + size >= n)
            i += size
            k += 1
            if out.size:
                yield out

    def close(self) -> None:
        pass


def _check_wav_length(path: Path) -> None:
    """Reject a RIFF/WAVE file whose data chunk is shorter than its header says.

    libsndfile quietly shortens such a file to what is there; a cut-off
    recording should be reported, not half-processed as if complete.
    """
    import struct

    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return
            offset = 12
            while offset + 8 <= size:
                f.seek(offset)
                chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
                if chunk_id == b"data":
                    available = size - offset - 8
                    # 0 and 0xFFFFFFFF are placeholders written by streaming encoders
                    if chunk_size not in (0, 0xFFFFFFFF) and chunk_size > available:
                        raise AudioFileError(
                            f"{path}: truncated WAV: header promises {chunk_size} bytes of audio, "
                            f"the file holds {available}"
                        )
                    return
                offset += 8 + chunk_size + (chunk_size & 1)
    except OSError:
        return  # soundfile reports unreadable files with a better message


def _open_sound_file(path: Path):
    import soundfile as sf

    if str(path) != "-" and not path.exists():
        raise AudioFileError(f"{path}: no such file")
    if path.is_dir():
        raise AudioFileError(f"{path}: is a directory, not an audio file")
    _check_wav_length(path)
    try:
        f = sf.SoundFile(str(path))
    except sf.LibsndfileError as e:
        raise AudioFileError(f"{path}: not a readable audio file ({e.error_string})") from e
    except (RuntimeError, OSError) as e:
        raise AudioFileError(f"{path}: not a readable audio file ({e})") from e
    if f.frames == 0:
        f.close()
        raise AudioFileError(f"{path}: contains no audio frames (empty or truncated file)")
    return f


def read_file(path: str | Path, require_audio: bool = True) -> np.ndarray:
    """A whole file as 16 kHz mono float32, converted by :class:`FileSource` (any rate, any channels).
    ``require_audio``: an empty result is an :class:`AudioFileError` rather than an empty array."""
    blocks = list(FileSource(path).blocks())
    if not blocks:
        if require_audio:
            raise AudioFileError(f"{path}: no audio after conversion to 16 kHz")
        return np.zeros(0, np.float32)
    return np.concatenate(blocks)


class FileSource:
    """WAV, FLAC, OGG... read block by block with soundfile, never loaded whole.

    ``realtime`` paces delivery to real time so a file behaves like a live stream.
    """

    def __init__(self, path: str | Path, block_frames: int = 4096, realtime: bool = False) -> None:
        self.path = Path(path)
        self.name = str(path)
        self.block_frames = block_frames
        self.realtime = realtime
        self._file = _open_sound_file(self.path)  # fail early on bad input
        self.rate = self._file.samplerate
        self.channels = self._file.channels
        self.frames = self._file.frames

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate

    def blocks(self) -> Iterator[np.ndarray]:
        import soundfile as sf

        convert = Conditioner(self.rate, self.channels, self.name)
        pacer = _Pacer() if self.realtime else None
        f = self._file
        read = 0
        try:
            while True:
                try:
                    data = f.read(self.block_frames, dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as e:
                    raise AudioFileError(f"{self.name}: read error after {read / self.rate:.3f} s ({e})") from e
                read += data.shape[0]
                last = data.shape[0] < self.block_frames or read >= self.frames
                out = convert(data, last=last)
                if out.size:
                    if pacer is not None:
                        pacer.wait(out.shape[0])
                    yield out
                if last:
                    break
        finally:
            self.close()
        if read < self.frames:
            raise AudioFileError(
                f"{self.name}: truncated: header promises {self.frames} frames, only {read} could be read"
            )

    def close(self) -> None:
        self._file.close()


class RawStreamSource:
    """Raw interleaved PCM from a binary stream (``--input -`` reads standard input)."""

    def __init__(
        self,
        stream: BinaryIO | None = None,
        rate: int = SAMPLE_RATE,
        channels: int = 1,
        sample_format: str = "s16le",
        block_frames: int = 1600,
        realtime: bool = False,
        name: str = "<stdin>",
    ) -> None:
        if sample_format not in RAW_FORMATS:
            raise ConfigError(f"unknown raw format {sample_format!r}; choose from {', '.join(RAW_FORMATS)}")
        if rate <= 0 or channels <= 0:
            raise ConfigError("raw input needs a positive --rate and --channels")
        self.stream = stream if stream is not None else sys.stdin.buffer
        self.rate = rate
        self.channels = channels
        self.dtype = RAW_FORMATS[sample_format]
        self.block_frames = block_frames
        self.realtime = realtime
        self.name = name
        self._stop = threading.Event()

    def _read(self, size: int) -> bytes:
        """Up to ``size`` bytes; b"" at the end of the stream or once ``stop()`` was called.

        A stream with a file descriptor (a pipe, standard input) is polled with
        ``select`` so that ``stop()`` from another thread ends a read that would
        otherwise wait for the writer forever. It is read with ``os.read``,
        past any Python-level buffer: nothing else reads that stream.
        """
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):  # io.BytesIO and friends have no descriptor
            return b"" if self._stop.is_set() else self.stream.read(size)
        while not self._stop.is_set():
            readable, _, _ = select.select([fd], [], [], 0.2)
            if readable:
                return os.read(fd, size)
        return b""

    def stop(self) -> None:
        """Ask ``blocks()`` to finish at the next read (thread-safe)."""
        self._stop.set()

    def blocks(self) -> Iterator[np.ndarray]:
        convert = Conditioner(self.rate, self.channels, self.name)
        frame_bytes = self.dtype.itemsize * self.channels
        want = self.block_frames * frame_bytes
        pacer = _Pacer() if self.realtime else None
        carry = b""
        total = 0
        while True:
            chunk = self._read(want)
            if not chunk:
                break
            data = carry + chunk if carry else chunk  # reads are whole frames almost always: no join, no copy
            usable = len(data) - len(data) % frame_bytes
            carry = data[usable:] if usable < len(data) else b""
            if not usable:
                continue
            count = usable // self.dtype.itemsize
            samples = np.frombuffer(data, dtype=self.dtype, count=count).reshape(-1, self.channels)
            total += samples.shape[0]
            out = convert(samples)
            if out.size:
                if pacer is not None:
                    pacer.wait(out.shape[0])
                yield out
        if carry:
            log.warning("%s: dropped %d trailing bytes (not a whole frame)", self.name, len(carry))
        tail = convert(np.zeros((0, self.channels), dtype=np.float32), last=True)
        if tail.size:
            yield tail
        if total == 0 and not self._stop.is_set():
            raise AudioFileError(f"{self.name}: no audio on the input stream")

    def close(self) -> None:
        pass


# --- microphone -------------------------------------------------------------


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    channels: int
    default_rate: float
    is_default: bool


def _sounddevice():
    try:
        import sounddevice as sd
    except OSError as e:  # PortAudio library missing
        raise DeviceError(f"PortAudio is not available ({e}); install it: apt-get install libportaudio2") from e
    return sd


def list_input_devices() -> list[InputDevice]:
    """Input-capable devices as PortAudio reports them."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        default_in = sd.default.device[0]
    except sd.PortAudioError as e:
        raise DeviceError(f"cannot list audio devices: {e}") from e
    return [
        InputDevice(i, d["name"], d["max_input_channels"], d["default_samplerate"], i == default_in)
        for i, d in enumerate(devices)
        if d["max_input_channels"] > 0
    ]


def resolve_device(device: int | str | None) -> InputDevice:
    """Find an input device by index, exact name or unique name substring (names survive renumbering)."""
    devices = list_input_devices()
    if not devices:
        raise DeviceError("no audio input device found; run `wakeword devices`")
    if device is None or device == "":
        for d in devices:
            if d.is_default:
                return d
        return devices[0]
    if isinstance(device, int) or (isinstance(device, str) and device.isdigit()):
        idx = int(device)
        for d in devices:
            if d.index == idx:
                return d
        raise DeviceError(f"unknown input device {device}; run `wakeword devices` to list them")
    exact = [d for d in devices if d.name == device]
    matches = exact or [d for d in devices if device.lower() in d.name.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DeviceError(f"unknown input device {device!r}; run `wakeword devices` to list them")
    names = ", ".join(repr(d.name) for d in matches)
    raise DeviceError(f"input device {device!r} is ambiguous: {names}")


class _RateLimitedLog:
    def __init__(self, interval_s: float = 5.0) -> None:
        self.interval_s = interval_s
        self._last = -math.inf

    def __call__(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            log.warning(msg, *args)


class _InputStream(Protocol):
    """What :class:`MicrophoneSource` uses of a ``sounddevice.InputStream`` (or a test's stand-in)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


class MicrophoneSource:
    """A sounddevice ``InputStream`` at the device's native rate.

    The PortAudio callback only copies the block into a bounded queue; a full
    queue drops the block and counts it, overflow flags are counted, and both
    are logged at most every few seconds. ``stream_factory`` (default
    ``sounddevice.InputStream``) is the test seam. ``duration_s`` stops after
    that much audio.
    """

    def __init__(
        self,
        device: int | str | None = None,
        block_ms: float = 50.0,
        queue_blocks: int = 64,
        duration_s: float | None = None,
        stream_factory: Callable[..., _InputStream] | None = None,
        rate: float | None = None,
    ) -> None:
        self.device_spec = device
        self.block_ms = block_ms
        self.queue_blocks = queue_blocks
        self.duration_s = duration_s
        self._stream_factory = stream_factory
        self._rate = rate
        self.overflows = 0
        self.dropped_blocks = 0
        self._queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=queue_blocks)
        self._stream: _InputStream | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._warn = _RateLimitedLog()
        self.name = f"microphone:{device if device is not None else 'default'}"

    def _callback(self, indata, frames, time_info, status) -> None:  # runs on PortAudio's thread
        if status and status.input_overflow:
            self.overflows += 1
            self._warn("%s: input overflow (%d so far)", self.name, self.overflows)
        try:
            self._queue.put_nowait(indata.copy())
        except queue.Full:
            self.dropped_blocks += 1
            self._warn("%s: queue full, dropped %d block(s) so far", self.name, self.dropped_blocks)

    def _open(self) -> tuple[_InputStream, float]:
        if self._stream_factory is None:
            sd = _sounddevice()
            info = resolve_device(self.device_spec)
            rate = self._rate or info.default_rate
            self.name = f"microphone:{info.name}"
            factory: Callable[..., _InputStream] = sd.InputStream
            device: object = info.index
            errors: tuple[type[BaseException], ...] = (sd.PortAudioError,)
        else:
            rate = self._rate or SAMPLE_RATE
            factory, device, errors = self._stream_factory, self.device_spec, (Exception,)
        blocksize = max(1, int(round(rate * self.block_ms / 1000)))
        # int16, not float32: devices that pass the requested format through
        # unconverted (ALSA's file/null plugins) then deliver 16-bit PCM, which
        # every capture device supports; the Conditioner scales it once.
        try:
            stream = factory(
                device=device,
                samplerate=rate,
                channels=1,
                dtype="int16",
                blocksize=blocksize,
                callback=self._callback,
            )
        except errors as e:
            raise DeviceError(f"{self.name}: cannot open input stream: {e}") from e
        try:
            stream.start()
        except errors as e:
            try:
                stream.close()
            except Exception as close_error:  # the start failure is the error worth reporting
                log.debug("%s: error while closing: %s", self.name, close_error)
            raise DeviceError(f"{self.name}: cannot start input stream: {e}") from e
        return stream, rate

    def blocks(self) -> Iterator[np.ndarray]:
        # a source can be reopened (the daemon does after a device error): start clean
        self._stop.clear()
        while not self._queue.empty():
            self._queue.get_nowait()
        self._stream, rate = self._open()
        convert = Conditioner(rate, 1, self.name)
        limit = None if self.duration_s is None else int(self.duration_s * rate)
        got = 0
        try:
            while not self._stop.is_set():
                try:
                    data = self._queue.get(timeout=0.5)
                except queue.Empty:
                    if not getattr(self._stream, "active", True):
                        raise DeviceError(f"{self.name}: input stream stopped unexpectedly") from None
                    continue
                if limit is not None and got + data.shape[0] >= limit:
                    data = data[: limit - got]
                    got = limit
                    out = convert(data, last=True)
                    if out.size:
                        yield out
                    break
                got += data.shape[0]
                out = convert(data)
                if out.size:
                    yield out
        finally:
            self.close()

    def stop(self) -> None:
        """Ask ``blocks()`` to finish (thread-safe)."""
        self._stop.set()

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception as e:  # closing a failed device must not mask the original error
                log.debug("%s: error while closing: %s", self.name, e)
