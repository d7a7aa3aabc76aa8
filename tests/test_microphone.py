"""The microphone path: ``MicrophoneSource`` with a fake PortAudio stream, then real PortAudio.

The unit tests inject a ``stream_factory`` whose stream plays a script of
blocks into the callback from its own thread, reusing one ``indata`` buffer
the way PortAudio does. The end-to-end tests run ``wakeword listen`` against
ALSA's ``file`` plugin (a virtual microphone, see RESOURCES.md) in a
subprocess, because PortAudio reads ``~/.asoundrc`` once, when it starts.

Behaviour of that virtual microphone, measured with alsa-lib and PortAudio
from Debian: it is not paced (tens of millions of frames per second), and
after the input file ends it neither blocks nor returns silence: it replays
the stale contents of its ring buffer (the last two periods read) forever.
So the file must end in digital silence, and only ``--duration-s`` ends a run.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest
import soxr
from conftest import SR, tone_stream

from wakeword.audio.sources import ArraySource, MicrophoneSource
from wakeword.classifiers.tone import ToneClassifier
from wakeword.engine import Engine
from wakeword.errors import DeviceError

# --- a fake PortAudio stream ----------------------------------------------------


@dataclass
class FakeStatus:
    """The two things ``MicrophoneSource`` reads from sounddevice's ``CallbackFlags``."""

    input_overflow: bool = False

    def __bool__(self) -> bool:
        return self.input_overflow


class FakeStream:
    """Plays ``signal`` (float, at ``samplerate``) into ``callback`` in ``blocksize`` blocks.

    Like PortAudio, it converts to the requested ``dtype`` and writes every
    block into the same ``indata`` array, so a callback that keeps a reference
    instead of copying sees its data overwritten. ``burst``: deliver every
    block before ``start()`` returns (a consumer that fell behind).
    ``overflow_blocks``: indices of blocks flagged ``input_overflow``.
    ``after_end``: ``"inactive"`` (the device died) or ``"idle"`` (stays
    active, delivers nothing, until stopped).
    """

    def __init__(
        self,
        signal,
        *,
        device,
        samplerate,
        channels,
        dtype,
        blocksize,
        callback,
        burst=False,
        overflow_blocks=(),
        after_end="inactive",
        start_error=None,
    ):
        assert channels == 1
        self.signal = np.asarray(signal, dtype=np.float64)
        self.device = device
        self.samplerate = samplerate
        self.dtype = np.dtype(dtype)
        self.blocksize = blocksize
        self.callback = callback
        self.burst = burst
        self.overflow_blocks = set(overflow_blocks)
        self.after_end = after_end
        self.start_error = start_error
        self.delivered = 0
        self.stopped = self.closed = False
        self._halt = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        if self.stopped:
            return False
        return self.after_end == "idle" or not self._done.is_set()

    def start(self) -> None:
        if self.start_error is not None:
            raise self.start_error
        self._thread = threading.Thread(target=self._play, name="fake-portaudio")
        self._thread.start()
        if self.burst:
            self._done.wait(timeout=10)

    def _play(self) -> None:
        indata = np.zeros((self.blocksize, 1), dtype=self.dtype)
        n_blocks = self.signal.shape[0] // self.blocksize
        for k in range(n_blocks):
            if self._halt.is_set():
                break
            x = self.signal[k * self.blocksize : (k + 1) * self.blocksize]
            if self.dtype.kind == "i":
                indata[:, 0] = np.clip(np.round(x * 32768), -32768, 32767)
            else:
                indata[:, 0] = x
            self.callback(indata, self.blocksize, None, FakeStatus(k in self.overflow_blocks))
            self.delivered += 1
            if not self.burst:
                time.sleep(0.0005)  # let the consumer run, like a device would
        self._done.set()

    def stop(self) -> None:
        self.stopped = True
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def close(self) -> None:
        self.closed = True


