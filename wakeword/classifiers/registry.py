"""One way to name a model: ``default``, a model directory of any kind, or ``NAME[:SPEC]``.

Backends and directory kinds map to ``"module:attr"`` and are imported when
asked for, so nothing depends on who imported what first (as faster-whisper
names its models and Ray its plugins). ``run``, ``listen``, ``serve``,
``classify``, ``eval`` and ``bench`` all load models through
:func:`load_classifier`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from wakeword.classifiers.base import Classifier
from wakeword.classifiers.shipped import default_model_dir
from wakeword.errors import ModelError
from wakeword.manifest import read_manifest

__all__ = ["BACKENDS", "DIRECTORY_KINDS", "load_classifier", "model_directory", "model_kind", "register_backend"]

# --model NAME[:SPEC] -> a factory taking SPEC (the text after the colon)
BACKENDS: dict[str, str] = {
    "tone": "wakeword.classifiers.tone:from_spec",
    "onnx": "wakeword.classifiers.onnx:from_spec",
}

# a model directory's manifest -> the class that loads it: (manifest key, value) -> "module:attr"
DIRECTORY_KINDS: dict[tuple[str, str], str] = {
    ("architecture", "speech-embedding-head"): "wakeword.classifiers.speech_embedding:SpeechEmbeddingClassifier",
    ("format", "wakeword-onnx-classifier"): "wakeword.classifiers.onnx:OnnxClassifier",
}

_NOT_CLASSIFIERS = {
    "wakeword-onnx-whisper": "an ONNX Whisper export: pass it to --asr-backend onnx --asr-model DIR",
}


def register_backend(name: str, target: str) -> None:
    """Add ``--model NAME[:SPEC]``: ``target`` is ``"module:attr"``, a callable taking ``SPEC``."""
    if ":" not in target:
        raise ModelError(f"a backend target must be 'module:attr', got {target!r}")
    BACKENDS[name] = target


def _resolve(target: str) -> Any:
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as e:
        raise ModelError(f"the model backend {target} is unavailable: {e}") from e


def model_kind(path: str | Path) -> str:
    """The ``"module:attr"`` that loads the model directory ``path``, from its manifest."""
    manifest = read_manifest(
        path, hint="not a wakeword model directory (made by `wakeword train` or `wakeword export`)"
    )
    for (key, value), target in DIRECTORY_KINDS.items():
        if manifest.get(key) == value:
            return target
    fmt = manifest.get("format")
    if fmt in _NOT_CLASSIFIERS:
        raise ModelError(f"{path}: {_NOT_CLASSIFIERS[fmt]}, not a --model")
    kinds = ", ".join(f"{k}={v}" for k, v in DIRECTORY_KINDS)
    raise ModelError(f"{Path(path) / 'manifest.json'}: not a model this wakeword reads (expected one of: {kinds})")


def model_directory(model: str | Path) -> Path | None:
    """The directory ``--model`` names (``default`` is the shipped model's), or ``None`` for a ``NAME[:SPEC]`` backend."""
    text = str(model)
    if text == "default":
        path = default_model_dir()
        if not (path / "manifest.json").exists():
            raise ModelError(f"the default model is missing from {path}; reinstall wakeword or pass --model")
        return path
    name, sep, _ = text.partition(":")
    if name in BACKENDS and (sep or not Path(text).is_dir()):
        return None
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelError(f"model {text!r} is not a directory; expected a model directory with a manifest.json")
    if "/" in text or text.startswith((".", "~")):
        raise ModelError(f"{path}: no such model directory")
    valid = ", ".join(["default", *sorted(BACKENDS)])
    raise ModelError(f"unknown model {text!r}: not a directory and not one of: {valid} (or NAME:SPEC, e.g. onnx:DIR)")


def load_classifier(
    model: str | Path = "default", threads: int | None = None, precision: str | None = None
) -> Classifier:
    """Build a classifier from ``--model``: ``default`` (the shipped keyword model), a model
    directory (our keyword heads or exported Hugging Face classifiers), or ``NAME[:SPEC]`` for a
    registered backend (``tone``, ``onnx:DIR``). ``precision`` (``int8``/``fp32``) picks a model
    directory's weights (``None``: its default)."""
    path = model_directory(model)
    if path is not None:
        cls = _resolve(model_kind(path))
        return cls(path, precision=precision, threads=threads)  # a registered class implements Classifier
    name, _, spec = str(model).partition(":")
    if precision is not None:
        raise ModelError(f"--model {model}: a precision applies to model directories only")
    factory = _resolve(BACKENDS[name])
    return factory(spec, threads=threads)  # a registered factory returns a Classifier
