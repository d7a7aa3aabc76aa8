"""Where the shipped models live: ``models/`` of a source checkout, or inside an installed wheel."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_MODEL_NAME", "default_model_dir", "models_dir"]

DEFAULT_MODEL_NAME = "speech-commands"


def models_dir() -> Path:
    here = Path(__file__).resolve().parents[1]  # the wakeword package
    for candidate in (here / "models", here.parent / "models"):  # wheel, then source checkout
        if (candidate / "speech-embedding").is_dir():
            return candidate
    return here.parent / "models"


def default_model_dir() -> Path:
    return models_dir() / DEFAULT_MODEL_NAME
