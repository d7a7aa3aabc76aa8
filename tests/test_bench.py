"""`wakeword bench`: the CLI end to end on a few seconds of audio, its JSON schema, the operation counter."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from wakeword.tools.bench import BENCH_SCHEMA, STAGES, plan_backends
from wakeword.tools.schema import schema_errors

SR = 16_000


@pytest.fixture(scope="module")
def short_input(tmp_path_factory):
    """4 s of the bundled example around its second "marvin" (12.946-13.496 s), with its labels."""
    from wakeword.classifiers.shipped import models_dir

    audio, rate = sf.read(models_dir() / "examples" / "marvin-stream.wav", dtype="float32")
    root = tmp_path_factory.mktemp("bench")
    path = root / "short.wav"
    sf.write(path, audio[11 * rate : 15 * rate], rate)
    (root / "short.json").write_text(
        json.dumps({"keywords": [{"keyword": "marvin", "start_s": 1.946, "end_s": 2.496}]})
    )
    return path


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wakeword", "bench", *args], capture_output=True, text=True, timeout=300
    )


def check_rows(report: dict, backends: list[str]) -> None:
    assert schema_errors(report, BENCH_SCHEMA) == []
    assert [r["backend"] for r in report["rows"]] == backends
    for row in report["rows"]:
        if row["backend"].startswith("engine:"):  # a peer's own engine: no stages of ours to time
            assert row["cpu_s_per_audio_hour"] > 0 and row["peak_rss_mb"] > 10
            continue
        stages = row["stages"]
        assert stages["vad"]["count"] == row["hops"]
        assert stages["inference"]["count"] == stages["detector"]["count"] == row["classified_hops"] > 0
        assert stages["handoff"] is None  # not asked for
        for name in STAGES:
            s = stages[name]
            if s is not None:
                assert s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"]
        assert row["cpu_s_per_audio_hour"] > 0 and row["peak_rss_mb"] > 10
        assert row["startup_ms"] >= row["load_ms"]
        assert row["torch_loaded"] is (row["backend"] == "transformers")


def test_bench_default_model_backends_and_peer(short_input):
    pytest.importorskip("openwakeword")
    proc = bench("--input", str(short_input), "--json", "--peer", "openwakeword:hey_jarvis")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    check_rows(report, ["onnx-int8", "onnx-fp32", "peer:openwakeword:hey_jarvis", "engine:openwakeword:hey_jarvis"])
    assert report["baseline"] == "onnx-fp32"
    assert report["peer"] == "engine:openwakeword:hey_jarvis"  # ratios against openWakeWord's own engine
    rows = {r["backend"]: r for r in report["rows"]}
    assert rows["onnx-fp32"]["cpu_speedup_vs_baseline"] == pytest.approx(1.0)
    own = rows.pop("engine:openwakeword:hey_jarvis")
    assert own["cpu_speedup_vs_peer"] == pytest.approx(1.0)
    assert own["hops"] == own["classified_hops"] > 0 and own["stages"]["features"] is None  # it runs every hop
    assert own["cpu_s_per_audio_hour"] > 0 and own["audio_s"] == pytest.approx(4.0, abs=0.1)
    for row in rows.values():
        assert row["audio_s"] == pytest.approx(4.0, abs=0.01)
        assert row["stages"]["features"]["count"] == row["classified_hops"]
        # operation count: the same front end, so the int8 and fp32 heads differ only in which kernels run
        assert row["macs_per_hop"] > 1e6
        assert row["pi_estimate"]["pi4"]["ms_per_hop"] > row["pi_estimate"]["pi5"]["ms_per_hop"]
    assert rows["onnx-int8"]["macs_per_hop"] == rows["onnx-fp32"]["macs_per_hop"]
    assert 0 < rows["onnx-int8"]["int8_macs_per_hop"] < rows["onnx-int8"]["macs_per_hop"]
    assert rows["onnx-fp32"]["int8_macs_per_hop"] == 0
    latency = rows["onnx-int8"]["detection_latency_ms"]
    assert latency["keywords"] == 1  # read from short.json next to the input
    # the human table names every backend and says the hand-off was not run
    table = bench("--input", str(short_input), "--backends", "onnx-int8")
    assert table.returncode == 0, table.stderr
    assert "| onnx-int8 | handoff | - | not run (--handoff)" in table.stdout


@pytest.mark.export
def test_bench_exported_model_with_the_transformers_pipeline(short_input, tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("optimum")
    from conftest_export import exported, session_root

    model = exported("ast", session_root(tmp_path_factory))
    assert plan_backends(str(model)) == ["onnx-int8", "onnx-fp32", "transformers"]
    proc = bench("--model", str(model), "--input", str(short_input), "--json", "--no-vad")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    check_rows(report, ["onnx-int8", "onnx-fp32", "transformers"])
    assert report["baseline"] == "transformers"
    rows = {r["backend"]: r for r in report["rows"]}
    assert rows["transformers"]["cpu_speedup_vs_baseline"] == pytest.approx(1.0)
    assert rows["onnx-int8"]["hops"] == rows["transformers"]["hops"] == rows["onnx-int8"]["classified_hops"]
    assert rows["transformers"]["macs_per_hop"] == rows["onnx-fp32"]["macs_per_hop"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--input", "/nonexistent.wav"], "/nonexistent.wav: no such file"),
        (["--backends", "onnx-fp16"], "backend(s) onnx-fp16 not available"),
        (["--peer", "openwakeword:nope"], "unknown openWakeWord model 'nope'"),
        (["--peer", "snowboy"], "unknown peer 'snowboy'"),
    ],
)
def test_bench_bad_input_is_one_line(short_input, args, fragment):
    if "openwakeword:nope" in args:
        pytest.importorskip("openwakeword")
    if "--input" not in args:
        args = [*args, "--input", str(short_input)]
    proc = bench(*args)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wakeword: error: "), proc.stderr
    assert fragment in lines[0]
    assert proc.stdout == ""


def _tiny_graph(path):
    """x (1, 4, 8) @ W (8, 16), and a Conv of 1 -> 2 channels, kernel 3, over 10 samples."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((8, 16), np.float32), "W")
    k = numpy_helper.from_array(np.zeros((2, 1, 3), np.float32), "K")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"]), helper.make_node("Conv", ["s", "K"], ["z"])],
        "tiny",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", 8]),
            helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, 1, "n"]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, None),
        ],
        [w, k],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_count_macs_on_a_hand_built_graph(tmp_path):
    from wakeword.tools.opcount import MacCount, count_macs, pi_estimate

    _tiny_graph(tmp_path / "tiny.onnx")
    macs = count_macs(tmp_path / "tiny.onnx", {"x": [1, 4, 8], "s": [1, 1, 10]})
    assert macs == MacCount(total=4 * 16 * 8 + 2 * 8 * 3, int8=0)
    doubled = count_macs(tmp_path / "tiny.onnx", {"x": [2, 4, 8], "s": [1, 1, 10]})
    assert doubled.total == 2 * 4 * 16 * 8 + 2 * 8 * 3
    assert count_macs(tmp_path / "tiny.onnx", {"x": [1, 4, -1], "s": [-1, -1, 10]}) == macs  # -1: the graph's size
    from wakeword.errors import ModelError

    with pytest.raises(ModelError, match="no fixed size"):
        count_macs(tmp_path / "tiny.onnx", {"x": [1, -1, 8], "s": [1, 1, 10]})
    est = pi_estimate(MacCount(3_000_000_000, 0), hop_ms=100)
    from wakeword.tools.opcount import PI_GMACS

    assert est["pi4"]["ms_per_hop"] == pytest.approx(3000 / PI_GMACS["pi4"][0])
    assert est["pi4"]["core_share_gate_open"] == pytest.approx(est["pi4"]["ms_per_hop"] / 100)


def test_schema_checker_reports_what_is_wrong():
    schema = {
        "type": "object",
        "required": ["a"],
        "additionalProperties": False,
        "properties": {"a": {"type": "array", "items": {"type": "integer", "minimum": 0}}},
    }
    assert schema_errors({"a": [1, 2]}, schema) == []
    assert schema_errors({"a": [1, -2, True], "b": 1}, schema) == [
        "$.a[1]: -2 below minimum 0",
        "$.a[2]: expected integer, got bool",
        "$: unexpected 'b'",
    ]
    assert schema_errors({}, schema) == ["$: missing 'a'"]
