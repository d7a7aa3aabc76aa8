"""Shared test fixtures: synthetic streams whose keywords the ToneClassifier knows."""

from __future__ import annotations

import numpy as np
import pytest

SR = 16_000

# (frequency Hz, start s, duration s), at least one 1 s window apart: marvin=440, sheila=660, go=880 for ToneClassifier()
BURSTS = [(440.0, 1.0, 0.8), (660.0, 3.2, 0.7), (440.0, 5.5, 1.0), (880.0, 8.0, 0.6), (440.0, 10.2, 0.5)]
STREAM_S = 12.0


def tone_stream(bursts=BURSTS, duration_s=STREAM_S, noise=0.002, seed=0) -> np.ndarray:
    """Low noise with sine bursts (10 ms fades) at the given times: a labelled test stream."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * SR)
    x = (noise * rng.standard_normal(n)).astype(np.float32)
    for freq, start, dur in bursts:
        i0, m = int(start * SR), int(dur * SR)
        t = np.arange(m) / SR
        env = np.minimum(1.0, np.minimum(t, dur - t) / 0.01)
        x[i0 : i0 + m] += (0.3 * env * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return x


@pytest.fixture(scope="session", autouse=True)
def caches_in_a_temp_dir(tmp_path_factory):
    """Every cache the tests fill goes under the session's temporary directory, never the real ``~/.cache``.

    ``XDG_CACHE_HOME`` moves the Whisper base model that ``ensure_base_model()`` reassembles on first use
    (the ``tiny`` fixture of test_onnx_whisper and the real-model hand-off tests call it with no directory),
    the ONNX Whisper default directory and any other XDG cache; ``HF_HOME`` moves the Hugging Face cache.
    Subprocesses inherit both. Caches kept under ``Path.home()`` itself are not covered."""
    root = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(root))
        mp.setenv("HF_HOME", str(root / "huggingface"))
        yield root


@pytest.fixture(scope="session")
def stream() -> np.ndarray:
    return tone_stream()


@pytest.fixture(scope="session")
def stream_wav(tmp_path_factory, stream) -> str:
    import soundfile as sf

    path = tmp_path_factory.mktemp("audio") / "stream16k.wav"
    sf.write(path, stream, SR, subtype="PCM_16")
    return str(path)


def run_cli_torch_free(*args: str) -> str:
    """Run ``wakeword`` in a fresh interpreter; assert it exits 0 without importing torch,
    transformers or optimum; return its stdout."""
    import subprocess
    import sys

    code = (
        "import sys, wakeword.cli\n"
        f"rc = wakeword.cli.main({list(args)!r})\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'optimum'))\n"
        "print('HEAVY', heavy, rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    out = proc.stdout.decode()
    assert "HEAVY [] 0" in out, out + proc.stderr.decode()
    return out
