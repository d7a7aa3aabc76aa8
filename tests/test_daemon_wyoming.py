"""The Wyoming server against the real ``wyoming`` client classes, as Home Assistant talks to it."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("wyoming")
from test_cli import assert_one_line_error  # noqa: E402
from wyoming.audio import AudioChunk, AudioStart, AudioStop  # noqa: E402
from wyoming.client import AsyncTcpClient  # noqa: E402
from wyoming.info import Describe, Info  # noqa: E402
from wyoming.wake import Detect, Detection, NotDetected  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "models" / "examples" / "marvin-stream.wav"
MARVIN_S = 4.88  # where `wakeword run` first detects it (models/examples/marvin-stream.json)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wakeword",
            "serve",
            "--no-listen",
            "--control",
            "none",
            "--wyoming",
            f"tcp://127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(proc.stderr.read().decode()) from None
            time.sleep(0.1)
    yield port
    proc.terminate()
    assert proc.wait(timeout=10) == 0


async def stream(port: int, audio: np.ndarray, rate: int, names=None, chunk_frames: int = 1024):
    """Describe, detect, then stream ``audio`` (int16, frames x channels) like Home Assistant; the replies."""
    channels = audio.shape[1]
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        info = Info.from_event(await asyncio.wait_for(client.read_event(), 30))
        await client.write_event(Detect(names=names).event())
        await client.write_event(AudioStart(rate=rate, width=2, channels=channels, timestamp=0).event())
        for i in range(0, audio.shape[0], chunk_frames):
            chunk = audio[i : i + chunk_frames]
            await client.write_event(
                AudioChunk(
                    rate=rate, width=2, channels=channels, audio=chunk.tobytes(), timestamp=i * 1000 // rate
                ).event()
            )
        await client.write_event(AudioStop().event())
        replies = []
        while not replies or not (Detection.is_type(replies[-1].type) or NotDetected.is_type(replies[-1].type)):
            replies.append(await asyncio.wait_for(client.read_event(), 60))
        return info, replies


def test_clients_at_once_get_info_a_detection_and_not_detected(server):
    marvin, rate = sf.read(EXAMPLE, dtype="int16", always_2d=True)
    assert rate == 16_000
    silence_44k_stereo = np.zeros((44_100 * 3, 2), dtype=np.int16)

    async def both():
        return await asyncio.gather(
            stream(server, marvin, rate, names=["marvin"]),
            stream(server, silence_44k_stereo, 44_100),
            stream(server, marvin, rate, names=["sheila"]),  # a filter that excludes the keyword
        )

    (info, replies), (_, quiet), (_, filtered) = asyncio.run(both())
    [program] = info.wake
    assert [m.name for m in program.models] == ["marvin"] and program.models[0].phrase == "marvin"
    assert program.installed and program.name == "wakeword"
    detection = Detection.from_event(replies[0])
    assert detection.name == "marvin"
    # the chunk in which it fired: 1024-frame chunks, so within 64 ms (+ one hop) of `run`'s first detection
    assert abs(detection.timestamp / 1000 - MARVIN_S) <= 0.2
    assert [e.type for e in quiet] == ["not-detected"]
    assert [e.type for e in filtered] == ["not-detected"]


def test_a_client_that_hangs_up_before_its_detection_leaves_the_server_running(server):
    marvin, rate = sf.read(EXAMPLE, dtype="int16", always_2d=True)

    async def send_and_hang_up() -> None:  # the server writes its detections into a closed socket
        async with AsyncTcpClient("127.0.0.1", server) as client:
            await client.write_event(AudioStart(rate=rate, width=2, channels=1, timestamp=0).event())
            await client.write_event(AudioChunk(rate=rate, width=2, channels=1, audio=marvin.tobytes()).event())
            await client.write_event(AudioStop().event())

    for _ in range(3):
        asyncio.run(send_and_hang_up())
    time.sleep(3)  # the detections are written after the client has gone
    info, replies = asyncio.run(stream(server, marvin, rate, names=["marvin"]))
    assert Detection.from_event(replies[0]).name == "marvin"


def test_wyoming_on_a_remote_address_needs_allow_remote():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "wakeword",
            "serve",
            "--no-listen",
            "--control",
            "none",
            "--wyoming",
            "tcp://0.0.0.0:10400",
        ],
        capture_output=True,
        timeout=60,
    )
    assert_one_line_error(proc, "--wyoming", "non-loopback", "--allow-remote")
