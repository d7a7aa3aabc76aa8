"""The daemon's parts in-process: hook templates and argv, config tables, addresses,
the event socket with a stalled subscriber, and a source that recovers from device errors."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time

import numpy as np
import pytest
from conftest import SR, tone_stream
from test_microphone import FakeDevice

from wakeword.audio.sources import ArraySource, MicrophoneSource
from wakeword.classifiers.tone import ToneClassifier
from wakeword.config import Settings
from wakeword.daemon.address import parse_address, prepare_unix_path
from wakeword.daemon.events_socket import EventSocketServer
from wakeword.daemon.hooks import HookRunner, render, rules_from_settings, validate_template
from wakeword.daemon.net import NetworkLoop
from wakeword.daemon.recovery import RecoveringSource
from wakeword.daemon.serve import Daemon
from wakeword.engine import Engine
from wakeword.errors import ConfigError, DeviceError
from wakeword.events import Detection, Transcript

ARGV_DUMP = [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))"]


def transcript(text: str) -> Transcript:
    return Transcript(
        keyword="marvin",
        language="en",
        language_probability=0.9,
        text=text,
        start_sample=16000,
        end_sample=32000,
        latency_s=0.1,
    )


# --- hooks ----------------------------------------------------------------------


def test_config_commands_are_split_once_into_argv_and_tables_per_keyword():
    s = Settings.from_mapping(
        {
            "exec": ["notify-send 'wake word' {keyword}"],
            "hooks": {"marvin": {"exec": [["say", "{keyword} at {time_s}"]], "exec_transcript": "handle {text}"}},
            "callback": "json:dumps",
        },
        "test.toml",
    )
    assert s.exec == (("notify-send", "wake word", "{keyword}"),)
    assert s.hooks == {
        "marvin": {"exec": (("say", "{keyword} at {time_s}"),), "exec_transcript": (("handle", "{text}"),)}
    }
    assert s.callback == ("json:dumps",)
    # the effective settings survive a TOML round trip (what --save-config writes)
    assert Settings.from_mapping(s.to_mapping(), "again") == s
    rules = rules_from_settings(s)
    assert [(r.keyword, r.kind) for r in rules] == [
        ("*", "detection"),
        ("marvin", "detection"),
        ("marvin", "transcript"),
        ("*", ""),
    ]


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"exec": ["echo 'unclosed"]}, "cannot split"),
        ({"exec": [""]}, "empty command"),
        ({"hooks": {"marvin": {"run": "x"}}}, "hooks.marvin must be a table"),
        ({"hooks": {"marvin": "echo"}}, "hooks.marvin must be a table"),
        ({"exec": [["echo", 3]]}, "expected a command line"),
        ({"hook_concurrency": 0}, "hook_concurrency"),
        ({"log_format": "xml"}, "log_format"),
    ],
)
def test_bad_hook_settings_are_config_errors(values, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_mapping(values, "test.toml")


@pytest.mark.parametrize(
    "arg, fragment",
    [
        ("{keyword.__class__}", "unknown placeholder"),
        ("{keyword[0]}", "unknown placeholder"),
        ("{user}", "unknown placeholder"),
        ("{score:{text}}", "nested"),
        ("{", "bad placeholder"),
    ],
)
def test_templates_refuse_anything_but_plain_placeholders(arg, fragment):
    with pytest.raises(ConfigError, match=fragment):
        validate_template(["echo", arg], "--exec")
    validate_template(["echo", "{keyword}", "{score:.2f}", "{{literal}}"], "--exec")


def test_a_hook_gets_its_argv_with_shell_metacharacters_inert(tmp_path):
    evil = f"; rm -rf ~ && touch {tmp_path}/pwned $(touch {tmp_path}/pwned2) `touch {tmp_path}/pwned3` | cat > {tmp_path}/pwned4 'q\" *"
    out = tmp_path / "argv.json"
    template = (
        *ARGV_DUMP[:2],
        f"import json, sys; open({str(out)!r}, 'w').write(json.dumps(sys.argv[1:]))",
        "{keyword}",
        "text={text}",
        "{language}",
    )
    runner = HookRunner(rules_from_settings(Settings(exec_transcript=(template,))), timeout_s=10, concurrency=1)
    runner.submit(transcript(evil))
    runner.wait()
    runner.close()
    assert json.loads(out.read_text()) == ["marvin", f"text={evil}", "en"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["argv.json"]  # nothing was executed by a shell
    assert runner.as_dict() == {"runs": 1, "failures": 0, "timeouts": 0, "dropped": 0}
    assert render(["{keyword}{{x}}", "{score:.1f}"], {"keyword": "k", "score": 0.25}) == ["k{x}", "0.2"]


def test_hooks_time_out_fail_and_match_keywords_without_stopping(tmp_path):
    marker = tmp_path / "sheila"
    sleepers = tmp_path / "sleepers"  # each sleeper leaves its pid here, and "woke" if it ever wakes up
    sleepers.mkdir()
    sleeper = (
        "import os, sys, time; d = sys.argv[1]; open(os.path.join(d, str(os.getpid())), 'w').close(); "
        "time.sleep(30); open(os.path.join(d, 'woke'), 'w').close()"
    )
    settings = Settings(
        exec=((sys.executable, "-c", sleeper, str(sleepers)), ("false",), ("/no/such/program",)),
        hooks={"sheila": {"exec": ((sys.executable, "-c", f"open({str(marker)!r}, 'w').write('{{keyword}}')"),)}},
    )
    runner = HookRunner(rules_from_settings(settings), timeout_s=0.5, concurrency=4)
    runner.submit(Detection("marvin", 0.9, 16000))  # the per-keyword hook is not for marvin
    runner.submit(Detection("sheila", 0.9, 32000))
    runner.wait()
    runner.close()
    assert marker.read_text() == "sheila"
    stats = runner.as_dict()
    assert stats["runs"] == 7 and stats["timeouts"] == 2 and stats["failures"] == 4  # 2 false + 2 missing
    # the sleepers were killed, not waited for: neither woke up, and those that got to write a pid are gone
    assert not (sleepers / "woke").exists()
    for pid_file in sleepers.iterdir():
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid_file.name), 0)


def test_python_callbacks_by_module_path_and_their_errors_are_counted():
    seen = []
    sys.modules["_wakeword_test_cb"] = type(sys)("_wakeword_test_cb")
    sys.modules["_wakeword_test_cb"].ok = seen.append
    sys.modules["_wakeword_test_cb"].bad = lambda event: 1 / 0
    runner = HookRunner.from_settings(Settings(callback=("_wakeword_test_cb:ok", "_wakeword_test_cb:bad")))
    runner.submit(Detection("marvin", 0.9, 16000))
    runner.wait()
    runner.close()
    assert seen == [Detection("marvin", 0.9, 16000)]
    assert runner.as_dict()["failures"] == 1
    with pytest.raises(ConfigError, match="entry point of wakeword.callbacks"):
        HookRunner.from_settings(Settings(callback=("no-such-callback",)))
    with pytest.raises(ConfigError, match="cannot import"):
        HookRunner.from_settings(Settings(callback=("no_such_module_xyz:f",)))


# --- addresses --------------------------------------------------------------------


def test_addresses_default_to_loopback_and_refuse_remote_unless_allowed(tmp_path):
    assert str(parse_address("tcp://:10400", "--wyoming")) == "tcp://127.0.0.1:10400"
    assert parse_address("tcp://localhost:1", "--events").is_loopback
    assert str(parse_address("tcp://[::1]:9", "--events")) == "tcp://[::1]:9"
    assert parse_address("/run/x.sock", "--events").path == "/run/x.sock"
    assert parse_address("unix:/run/x.sock", "--events").path == "/run/x.sock"
    for remote in ("tcp://0.0.0.0:10400", "tcp://192.168.1.5:10400", "tcp://example.com:1", "tcp://[::]:1"):
        with pytest.raises(ConfigError, match="--allow-remote"):
            parse_address(remote, "--wyoming")
        assert not parse_address(remote, "--wyoming", allow_remote=True).is_loopback
    with pytest.raises(ConfigError, match="tcp://HOST:PORT"):
        parse_address("tcp://127.0.0.1", "--events")
    with pytest.raises(ConfigError, match="expected unix:PATH"):
        parse_address("http://x:1", "--events")
    with pytest.raises(ConfigError, match="--allow-remote"):
        Daemon(Settings(model="tone", handoff=False, events="tcp://0.0.0.0:1"), source_factory=None)


def test_a_unix_socket_path_never_replaces_a_file_or_a_live_server(tmp_path):
    regular = tmp_path / "notes.txt"
    regular.write_text("keep me")
    with pytest.raises(ConfigError, match="not a socket"):
        prepare_unix_path(str(regular), "--events")
    assert regular.read_text() == "keep me"
    live = socket.socket(socket.AF_UNIX)
    live.bind(str(tmp_path / "live.sock"))
    live.listen()
    with pytest.raises(ConfigError, match="already listening"):
        prepare_unix_path(str(tmp_path / "live.sock"), "--events")
    live.close()  # now stale: it is removed and may be reused
    prepare_unix_path(str(tmp_path / "live.sock"), "--events")
    assert not (tmp_path / "live.sock").exists()


# --- the event socket -----------------------------------------------------------------


def test_a_stalled_subscriber_loses_events_but_never_blocks_publishing(tmp_path):
    net = NetworkLoop()
    server = EventSocketServer(net, parse_address(str(tmp_path / "e.sock"), "--events"), queue_size=16)
    server.start()
    try:
        stalled = socket.socket(socket.AF_UNIX)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(str(tmp_path / "e.sock"))  # connects, never reads
        reader = socket.socket(socket.AF_UNIX)
        reader.connect(str(tmp_path / "e.sock"))
        reader.settimeout(10)
        reader_file = reader.makefile("rb")
        while server.subscribers < 2:
            time.sleep(0.01)
        n, batch = 3000, 10  # a batch fits the queue: the live subscriber loses nothing
        received = []
        loop_held, release_loop = threading.Event(), threading.Event()

        def hold_the_loop() -> None:  # runs on the network loop: nothing is fanned out until released
            loop_held.set()
            release_loop.wait(60)  # a hang guard only: the test releases it

        for start in range(0, n, batch):
            if start == 0:
                net.call_soon(hold_the_loop)
                assert loop_held.wait(30)
            for k in range(start, start + batch):
                server.publish(Detection("marvin", 0.9, 160 * k))
            if start == 0:
                # publish only hands the line to the loop: the first batch was published while the loop was busy,
                # so none of it has reached a subscriber's queue or socket yet
                assert server.stats()["published"] == batch and server.stats()["dropped"] == 0
                reader.setblocking(False)
                with pytest.raises(BlockingIOError):
                    reader.recv(1, socket.MSG_PEEK)
                reader.settimeout(10)
                release_loop.set()
            while len(received) < start + batch:  # the live subscriber keeps up, batch by batch
                received.append(json.loads(reader_file.readline()))
        assert [e["time_s"] for e in received] == [round(0.01 * k, 3) for k in range(n)]
        stats = server.stats()
        assert stats["published"] == n and stats["subscribers"] == 2
        # the stalled one filled its socket buffer and its queue, then lost the rest
        assert 0 < stats["dropped"] < n
    finally:
        server.close()
        net.close()
    assert not (tmp_path / "e.sock").exists()


# --- device loss ----------------------------------------------------------------------


class FlakySource:
    """Delivers ``good_blocks`` of the stream, then raises DeviceError; counts opens."""

    def __init__(self, audio: np.ndarray, good_blocks: int | None, name: str) -> None:
        self.audio, self.good_blocks, self.name = audio, good_blocks, name
        self.overflows, self.dropped_blocks = 1, 2

    def blocks(self):
        for k, block in enumerate(ArraySource(self.audio, block_size=1600).blocks()):
            if self.good_blocks is not None and k >= self.good_blocks:
                raise DeviceError(f"{self.name}: device unplugged")
            yield block

    def close(self) -> None:
        pass


def test_recovering_source_reopens_with_backoff_and_counts_everything():
    audio = tone_stream(bursts=[(440.0, 0.5, 0.8)], duration_s=2.0)
    plan = [3, 0, None]  # 3 good blocks then unplugged; an open that fails at once; then healthy
    opened = []

    def open_source():
        if len(opened) == 1:
            opened.append("missing")
            raise DeviceError("no such device")
        good = plan[len(opened)]
        opened.append(good)
        return FlakySource(audio, good, f"mic{len(opened)}")

    class RecordingStop(threading.Event):
        """The source's stop event, whose timed waits are its backoff: record them."""

        def __init__(self) -> None:
            super().__init__()
            self.waits: list[float | None] = []

        def wait(self, timeout: float | None = None) -> bool:
            self.waits.append(timeout)
            return super().wait(timeout)

    source = RecoveringSource(open_source, initial_backoff_s=0.01)
    source._stop = RecordingStop()
    blocks = list(source.blocks())
    assert source._stop.waits == [0.01, 0.02]  # one backoff per failure, doubling from initial_backoff_s
    assert len(opened) == 3 + 0 and source.failures == 2 and source.reconnects == 1
    assert sum(b.shape[0] for b in blocks) == 3 * 1600 + audio.shape[0]
    # counters of retired sources add up: three sources opened, two of them ever delivered
    assert source.overflows == 2 and source.dropped_blocks == 4


