#!/usr/bin/env python3
"""Build the bundled example recording ``models/examples/marvin-stream.wav``.

Real recorded speech from Debian's pocketsphinx-testdata (LibriVox, public
domain; CMU test recordings, BSD) with the wake word "marvin" spoken twice by
voices the default model never heard in training (festival's HTS voice "slt"
and an espeak-ng variant held out from training). The times of the inserted
wake words are written next to it in ``marvin-stream.json``.

    python scripts/make_example.py            # needs festival and espeak-ng (Debian)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from wakeword.training.dataset import trim
from wakeword.training.voices import Voice, synthesise

SR = 16_000
PS = Path("/usr/share/pocketsphinx/test/data")
OUT = Path(__file__).resolve().parent.parent / "models" / "examples"


def real(rel: str) -> np.ndarray:
    path = PS / rel
    if path.suffix == ".raw":
        return np.frombuffer(path.read_bytes(), "<i2").astype(np.float32) / 32768
    x, rate = sf.read(path, dtype="float32")
    return soxr.resample(x, rate, SR) if rate != SR else x


def spoken(voice: Voice, text: str, level: float) -> np.ndarray:
    x, rate = synthesise(voice, text)
    x = trim(soxr.resample(x, rate, SR).astype(np.float32))
    return x / (np.abs(x).max() + 1e-9) * level


def main() -> int:
    pause = lambda s: np.zeros(int(s * SR), np.float32)  # noqa: E731
    parts: list[tuple[str, np.ndarray]] = [
        ("", pause(0.5)),
        ("speech", real("librivox/sense_and_sensibility_01_austen_64kb-0880.wav")),
        ("", pause(0.7)),
        ("marvin", spoken(Voice("festival", "cmu_us_slt_arctic_hts"), "marvin", 0.4)),
        ("", pause(0.6)),
        ("speech", real("goforward.raw")),
        ("", pause(0.8)),
        ("speech", real("librivox/sense_and_sensibility_01_austen_64kb-0930.wav")),
        ("", pause(0.7)),
        ("marvin", spoken(Voice("espeak", "en-029", "m3", speed=0.95, pitch=45), "marvin", 0.4)),
        ("", pause(0.6)),
        ("speech", real("cards/002.wav")),
        ("", pause(0.8)),
    ]
    audio, marks, pos = [], [], 0
    for kind, x in parts:
        if kind == "marvin":
            marks.append({"keyword": "marvin", "start_s": round(pos / SR, 3), "end_s": round((pos + len(x)) / SR, 3)})
        audio.append(x.astype(np.float32))
        pos += len(x)
    OUT.mkdir(parents=True, exist_ok=True)
    sf.write(OUT / "marvin-stream.wav", np.concatenate(audio), SR, subtype="PCM_16")
    (OUT / "marvin-stream.json").write_text(
        json.dumps({"duration_s": round(pos / SR, 3), "keywords": marks}, indent=2) + "\n"
    )
    print(f"wrote {OUT / 'marvin-stream.wav'} ({pos / SR:.1f} s), wake words at {[m['start_s'] for m in marks]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