class FakeDevice:
    """A ``stream_factory``: records the arguments and the streams it made."""

    def __init__(self, signal, **options) -> None:
        self.signal = signal
        self.options = options
        self.calls: list[dict] = []
        self.streams: list[FakeStream] = []

    def __call__(self, **kwargs) -> FakeStream:
        self.calls.append(kwargs)
        stream = FakeStream(self.signal, **kwargs, **self.options)
        self.streams.append(stream)
        return stream


def collect(source: MicrophoneSource) -> list[np.ndarray]:
    return [block.copy() for block in source.blocks()]


# --- unit tests ---------------------------------------------------------------


def test_blocks_arrive_as_16k_mono_float32_from_a_44k1_device():
    rate = 44_100
    t = np.arange(rate) / rate
    signal = 0.5 * np.sin(2 * np.pi * 1000.0 * t)
    device = FakeDevice(signal)
    source = MicrophoneSource(device="fake", block_ms=50, duration_s=1.0, stream_factory=device, rate=rate)
    blocks = collect(source)

    call = device.calls[0]
    assert (call["samplerate"], call["channels"], call["blocksize"]) == (rate, 1, 2205)
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    out = np.concatenate(blocks)
    assert out.shape == (SR,)  # exactly 1 s at 16 kHz, the resampler flushed
    reference = soxr.resample(signal.astype(np.float32), rate, SR)
    # streaming and one-shot soxr agree away from the edges, up to int16 quantisation
    np.testing.assert_allclose(out[800:-800], reference[800:-800], atol=2e-3)
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * SR / out.size - 1000.0) <= 1.0
    stream = device.streams[0]
    assert stream.stopped and stream.closed and not stream._thread.is_alive()


def test_a_full_queue_drops_whole_blocks_and_counts_them():
    # an exact ramp: each delivered sample says where it came from
    block = 800
    signal = (np.arange(20 * block) - 8000) / 32768.0
    device = FakeDevice(signal, burst=True, after_end="idle")
    source = MicrophoneSource(block_ms=50, queue_blocks=4, duration_s=4 * block / SR, stream_factory=device, rate=SR)
    out = np.concatenate(collect(source))
    assert device.streams[0].delivered == 20
    assert source.dropped_blocks == 16
    # the first four blocks survive, intact: copied out of the reused indata buffer
    np.testing.assert_array_equal(out, signal[: 4 * block].astype(np.float32))


def test_input_overflow_flags_are_counted_and_the_audio_kept():
    block = 800
    signal = (np.arange(10 * block) - 4000) / 32768.0
    device = FakeDevice(signal, overflow_blocks=(2, 3, 7), after_end="idle")
    source = MicrophoneSource(block_ms=50, duration_s=10 * block / SR, stream_factory=device, rate=SR)
    out = np.concatenate(collect(source))
    assert source.overflows == 3
    assert source.dropped_blocks == 0
    np.testing.assert_array_equal(out, signal.astype(np.float32))


def test_a_factory_that_raises_becomes_a_device_error():
    def broken(**kwargs):
        raise RuntimeError("device busy")

    source = MicrophoneSource(device="usb", stream_factory=broken)
    with pytest.raises(DeviceError, match="device busy") as info:
        next(source.blocks())
    assert isinstance(info.value.__cause__, RuntimeError)


def test_a_stream_that_fails_to_start_is_closed_and_reported():
    device = FakeDevice(np.zeros(SR), start_error=RuntimeError("invalid sample rate"))
    source = MicrophoneSource(stream_factory=device)
    with pytest.raises(DeviceError, match="invalid sample rate"):
        next(source.blocks())
    assert device.streams[0].closed


