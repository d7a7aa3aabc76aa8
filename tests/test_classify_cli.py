"""``wakeword classify`` end to end through the CLI entry point, on a tiny exported AST."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest_export import exported, session_root

from wakeword.classifiers.onnx import OnnxClassifier
from wakeword.cli.app import main

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("optimum.exporters.onnx")
sf = pytest.importorskip("soundfile")

pytestmark = pytest.mark.export
LIBRIVOX = sorted(Path("/usr/share/pocketsphinx/test/data/librivox").glob("*.wav"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return exported("ast", session_root(tmp_path_factory))


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """A directory with three clips: 16 kHz mono, 44.1 kHz stereo, 8 kHz FLAC; and a non-audio file."""
    import soxr

    folder = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(3)
    speech = sf.read(LIBRIVOX[0], dtype="float32")[0][:24_000] if LIBRIVOX else 0.2 * rng.standard_normal(24_000)
    speech = speech.astype(np.float32)
    sf.write(folder / "a_mono16k.wav", speech, 16_000, subtype="PCM_16")
    stereo = np.repeat(soxr.resample(speech, 16_000, 44_100)[:, None], 2, axis=1)
    sf.write(folder / "b_stereo44k.wav", stereo, 44_100, subtype="FLOAT")
    sf.write(folder / "c_8k.flac", soxr.resample(speech, 16_000, 8_000), 8_000)
    (folder / "notes.txt").write_text("not audio")
    return folder


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["classify", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_one_file_prints_the_pipeline_shape(model_dir, clips, capsys):
    code, out, err = _run(capsys, str(clips / "a_mono16k.wav"), "--model", str(model_dir), "--top-k", "3")
    assert code == 0 and err == ""
    predictions = json.loads(out)
    assert [set(p) for p in predictions] == [{"score", "label"}] * 3
    assert predictions == sorted(predictions, key=lambda p: -p["score"])
    labels = OnnxClassifier(model_dir).info.labels
    assert all(p["label"] in labels for p in predictions)


def test_directory_prints_one_json_line_per_audio_file(model_dir, clips, capsys):
    code, out, err = _run(capsys, str(clips), "--model", str(model_dir), "--top-k", "2", "--precision", "fp32")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [Path(line["file"]).name for line in lines] == ["a_mono16k.wav", "b_stereo44k.wav", "c_8k.flac"]
    assert all(len(line["predictions"]) == 2 for line in lines)
    # a 44.1 kHz stereo copy scores like the 16 kHz mono original
    mono, stereo = lines[0]["predictions"], lines[1]["predictions"]
    assert mono[0]["label"] == stereo[0]["label"]
    assert abs(mono[0]["score"] - stereo[0]["score"]) < 0.02


def test_several_files_keep_going_past_a_bad_one(model_dir, clips, capsys):
    code, out, err = _run(
        capsys,
        str(clips / "a_mono16k.wav"),
        str(clips / "missing.wav"),
        str(clips / "notes.txt"),
        str(clips / "c_8k.flac"),
        "--model",
        str(model_dir),
    )
    assert code == 1
    assert [Path(json.loads(line)["file"]).name for line in out.splitlines()] == [
        "a_mono16k.wav",
        "c_8k.flac",
    ]
    assert "missing.wav: no such file" in err and "notes.txt: not a readable audio file" in err
    assert "Traceback" not in err


def test_top_k_larger_than_the_label_set(model_dir, clips, capsys):
    code, out, _ = _run(capsys, str(clips / "a_mono16k.wav"), "--model", str(model_dir), "--top-k", "99")
    assert code == 0 and len(json.loads(out)) == 35


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["{clips}/a_mono16k.wav", "--model", "{tmp}/nowhere"], 1, "no such model directory"),
        (["{clips}/missing.wav", "--model", "{model}"], 1, "missing.wav: no such file"),
        (["{clips}/notes.txt", "--model", "{model}"], 1, "not a readable audio file"),
        (["{tmp}/empty", "--model", "{model}"], 1, "no audio files in this directory"),
        (["{clips}/a_mono16k.wav", "--model", "{model}", "--top-k", "0"], 2, "expected a positive integer"),
        (
            ["{clips}/a_mono16k.wav", "--model", "{model}", "--threads", "-1"],
            2,
            "expected a positive integer",
        ),
        (["{clips}/a_mono16k.wav", "--model", "{model}", "--precision", "fp16"], 2, "invalid choice"),
    ],
)
def test_errors_are_one_line(model_dir, clips, tmp_path, capsys, argv, code, message):
    (tmp_path / "empty").mkdir()
    argv = [a.format(clips=clips, tmp=tmp_path, model=model_dir) for a in argv]
    try:
        got = main(["classify", *argv])
    except SystemExit as e:  # argparse usage errors exit from inside the parser
        got = e.code
    _, err = capsys.readouterr()
    assert got == code
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_truncated_wav(model_dir, clips, tmp_path, capsys):
    data = (clips / "a_mono16k.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    code, _, err = _run(capsys, str(tmp_path / "cut.wav"), "--model", str(model_dir))
    assert code == 1 and "truncated" in err


def test_python_dash_m_in_a_fresh_process_without_torch(model_dir, clips):
    code = (
        "import sys\n"
        "from wakeword.cli.app import main\n"
        f"argv = ['classify', {str(clips / 'b_stereo44k.wav')!r}, '--model', {str(model_dir)!r}]\n"
        "rc = main([*argv, '--top-k', '1'])\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    [prediction] = json.loads(done.stdout)
    assert set(prediction) == {"score", "label"}
    cli = subprocess.run(
        [sys.executable, "-m", "wakeword", "classify", str(clips), "--model", str(model_dir), "--top-k", "1"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0, cli.stderr
    assert len(cli.stdout.splitlines()) == 3
