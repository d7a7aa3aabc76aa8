"""Fine-tuning the last blocks of the speech-embedding model together with the keyword head.

The embedding model is a stack of convolution blocks, each closed by a max-pool.
The blocks before the cut stay frozen: their output is computed once per
training clip with ONNX Runtime and cached, so an epoch only runs the tuned
blocks and the head in torch. The tuned weights are written back into a copy
of the original ONNX graph, so the runtime, its cost and its streaming cache
are exactly those of the frozen model; only some weights differ.

Why: with the whole front end frozen, the head could not separate the words
well even on new clips of its own training voices; tuning the last blocks
lets the features adapt to the keywords.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from wakeword.classifiers.speech_embedding import EMBEDDING_DIM, EMBEDDING_FRAMES, EMBEDDING_STRIDE, EmbeddingFrontEnd
from wakeword.errors import ConfigError, DependencyError

log = logging.getLogger(__name__)

# the max-pool after which the tuned blocks start, by number of tuned blocks
CUTS = {
    1: "model/max_pooling2d_3/MaxPool:0",
    2: "model/max_pooling2d_2/MaxPool:0",
    3: "model/max_pooling2d_1/MaxPool:0",
}
OUTPUT = "conv2d_19"


def _onnx():
    try:
        import onnx
    except ImportError as e:
        raise DependencyError("fine-tuning needs onnx: pip install 'wakeword[train]'") from e
    return onnx


def split_model(embedding_path: Path, blocks: int, out_dir: Path) -> tuple[Path, Path]:
    """The frozen front (input → cut) and the tuned tail (cut → embedding) as two ONNX files."""
    if blocks not in CUTS:
        raise ConfigError(f"train: --tune-blocks must be 0 or one of {sorted(CUTS)}")
    onnx = _onnx()
    out_dir.mkdir(parents=True, exist_ok=True)
    front, tail = out_dir / f"front-{blocks}.onnx", out_dir / f"tail-{blocks}.onnx"
    onnx.utils.extract_model(str(embedding_path), str(front), ["input_1"], [CUTS[blocks]])
    onnx.utils.extract_model(str(embedding_path), str(tail), [CUTS[blocks]], [OUTPUT])
    return front, tail


def head_positions(n: int, step: int) -> list[int]:
    """Which of ``n`` windows (8 frames apart) the head sees at ``step``: the last one and every k-th before it,
    the same choice as :func:`wakeword.classifiers.speech_embedding.every_step`."""
    k = step // EMBEDDING_STRIDE
    count = (n - 1) // k + 1
    return list(range(n - 1 - (count - 1) * k, n, k))


class FrozenFront:
    """Clips → activations at the cut for the windows the head sees: (clips, n, C, H, W) float16."""

    def __init__(self, frontend: EmbeddingFrontEnd, front_path: Path, step: int, threads: int) -> None:
        from wakeword.onnxrt import open_session

        self.frontend = frontend
        self.step = step
        self.session = open_session(front_path, threads)
        self.input = self.session.get_inputs()[0].name

    def __call__(self, clips: np.ndarray, mel_augment: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        win = self.frontend.windows(clips, mel_augment)
        win = win[:, head_positions(win.shape[1], self.step)]
        flat = win.reshape(-1, EMBEDDING_FRAMES, 32, 1)
        out = np.concatenate(
            [self.session.run(None, {self.input: flat[i : i + 1024]})[0] for i in range(0, len(flat), 1024)]
        )
        return out.reshape(len(clips), win.shape[1], *out.shape[1:]).astype(np.float16)


def load_tail(tail_path: Path):
    """The tail as a torch module whose convolutions train (the clamp constants between them stay).

    Built by hand from the ONNX nodes, because the tail is five op types (Conv, LeakyRelu, Max with a
    constant, MaxPool, Reshape) and onnx2torch, the library for this, pulls torchvision and with it another
    torch build than the pinned CPU one. Checked against ONNX Runtime in tests and at every export."""
    import torch
    from onnx import numpy_helper

    onnx = _onnx()
    graph = onnx.load(str(tail_path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    nn = torch.nn

    class Tail(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.convs = nn.ModuleDict()
            self.steps: list[tuple] = []
            for node in graph.node:
                attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
                if node.op_type == "Conv":
                    key = str(len(self.convs))
                    self.convs[key] = _conv2d(node, attrs, inits)
                    self.steps.append(("conv", key, node.name))
                else:
                    self.steps.append(_tail_step(node, attrs, inits))

        def forward(self, x):
            for step in self.steps:
                if step[0] == "conv":
                    x = self.convs[step[1]](x)
                elif step[0] == "leaky":
                    x = torch.nn.functional.leaky_relu(x, step[1])
                elif step[0] == "max":
                    x = torch.clamp(x, min=step[1])
                elif step[0] == "pool":
                    x = torch.nn.functional.max_pool2d(x, step[1], step[2])
                else:
                    x = x.reshape(step[1])
            return x

        def onnx_names(self):
            """(ONNX node name, conv module) of every convolution."""
            return [(step[2], self.convs[step[1]]) for step in self.steps if step[0] == "conv"]

    return Tail()


def _conv2d(node, attrs: dict, inits: dict):
    """A torch ``Conv2d`` with the weights (and the bias) of an ONNX Conv node: unit strides, one group,
    symmetric padding."""
    import torch

    w = inits[node.input[1]]
    pads = attrs.get("pads", [0, 0, 0, 0])
    if pads[:2] != pads[2:] or attrs.get("group", 1) != 1 or set(attrs.get("strides", [1])) != {1}:
        raise ValueError(f"{node.name}: unsupported convolution {attrs}")
    conv = torch.nn.Conv2d(
        w.shape[1], w.shape[0], tuple(w.shape[2:]), padding=tuple(pads[:2]), bias=len(node.input) > 2
    )
    conv.weight.data = torch.from_numpy(w.copy())
    if conv.bias is not None:  # made with bias=True: the node has a bias input
        conv.bias.data = torch.from_numpy(inits[node.input[2]].copy())
    return conv


def _tail_step(node, attrs: dict, inits: dict) -> tuple:
    """The tail's forward step for a LeakyRelu, Max (with a constant), MaxPool or Reshape node."""
    if node.op_type == "LeakyRelu":
        return ("leaky", float(attrs.get("alpha", 0.01)))
    if node.op_type == "Max":
        const = [inits[i] for i in node.input if i in inits]
        if len(const) != 1 or const[0].size != 1:
            raise ValueError(f"{node.name}: only max(x, constant) is supported")
        return ("max", float(const[0].reshape(-1)[0]))
    if node.op_type == "MaxPool":
        if attrs.get("pads", [0, 0, 0, 0]) != [0, 0, 0, 0]:
            raise ValueError(f"{node.name}: padded max-pool is not supported")
        return ("pool", tuple(attrs["kernel_shape"]), tuple(attrs["strides"]))
    if node.op_type == "Reshape":
        return ("reshape", tuple(int(d) for d in inits[node.input[1]]))
    raise ValueError(f"{node.name}: op {node.op_type} is not supported in the tuned tail")