def in_a_thread(fn) -> threading.Thread:
    """Run ``fn`` on a daemon thread, so that a ``join(timeout=...)`` can guard the test against a hang."""
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def test_a_stream_that_goes_inactive_without_data_is_a_device_error():
    device = FakeDevice(np.zeros(0), after_end="inactive")
    source = MicrophoneSource(device="usb", stream_factory=device)
    raised: list[BaseException] = []

    def consume() -> None:
        with pytest.raises(DeviceError, match="stopped unexpectedly") as info:
            collect(source)
        raised.append(info.value)

    consumer = in_a_thread(consume)
    consumer.join(timeout=60)  # a hang guard only
    assert not consumer.is_alive(), "blocks() kept waiting on a dead stream"
    assert len(raised) == 1  # the dead stream was noticed and reported, not waited on forever
    assert device.streams[0].closed


@pytest.mark.parametrize("rate", [16_000, 48_000])
def test_duration_stops_after_exactly_that_much_audio(rate):
    signal = 0.1 * np.sin(2 * np.pi * 300.0 * np.arange(3 * rate) / rate)
    device = FakeDevice(signal, after_end="idle")
    # 1.23 s is not a whole number of 50 ms blocks: the last block is cut
    source = MicrophoneSource(block_ms=50, duration_s=1.23, stream_factory=device, rate=rate)
    out = np.concatenate(collect(source))
    assert out.shape == (round(1.23 * SR),)
    if rate == SR:
        expected = signal[: out.size]
        if device.calls[0]["dtype"] == "int16":
            expected = np.round(expected * 32768) / 32768
        np.testing.assert_array_equal(out, expected.astype(np.float32))
    stream = device.streams[0]
    assert stream.stopped and stream.closed
    assert stream.delivered < 60  # 3 s of 50 ms blocks: it did not read to the end


