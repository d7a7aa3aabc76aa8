#!/usr/bin/env python
"""Export the seed keyword model, MIT/ast-finetuned-speech-commands-v2, for the torch-free runtime.

    pip install 'wakeword[export]'        # torch, transformers, optimum, onnx (about 1.5 GB)
    python scripts/export_ast.py          # -> models/ast-speech-commands/

The same as ``wakeword export MIT/ast-finetuned-speech-commands-v2 --out
models/ast-speech-commands``. It needs Hugging Face Hub access once: it
downloads the checkpoint's config, feature-extractor settings and fp32
weights (85.4M parameters, about 345 MB) into the Hugging Face cache, and
writes model.onnx (fp32, about 341 MB), model.int8.onnx (about 87 MB),
manifest.json and parity.json. Extra arguments go to ``wakeword export``
(``--force``, ``--quantize none``, ``--out DIR``...).
"""

from __future__ import annotations

import sys

from wakeword.cli.app import main
from wakeword.export.command import DEFAULT_MODEL

if __name__ == "__main__":
    extra = sys.argv[1:]
    out = (
        []
        if any(a in ("--out", "-o") or a.startswith("--out=") for a in extra)
        else ["--out", "models/ast-speech-commands"]
    )
    sys.exit(main(["export", DEFAULT_MODEL, *out, *extra]))
