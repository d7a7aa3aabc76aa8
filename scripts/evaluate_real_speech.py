#!/usr/bin/env python3
"""A keyword model on the real-speech set's eval speakers: the figures its model card leads with.

    python scripts/build_real_speech.py            # once: fetch and check the set (about 1 GB of packages)
    python scripts/evaluate_real_speech.py --model models/speech-commands --json real.json
    python scripts/evaluate_real_speech.py --model DIR --wake-word "hey computer" --skip keywords

1. 35-keyword top-1 on real words said by eval speakers, isolated and inside a phrase
   (``wakeword.training.real_eval.keyword_accuracy``).
2. The wake word by held-out synthetic voices (the model's own test split: voices never trained on) mixed
   into the eval speakers' running speech at 0-20 dB above them, twice each at other levels: recall per
   threshold through the engine.
3. False accepts per hour of the wake word over every eval-speaker file (over 3 h, 20+ languages), the
   false-reject rate at 0.5, 1 and 2 false accepts per hour, and both at the model's stored threshold.

None of these speakers is used by training or by the threshold choice of ``wakeword train``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from wakeword.classifiers.speech_embedding import SpeechEmbeddingClassifier
from wakeword.training.dataset import plan, synthesise_all, synthesise_item
from wakeword.training.real_eval import (
    det,
    eval_cuts,
    false_accepts,
    keyword_accuracy,
    summarise_accuracy,
    wake_word_stream,
)
from wakeword.training.real_speech import RealSpeech, default_cache_dir, load_keywords


def log(msg: str) -> None:
    print(f"[real-eval] {msg}", file=sys.stderr, flush=True)


def heldout_clips(model: SpeechEmbeddingClassifier, phrase: str, cache: Path) -> list[np.ndarray]:
    """The model's test-split utterances of ``phrase``: voices held out from its training."""
    t = model.manifest["training"]
    keywords = [label for label in model.info.labels if not label.startswith("_")]
    items = [
        i
        for i in plan(
            keywords,
            t["seed"],
            t["per_keyword"],
            t["per_unknown_word"],
            t["test_per_keyword"],
            t["unknown_words"],
            with_festival=t["festival"],
        )
        if i.split == "test" and i.label == phrase
    ]
    return [synthesise_item(cache, i) for i in synthesise_all(items, cache)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("models/speech-commands"))
    p.add_argument("--wake-word", default=None, help="the wake word of sections 2-3 (the model's first keyword)")
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "wakeword", help="synthesis cache")
    p.add_argument("--real-cache", type=Path, default=default_cache_dir())
    p.add_argument("--json", type=Path)
    p.add_argument("--skip", default="", help="comma-separated sections to skip: keywords,recall,fa")
    p.add_argument("--hop-ms", type=int, default=None, help="engine hop for recall and fa (default: the model's)")
    args = p.parse_args()
    model = SpeechEmbeddingClassifier(args.model)
    word = args.wake_word or (model.info.keywords[0] if model.info.keywords else model.info.labels[0])
    if word not in model.info.labels:
        sys.exit(f"evaluate_real_speech.py: {word!r} is not a label of {args.model}")
    skip = set(args.skip.split(","))
    rs = RealSpeech(args.real_cache)
    threshold = model.info.thresholds.get(word, 0.5)
    result: dict = {"model": str(args.model), "wake_word": word, "stored_threshold": threshold, "hop_ms": args.hop_ms}
    if "keywords" not in skip:
        cuts = load_keywords()
        for kind in ("isolated", "phrase"):
            chosen = [c for c in eval_cuts(rs, cuts, kind) if c.word in model.info.labels]
            summary = summarise_accuracy(keyword_accuracy(model, rs, chosen))
            summary["speakers"] = len({rs.by_id[c.file_id].speaker_group for c in chosen})
            result[f"keywords_{kind}"] = summary
            log(
                f"real words ({kind}): {summary.get('correct')}/{summary['clips']} "
                f"({summary.get('accuracy', 0):.3f}), {summary['speakers']} speakers"
            )
    if "recall" not in skip:
        clips = heldout_clips(model, word, args.cache)
        rec = wake_word_stream(
            model, word, clips + clips, rs, hop_ms=args.hop_ms
        )  # each clip twice, at two drawn levels
        result["recall_in_real_talkers"] = rec
        log(
            f"{word!r} in real talkers: recall {rec['recall'].get(threshold)} at {threshold} "
            f"({rec['positives']} insertions)"
        )
    if "fa" not in skip:
        fa = false_accepts(model, word, rs, hop_ms=args.hop_ms)
        result["false_accepts"] = fa
        log(
            f"{word!r} false accepts: {fa['per_hour'].get(threshold):.2f}/h at {threshold} over "
            f"{fa['hours']:.2f} h, {fa['languages']} languages"
        )
        if "recall_in_real_talkers" in result:
            result["det"] = det(result["recall_in_real_talkers"]["recall"], fa["per_hour"])
    text = json.dumps(result, indent=2, default=str)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
