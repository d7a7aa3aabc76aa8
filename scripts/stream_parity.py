"""How far the streaming front end's scores are from the whole-window path's, on real speech.

pocketsphinx-testdata's LibriVox clips and the bundled example, back to back (about 42 s), every 80 ms hop:
the largest score difference (any label, and the wake word) for the stream with and without recomputing
embeddings when the window's 80 dB floor moves, the embeddings each computes, and how much the shipped mel
model's frames depend on the window around them (a 1,632-sample slice against the whole 1.5 s window).

    python scripts/stream_parity.py
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wakeword.classifiers import load_classifier  # noqa: E402
from wakeword.onnxrt import open_session  # noqa: E402

HOP = 1280


def speech() -> np.ndarray:
    parts = []
    for path in [
        *sorted(glob.glob("/usr/share/pocketsphinx/test/data/librivox/*.wav")),
        str(ROOT / "models" / "examples" / "marvin-stream.wav"),
    ]:
        audio, rate = sf.read(path, dtype="float32")
        audio = audio.mean(axis=1) if audio.ndim > 1 else audio
        parts.append(audio if rate == 16_000 else soxr.resample(audio, rate, 16_000).astype(np.float32))
    return np.concatenate(parts)


def slice_difference(mel, x: np.ndarray) -> float:
    """Largest difference between each 8-frame slice's own frames and the same frames of the whole window."""
    whole = mel.run(None, {"input": x})[0].reshape(-1, 32)
    worst = 0.0
    for f in range(0, whole.shape[0] - 8, 8):
        part = mel.run(None, {"input": x[:, 160 * f : 160 * (f + 7) + 512]})[0].reshape(-1, 32)
        worst = max(worst, float(np.abs(whole[f : f + 8] - part).max()))
    return worst


def main() -> int:
    model = load_classifier("default", threads=1)
    window = model.info.window_samples
    audio = speech()
    padded = np.concatenate([np.zeros(window, np.float32), audio])
    ends = range(HOP, audio.shape[0] + 1, HOP)
    reference = np.array([model.scores(padded[e : e + window]) for e in ends])
    word = model.info.labels.index(model.info.default_keywords[0])
    raw = open_session(model.model_dir / "melspectrogram_raw.onnx", 1)  # the cut graph, for its frame check
    print(f"{audio.shape[0] / 16000:.1f} s of real speech, {len(reference)} hops")
    for refloor in (True, False):
        stream = model.open_stream(HOP, refloor=refloor)
        scores = np.array([stream.scores(padded[e : e + window], e) for e in ends])
        diff = np.abs(scores - reference)
        print(
            f"refloor={refloor}: max |score diff| {diff.max():.4f}, on {model.info.labels[word]!r} "
            f"{diff[:, word].max():.4f}; {stream.embeddings_computed} embeddings "
            f"({stream.embeddings_recomputed} again for a moved floor)"
        )
    # frame-locality: every 8-frame slice of one window of the bundled example, alone and inside the window
    example, _ = sf.read(ROOT / "models" / "examples" / "marvin-stream.wav", dtype="float32")
    x = (example[52800 : 52800 + window] * 32767).astype(np.float32)[None]  # 3.3-4.8 s: "marvin" and a pause
    worst = slice_difference(model.frontend.mel_session, x)
    raw_worst = slice_difference(raw, x)
    print(f"8-frame slices vs the whole window: shipped mel model up to {worst:.1f}, raw (no floor) {raw_worst:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
