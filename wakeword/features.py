"""Model input features in numpy, computed as the Hugging Face feature extractors compute them.

Hand-written because transformers' extractors need torch (``ASTFeatureExtractor``
pads with torch even on its numpy path; ``WhisperFeatureExtractor`` uses
``torch.stft`` whenever torch is installed) and the runtime must stay torch-free.

Three kinds, named in a model directory's ``manifest.json`` under ``features``:

- ``ast_fbank``: Kaldi filter-bank features as ``torchaudio.compliance.kaldi.fbank``
  computes them with the settings ``ASTFeatureExtractor`` uses (25 ms Hann
  window, 10 ms hop, DC removal, pre-emphasis 0.97, 512-point FFT, mel bins from
  20 Hz to Nyquist, natural log), padded with zeros or truncated to
  ``max_length`` frames, then normalised as ``(x - mean) / (2 * std)``.
- ``waveform``: the raw waveform, zero-mean unit-variance normalised when the
  extractor's ``do_normalize`` is set (wav2vec2, HuBERT, XLS-R...).
- ``whisper_log_mel``: Whisper's log-mel spectrogram of the audio padded with
  zeros to ``chunk_length`` seconds (reflect-padded STFT, Slaney mel filters,
  log10, clamped to 8 decades below the maximum, ``(x + 4) / 4``).

Each extractor precomputes its filters and windows once and returns the model
input with its batch axis, ready for ONNX Runtime. Passing ``out=`` writes the
features into a caller-owned array instead of allocating one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from wakeword.errors import ModelError

__all__ = [
    "AstFbank",
    "AstFbankOptions",
    "FeatureExtractor",
    "FeatureOptions",
    "Waveform",
    "WaveformOptions",
    "WhisperLogMel",
    "WhisperLogMelOptions",
    "build_feature_extractor",
    "feature_options_from_dict",
    "kaldi_mel_filters",
    "slaney_mel_filters",
]

# Kaldi floors the mel energies at the float32 machine epsilon before the log.
_KALDI_LOG_FLOOR = float(np.finfo(np.float32).eps)
# np.fft gained ``out=`` in numpy 2.0; older numpy allocates the spectrum per call
_FFT_HAS_OUT = int(np.__version__.split(".")[0]) >= 2


def _rfft(frames: np.ndarray, n: int, out: np.ndarray) -> np.ndarray:
    if _FFT_HAS_OUT:
        return np.fft.rfft(frames, n=n, axis=1, out=out)
    out[:] = np.fft.rfft(frames, n=n, axis=1)
    return out


class FeatureExtractor(Protocol):
    """Turns mono 16 kHz float32 audio into one model input (batch axis included)."""

    @property
    def input_name(self) -> str: ...

    @property
    def options(self) -> FeatureOptions: ...  # the settings it was built with

    def input_shape(self, num_samples: int) -> tuple[int, ...]: ...

    def __call__(self, audio: np.ndarray, out: np.ndarray | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class AstFbankOptions:
    """Settings of ``ASTFeatureExtractor`` (lengths in samples, frequencies in Hz)."""

    sample_rate: int = 16_000
    num_mel_bins: int = 128
    max_length: int = 1024  # frames the model sees; fewer are zero-padded, more truncated
    do_normalize: bool = True
    mean: float = -4.2677393
    std: float = 4.5689974
    frame_length: int = 400  # Kaldi's 25 ms at 16 kHz
    hop_length: int = 160  # Kaldi's 10 ms at 16 kHz
    fft_length: int = 512  # frame length rounded up to a power of two
    preemphasis: float = 0.97
    low_freq_hz: float = 20.0

    kind = "ast_fbank"

    def __post_init__(self) -> None:
        _check_positive(self, "sample_rate", "num_mel_bins", "max_length", "frame_length", "hop_length")
        if self.fft_length < self.frame_length:
            raise ModelError(f"ast_fbank: fft_length {self.fft_length} < frame_length {self.frame_length}")
        if self.do_normalize and self.std == 0:
            raise ModelError("ast_fbank: std must be non-zero when do_normalize is set")
        if not 0 <= self.low_freq_hz < self.sample_rate / 2:
            raise ModelError(f"ast_fbank: low_freq_hz {self.low_freq_hz} outside [0, Nyquist)")


@dataclass(frozen=True)
class WaveformOptions:
    """Settings of ``Wav2Vec2FeatureExtractor``: the waveform itself, optionally normalised."""

    sample_rate: int = 16_000
    do_normalize: bool = True
    epsilon: float = 1e-7  # added to the variance, as transformers does

    kind = "waveform"

    def __post_init__(self) -> None:
        _check_positive(self, "sample_rate")


@dataclass(frozen=True)
class WhisperLogMelOptions:
    """Settings of ``WhisperFeatureExtractor`` (``feature_size`` is the number of mel bins)."""

    sample_rate: int = 16_000
    feature_size: int = 80
    n_fft: int = 400
    hop_length: int = 160
    chunk_length: int = 30  # seconds: audio is zero-padded or truncated to this length

    kind = "whisper_log_mel"

    def __post_init__(self) -> None:
        _check_positive(self, "sample_rate", "feature_size", "n_fft", "hop_length", "chunk_length")

    @property
    def n_samples(self) -> int:
        return self.chunk_length * self.sample_rate

    @property
    def n_frames(self) -> int:
        return self.n_samples // self.hop_length


FeatureOptions = AstFbankOptions | WaveformOptions | WhisperLogMelOptions
_OPTION_CLASSES: dict[str, type] = {
    "ast_fbank": AstFbankOptions,
    "waveform": WaveformOptions,
    "whisper_log_mel": WhisperLogMelOptions,
}


def _check_positive(options: object, *names: str) -> None:
    for name in names:
        value = getattr(options, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ModelError(f"{type(options).__name__}: {name} must be a positive integer, got {value!r}")


def feature_options_to_dict(options: FeatureOptions) -> dict[str, Any]:
    """The manifest form: ``{"kind": ..., **fields}``."""
    return {"kind": options.kind, **asdict(options)}


def feature_options_from_dict(spec: dict[str, Any]) -> FeatureOptions:
    """Parse the ``features`` object of a manifest; unknown kinds or fields raise ``ModelError``."""
    if not isinstance(spec, dict):
        raise ModelError(f"manifest 'features' must be an object, got {type(spec).__name__}")
    kind = spec.get("kind")
    cls = _OPTION_CLASSES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        valid = ", ".join(sorted(_OPTION_CLASSES))
        raise ModelError(f"unknown feature kind {kind!r} in manifest (valid: {valid})")
    known = {f.name for f in fields(cls)}
    values = {k: v for k, v in spec.items() if k != "kind"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ModelError(f"unknown {kind} feature settings in manifest: {', '.join(unknown)}")
    try:
        return cls(**values)
    except TypeError as e:
        raise ModelError(f"bad {kind} feature settings in manifest: {e}") from e


def build_feature_extractor(options: FeatureOptions | dict[str, Any]) -> FeatureExtractor:
    """The extractor for a manifest's ``features`` object (or an options dataclass)."""
    if isinstance(options, dict):
        options = feature_options_from_dict(options)
    if isinstance(options, AstFbankOptions):
        return AstFbank(options)
    if isinstance(options, WaveformOptions):
        return Waveform(options)
    if isinstance(options, WhisperLogMelOptions):
        return WhisperLogMel(options)
    raise ModelError(f"unsupported feature options {type(options).__name__}")


