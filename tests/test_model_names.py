"""One way to name a model everywhere: run, listen, serve, classify, eval and bench take the same --model values.

Each value (``default``, the shipped model's directory, a ``NAME`` backend) must load in every command, and a
name that is none of them must fail in every command with the same one-line error, before any audio is read.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import soundfile as sf

from wakeword.classifiers.shipped import default_model_dir, models_dir
from wakeword.errors import DeviceError, ModelError

COMMANDS = ("run", "listen", "serve", "classify", "eval", "bench")
MODELS = ("default", str(default_model_dir()), "tone")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """2.5 s of the bundled example around its second "marvin" (12.946-13.496 s), and an eval manifest of it."""
    root = tmp_path_factory.mktemp("model-names")
    audio, rate = sf.read(models_dir() / "examples" / "marvin-stream.wav", dtype="float32")
    sf.write(root / "clip.wav", audio[int(11.5 * rate) : int(14.0 * rate)], rate)
    (root / "m.csv").write_text("path,label,keyword,onset_s,offset_s\nclip.wav,,marvin,1.446,1.996\n")
    return root


def argv(command: str, model: str, data) -> list[str]:
    clip = str(data / "clip.wav")
    return {
        "run": ["run", "--input", clip, "--no-handoff"],
        "listen": ["listen", "--duration-s", "1", "--no-handoff"],
        "serve": ["serve", "--input", clip, "--no-handoff", "--control", f"unix:{data}/control.sock"],
        "classify": ["classify", clip],
        "eval": ["eval", "--data", str(data / "m.csv")],
        "bench": ["bench", "--input", clip],
    }[command] + ["--model", model]


def wakeword(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wakeword", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_every_model_name(command, model, data):
    proc = wakeword(*argv(command, model, data))
    if command == "listen":  # no sound card here: the model loads, then the device fails
        assert proc.returncode == DeviceError.exit_code, proc.stderr
        assert "model" not in proc.stderr.lower() and "Traceback" not in proc.stderr, proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_model_is_the_same_one_line_error_everywhere(command, data):
    proc = wakeword(*argv(command, "no-such-model", data))
    assert proc.returncode == ModelError.exit_code
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "wakeword: error: unknown model 'no-such-model': not a directory and not one of: default, onnx, "
        "tone (or NAME:SPEC, e.g. onnx:DIR)"
    ], proc.stderr


def test_classify_without_a_model_prints_the_default_models_top_5(data):
    """`wakeword classify FILE` on a fresh install: the shipped model, the transformers pipeline's shape."""
    import json

    from wakeword.classifiers import load_classifier

    proc = wakeword("classify", str(data / "clip.wav"))
    assert proc.returncode == 0, proc.stderr
    predictions = json.loads(proc.stdout)
    labels = load_classifier("default").info.labels
    assert [set(p) for p in predictions] == [{"score", "label"}] * 5
    assert all(p["label"] in labels for p in predictions)
    scores = [p["score"] for p in predictions]
    assert scores == sorted(scores, reverse=True) and 0.0 <= scores[-1] <= scores[0] <= 1.0
    assert predictions[0]["label"] == "marvin"  # the clip holds one real "marvin"
