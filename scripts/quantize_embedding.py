"""A copy of a keyword model with a statically calibrated int8 embedding model, for measuring it on real speech.

Calibration: 600 mel windows from 400 files of the real-speech set's *train* split (never its eval speakers),
``onnxruntime.quantization.quantize_static`` (QOperator, per-channel QInt8 weights, QUInt8 activations). The
copy's manifest gets the new file's sha256; evaluate it with ``scripts/evaluate_real_speech.py --model OUT``.
Needs the real-speech set (``python scripts/build_real_speech.py``).

    python scripts/quantize_embedding.py --out /tmp/sc-int8emb
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wakeword.classifiers import load_classifier  # noqa: E402
from wakeword.manifest import sha256_file  # noqa: E402
from wakeword.training.real_speech import RealSpeech  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "speech-commands")
    parser.add_argument("--out", type=Path, required=True, help="where the copy goes (must not exist)")
    args = parser.parse_args()
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    if args.out.exists():
        sys.exit(f"{args.out}: exists; choose another --out")
    shutil.copytree(args.model, args.out)
    frontend = load_classifier(str(args.model), threads=1).frontend
    rs = RealSpeech()
    files = rs.select(split="train")
    rng = np.random.default_rng(0)
    rng.shuffle(files)
    windows = []
    for f in files[:400]:
        x = rs.audio(f)
        if len(x) >= 24000:
            mel = frontend.mel(x[:24000])
            windows += [mel[s : s + 76] for s in range(0, mel.shape[0] - 76, 24)]
    chosen = np.array(windows, np.float32)[rng.permutation(len(windows))[:600], ..., None]
    print(f"calibration: {len(chosen)} mel windows from {min(400, len(files))} train-split files")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"input_1": w[None]} for w in chosen])

        def get_next(self):
            return next(self.batches, None)

    target = args.out / "embedding_model.onnx"
    quantize_static(
        str(args.model / "embedding_model.onnx"),
        str(target),
        Reader(),
        quant_format=QuantFormat.QOperator,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    manifest = json.loads((args.out / "manifest.json").read_text())
    manifest["files"]["embedding"]["sha256"] = sha256_file(target)
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
