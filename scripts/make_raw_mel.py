"""Write ``melspectrogram_raw.onnx``: the speech-embedding mel model without its window-wide floor.

The shipped ``melspectrogram.onnx`` ends with ``clip(x, max(x) - 80 dB)``: the
floor depends on the loudest frame of whatever audio it is given, so a frame's
value depends on the window around it and a stream cannot compute only its new
frames. The graph cut before that ``ReduceMax`` gives the raw log-mel, which is
frame-local; the streaming front end (``wakeword.classifiers.embedding_stream``)
applies the window's floor itself, so its features equal the whole-window
model's. This script cuts the graph (with the ``onnx`` package, in the train and
export extras), checks that the cut graph plus the floor reproduces the original
on real speech, and, with ``--model DIR``, adds the file to a model directory's
manifest with its sha256.

    python scripts/make_raw_mel.py                      # models/speech-embedding/melspectrogram_raw.onnx
    python scripts/make_raw_mel.py --model models/speech-commands
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RAW = "melspectrogram_raw.onnx"


def cut(source: Path, target: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(source))
    graph = model.graph
    reduce_max = [n for n in graph.node if n.op_type == "ReduceMax"]
    if len(reduce_max) != 1:
        sys.exit(f"{source}: expected one ReduceMax (the window-wide floor), found {len(reduce_max)}")
    raw = reduce_max[0].input[0]
    keep = []
    for node in graph.node:
        keep.append(node)
        if raw in node.output:
            break
    del graph.node[:]
    graph.node.extend(keep)
    del graph.output[:]
    graph.output.extend([helper.make_tensor_value_info(raw, TensorProto.FLOAT, ["time", 1, "frames", 32])])
    used = {name for node in graph.node for name in node.input}
    initializers = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))


def check(source: Path, target: Path) -> float:
    """Largest difference between the original and the cut graph plus the 80 dB floor, on real speech."""
    import onnxruntime as ort
    import soundfile as sf

    full = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    cut_graph = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    audio, _ = sf.read(ROOT / "models" / "examples" / "marvin-stream.wav", dtype="float32")
    worst = 0.0
    for start in range(0, audio.shape[0] - 24000, 8000):
        x = (audio[start : start + 24000] * 32767).astype(np.float32)[None]
        raw = cut_graph.run(None, {"input": x})[0]
        floored = np.maximum(raw, raw.max() - 80.0)
        worst = max(worst, float(np.abs(floored - full.run(None, {"input": x})[0]).max()))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="also add the file to this model directory's manifest")
    args = parser.parse_args()
    front_end = ROOT / "models" / "speech-embedding"
    target = front_end / RAW
    cut(front_end / "melspectrogram.onnx", target)
    print(
        f"{target}: max |floored raw - original| on the bundled example: {check(front_end / 'melspectrogram.onnx', target):.2e}"
    )
    if args.model:
        sys.path.insert(0, str(ROOT))
        from wakeword.manifest import read_manifest, sha256_file, write_manifest

        manifest = read_manifest(args.model)
        shutil.copy2(target, args.model / RAW)
        manifest["files"]["melspectrogram_raw"] = {"path": RAW, "sha256": sha256_file(args.model / RAW)}
        write_manifest(args.model / "manifest.json", manifest)
        print(f"{args.model / 'manifest.json'}: files.melspectrogram_raw added")
    return 0


if __name__ == "__main__":
    sys.exit(main())
