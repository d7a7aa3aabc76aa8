"""Numpy feature extractors: parity with transformers' own extractors, and their invariants.

Reference tests need the export extra (transformers + torch) and are skipped
cleanly without it; the invariants need numpy only.
"""

from __future__ import annotations

import glob
import shutil
import subprocess
import sys

import numpy as np
import pytest

from wakeword.errors import ModelError
from wakeword.features import (
    AstFbank,
    AstFbankOptions,
    Waveform,
    WaveformOptions,
    WhisperLogMel,
    WhisperLogMelOptions,
    build_feature_extractor,
    feature_options_from_dict,
    feature_options_to_dict,
    kaldi_mel_filters,
    slaney_mel_filters,
)

TOLERANCE = 1e-4
LIBRIVOX = sorted(glob.glob("/usr/share/pocketsphinx/test/data/librivox/*.wav"))


def _librivox() -> list[tuple[str, np.ndarray]]:
    sf = pytest.importorskip("soundfile")
    clips = []
    for path in LIBRIVOX:
        audio, rate = sf.read(path, dtype="float32")
        assert rate == 16_000
        clips.append((path.rsplit("/", 1)[-1], audio))
    return clips


def _espeak(text: str) -> np.ndarray | None:
    """16 kHz speech from espeak-ng, or None where it is not installed."""
    if shutil.which("espeak-ng") is None:
        return None
    sf = pytest.importorskip("soundfile")
    soxr = pytest.importorskip("soxr")
    wav = subprocess.run(["espeak-ng", "--stdout", text], check=True, capture_output=True).stdout
    import io

    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return soxr.resample(audio, rate, 16_000).astype(np.float32)


@pytest.fixture(scope="module")
def clips() -> list[tuple[str, np.ndarray]]:
    """Real speech (LibriVox, espeak-ng) where present, plus random and edge-case audio."""
    rng = np.random.default_rng(1234)
    found = _librivox()
    speech = _espeak("marvin, turn the lights on")
    if speech is not None:
        found.append(("espeak", speech))
    if not found:
        pytest.skip("no real speech here: install Debian's pocketsphinx-testdata or espeak-ng")
    found += [
        ("noise-1s", (0.3 * rng.standard_normal(16_000)).astype(np.float32)),
        ("uniform-2.5s", rng.uniform(-1, 1, 40_000).astype(np.float32)),
        ("loud-0.7s", rng.uniform(-1, 1, 11_200).astype(np.float32)),
        ("one-frame", rng.uniform(-1, 1, 401).astype(np.float32)),
        ("too-short", rng.uniform(-1, 1, 300).astype(np.float32)),
        ("silence", np.zeros(16_000, dtype=np.float32)),
        ("float64", rng.uniform(-0.5, 0.5, 16_000)),
    ]
    return found


def _reference(name: str):
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    return getattr(transformers, name)


@pytest.mark.export
@pytest.mark.parametrize("max_length", [128, 1024])
def test_ast_fbank_matches_transformers(clips, max_length):
    reference = _reference("ASTFeatureExtractor")(max_length=max_length)
    ours = AstFbank(AstFbankOptions(max_length=max_length))
    for name, audio in clips:
        expected = reference(audio, sampling_rate=16_000, return_tensors="np").input_values
        got = ours(audio)
        assert got.shape == expected.shape == (1, max_length, 128)
        assert got.dtype == np.float32
        assert np.abs(got - expected).max() <= TOLERANCE, name


@pytest.mark.export
def test_ast_fbank_matches_transformers_without_normalisation(clips):
    reference = _reference("ASTFeatureExtractor")(max_length=100, num_mel_bins=64, do_normalize=False)
    ours = AstFbank(AstFbankOptions(max_length=100, num_mel_bins=64, do_normalize=False))
    for name, audio in clips:
        expected = reference(audio, sampling_rate=16_000, return_tensors="np").input_values
        assert np.abs(ours(audio) - expected).max() <= TOLERANCE, name


@pytest.mark.export
@pytest.mark.parametrize("do_normalize", [True, False])
def test_waveform_matches_wav2vec2_extractor(clips, do_normalize):
    reference = _reference("Wav2Vec2FeatureExtractor")(do_normalize=do_normalize)
    ours = Waveform(WaveformOptions(do_normalize=do_normalize))
    for name, audio in clips:
        expected = reference(audio, sampling_rate=16_000, return_tensors="np").input_values
        got = ours(audio)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= TOLERANCE, name


@pytest.mark.export
@pytest.mark.parametrize("feature_size", [80, 128])
def test_whisper_log_mel_matches_transformers(clips, feature_size):
    reference = _reference("WhisperFeatureExtractor")(feature_size=feature_size)
    ours = WhisperLogMel(WhisperLogMelOptions(feature_size=feature_size))
    for name, audio in clips:
        expected = reference(audio, sampling_rate=16_000, return_tensors="np").input_features
        got = ours(audio)
        assert got.shape == expected.shape == (1, feature_size, 3000)
        assert np.abs(got - expected).max() <= TOLERANCE, name


@pytest.mark.export
@pytest.mark.parametrize("num_samples", [479_799, 479_800, 480_000, 500_000])
def test_whisper_log_mel_at_the_30s_boundary(num_samples):
    reference = _reference("WhisperFeatureExtractor")()
    audio = (0.1 * np.random.default_rng(num_samples).standard_normal(num_samples)).astype(np.float32)
    expected = reference(audio, sampling_rate=16_000, return_tensors="np").input_features
    assert np.abs(WhisperLogMel()(audio) - expected).max() <= TOLERANCE


