"""The shipped default model on a small part of the real-speech set's eval speakers (real people, never
trained on): fails when real-speech accuracy falls below the floors below.

The part: Kajongg (4.7 MB; two eval speakers saying "bamboo one" ... "circle nine"), Tux Paint (161 MB;
the British English voice's digits and short descriptions) and the Colombian Spanish Asterisk prompts
(1 MB; 13 minutes of negatives with their pauses). Fetched with ``apt-get download`` like ``scripts/build_real_speech.py``;
skipped, with the reason, only when the package archive cannot be reached.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from wakeword.classifiers.speech_embedding import SpeechEmbeddingClassifier
from wakeword.errors import DependencyError
from wakeword.training import real_speech as rsp
from wakeword.training.real_eval import eval_cuts, false_accepts, keyword_accuracy, summarise_accuracy

PACKAGES = ("kajongg", "tuxpaint-stamps-default", "asterisk-prompt-es-co")
# floors: the shipped model measures 12/12 isolated, 21/25 (84%) in phrases and no false accept in 13 minutes
# at its threshold; the previous, synthetic-only default measured 12/12, 10/25 (40%) and one false accept
ISOLATED_FLOOR = 0.9  # at most one of the 12 wrong
PHRASE_FLOOR = 0.7
FA_PER_HOUR_CEILING = 5.0  # 13 minutes: one false accept is 4.6/h; two fail


@pytest.fixture(scope="module")
def real():
    cache = Path(os.environ.get("WAKEWORD_REAL_CACHE", rsp.default_cache_dir()))
    try:
        return rsp.RealSpeech(cache, packages=PACKAGES)
    except (rsp.RealSpeechError, DependencyError) as e:
        pytest.skip(f"the Debian package archive is unreachable: {e}")


@pytest.fixture(scope="module")
def model():
    from wakeword.classifiers.shipped import default_model_dir

    return SpeechEmbeddingClassifier(default_model_dir())


def _cuts(real, kind):
    return [c for c in eval_cuts(real, rsp.load_keywords(), kind) if c.file_id in real.by_id]


def test_real_isolated_words_of_eval_speakers(real, model):
    cuts = _cuts(real, "isolated")
    assert len(cuts) >= 10
    summary = summarise_accuracy(keyword_accuracy(model, real, cuts))
    assert summary["accuracy"] >= ISOLATED_FLOOR, summary


def test_real_words_inside_phrases_of_eval_speakers(real, model):
    cuts = _cuts(real, "phrase")
    assert len(cuts) >= 20
    summary = summarise_accuracy(keyword_accuracy(model, real, cuts))
    assert summary["accuracy"] >= PHRASE_FLOOR, summary


def test_wake_word_stays_quiet_on_real_spanish_prompts(real, model):
    sub = rsp.RealSpeech.__new__(rsp.RealSpeech)
    sub.__dict__.update(real.__dict__)
    sub.files = [f for f in real.files if f.package == "asterisk-prompt-es-co"]
    result = false_accepts(model, model.info.keywords[0], sub)
    assert result["hours"] > 0.2
    threshold = min(result["per_hour"], key=lambda t: abs(t - model.info.thresholds[model.info.keywords[0]]))
    assert result["per_hour"][threshold] <= FA_PER_HOUR_CEILING, result["per_hour"]
    assert np.isfinite(result["gate_open_share"])
