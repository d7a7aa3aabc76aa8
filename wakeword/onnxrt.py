"""The one way this package opens an ONNX Runtime session: CPU, threads set once, quiet logs.

onnxruntime is imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from wakeword.errors import ConfigError, DependencyError, ModelError

__all__ = ["default_threads", "open_session", "session_options"]


def default_threads() -> int:
    """Intra-op threads for 1-4 core devices: 1 on up to 2 cores, else 2.

    Audio capture, the VAD and the engine keep a core of their own. On a
    2-core machine a second ORT thread did not pay: the Speech Commands AST
    took 41 ms per window in int8 with 1 thread and 64 ms with 2
    (scripts/bench_ast.py).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return 1 if cores <= 2 else 2


def session_options(threads: int | None = None) -> Any:
    """``onnxruntime.SessionOptions``: ``threads`` intra-op threads (``None``: :func:`default_threads`), sequential."""
    ort = _onnxruntime()
    if threads is None:
        threads = default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be a positive integer, got {threads!r}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


def open_session(model: str | Path | bytes, threads: int | None = None, name: str | Path | None = None) -> Any:
    """An ``InferenceSession`` on the CPU for a model file or its bytes; a load failure is one ``ModelError`` line."""
    ort = _onnxruntime()
    options = session_options(threads)
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/InvalidProtobuf types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        label = name if name is not None else ("<bytes>" if isinstance(model, bytes) else model)
        raise ModelError(f"{label}: ONNX Runtime cannot load it ({first})") from e


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as e:
        raise DependencyError(f"onnxruntime is not installed ({e}); pip install onnxruntime") from e
    return onnxruntime
