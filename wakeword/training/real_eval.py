"""Figures on the real-speech set's eval speakers (never trained on, never used to pick a threshold).

* :func:`keyword_accuracy`: 35-keyword top-1 on real words, isolated or inside a phrase. Each utterance is
  streamed as the detector sees it: the label is the class with the highest score over the windows that end
  from 0.08 s before to 0.48 s after the end of the word (Whisper's word timestamps, checked cuts); silence
  does not count as an answer, ``_unknown_`` counts as a wrong one.
* :func:`wake_word_stream`: a wake word (any clips: held-out synthetic voices, say) mixed into real talkers
  at 0-20 dB above them, through the engine (VAD gate, smoothing, refractory), recall per threshold.
* :func:`false_accepts`: every eval-speaker file one after another (0.2-1.0 s pauses) through the engine;
  false accepts per hour per threshold, and per language at a threshold.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wakeword.pcm import SAMPLE_RATE
from wakeword.training.calibrate import GRID, fired, score_trace
from wakeword.training.real_speech import EVAL, KeywordCut, RealSpeech, insert_clips, speech_stream


@dataclass(frozen=True)
class CutResult:
    cut: KeywordCut
    predicted: str


def keyword_accuracy(clf, rs: RealSpeech, cuts: Sequence[KeywordCut]) -> list[CutResult]:
    """Top-1 of ``clf`` (a classifier with ``labels``, ``window_samples`` and ``scores(window)``) per cut."""
    labels = list(clf.info.labels)
    silence = labels.index("_silence_") if "_silence_" in labels else None
    hop = SAMPLE_RATE * 80 // 1000
    out = []
    rng = np.random.default_rng(0)
    for c in cuts:
        x = rs.audio(c.file_id)
        pad = int(0.5 * SAMPLE_RATE)
        # a quiet noise floor, not digital zeros: real rooms are never silent
        audio = np.concatenate([np.zeros(pad, np.float32), x, np.zeros(SAMPLE_RATE, np.float32)])
        audio = audio + (rng.standard_normal(len(audio)) * 1e-4).astype(np.float32)
        end = pad + int(c.end_s * SAMPLE_RATE)
        best = np.full(len(labels), -1.0)
        w = clf.info.window_samples
        for k in range(-1, 7):
            e = min(len(audio), end + k * hop)
            window = audio[max(0, e - w) : e]
            if len(window) < w:
                window = np.concatenate([np.zeros(w - len(window), np.float32), window])
            best = np.maximum(best, clf.scores(window))
        if silence is not None:
            best[silence] = -1.0
        out.append(CutResult(c, labels[int(np.argmax(best))]))
    return out


def summarise_accuracy(results: Sequence[CutResult]) -> dict:
    if not results:
        return {"clips": 0}
    correct = [r for r in results if r.predicted == r.cut.word]
    confusions = Counter(f"{r.cut.word}->{r.predicted}" for r in results if r.predicted != r.cut.word)
    by_word: dict[str, list[int]] = {}
    for r in results:
        by_word.setdefault(r.cut.word, [0, 0])
        by_word[r.cut.word][0] += r.predicted == r.cut.word
        by_word[r.cut.word][1] += 1
    return {
        "clips": len(results),
        "correct": len(correct),
        "accuracy": len(correct) / len(results),
        "words": len(by_word),
        "by_word": by_word,
        "top_confusions": confusions.most_common(8),
    }


def eval_cuts(rs: RealSpeech, cuts: Sequence[KeywordCut], kind: str) -> list[KeywordCut]:
    return [c for c in cuts if c.kind == kind and c.file_id in rs.by_id and rs.by_id[c.file_id].split == EVAL]


def wake_word_stream(
    clf,
    keyword: str,
    clips: Sequence[np.ndarray],
    rs: RealSpeech,
    seed: int = 0,
    snr_db: tuple[float, float] = (0.0, 20.0),
    hop_ms: int | None = None,
) -> dict:
    """Recall of ``keyword`` (per threshold) for ``clips`` mixed into the eval talkers' running speech."""
    rng = np.random.default_rng([seed, 31])
    files = [f for f in rs.files if f.split == EVAL]
    order = rng.permutation(len(files))
    talk, _ = speech_stream(rs, [files[i] for i in order], rng, gap_s=(0.05, 0.4))
    mixed, spans = insert_clips(talk, list(clips), rng, snr_db)
    mixed = mixed[: spans[-1][1] + 3 * SAMPLE_RATE] if spans else mixed[:0]
    trace, _ = score_trace(clf, mixed, keyword, hop_ms)
    recall, outside = {}, {}
    for t in GRID:
        hits = fired(trace, keyword, t)
        hit = [any(a <= f <= b + SAMPLE_RATE for f in hits) for a, b, _ in spans]
        recall[t] = sum(hit) / max(1, len(spans))
        outside[t] = sum(not any(a <= f <= b + SAMPLE_RATE for a, b, _ in spans) for f in hits)
    return {
        "positives": len(spans),
        "minutes": len(mixed) / SAMPLE_RATE / 60,
        "recall": recall,
        "detections_outside": outside,
        "snr_db": list(snr_db),
    }


def false_accepts(clf, keyword: str, rs: RealSpeech, seed: int = 0, hop_ms: int | None = None) -> dict:
    """False accepts of ``keyword`` per hour over all eval-speaker speech, per threshold."""
    rng = np.random.default_rng([seed, 37])
    files = [f for f in rs.files if f.split == EVAL]
    audio, starts = speech_stream(rs, files, rng)
    hours = len(audio) / SAMPLE_RATE / 3600
    trace, engine = score_trace(clf, audio, keyword, hop_ms)
    begins = np.array([s for s, _ in starts])
    langs = Counter(f.language for f in files)
    out = {
        "hours": hours,
        "files": len(files),
        "speakers": len({f.speaker_group for f in files}),
        "languages": len(langs),
        "gate_open_share": engine.stats.classified_hops / max(1, engine.stats.hops),
        "per_hour": {},
        "by_language": {},
    }
    for t in GRID:
        hits = fired(trace, keyword, t)
        out["per_hour"][t] = len(hits) / hours
        where = Counter(
            rs.by_id[starts[max(0, int(np.searchsorted(begins, f, "right")) - 1)][1]].language for f in hits
        )
        out["by_language"][t] = dict(where)
    return out


def det(
    recall: dict[float, float], fa_per_hour: dict[float, float], budgets: Sequence[float] = (0.5, 1.0, 2.0)
) -> dict[str, dict]:
    """False-reject rate at each false-accept budget: the best recall of any threshold within it."""
    out = {}
    for b in budgets:
        ok = [t for t in recall if fa_per_hour[t] <= b]
        best = max(ok, key=lambda t: (recall[t], -t)) if ok else None
        out[str(b)] = {"threshold": best, "false_reject_rate": 1 - recall[best] if best is not None else 1.0}
    return out