def _as_mono_float32(audio: np.ndarray) -> np.ndarray:
    x = np.asarray(audio)
    if x.ndim != 1:
        raise ModelError(f"features expect mono audio (one axis), got shape {x.shape}")
    # transformers casts float64 input to float32 first; doing the same keeps parity exact
    return x if x.dtype == np.float32 else x.astype(np.float32)


def _output(out: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if out.shape != shape or out.dtype != np.float32:
        raise ModelError(f"features: out must be float32 {shape}, got {out.dtype} {out.shape}")
    return out


# ---------------------------------------------------------------------------- AST


def kaldi_mel_filters(
    num_mel_bins: int, fft_length: int, sample_rate: int, low_freq_hz: float, high_freq_hz: float
) -> np.ndarray:
    """Kaldi's triangular mel filters, shape ``(fft_length // 2 + 1, num_mel_bins)``.

    Triangles are linear in mel (``1127 ln(1 + f/700)``); the Nyquist bin gets
    no weight, as in Kaldi and torchaudio.
    """

    def mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    n_fft_bins = fft_length // 2
    mel_low, mel_high = mel(low_freq_hz), mel(high_freq_hz)
    edges = np.linspace(mel_low, mel_high, num_mel_bins + 2)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bin_mel = mel(np.arange(n_fft_bins) * (sample_rate / fft_length))[None, :]
    up = (bin_mel - left) / (centre - left)
    down = (right - bin_mel) / (right - centre)
    filters = np.zeros((n_fft_bins + 1, num_mel_bins), dtype=np.float64)
    filters[:n_fft_bins] = np.maximum(0.0, np.minimum(up, down)).T
    return filters


class AstFbank:
    """``ASTFeatureExtractor`` in numpy: ``(1, max_length, num_mel_bins)`` float32."""

    input_name = "input_values"

    def __init__(self, options: AstFbankOptions | None = None) -> None:
        self.options = o = options or AstFbankOptions()
        self._mel = kaldi_mel_filters(o.num_mel_bins, o.fft_length, o.sample_rate, o.low_freq_hz, o.sample_rate / 2)
        # Kaldi's "hanning" is the symmetric Hann window
        self._window = np.hanning(o.frame_length)
        # contiguous frames: in-place ufuncs on a strided slice buffer a copy; rfft zero-pads to fft_length itself
        self._frames = np.zeros((o.max_length, o.frame_length), dtype=np.float64)
        self._spectrum = np.empty((o.max_length, o.fft_length // 2 + 1), dtype=np.complex128)
        self._power = np.empty((o.max_length, o.fft_length // 2 + 1), dtype=np.float64)
        self._logmel = np.empty((o.max_length, o.num_mel_bins), dtype=np.float64)
        # scratch for the pre-emphasis term and the imaginary part's square: no per-call allocation
        self._shifted = np.empty((o.max_length, o.frame_length - 1), dtype=np.float64)
        self._imag_sq = np.empty((o.max_length, o.fft_length // 2 + 1), dtype=np.float64)
        # padding frames are zeros before normalisation
        self._pad_value = -o.mean / (2.0 * o.std) if o.do_normalize else 0.0

    def input_shape(self, num_samples: int) -> tuple[int, ...]:
        return (1, self.options.max_length, self.options.num_mel_bins)

    def num_frames(self, num_samples: int) -> int:
        """Frames Kaldi computes for ``num_samples`` (``snip_edges``), before padding/truncation."""
        o = self.options
        return 0 if num_samples < o.frame_length else 1 + (num_samples - o.frame_length) // o.hop_length

    def __call__(self, audio: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        o = self.options
        x = _as_mono_float32(audio)
        result = _output(out, self.input_shape(x.shape[0]))
        n = min(self.num_frames(x.shape[0]), o.max_length)
        if n:
            frames = self._frames[:n]
            frames[:] = sliding_window_view(x, o.frame_length)[:: o.hop_length][:n]
            body = frames
            body -= body.mean(axis=1, keepdims=True)
            # pre-emphasis; the right side is evaluated (into scratch) before the in-place update
            shifted = np.multiply(body[:, :-1], o.preemphasis, out=self._shifted[:n])
            body[:, 1:] -= shifted
            body[:, 0] *= 1.0 - o.preemphasis
            body *= self._window
            spectrum = _rfft(frames, o.fft_length, self._spectrum[:n])
            power = self._power[:n]
            np.multiply(spectrum.real, spectrum.real, out=power)
            power += np.multiply(spectrum.imag, spectrum.imag, out=self._imag_sq[:n])
            logmel = self._logmel[:n]
            np.dot(power, self._mel, out=logmel)
            np.maximum(logmel, _KALDI_LOG_FLOOR, out=logmel)
            np.log(logmel, out=logmel)
            if o.do_normalize:
                logmel -= o.mean
                logmel /= 2.0 * o.std
            result[0, :n] = logmel
        result[0, n:] = self._pad_value
        return result


# ----------------------------------------------------------------------- waveform


class Waveform:
    """``Wav2Vec2FeatureExtractor`` in numpy: ``(1, num_samples)`` float32."""

    input_name = "input_values"

    def __init__(self, options: WaveformOptions | None = None) -> None:
        self.options = options or WaveformOptions()

    def input_shape(self, num_samples: int) -> tuple[int, ...]:
        return (1, num_samples)

    def __call__(self, audio: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        x = _as_mono_float32(audio)
        if x.shape[0] == 0:
            raise ModelError("waveform features need at least one sample")
        result = _output(out, self.input_shape(x.shape[0]))
        if self.options.do_normalize:
            mean = float(x.mean(dtype=np.float64))
            var = float(np.square(x - mean, dtype=np.float64).mean())
            np.subtract(x, mean, out=result[0])
            result[0] /= math.sqrt(var + self.options.epsilon)
        else:
            result[0] = x
        return result


# ------------------------------------------------------------------------ Whisper


def slaney_mel_filters(n_mels: int, n_fft: int, sample_rate: int, max_freq_hz: float = 8000.0) -> np.ndarray:
    """Slaney-scale, area-normalised mel filters (librosa's default), shape ``(n_fft // 2 + 1, n_mels)``."""
    f_sp, min_log_hz, min_log_mel = 200.0 / 3.0, 1000.0, 15.0
    logstep = math.log(6.4) / 27.0

    def hz_to_mel(f: float) -> float:
        return f / f_sp if f < min_log_hz else min_log_mel + math.log(f / min_log_hz) / logstep

    mels = np.linspace(hz_to_mel(0.0), hz_to_mel(max_freq_hz), n_mels + 2)
    hz = np.where(mels < min_log_mel, mels * f_sp, min_log_hz * np.exp(logstep * (mels - min_log_mel)))
    fft_hz = np.linspace(0.0, sample_rate // 2, n_fft // 2 + 1)
    widths = np.diff(hz)
    slopes = hz[None, :] - fft_hz[:, None]
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(down, up))
    filters *= 2.0 / (hz[2:] - hz[:-2])
    return filters


class WhisperLogMel:
    """``WhisperFeatureExtractor`` in numpy: ``(1, feature_size, n_frames)`` float32.

    Frames that lie entirely in the zero padding are not transformed: their
    log-mel value is exactly ``log10(1e-10)``, so a 1 s window costs 1 s of STFT.
    """

    input_name = "input_features"

    def __init__(self, options: WhisperLogMelOptions | None = None) -> None:
        self.options = o = options or WhisperLogMelOptions()
        self._mel = slaney_mel_filters(o.feature_size, o.n_fft, o.sample_rate)
        self._window = np.hanning(o.n_fft + 1)[:-1]  # periodic Hann, as torch.hann_window
        self._half = o.n_fft // 2
        self._padded = np.zeros(o.n_samples + 2 * self._half, dtype=np.float64)
        self._frames = np.empty((o.n_frames, o.n_fft), dtype=np.float64)
        self._spectrum = np.empty((o.n_frames, o.n_fft // 2 + 1), dtype=np.complex128)
        self._power = np.empty((o.n_frames, o.n_fft // 2 + 1), dtype=np.float64)
        self._imag_sq = np.empty((o.n_frames, o.n_fft // 2 + 1), dtype=np.float64)  # scratch: no per-call allocation
        self._logmel = np.empty((o.n_frames, o.feature_size), dtype=np.float64)  # frame-major

    def input_shape(self, num_samples: int) -> tuple[int, ...]:
        return (1, self.options.feature_size, self.options.n_frames)

    def __call__(self, audio: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        o, half = self.options, self._half
        x = _as_mono_float32(audio)[: o.n_samples]
        result = _output(out, self.input_shape(x.shape[0]))
        n, total = x.shape[0], o.n_samples
        padded = self._padded
        padded[half : half + n] = x
        padded[half + n : half + total] = 0.0
        # reflect padding of the zero-padded signal, as torch.stft(center=True)
        padded[:half] = padded[2 * half : half : -1]
        padded[half + total :] = padded[half + total - 2 : total - 2 : -1]
        if n > total - half - 1:
            active = o.n_frames
        else:  # later frames see only zeros
            active = min(o.n_frames, -(-(half + n) // o.hop_length))
        logmel = self._logmel
        if active:
            frames = self._frames[:active]
            frames[:] = sliding_window_view(padded, o.n_fft)[:: o.hop_length][:active]
            frames *= self._window
            spectrum = _rfft(frames, o.n_fft, self._spectrum[:active])
            power = self._power[:active]
            np.multiply(spectrum.real, spectrum.real, out=power)
            power += np.multiply(spectrum.imag, spectrum.imag, out=self._imag_sq[:active])
            head = logmel[:active]
            np.dot(power, self._mel, out=head)
            np.maximum(head, 1e-10, out=head)
            np.log10(head, out=head)
        logmel[active:] = -10.0
        np.maximum(logmel, logmel.max() - 8.0, out=logmel)
        logmel += 4.0
        logmel /= 4.0
        result[0] = logmel.T
        return result