def test_stop_from_another_thread_ends_the_stream():
    device = FakeDevice(np.zeros(SR // 10), after_end="idle")
    source = MicrophoneSource(stream_factory=device, rate=SR)
    got: list[np.ndarray] = []
    idle = threading.Event()

    def consume() -> None:
        for block in source.blocks():
            got.append(block.copy())
            if sum(map(len, got)) == SR // 10:
                idle.set()  # everything delivered: the idle stream keeps blocks() waiting from now on

    consumer = in_a_thread(consume)
    assert idle.wait(60)
    assert consumer.is_alive()  # only stop() can end an idle stream
    source.stop()  # from this thread, not the consumer's
    consumer.join(timeout=60)  # a hang guard only
    assert not consumer.is_alive(), "stop() did not end blocks()"
    assert sum(map(len, got)) == SR // 10
    assert device.streams[0].stopped and device.streams[0].closed


def test_engine_on_a_48k_microphone_detects_what_it_detects_in_the_array():
    stream16 = tone_stream(bursts=[(440.0, 1.0, 0.8), (660.0, 3.0, 0.7)], duration_s=5.0)
    signal48 = soxr.resample(stream16, SR, 48_000)
    device = FakeDevice(signal48, after_end="idle")
    mic = MicrophoneSource(duration_s=5.0, stream_factory=device, rate=48_000)
    with Engine(ToneClassifier()) as engine:
        from_mic = [(e.keyword, e.time_s) for e in engine.run(mic)]
    with Engine(ToneClassifier()) as engine:
        from_array = [(e.keyword, e.time_s) for e in engine.run(ArraySource(stream16))]
    assert [k for k, _ in from_mic] == ["marvin", "sheila"]
    assert [k for k, _ in from_array] == ["marvin", "sheila"]
    for (_, t_mic), (_, t_array) in zip(from_mic, from_array):
        assert abs(t_mic - t_array) <= 0.1


# --- real PortAudio through ALSA's file plugin ------------------------------------

requires_portaudio = pytest.mark.skipif(
    ctypes.util.find_library("portaudio") is None,
    reason="libportaudio2 is not installed (apt-get install libportaudio2)",
)

ASOUNDRC = """\
pcm.filemic {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{infile}"
    format "raw"
}}
pcm.!default {{ type plug; slave.pcm "filemic" }}
"""

BURST_START_S, BURST_S = 1.0, 0.8
FILE_S = 3.0  # must fit the source's queue: 64 blocks x 50 ms = 3.2 s (the device is not paced)
SILENT_TAIL_S = 0.5  # digital silence: what the device replays after the end of the file


def wakeword(home, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home)}
    env.pop("ALSA_CONFIG_PATH", None)
    return subprocess.run([sys.executable, "-m", "wakeword", *args], env=env, capture_output=True, timeout=60)


def stderr_lines(proc: subprocess.CompletedProcess) -> list[str]:
    # alsa-lib may print its own diagnostics on some hosts; they are not ours to judge
    return [line for line in proc.stderr.decode().splitlines() if not line.startswith("ALSA lib")]


@pytest.fixture(scope="module")
def filemic(tmp_path_factory):
    """A HOME whose ~/.asoundrc defines ``filemic``, reading a tone burst at the device's own rate."""
    home = tmp_path_factory.mktemp("home")
    infile = home / "input.raw"
    infile.write_bytes(b"\0\0" * 1600)  # the plugin opens it when the device is probed
    (home / ".asoundrc").write_text(ASOUNDRC.format(infile=infile))
    proc = wakeword(home, "devices", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    devices = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    mic = next(d for d in devices if d["name"] == "filemic")
    rate = int(mic["default_rate"])  # MicrophoneSource opens the device at this rate

    audible_s = FILE_S - SILENT_TAIL_S
    x16 = tone_stream(bursts=[(440.0, BURST_START_S, BURST_S)], duration_s=audible_s, noise=0.003, seed=1)
    x = soxr.resample(x16, SR, rate) if rate != SR else x16
    pcm = np.zeros(int(FILE_S * rate), dtype="<i2")
    pcm[: x.shape[0]] = np.clip(np.round(x * 32768), -32768, 32767)
    infile.write_bytes(pcm.tobytes())
    return {"home": home, "rate": rate, "pcm": pcm, "devices": devices}


@requires_portaudio
def test_devices_lists_the_virtual_microphone(filemic):
    mic = next(d for d in filemic["devices"] if d["name"] == "filemic")
    assert mic["channels"] >= 1 and mic["default_rate"] > 0
    assert set(mic) == {"index", "name", "channels", "default_rate", "default"}


def reference_events(filemic) -> list[tuple[str, float]]:
    """The same samples, in the same 50 ms blocks, through the in-process engine."""
    rate = filemic["rate"]
    source = ArraySource(filemic["pcm"], sample_rate=rate, block_size=int(round(rate * 0.05)))
    with Engine(ToneClassifier()) as engine:
        return [(e.keyword, e.time_s) for e in engine.run(source)]


@requires_portaudio
@pytest.mark.parametrize("duration_s", [FILE_S, FILE_S + 2.0], ids=["whole-file", "past-end-of-file"])
def test_listen_on_the_virtual_microphone_detects_the_burst_on_time(filemic, duration_s):
    # --duration-s ends the run although the device never runs dry: wakeword() fails on a hang (timeout=60)
    proc = wakeword(
        filemic["home"],
        "listen",
        "--device",
        "filemic",
        "--duration-s",
        str(duration_s),
        "--json",
        "--model",
        "tone",
        "--no-handoff",
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()
    events = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [e["keyword"] for e in events] == ["marvin"], events
    t = events[0]["time_s"]
    assert BURST_START_S <= t <= BURST_START_S + 0.2
    [(_, t_ref)] = reference_events(filemic)
    assert abs(t - t_ref) <= 0.2


@requires_portaudio
def test_listen_on_an_unknown_device_is_a_one_line_error(filemic):
    proc = wakeword(
        filemic["home"], "listen", "--device", "nosuchmic", "--duration-s", "1", "--model", "tone", "--no-handoff"
    )
    lines = stderr_lines(proc)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr.decode()
    assert len(lines) == 1, lines
    assert lines[0].startswith("wakeword: error: ") and "nosuchmic" in lines[0]
    assert proc.stdout == b""
