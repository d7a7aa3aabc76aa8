"""Multiply-accumulate counts of ONNX graphs, for cost estimates on devices we cannot run here.

Counts the operations that dominate audio models: ``Conv``/``ConvInteger``/
``QLinearConv`` (output elements x input channels per group x kernel size)
and ``MatMul``/``MatMulInteger``/``QLinearMatMul``/``Gemm`` (output
elements x the shared dimension). Shapes come from ONNX shape inference
after the graph inputs are fixed to the shapes the engine feeds. Element-wise
ops, softmax and normalisation are left out (a few percent in these models),
so the count is a lower bound. Needs the ``onnx`` package (export extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wakeword.errors import DependencyError, ModelError

__all__ = ["PI_GMACS", "MacCount", "count_macs", "pi_estimate"]

# Assumed sustained ONNX Runtime throughput on ONE core, in GMAC/s: (fp32, int8).
# Not measured here (there is no Pi on this project's machines): Cortex-A72 at 1.5-1.8 GHz
# peaks at 8 fp32 MAC per cycle with NEON; small convolution and matmul kernels of
# these sizes sustain roughly a quarter of that, int8 kernels about twice fp32.
PI_GMACS = {
    "pi4": (3.0, 6.0),  # Raspberry Pi 4, Cortex-A72 @ 1.8 GHz
    "pi5": (8.0, 16.0),  # Raspberry Pi 5, Cortex-A76 @ 2.4 GHz (about 2.5-3x a Pi 4 per core)
}


@dataclass(frozen=True)
class MacCount:
    """MACs of one run; ``int8`` of them in integer kernels (ConvInteger, MatMulInteger, QLinear*)."""

    total: int
    int8: int

    def __add__(self, other: MacCount) -> MacCount:
        return MacCount(self.total + other.total, self.int8 + other.int8)


_CONV = {"Conv", "ConvInteger", "QLinearConv"}
_MATMUL = {"MatMul", "MatMulInteger", "QLinearMatMul", "FusedMatMul"}


def count_macs(path: str | Path, input_shapes: dict[str, Sequence[int]] | Sequence[int]) -> MacCount:
    """MACs of one run of the model at ``path`` with inputs of the given shapes.

    ``input_shapes``: per input name, or one shape for the first input; a
    size of -1 keeps the graph's own fixed size for that dimension.
    """
    try:
        import onnx
        from onnx import shape_inference
    except ImportError as e:
        raise DependencyError(f"counting operations needs the onnx package ({e}); pip install onnx") from e
    try:
        model = onnx.load(str(path))
    except Exception as e:  # onnx raises its own decode errors
        raise ModelError(f"{path}: cannot read ONNX model ({e})") from e
    _fix_input_shapes(path, model.graph, input_shapes)
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    shapes: dict[str, list[int]] = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = [d.dim_value for d in dims]
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)

    total = int8 = 0
    missing = []
    for node in inferred.graph.node:
        if node.op_type not in _CONV and node.op_type not in _MATMUL and node.op_type != "Gemm":
            continue
        macs = _node_macs(node, shapes)
        if macs is None:
            missing.append(node.name or node.op_type)
            continue
        total += macs
        if "Integer" in node.op_type or node.op_type.startswith("QLinear"):
            int8 += macs
    if missing:
        raise ModelError(f"{path}: shape inference left {len(missing)} conv/matmul node(s) without shapes")
    return MacCount(total, int8)


def _fix_input_shapes(path: str | Path, graph: Any, input_shapes: dict[str, Sequence[int]] | Sequence[int]) -> None:
    """Write ``input_shapes`` into the graph's inputs (in place) so shape inference sees fixed sizes."""
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if not isinstance(input_shapes, dict):
        input_shapes = {inputs[0].name: input_shapes}
    for inp in inputs:
        shape = input_shapes.get(inp.name)
        if shape is None:
            continue
        dims = inp.type.tensor_type.shape.dim
        if len(dims) != len(shape):
            raise ModelError(f"{path}: input {inp.name} has {len(dims)} dimensions, got shape {tuple(shape)}")
        for dim, length in zip(dims, shape):
            if length == -1:
                if not dim.HasField("dim_value"):
                    raise ModelError(f"{path}: input {inp.name} has no fixed size to keep ({dim.dim_param!r})")
                continue
            dim.ClearField("dim_param")
            dim.dim_value = int(length)


def _size(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _node_macs(node: Any, shapes: dict[str, list[int]]) -> int | None:
    """MACs of one convolution or matrix product, or ``None`` where shape inference left a shape unknown."""
    if node.op_type in _CONV:
        w_index = 3 if node.op_type == "QLinearConv" else 1
        out, w = shapes.get(node.output[0]), shapes.get(node.input[w_index])
        if out is None or w is None:
            return None
        return _size(out) * _size(w[1:])  # weight: (out_ch, in_ch / groups, *kernel)
    a, out = shapes.get(node.input[0]), shapes.get(node.output[0])
    if a is None or out is None:
        return None
    k = a[0] if node.op_type == "Gemm" and _attr(node, "transA") else a[-1]
    return _size(out) * k


def _attr(node, name: str) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return 0


def pi_estimate(macs: MacCount, hop_ms: float) -> dict[str, dict[str, float]]:
    """Estimated ms per classified hop and share of one core with the gate open, on a Pi 4 and 5.

    An estimate from :data:`PI_GMACS`, not a measurement.
    """
    out = {}
    for device, (fp32, int8) in PI_GMACS.items():
        seconds = (macs.total - macs.int8) / (fp32 * 1e9) + macs.int8 / (int8 * 1e9)
        out[device] = {"ms_per_hop": 1000 * seconds, "core_share_gate_open": 1000 * seconds / hop_ms}
    return out
