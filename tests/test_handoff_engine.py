"""The hand-off wired into the engine: capture after a detection, transcription off the audio path."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import SR, tone_stream

from wakeword import ArraySource, Engine, EngineConfig, ToneClassifier
from wakeword.asr.base import TranscriptResult
from wakeword.events import Detection, Transcript, event_to_dict
from wakeword.stream.capture import CaptureConfig

# marvin (440 Hz) then a "command" (1 kHz, no keyword), three times
WAKE_AND_COMMAND = [
    (440.0, 1.0, 0.5),
    (1000.0, 1.9, 1.2),
    (440.0, 5.5, 0.5),
    (1000.0, 6.4, 0.8),
    (440.0, 9.5, 0.5),
    (1000.0, 10.4, 1.0),
]


class SlowTranscriber:
    """Takes ``delay_s`` per command and reports how long the audio it got was."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.lengths: list[int] = []
        self.threads: set[str] = set()

    def transcribe(self, audio, language=None, languages=None) -> TranscriptResult:
        self.threads.add(threading.current_thread().name)
        self.lengths.append(len(audio))
        time.sleep(self.delay_s)
        return TranscriptResult(
            text=f"{len(audio)} samples",
            language=language or "en",
            language_probability=1.0,
            duration_s=len(audio) / SR,
        )


class GatedTranscriber(SlowTranscriber):
    """Blocks every command until ``gate`` is set: a transcription slower than anything the test does."""

    def __init__(self) -> None:
        super().__init__(delay_s=0.0)
        self.gate = threading.Event()

    def transcribe(self, audio, language=None, languages=None) -> TranscriptResult:
        self.gate.wait(60)  # a hang guard only: the test opens the gate
        return super().transcribe(audio, language, languages)


@pytest.fixture(scope="module")
def stream():
    return tone_stream(WAKE_AND_COMMAND, duration_s=13.0)


def test_a_slow_transcription_does_not_make_the_listener_miss_a_wake_word(stream):
    plain = Engine(ToneClassifier()).run(ArraySource(stream))
    slow = GatedTranscriber()
    events = []
    with Engine(ToneClassifier(), transcriber=slow) as engine:
        for event in engine.stream(ArraySource(stream, block_size=1600)):
            events.append(event)
            if not slow.gate.is_set() and sum(isinstance(e, Detection) for e in events) == len(plain):
                # every wake word was heard while the first command was still stuck in the transcriber
                assert not any(isinstance(e, Transcript) for e in events) and engine.worker.completed == 0
                slow.gate.set()
        assert slow.gate.is_set() and engine.worker.completed == 3  # flush() waited for every transcript
    detections = [e for e in events if isinstance(e, Detection)]
    transcripts = [e for e in events if isinstance(e, Transcript)]
    assert detections == plain  # the same detections, at the same samples, with or without the hand-off
    assert [d.keyword for d in detections] == ["marvin"] * 3
    assert len(transcripts) == 3 and slow.threads == {"wakeword-transcriber"}
    assert [type(e) for e in events] == [Detection] * 3 + [Transcript] * 3  # the transcripts came after the gate
    for detection, transcript in zip(detections, transcripts):
        assert transcript.start_sample == detection.sample  # the command starts where the wake word fired


def test_the_command_ends_after_the_configured_silence(stream):
    slow = SlowTranscriber(0.0)
    config = EngineConfig(handoff=CaptureConfig(silence_s=0.5, max_s=10.0))
    with Engine(ToneClassifier(), config, transcriber=slow) as engine:
        transcripts = [e for e in engine.run(ArraySource(stream)) if isinstance(e, Transcript)]
    for transcript, (_, cmd_start, cmd_dur) in zip(transcripts, WAKE_AND_COMMAND[1::2]):
        cmd_end = cmd_start + cmd_dur
        assert cmd_end + 0.5 <= transcript.end_sample / SR <= cmd_end + 0.5 + 0.2
        assert transcript.end_sample - transcript.start_sample == slow.lengths[transcripts.index(transcript)]
    assert event_to_dict(transcripts[0])["event"] == "transcript"