def tuned_model(tail, head):
    """Tail + head as one torch module: (batch, n, C, H, W) activations at the cut → logits."""
    import torch

    class Tuned(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tail = tail
            self.head = head

        def forward(self, mid):
            b, n = mid.shape[:2]
            return self.head(self.tail(mid.flatten(0, 1)).reshape(b, n, EMBEDDING_DIM))

    return Tuned()


def param_groups(net, tail_lr: float = 3e-4, head_lr: float = 2e-3) -> list[dict]:
    """Optimiser groups for :func:`wakeword.training.train.fit`: the pretrained tail moves slower than the head."""
    return [
        {"params": [p for p in net.tail.parameters() if p.requires_grad], "lr": tail_lr, "weight_decay": 1e-4},
        {"params": list(net.head.parameters()), "lr": head_lr, "weight_decay": 5e-2},
    ]


def write_tuned_embedding(original: Path, tail, dst: Path, front_path: Path, tolerance: float = 1e-3) -> float:
    """Copy ``original`` with the tail's convolution weights replaced; checks the ONNX file against
    front (ONNX) + tail (torch) on random windows and returns the largest difference."""
    import onnxruntime as ort
    import torch
    from onnx import numpy_helper

    onnx = _onnx()
    model = onnx.load(str(original))
    inits = {init.name: init for init in model.graph.initializer}
    nodes = {n.name: n for n in model.graph.node}
    replaced = 0
    for name, module in tail.onnx_names():
        node = nodes[name]
        params = [module.weight] + ([module.bias] if module.bias is not None else [])
        for tensor_name, p in zip(node.input[1:], params):
            new = p.detach().numpy().astype(np.float32)
            if tuple(inits[tensor_name].dims) != new.shape:
                raise ValueError(f"{tensor_name}: shape {tuple(inits[tensor_name].dims)} != {new.shape}")
            inits[tensor_name].CopyFrom(numpy_helper.from_array(new, tensor_name))
            replaced += 1
    if not replaced:
        raise ValueError("no convolution of the tail found in the embedding model")
    onnx.save(model, str(dst))
    rng = np.random.default_rng(0)
    windows = (rng.standard_normal((16, EMBEDDING_FRAMES, 32, 1)) + 1).astype(np.float32)
    got = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"]).run(None, {"input_1": windows})[0]
    front = ort.InferenceSession(str(front_path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        mid = torch.from_numpy(front.run(None, {front.get_inputs()[0].name: windows})[0])
        want = tail(mid).numpy()
    diff = float(np.abs(got.reshape(16, -1) - want.reshape(16, -1)).max())
    if diff > tolerance:
        raise ValueError(f"tuned embedding model differs from the trained network by {diff:g}")
    return diff
