"""The command line: outputs, configuration, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import BURSTS, SR, run_cli_torch_free


def wakeword(*args: str, stdin: bytes | None = None, cwd=None) -> subprocess.CompletedProcess:
    """Run the CLI; ``run`` and ``listen`` get the deterministic tone classifier unless a model is named."""
    if args and args[0] in ("run", "listen") and "--model" not in args and "--help" not in args:
        args = (*args, "--model", "tone", "--no-handoff")
    return subprocess.run(
        [sys.executable, "-m", "wakeword", *args], input=stdin, capture_output=True, timeout=120, cwd=cwd
    )


def json_events(proc: subprocess.CompletedProcess) -> list[dict]:
    assert proc.returncode == 0, proc.stderr.decode()
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    err = proc.stderr.decode()
    assert proc.returncode != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("wakeword: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert proc.stdout == b""


def test_run_prints_one_json_object_per_detection(stream_wav):
    events = json_events(wakeword("run", "--input", stream_wav, "--json"))
    assert [e["keyword"] for e in events] == ["marvin", "sheila", "marvin", "go", "marvin"]
    for event, (_, start, _) in zip(events, BURSTS):
        assert set(event) == {"event", "keyword", "score", "time_s"}
        assert event["event"] == "detection"
        assert start < event["time_s"] < start + 0.5
        assert 0.5 <= event["score"] <= 1.0


def test_raw_stdin_at_another_rate_gives_the_same_events(stream, stream_wav):
    reference = json_events(wakeword("run", "--input", stream_wav, "--json"))
    at8k = soxr.resample(stream, SR, 8000)
    pcm = (np.clip(at8k, -1, 1) * 32767).astype("<i2").tobytes()
    events = json_events(wakeword("run", "--input", "-", "--rate", "8000", "--json", stdin=pcm))
    assert [(e["keyword"], e["time_s"]) for e in events] == [(e["keyword"], e["time_s"]) for e in reference]
    stereo = np.stack([stream, stream], axis=1).astype("<f4").tobytes()
    events = json_events(wakeword("run", "-i", "-", "--channels", "2", "--format", "f32le", "--json", stdin=stereo))
    assert [(e["keyword"], e["time_s"]) for e in events] == [(e["keyword"], e["time_s"]) for e in reference]


def test_text_output_is_one_line_per_detection(stream_wav):
    proc = wakeword("run", "--input", stream_wav)
    lines = proc.stdout.decode().splitlines()
    assert proc.returncode == 0 and len(lines) == len(BURSTS)
    assert lines[0].split()[1:3] == ["detection", "marvin"]


@pytest.fixture
def bad_files(tmp_path, stream_wav):
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), SR)
    data = open(stream_wav, "rb").read()
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(data[: len(data) // 2])
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(data[:40])
    nan = tmp_path / "nan.wav"
    x = np.zeros(SR, np.float32)
    x[12_000] = np.nan
    sf.write(nan, x, SR, subtype="FLOAT")
    return {
        "text": text,
        "empty": empty,
        "truncated": truncated,
        "header": header_only,
        "nan": nan,
        "missing": tmp_path / "missing.wav",
        "dir": tmp_path,
    }


@pytest.mark.parametrize(
    "case, fragments",
    [
        ("missing", ["no such file"]),
        ("text", ["not a readable audio file"]),
        ("empty", ["no audio frames"]),
        ("truncated", ["truncated"]),
        ("header", ["not a readable audio file"]),
        ("nan", ["non-finite sample", "0.750 s"]),
        ("dir", ["is a directory"]),
    ],
)
def test_bad_input_files_give_a_one_line_error(bad_files, case, fragments):
    assert_one_line_error(wakeword("run", "--input", str(bad_files[case])), str(bad_files[case]), *fragments)


def test_bad_options_give_a_one_line_error(stream_wav, tmp_path):
    assert_one_line_error(wakeword("run", "-i", stream_wav, "--threshold", "1.5"), "threshold")
    assert_one_line_error(wakeword("run", "-i", stream_wav, "--keywords", "alexa"), "alexa", "marvin")
    assert_one_line_error(wakeword("run", "-i", stream_wav, "--model", "nosuchmodel"), "nosuchmodel")
    assert_one_line_error(wakeword("run", "-i", stream_wav, "--hop-ms", "abc"), "hop-ms")
    assert_one_line_error(wakeword("run", "-i", "-", "--rate", "0", stdin=b"\0\0"), "rate")
    assert_one_line_error(wakeword("run", "-i", "-", stdin=b""), "no audio")
    assert_one_line_error(wakeword("listen", "--device", "no-such-microphone", "--duration-s", "1"), "device")


def test_config_file_keys_match_the_flags(stream_wav, tmp_path):
    config = tmp_path / "wakeword.toml"
    config.write_text('keywords = ["sheila"]\nhop_ms = 80\njson = true\n[thresholds]\nsheila = 0.6\n')
    events = json_events(wakeword("run", "-i", stream_wav, "--config", str(config)))
    assert [e["keyword"] for e in events] == ["sheila"]
    assert round(events[0]["time_s"] * SR) % 1280 == 0  # 80 ms hops
    # a flag given on the command line wins over the file
    events = json_events(wakeword("run", "-i", stream_wav, "--config", str(config), "--keywords", "go"))
    assert [e["keyword"] for e in events] == ["go"]


def test_save_config_round_trips_and_never_overwrites_without_force(stream_wav, tmp_path):
    path = tmp_path / "saved.toml"
    proc = wakeword("run", "-i", stream_wav, "--hop-ms", "50", "--keywords", "go", "--save-config", str(path))
    assert proc.returncode == 0, proc.stderr.decode()
    text = path.read_text()
    assert "hop_ms = 50" in text and 'keywords = [\n    "go",\n]' in text or 'keywords = ["go"]' in text
    events = json_events(wakeword("run", "-i", stream_wav, "--config", str(path), "--json"))
    assert [e["keyword"] for e in events] == ["go"]
    assert_one_line_error(wakeword("run", "-i", stream_wav, "--save-config", str(path)), "already exists")
    assert path.read_text() == text
    assert wakeword("run", "-i", stream_wav, "--save-config", str(path), "--force").returncode == 0


def test_bad_config_files_give_a_one_line_error(stream_wav, tmp_path):
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("hopms = 80\n")
    assert_one_line_error(wakeword("run", "-i", stream_wav, "--config", str(unknown)), "hopms", "valid:")
    wrong_type = tmp_path / "type.toml"
    wrong_type.write_text('hop_ms = "fast"\n')
    assert_one_line_error(wakeword("run", "-i", stream_wav, "--config", str(wrong_type)), "hop_ms")
    broken = tmp_path / "broken.toml"
    broken.write_text("hop_ms = [\n")
    assert_one_line_error(wakeword("run", "-i", stream_wav, "--config", str(broken)), "invalid TOML")
    assert_one_line_error(wakeword("run", "-i", stream_wav, "--config", str(tmp_path / "nope.toml")), "not found")
    unwritable = tmp_path / "no-such-dir" / "out.toml"
    assert_one_line_error(wakeword("run", "-i", stream_wav, "--save-config", str(unwritable)), "cannot write")


@pytest.mark.parametrize("command", [[], ["run"], ["listen"], ["devices"]])
def test_help_everywhere(command):
    proc = wakeword(*command, "--help")
    assert proc.returncode == 0 and b"usage: wakeword" in proc.stdout


def test_running_the_engine_imports_neither_torch_nor_transformers(stream_wav):
    out = run_cli_torch_free("run", "--input", stream_wav, "--json", "--model", "tone", "--no-handoff")
    assert '"keyword": "marvin"' in out