def test_daemon_recovers_from_an_injected_failing_microphone_stream():
    """A real MicrophoneSource over a fake PortAudio stream that dies, then a fresh one."""
    audio = tone_stream(bursts=[(440.0, 1.0, 0.8)], duration_s=2.5)
    streams = [FakeDevice(audio[:8000], after_end="inactive"), FakeDevice(audio, after_end="idle")]
    opened = []

    def open_mic():
        device = streams[min(len(opened), 1)]
        opened.append(device)
        return MicrophoneSource(device="usb mic", stream_factory=device, rate=SR, duration_s=2.5)

    out = __import__("io").StringIO()
    daemon = Daemon(
        Settings(model="tone", handoff=False, json=True, control="none"),
        source_factory=open_mic,
        engine_factory=lambda s: Engine(ToneClassifier(), s.engine_config()),
        out=out,
        initial_backoff_s=0.01,
    )
    daemon.start()
    assert daemon.finished.wait(20)
    status = daemon.status()
    daemon.close()
    assert daemon.error is None
    assert len(opened) == 2 and status["reconnects"] == 1 and status["device_errors"] == 1
    assert "stopped unexpectedly" in status["last_device_error"]
    assert status["detections"] == 1 and status["state"] == "ended"
    [event] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert event["keyword"] == "marvin"
    # the daemon's clock runs on across the reconnect: 0.5 s before it, then the burst at 1 s
    assert 1.5 <= event["time_s"] <= 1.8