def test_max_length_cuts_a_command_that_never_stops():
    endless = tone_stream([(440.0, 0.5, 0.5), (1000.0, 1.2, 8.0)], duration_s=10.0)
    slow = SlowTranscriber(0.0)
    config = EngineConfig(handoff=CaptureConfig(silence_s=0.8, max_s=3.0))
    with Engine(ToneClassifier(), config, transcriber=slow) as engine:
        [transcript] = [e for e in engine.run(ArraySource(endless)) if isinstance(e, Transcript)]
    assert transcript.end_sample - transcript.start_sample == 3 * SR


def test_transcript_callbacks_are_separate_from_keyword_callbacks(stream):
    got: dict[str, list] = {"keyword": [], "transcript": []}
    with Engine(ToneClassifier(), transcriber=SlowTranscriber(0.0)) as engine:
        engine.on("marvin", lambda e: got["keyword"].append(e))
        engine.on_transcript(lambda e: got["transcript"].append(e))
        engine.run(ArraySource(stream))
        engine.wait_callbacks()
    assert all(isinstance(e, Detection) for e in got["keyword"]) and len(got["keyword"]) == 3
    assert all(isinstance(e, Transcript) for e in got["transcript"]) and len(got["transcript"]) == 3


def test_the_real_base_model_transcribes_the_command_in_the_bundled_example():
    pytest.importorskip("faster_whisper", reason="needs the whisper extra: pip install 'wakeword[whisper]'")
    import json

    from conftest import run_cli_torch_free

    from wakeword.classifiers.shipped import models_dir

    example = models_dir() / "examples" / "marvin-stream.wav"
    out = run_cli_torch_free("run", "--input", str(example), "--json", "--languages", "en,fr,de,es,it")
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    transcripts = [e for e in events if e["event"] == "transcript"]
    detections = [e for e in events if e["event"] == "detection"]
    assert len(transcripts) == len(detections) >= 1
    # the second wake word is followed by real speech: "four queen of clubs" (CMU test recording)
    last = transcripts[-1]
    assert last["language"] == "en"
    words = last["text"].lower().replace(",", " ").replace(".", " ").split()
    assert "queen" in words and ("four" in words or "4" in words)


def test_the_five_language_command_examples_get_their_language_and_the_english_text():
    """Wake word, pause, command (en, fr, de, es, it; made by scripts/make_command_examples.py), through the
    default model and the real Whisper base: the language is right and the English word error rate <= 0.2."""
    pytest.importorskip("faster_whisper", reason="needs the whisper extra: pip install 'wakeword[whisper]'")
    import json

    from test_handoff import word_error_rate

    from wakeword import FileSource, load_classifier
    from wakeword.asr.base import make_transcriber
    from wakeword.classifiers.shipped import models_dir
    from wakeword.config import Settings

    folder = models_dir() / "examples" / "commands"
    entries = json.loads((folder / "commands.json").read_text())
    assert sorted(e["language"] for e in entries) == ["de", "en", "es", "fr", "it"]
    transcriber = make_transcriber("faster-whisper")
    classifier = load_classifier("default")
    for entry in entries:
        engine = Engine(
            classifier, Settings().engine_config(), transcriber=transcriber, languages=("en", "fr", "de", "es", "it")
        )
        with engine:
            events = engine.run(FileSource(folder / entry["file"]))
        transcripts = [e for e in events if isinstance(e, Transcript)]
        assert len(transcripts) == 1, (entry["file"], events)
        assert transcripts[0].language == entry["language"], (entry["file"], transcripts[0])
        if entry["language"] == "en":
            assert word_error_rate(entry["text"], transcripts[0].text) <= 0.2, transcripts[0].text
