"""`wakeword eval` and its metrics: hand-built cases with known answers, manifests, the CLI end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import BURSTS, SR, tone_stream

from wakeword.cli.app import main
from wakeword.stream.detector import DetectorConfig
from wakeword.tools.metrics import (
    KeywordSpan,
    ScoreTrace,
    det_points,
    frr_at_budgets,
    match_detections,
    percentiles,
    recommend_threshold,
    replay,
    sweep,
)
from wakeword.tools.schema import schema_errors

HOP = 1600
TONE_NAMES = {440.0: "marvin", 660.0: "sheila", 880.0: "go"}


def scripted_trace() -> tuple[ScoreTrace, list[KeywordSpan]]:
    """100 hops of 0.1 s: keyword spans scoring 0.9, 0.6 and 0.3; non-keyword spikes of 0.7 and 0.45."""
    scores = np.zeros((100, 1), np.float32)
    spans = []
    for start, level in ((10, 0.9), (30, 0.6), (50, 0.3)):
        scores[start : start + 5, 0] = level
        spans.append(KeywordSpan("kw", start * HOP, (start + 5) * HOP))
    scores[70, 0] = 0.7
    scores[90, 0] = 0.45
    return ScoreTrace(("kw",), HOP, np.ones(100, bool), scores), spans


BASE = DetectorConfig(smoothing_hops=1, refractory_s=0.0)


def test_percentiles_are_interpolated_not_minimum():
    p = percentiles(range(1, 101))
    assert p == {"count": 100, "p50": 50.5, "p95": pytest.approx(95.05), "p99": pytest.approx(99.01)}
    assert percentiles([])["p50"] is None


def test_match_detections_hits_duplicates_and_false_accepts():
    spans = [KeywordSpan("a", 100, 200), KeywordSpan("b", 1000, 1100)]
    detections = [("a", 150), ("a", 190), ("b", 150), ("a", 250), ("a", 260), ("b", 1120)]
    first, false_accepts, duplicates = match_detections(detections, spans, tolerance_samples=50)
    assert first == [150, 1120]
    assert duplicates == 2  # 190 and 250 (within the 50-sample tolerance) repeat the hit on span a
    assert false_accepts == [("b", 150), ("a", 260)]  # wrong keyword inside a's span; past the tolerance


def test_sweep_counts_recall_false_accepts_and_latency():
    trace, spans = scripted_trace()
    by_threshold = {r.threshold: r for r in sweep([(trace, spans)], [0.4, 0.5, 0.8], BASE, tolerance_s=0.0)}
    assert (by_threshold[0.4].hits, by_threshold[0.4].false_accepts) == (2, 2)
    assert (by_threshold[0.5].hits, by_threshold[0.5].false_accepts) == (2, 1)
    assert (by_threshold[0.8].hits, by_threshold[0.8].false_accepts) == (1, 0)
    assert by_threshold[0.5].recall == pytest.approx(2 / 3)
    # the first hop of a span ends 4 hops before the span's offset
    assert by_threshold[0.8].latencies_samples == [-4 * HOP]


def test_det_points_budgets_and_recommended_threshold():
    trace, spans = scripted_trace()
    thresholds = [round(t, 2) for t in np.arange(0.05, 1.0, 0.05)]
    points = det_points(sweep([(trace, spans)], thresholds, BASE, 0.0), hours=10.0)
    point = {p.threshold: p for p in points}
    assert point[0.5].false_accepts_per_hour == pytest.approx(0.1)
    assert point[0.4].false_accepts_per_hour == pytest.approx(0.2)
    assert point[0.5].false_reject_rate == pytest.approx(1 / 3)
    assert point[0.85].false_reject_rate == pytest.approx(2 / 3)
    budgets = frr_at_budgets(points, (0.0, 0.1, 1.0))
    # zero false accepts needs a threshold above 0.7: only the 0.9 span is left
    assert budgets["0"]["false_reject_rate"] == pytest.approx(2 / 3)
    assert budgets["0"]["threshold"] > 0.7
    # 0.1/h allows the 0.7 spike: thresholds 0.5-0.6 keep two spans; the middle of that plateau is picked
    assert budgets["0.1"]["false_reject_rate"] == pytest.approx(1 / 3)
    assert budgets["0.1"]["threshold"] == pytest.approx(0.55)
    assert budgets["1"]["false_reject_rate"] == pytest.approx(0.0)  # 0.3 finds the third span: 0.2 FA/h
    chosen = recommend_threshold(points, 0.1)
    assert chosen.threshold == pytest.approx(0.55)
    assert recommend_threshold(points, -1.0) is None
    # a budget only a threshold that detects nothing meets gives no recommendation
    deaf = [p for p in points if p.threshold >= 0.95]
    assert deaf and all(p.false_reject_rate == 1.0 for p in deaf)
    assert recommend_threshold(deaf, 0.1) is None


def test_replay_reproduces_the_engines_detections():
    from wakeword.audio.sources import ArraySource
    from wakeword.classifiers.tone import ToneClassifier
    from wakeword.engine import EngineConfig
    from wakeword.stream.vad import VadConfig
    from wakeword.tools.probes import record_trace

    config = EngineConfig(vad=VadConfig(enabled=False), detector=DetectorConfig(threshold=0.6))
    keywords = ("marvin", "sheila", "go")
    trace, detections, engine = record_trace(
        ToneClassifier(), ArraySource(tone_stream(), block_size=777), config, keywords
    )
    assert len(detections) == len(BURSTS)
    assert replay(trace, config.detector) == [(d.keyword, d.sample) for d in detections]
    assert trace.hops == engine.stats.hops


@pytest.fixture(scope="module")
def tone_data(tmp_path_factory):
    """A 12 s tone stream with its five bursts labelled, plus each burst as a clip."""
    root = tmp_path_factory.mktemp("eval")
    x = tone_stream()
    sf.write(root / "stream.wav", x, SR)
    rows = ["path,label,keyword,onset_s,offset_s"]
    for i, (freq, start, dur) in enumerate(BURSTS):
        rows.append(f"stream.wav,,{TONE_NAMES[freq]},{start},{start + dur}")
        sf.write(root / f"clip{i}.wav", x[int(start * SR) : int((start + dur) * SR)], SR)
        rows.append(f"clip{i}.wav,{TONE_NAMES[freq]},,,")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def run_eval(capsys, *args):
    code = main(["eval", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_eval_on_tone_streams_and_clips(tone_data, capsys):
    from wakeword.tools.evaluate import EVAL_SCHEMA

    plot = tone_data / "det.png"
    code, out, err = run_eval(
        capsys, "--data", str(tone_data / "manifest.csv"), "--model", "tone", "--no-vad", "--json", "--plot", str(plot)
    )
    assert code == 0, err
    report = json.loads(out)
    assert schema_errors(report, EVAL_SCHEMA) == []
    ours = report["models"][0]
    assert ours["clips"]["accuracy"] == 1.0
    assert ours["clips"]["confusion"] == {
        "labels": ["marvin", "sheila", "go"],
        "matrix": [[3, 0, 0], [0, 1, 0], [0, 0, 1]],
    }
    s = ours["streams"]
    assert (s["keywords"], s["recall"], s["false_accepts"]) == (5, 1.0, 0)
    assert s["hours"] == pytest.approx(12.0 / 3600, rel=1e-3)
    assert s["detection_latency_ms"]["count"] == 5
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the plot is not overwritten without --force
    code, _, err = run_eval(capsys, "--data", str(tone_data / "manifest.csv"), "--model", "tone", "--plot", str(plot))
    assert code != 0 and "--force" in err


def test_false_accepts_per_hour_from_an_unlabelled_keyword(tone_data, capsys):
    """Drop the label of the burst at 8 s: its detection becomes one false accept in 12 s."""
    rows = [r for r in (tone_data / "manifest.csv").read_text().splitlines() if not r.startswith("stream.wav,,go")]
    (tone_data / "fa.csv").write_text("\n".join(rows) + "\n")
    code, out, err = run_eval(capsys, "--data", str(tone_data / "fa.csv"), "--model", "tone", "--no-vad", "--json")
    assert code == 0, err
    s = json.loads(out)["models"][0]["streams"]
    assert s["false_accepts"] == 1
    assert s["false_accepts_per_hour"] == pytest.approx(3600 / 12.0, rel=1e-3)


@pytest.mark.parametrize(
    "rows, fragments",
    [
        (["path,label", "clip0.wav,marvin", "missing.wav,marvin"], ["bad.csv row 3", "missing.wav", "not found"]),
        (["path,label", "clip0.wav,marvin", "clip1.wav,banana"], ["bad.csv row 3", "unknown label 'banana'"]),
        (
            ["path,keyword,onset_s,offset_s", "stream.wav,marvin,3.2,2.1"],
            ["bad.csv row 2", "onset_s 3.2 after offset_s 2.1"],
        ),
        (["path,keyword,onset_s,offset_s", "stream.wav,marvin,abc,2.1"], ["bad.csv row 2", "onset_s 'abc'"]),
        (["path,keyword,onset_s,offset_s", "stream.wav,marvin,30,31"], ["bad.csv row 2", "past the end"]),
        (["file,label", "clip0.wav,marvin"], ["no 'path' column"]),
        (["path,label", "clip0.wav,marvin", "notaudio.wav,marvin"], ["bad.csv row 3", "not a readable audio file"]),
    ],
)
def test_bad_manifests_give_one_line_naming_the_row(tone_data, capsys, rows, fragments):
    (tone_data / "notaudio.wav").write_text("this is text\n")
    (tone_data / "bad.csv").write_text("\n".join(rows) + "\n")
    code, out, err = run_eval(capsys, "--data", str(tone_data / "bad.csv"), "--model", "tone", "--no-vad")
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wakeword: error: "), err
    for fragment in fragments:
        assert fragment in lines[0]
    assert out == ""


def test_json_manifest_errors_name_the_item(tone_data, capsys):
    (tone_data / "bad.json").write_text(
        json.dumps(
            [
                {"path": "stream.wav", "keywords": [{"keyword": "marvin", "onset_s": 1.0, "offset_s": 1.8}]},
                {"path": "stream.wav", "keywords": [{"keyword": "marvin", "onset_s": 5.0, "offset_s": 4.0}]},
            ]
        )
    )
    code, _, err = run_eval(capsys, "--data", str(tone_data / "bad.json"), "--model", "tone")
    assert code != 0 and "bad.json item 2: onset_s 5 after offset_s 4" in err


def test_eval_cli_with_the_default_model_and_the_peer(tmp_path):
    """Smoke, as a user runs it: a few seconds of the bundled example, our model and openWakeWord's."""
    from wakeword.classifiers.shipped import models_dir
    from wakeword.tools.evaluate import EVAL_SCHEMA

    example = models_dir() / "examples" / "marvin-stream.wav"
    audio, rate = sf.read(example, dtype="float32")
    sf.write(tmp_path / "tail.wav", audio[11 * rate : 16 * rate], rate)  # "marvin" at 12.946-13.496 s
    sf.write(tmp_path / "marvin.wav", audio[int(12.8 * rate) : int(13.7 * rate)], rate)
    (tmp_path / "m.csv").write_text(
        "path,label,keyword,onset_s,offset_s\ntail.wav,,marvin,1.946,2.496\nmarvin.wav,marvin,,,\n"
    )
    args = ["eval", "--data", str(tmp_path / "m.csv"), "--json"]
    pytest.importorskip("openwakeword")
    args += ["--peer", "openwakeword:hey_jarvis"]
    proc = subprocess.run([sys.executable, "-m", "wakeword", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert schema_errors(report, EVAL_SCHEMA) == []
    ours, peer = report["models"]
    assert ours["clips"]["count"] == 1 and ours["streams"]["keywords"] == 1
    assert peer["name"] == "openwakeword:hey_jarvis" and peer["clips"] is None
    assert peer["streams"]["keywords"] == 0  # the peer does not detect "marvin": its spans are not its keywords
    assert peer["streams"]["hours"] == pytest.approx(5 / 3600, rel=1e-2)


def test_progress_bar_on_request(tone_data, capsys):
    code, _, err = run_eval(
        capsys, "--data", str(tone_data / "manifest.csv"), "--model", "tone", "--no-vad", "--progress"
    )
    assert code == 0
    assert "eval:" in err and "s audio" in err  # tqdm's bar over seconds of audio
    code, _, err = run_eval(capsys, "--data", str(tone_data / "manifest.csv"), "--model", "tone", "--no-vad")
    assert code == 0 and err == ""  # stderr is not a terminal here: no bar


def test_det_steps_hold_the_best_miss_rate_at_each_budget():
    from wakeword.tools.evaluate import det_steps

    det = [
        {"false_accepts_per_hour": fa, "false_reject_rate": frr}
        for fa, frr in [(0.0, 0.06), (1.9, 0.06), (0.0, 1.0), (0.0, 0.5), (17.0, 0.03)]
    ]
    assert det_steps(det) == [(0.0, 1.0), (0.0, 0.5), (0.0, 0.06), (1.9, 0.06), (17.0, 0.03)]


def test_the_vad_hangover_is_an_eval_option_and_a_bad_one_is_one_line(tone_data, capsys):
    import argparse

    from wakeword.stream.vad import VadConfig
    from wakeword.tools.evaluate import _engine_config, add_parser

    parser = add_parser(argparse.ArgumentParser().add_subparsers())
    base = ["--data", "x.csv"]
    assert _engine_config(parser.parse_args(base), ("marvin",)).vad == VadConfig()
    assert _engine_config(parser.parse_args(base + ["--vad-hangover-ms", "300"]), ("marvin",)).vad.hangover_ms == 300
    code, out, err = run_eval(
        capsys, "--data", str(tone_data / "manifest.csv"), "--model", "tone", "--vad-hangover-ms", "-5"
    )
    lines = err.strip().splitlines()
    assert code != 0 and out == "" and len(lines) == 1 and "vad_hangover_ms must be >= 0" in lines[0], err