@pytest.mark.export
def test_whisper_extractor_with_short_chunks():
    reference = _reference("WhisperFeatureExtractor")(chunk_length=5, feature_size=40)
    ours = WhisperLogMel(WhisperLogMelOptions(chunk_length=5, feature_size=40))
    audio = np.random.default_rng(5).uniform(-1, 1, 30_000).astype(np.float32)
    expected = reference(audio, sampling_rate=16_000, return_tensors="np").input_features
    assert np.abs(ours(audio) - expected).max() <= TOLERANCE


@pytest.mark.export
def test_mel_filters_match_transformers():
    pytest.importorskip("transformers")
    from transformers.audio_utils import mel_filter_bank

    kaldi = mel_filter_bank(
        num_frequency_bins=257,
        num_mel_filters=128,
        min_frequency=20,
        max_frequency=8000,
        sampling_rate=16_000,
        norm=None,
        mel_scale="kaldi",
        triangularize_in_mel_space=True,
    )
    assert np.abs(kaldi_mel_filters(128, 512, 16_000, 20.0, 8000.0) - kaldi).max() < 1e-12
    slaney = mel_filter_bank(201, 80, 0.0, 8000.0, 16_000, norm="slaney", mel_scale="slaney")
    assert np.abs(slaney_mel_filters(80, 400, 16_000) - slaney).max() < 1e-12


# --------------------------------------------------------------- numpy only


def test_ast_pads_with_normalised_zero_and_truncates():
    options = AstFbankOptions(max_length=128)
    ours = AstFbank(options)
    one_second = np.random.default_rng(0).uniform(-1, 1, 16_000).astype(np.float32)
    features = ours(one_second)[0]
    assert ours.num_frames(16_000) == 98
    assert np.all(features[98:] == np.float32(-options.mean / (2 * options.std)))
    assert np.all(features[:98] != features[98, 0])
    long = np.random.default_rng(1).uniform(-1, 1, 40_000).astype(np.float32)
    # the first 128 frames only depend on the first 127 * 160 + 400 samples
    np.testing.assert_array_equal(ours(long), ours(long[: 127 * 160 + 400]))


def test_extractors_write_into_out_and_leave_the_input_alone():
    audio = np.random.default_rng(2).uniform(-1, 1, 16_000).astype(np.float32)
    before = audio.copy()
    for extractor in (AstFbank(AstFbankOptions(max_length=128)), Waveform(), WhisperLogMel()):
        out = np.empty(extractor.input_shape(audio.shape[0]), dtype=np.float32)
        result = extractor(audio, out=out)
        assert result is out
        np.testing.assert_array_equal(out, extractor(audio))
        np.testing.assert_array_equal(audio, before)
        with pytest.raises(ModelError, match="out must be float32"):
            extractor(audio, out=np.empty((1, 3), dtype=np.float32))


def test_repeated_calls_do_not_leak_state_between_windows():
    rng = np.random.default_rng(3)
    loud = rng.uniform(-1, 1, 20_000).astype(np.float32)
    short = rng.uniform(-1, 1, 8_000).astype(np.float32)
    for extractor in (AstFbank(AstFbankOptions(max_length=128)), WhisperLogMel()):
        fresh = type(extractor)(extractor.options)(short)
        extractor(loud)
        np.testing.assert_array_equal(extractor(short), fresh)


def test_whisper_skipped_padding_frames_equal_full_computation():
    audio = np.random.default_rng(4).uniform(-1, 1, 16_000).astype(np.float32)
    ours = WhisperLogMel()(audio)[0]
    # silence after the audio sits at the floor: 8 decades below the loudest frame
    tail = ours[:, 200:]
    assert np.all(tail == tail[0, 0])
    assert tail[0, 0] == pytest.approx(ours.max() - 2.0, abs=1e-6)  # (log10 floor + 4) / 4


def test_waveform_normalisation_and_silence():
    audio = np.random.default_rng(5).normal(0.3, 2.0, 16_000).astype(np.float32)
    out = Waveform()(audio)[0]
    assert abs(float(out.mean())) < 1e-5 and abs(float(out.std()) - 1.0) < 1e-4
    assert np.all(Waveform()(np.zeros(100, np.float32)) == 0.0)
    np.testing.assert_array_equal(Waveform(WaveformOptions(do_normalize=False))(audio)[0], audio)
    with pytest.raises(ModelError):
        Waveform()(np.zeros(0, np.float32))


def test_mono_only():
    with pytest.raises(ModelError, match="mono"):
        AstFbank()(np.zeros((16_000, 2), np.float32))


def test_options_round_trip_through_the_manifest_form():
    for options in (
        AstFbankOptions(max_length=128),
        WaveformOptions(do_normalize=False),
        WhisperLogMelOptions(),
    ):
        spec = feature_options_to_dict(options)
        assert feature_options_from_dict(spec) == options
        assert type(build_feature_extractor(spec)).__name__ in {"AstFbank", "Waveform", "WhisperLogMel"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "mfcc"}, "unknown feature kind 'mfcc'"),
        ({"kind": "ast_fbank", "dither": 1.0}, "unknown ast_fbank feature settings in manifest: dither"),
        ({"kind": "ast_fbank", "max_length": 0}, "max_length must be a positive integer"),
        ({"kind": "whisper_log_mel", "feature_size": "80"}, "feature_size must be a positive integer"),
        ([], "must be an object"),
    ],
)
def test_bad_feature_specs_are_model_errors(spec, message):
    with pytest.raises(ModelError, match=message):
        feature_options_from_dict(spec)


def test_features_module_does_not_import_torch_or_transformers():
    code = (
        "import sys, numpy as np\n"
        "from wakeword.features import AstFbank, Waveform, WhisperLogMel\n"
        "for e in (AstFbank(), Waveform(), WhisperLogMel()): e(np.zeros(16000, np.float32))\n"
        "bad = [m for m in ('torch', 'transformers', 'optimum') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
