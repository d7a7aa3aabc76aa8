#!/usr/bin/env python3
"""Candidate (a) of the default-model comparison: a small AST trained from scratch on Kaldi fbank.

Same synthesised clips (the plan of ``wakeword train`` for the 35 words, seed 0),
same augmentation, same held-out test voices as the shipped model; prints the
held-out keyword accuracy by engine and the real-digit result that the model
card of ``models/speech-commands`` compares against.

    python scripts/compare_ast_from_scratch.py --cache ~/.cache/wakeword     # ~20 min on 2 cores

Needs the export and train extras (transformers, torch, piper).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from wakeword.features import AstFbank, AstFbankOptions
from wakeword.training.augment import AugmentConfig, augment_word, place, silence_clip
from wakeword.training.dataset import SILENCE, SPEECH_COMMANDS, UNKNOWN, plan, synthesise_all, synthesise_item
from wakeword.training.train import BACKGROUND_TRAIN_DIRS, _background

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "wakeword")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import soundfile as sf
    import soxr
    import torch
    from transformers import ASTConfig, ASTForAudioClassification

    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    labels = list(SPEECH_COMMANDS) + [SILENCE, UNKNOWN]
    index = {label: i for i, label in enumerate(labels)}
    items = synthesise_all(plan(SPEECH_COMMANDS, seed=args.seed), args.cache)
    background = _background(BACKGROUND_TRAIN_DIRS)
    fbank = AstFbank(AstFbankOptions(num_mel_bins=64, max_length=148))
    rng = np.random.default_rng(args.seed)

    def features(split: str, augmented: bool, copies: int = 1, silence: int = 0):
        xs, ys, engines = [], [], []
        for item in (i for i in items if i.split == split):
            word = synthesise_item(args.cache, item)
            for _ in range(copies):
                clip = augment_word(rng, word, AugmentConfig(), background) if augmented else place(rng, word, 24_000)
                xs.append(fbank(clip)[0].astype(np.float32))
                ys.append(index[item.label])
                engines.append(item.voice.engine)
        for _ in range(silence):
            xs.append(fbank(silence_clip(rng, AugmentConfig(), background))[0].astype(np.float32))
            ys.append(index[SILENCE])
            engines.append("noise")
        return np.stack(xs), np.array(ys), np.array(engines)

    t0 = time.time()
    x, y, _ = features("train", True, copies=2, silence=1000)
    xv, yv, _ = features("val", False)
    xt, yt, et = features("test", False)
    print(f"features: train {x.shape}, {time.time() - t0:.0f} s", flush=True)

    config = ASTConfig(
        hidden_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=192,
        patch_size=16,
        frequency_stride=10,
        time_stride=10,
        num_mel_bins=64,
        max_length=148,
        num_labels=len(labels),
    )
    model = ASTForAudioClassification(config)
    print(f"AST parameters: {sum(p.numel() for p in model.parameters())}")
    batch = 128
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=5e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=args.epochs * -(-len(x) // batch))
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    xt_, yt_ = torch.from_numpy(x), torch.from_numpy(y)
    mask_rng = np.random.default_rng(args.seed + 1)
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xt_))
        for i in range(0, len(perm), batch):
            idx = perm[i : i + batch]
            xb = xt_[idx].clone()
            f0, t0_ = int(mask_rng.integers(0, 56)), int(mask_rng.integers(0, 130))  # SpecAugment-style masks
            xb[:, :, f0 : f0 + int(mask_rng.integers(0, 8))] = 0
            xb[:, t0_ : t0_ + int(mask_rng.integers(0, 15)), :] = 0
            loss = loss_fn(model(xb).logits, yt_[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}/{args.epochs}: loss {float(loss):.3f}", flush=True)
    model.eval()

    def predict(a: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(a)).logits.argmax(1).numpy()

    pv, pt = predict(xv), predict(xt)
    kw = yt < len(SPEECH_COMMANDS)
    print(f"validation voices (clean): {(pv == yv).mean():.4f}")
    print(f"held-out voices, 35 keywords (clean): {(pt[kw] == yt[kw]).mean():.4f} over {kw.sum()} clips")
    for engine in ("espeak", "festival"):
        m = kw & (et == engine)
        print(f"  {engine}: {(pt[m] == yt[m]).mean():.4f} over {m.sum()} clips")
    predictions = {}
    for i, word in enumerate(DIGITS):
        audio, rate = sf.read(f"/usr/share/asterisk/sounds/en_US_f_Allison/digits/{i}.wav", dtype="float32")
        audio = soxr.resample(audio, rate, 16_000)
        clip = np.zeros(24_000, np.float32)
        start = max(0, (24_000 - len(audio)) // 2)
        seg = audio[: 24_000 - start]
        clip[start : start + len(seg)] = seg
        predictions[word] = labels[int(predict(fbank(clip)[0][None].astype(np.float32))[0])]
    print(f"real digits: {sum(predictions[w] == w for w in DIGITS)}/10 {predictions}")


if __name__ == "__main__":
    main()