def test_a_device_chosen_by_name_is_found_again_after_renumbering(monkeypatch):
    """The USB microphone comes back from a replug with another PortAudio index."""
    import types

    import wakeword.audio.sources as audio_module
    from wakeword.audio.sources import InputDevice

    audio = tone_stream(bursts=[(440.0, 0.3, 0.5)], duration_s=1.0)
    layouts = [
        [InputDevice(0, "hw:0 internal", 2, 48000.0, True), InputDevice(3, "USB Mic", 1, 16000.0, False)],
        [InputDevice(0, "hw:0 internal", 2, 48000.0, True), InputDevice(5, "USB Mic", 1, 16000.0, False)],
    ]
    devices = [FakeDevice(audio[:4000], after_end="inactive"), FakeDevice(audio, after_end="idle")]
    calls = []

    def input_stream(**kwargs):
        calls.append(kwargs["device"])
        return devices[len(calls) - 1](**kwargs)

    monkeypatch.setattr(audio_module, "list_input_devices", lambda: layouts[min(len(calls), 1)])
    monkeypatch.setattr(
        audio_module,
        "_sounddevice",
        lambda: types.SimpleNamespace(InputStream=input_stream, PortAudioError=RuntimeError),
    )
    source = RecoveringSource(lambda: MicrophoneSource(device="USB Mic", duration_s=1.0), initial_backoff_s=0.01)
    total = sum(block.shape[0] for block in source.blocks())
    assert calls == [3, 5]
    assert source.reconnects == 1 and total == 4000 + SR


def test_a_callback_from_an_installed_entry_point(tmp_path, monkeypatch):
    dist = tmp_path / "wakeword_lights-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wakeword-lights\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[wakeword.callbacks]\nlights = wakeword_lights:on_event\n")
    (tmp_path / "wakeword_lights.py").write_text("seen = []\ndef on_event(event):\n    seen.append(event.keyword)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    runner = HookRunner.from_settings(Settings(callback=("lights",)))
    runner.submit(Detection("sheila", 0.8, 16000))
    runner.wait()
    runner.close()
    assert sys.modules["wakeword_lights"].seen == ["sheila"]
