"""The one reader of model directories' ``manifest.json`` and the one checksum.

Every kind of model directory (our keyword heads, exported Hugging Face
classifiers, ONNX Whisper exports) is a folder with a ``manifest.json`` that
records each file's sha256. :func:`read_manifest` reads it with one set of
errors; :func:`verified_file` checks a file against it; :func:`write_manifest`
writes one (atomically, so a directory with a manifest is a finished one).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from wakeword.errors import ModelError

__all__ = [
    "MANIFEST",
    "read_manifest",
    "sha256_bytes",
    "sha256_file",
    "verified_bytes",
    "verified_file",
    "write_manifest",
]

MANIFEST = "manifest.json"


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(model_dir: str | Path, hint: str = "not a wakeword model directory") -> dict[str, Any]:
    """The JSON object in ``model_dir/manifest.json``, or a one-line ``ModelError`` that says what is wrong."""
    model_dir = Path(model_dir).expanduser()
    if not model_dir.exists():
        raise ModelError(f"{model_dir}: no such model directory")
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir}: not a directory; expected a model directory with a {MANIFEST}")
    path = model_dir / MANIFEST
    if not path.is_file():
        raise ModelError(f"{model_dir}: no {MANIFEST}; {hint}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ModelError(f"{path}: unreadable manifest ({e})") from e
    if not isinstance(manifest, dict):
        raise ModelError(f"{path}: not a manifest (expected a JSON object)")
    return manifest


def _checked_path(model_dir: Path, name: object, expected_sha256: object) -> Path:
    if not isinstance(name, str) or Path(name).name != name:
        raise ModelError(f"{model_dir / MANIFEST}: file name {name!r} must be a plain file name")
    path = model_dir / name
    if not path.is_file():
        raise ModelError(f"{path}: missing model file")
    if not isinstance(expected_sha256, str):
        raise ModelError(f"{model_dir / MANIFEST}: no sha256 recorded for {name}")
    return path


def _check_digest(path: Path, actual: str, expected: str) -> None:
    if actual != expected:
        raise ModelError(
            f"{path}: checksum mismatch (sha256 {actual[:16]}..., manifest says {expected[:16]}...); "
            "the file is corrupt or changed since it was written"
        )


def verified_file(model_dir: Path, name: object, expected_sha256: object) -> Path:
    """``model_dir/name`` after checking that it exists and has the recorded sha256."""
    path = _checked_path(model_dir, name, expected_sha256)
    _check_digest(path, sha256_file(path), str(expected_sha256))
    return path


def verified_bytes(model_dir: Path, name: object, expected_sha256: object) -> bytes:
    """The bytes of ``model_dir/name``, read once and checked against the recorded sha256 (so what is loaded is
    exactly what was checked)."""
    path = _checked_path(model_dir, name, expected_sha256)
    data = path.read_bytes()
    _check_digest(path, sha256_bytes(data), str(expected_sha256))
    return data


def write_manifest(path: str | Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` as indented JSON, atomically (a temporary file renamed into place)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
