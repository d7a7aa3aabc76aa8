"""The streaming speech-embedding front end: each hop computes what its new samples add, nothing else.

The shipped mel model floors its output at the loudest value of its input
minus 80 dB, so a frame's value depends on the window around it. The raw
log-mel before that floor is frame-local (25 ms of audio each, every 10 ms, no
centre padding): ``melspectrogram_raw.onnx`` is the same graph cut before the
floor (``scripts/make_raw_mel.py``), and this module applies the window's
floor itself, so its features equal the whole-window model's to float
rounding. :class:`EmbeddingStream` numbers frames from the start of the stream
(frame ``f`` covers samples ``160 f .. 160 f + 512``) and keeps

- a ring of mel frames: a hop of 80 ms runs the mel model on its 1,280 new
  samples plus the 352 before them (8 frames), not on the whole 1.5 s window
  (147 frames);
- a ring of embeddings keyed by the absolute frame they end at: each embedding
  is computed once, when its last frame arrives, and the head reads the ones
  its window needs; one is computed again only when the window's floor moved
  and clips one of its frames differently (a loud sound entering or leaving
  the window next to near-silence);
- the head's input and output, bound once to ONNX Runtime (I/O binding).

After a pause (the VAD gate closed, frames missing) the window's frames are
computed from the audio still in the window, exactly as a warm stream would
have them: a cold window costs the whole-window path once, and its scores
equal a warm stream's. Nothing is allocated per hop in steady state except
the returned scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wakeword.classifiers.base import softmax
from wakeword.errors import InvalidAudioError

__all__ = [
    "EMBEDDING_DIM",
    "EMBEDDING_FRAMES",
    "EMBEDDING_STRIDE",
    "INT16_SCALE",
    "MEL_BINS",
    "MEL_HOP",
    "MEL_WINDOW",
    "EmbeddingStream",
]

MEL_HOP = 160
MEL_WINDOW = 512
MEL_BINS = 32
EMBEDDING_FRAMES = 76
EMBEDDING_STRIDE = 8
EMBEDDING_DIM = 96
INT16_SCALE = 32767.0  # the front end was trained on int16-valued audio
TOP_DB = 80.0  # the shipped mel model's floor: the window's loudest value minus this
_NONE = np.iinfo(np.int64).min  # an empty embedding slot (frames before the stream's start are negative)


class EmbeddingStream:
    """Scores of one stream through the speech-embedding front end and a head (see the module docstring).

    ``mel``, ``embedding`` and ``head`` are ONNX Runtime sessions shared with
    the whole-window path (sessions are safe to run from several threads; the
    bindings and rings here belong to this stream alone). ``window_samples``
    is the head's window, ``step`` the mel frames between the embeddings it
    reads, ``hop_samples`` the engine's hop (the mel input bound once).
    """

    def __init__(
        self,
        mel: Any,
        embedding: Any,
        head: Any,
        window_samples: int,
        step: int,
        hop_samples: int,
        refloor: bool = False,
    ) -> None:
        import onnxruntime as ort

        if window_samples % MEL_HOP or hop_samples % MEL_HOP:
            raise InvalidAudioError(f"window and hop must be whole mel hops of {MEL_HOP} samples")
        self.window_samples = window_samples
        self.refloor = refloor
        self.step = step
        self.window_frames = (window_samples - MEL_WINDOW) // MEL_HOP + 1
        self.embeddings = (self.window_frames - EMBEDDING_FRAMES) // step + 1
        self.hop_frames = hop_samples // MEL_HOP
        self._mel, self._embedding, self._head = mel, embedding, head
        self._mel_input_name = mel.get_inputs()[0].name
        self._emb_input_name = embedding.get_inputs()[0].name
        self._head_input_name = head.get_inputs()[0].name
        labels = head.get_outputs()[0].shape[-1]

        # the mel ring: row f % capacity holds frame f for f in [mel_until - capacity, mel_until)
        self._mel_capacity = self.window_frames + self.hop_frames
        self._mel_ring = np.zeros((2 * self._mel_capacity, MEL_BINS), dtype=np.float32)  # raw, each row twice
        self._frame_max = np.zeros(2 * self._mel_capacity, dtype=np.float32)
        self._frame_min = np.zeros(2 * self._mel_capacity, dtype=np.float32)
        self._mel_until: int | None = None  # the first frame not computed yet; None: nothing computed
        # the embedding ring: slot (f // 8) % capacity holds the embedding ending at frame f
        self._emb_capacity = (self.window_frames // EMBEDDING_STRIDE) + 2
        self._emb_ring = np.zeros((self._emb_capacity, EMBEDDING_DIM), dtype=np.float32)
        self._emb_frame = np.full(self._emb_capacity, _NONE, dtype=np.int64)
        self._emb_floor = np.zeros(self._emb_capacity, dtype=np.float64)  # the floor each was computed at
        self._emb_min = np.zeros(self._emb_capacity, dtype=np.float64)  # the lowest raw value of its frames

        # steady-state inputs and outputs, bound once
        self._hop_input = np.zeros((1, (self.hop_frames - 1) * MEL_HOP + MEL_WINDOW), dtype=np.float32)
        self._hop_mel = np.zeros((1, 1, self.hop_frames, MEL_BINS), dtype=np.float32)
        self._mel_binding = self._bind(mel, self._mel_input_name, self._hop_input, self._hop_mel, ort)
        self._emb_input = np.zeros((1, EMBEDDING_FRAMES, MEL_BINS, 1), dtype=np.float32)
        self._emb_output = np.zeros((1, 1, 1, EMBEDDING_DIM), dtype=np.float32)
        self._emb_binding = self._bind(embedding, self._emb_input_name, self._emb_input, self._emb_output, ort)
        self._head_input = np.zeros((1, self.embeddings, EMBEDDING_DIM), dtype=np.float32)
        self._logits = np.zeros((1, labels), dtype=np.float32)
        self._head_binding = self._bind(head, self._head_input_name, self._head_input, self._logits, ort)
        self._scores = np.zeros(labels, dtype=np.float32)
        self._last_end = -1
        self.mel_frames_computed = 0  # counters for benchmarks and tests
        self.embeddings_computed = 0
        self.embeddings_recomputed = 0  # of those, again because the window's floor moved

    @staticmethod
    def _bind(session: Any, input_name: str, inputs: np.ndarray, outputs: np.ndarray, ort: Any) -> Any:
        binding = session.io_binding()
        binding.bind_ortvalue_input(input_name, ort.OrtValue.ortvalue_from_numpy(inputs))
        binding.bind_ortvalue_output(session.get_outputs()[0].name, ort.OrtValue.ortvalue_from_numpy(outputs))
        return binding

    def reset(self) -> None:
        """Forget the stream: the next window is computed cold."""
        self._mel_until = None
        self._emb_frame[:] = _NONE
        self._last_end = -1

    def scores(self, window: np.ndarray, end_sample: int) -> np.ndarray:
        """Probabilities for the window of the stream ending at absolute sample ``end_sample``."""
        self.embed(window, end_sample)
        self._head.run_with_iobinding(self._head_binding)
        return softmax(self._logits[0], self._scores).copy()

    def embed(self, window: np.ndarray, end_sample: int) -> np.ndarray:
        """The feature stage: the head's input for this window, (1, embeddings, 96), computed from the new frames."""
        if window.shape != (self.window_samples,):
            raise InvalidAudioError(f"window must be {self.window_samples} mono samples, got shape {window.shape}")
        if end_sample % MEL_HOP:
            raise InvalidAudioError(f"the window must end on the mel grid ({MEL_HOP} samples), not at {end_sample}")
        if end_sample <= self._last_end:
            self.reset()  # a new stream, or the engine was reset
        self._last_end = end_sample
        start_sample = end_sample - self.window_samples
        first = start_sample // MEL_HOP  # the window's first frame (negative before the stream's start)
        last = first + self.window_frames - 1
        until = self._mel_until
        self._update_mel(window, start_sample, until if until is not None and until >= first else first, last)
        row = first % self._mel_capacity
        floor = float(self._frame_max[row : row + self.window_frames].max()) - TOP_DB
        for k in range(self.embeddings):
            end_frame = last - (self.embeddings - 1 - k) * self.step
            self._head_input[0, k] = self._embedding_at(end_frame, floor)
        return self._head_input

    def _update_mel(self, window: np.ndarray, start_sample: int, a: int, last: int) -> None:
        """Compute frames ``a .. last`` from ``window`` (which starts at ``start_sample``) into the ring."""
        if a > last:
            return
        n = last - a + 1
        offset = a * MEL_HOP - start_sample
        if n == self.hop_frames:  # the steady state: the bound input and output
            np.multiply(window[offset : offset + self._hop_input.shape[1]], INT16_SCALE, out=self._hop_input[0])
            self._mel.run_with_iobinding(self._mel_binding)
            frames = self._hop_mel.reshape(n, MEL_BINS)
        else:  # cold: a window after a pause, or the first one
            audio = window[offset : offset + (n - 1) * MEL_HOP + MEL_WINDOW] * INT16_SCALE
            frames = self._mel.run(None, {self._mel_input_name: audio[None].astype(np.float32, copy=False)})[0]
            frames = frames.reshape(n, MEL_BINS)
        cap = self._mel_capacity
        for i in range(n):  # at most a window of rows; 8 per hop
            row = (a + i) % cap
            self._mel_ring[row] = frames[i]
            self._mel_ring[row + cap] = frames[i]
            self._frame_max[row] = self._frame_max[row + cap] = frames[i].max()
            self._frame_min[row] = self._frame_min[row + cap] = frames[i].min()
        self.mel_frames_computed += n
        self._mel_until = last + 1

    def _embedding_at(self, end_frame: int, floor: float) -> np.ndarray:
        slot = (end_frame // EMBEDDING_STRIDE) % self._emb_capacity
        if self._emb_frame[slot] == end_frame:
            used, lowest = float(self._emb_floor[slot]), float(self._emb_min[slot])
            if not self.refloor or used == floor or (lowest >= floor and lowest >= used):  # same features
                return self._emb_ring[slot]
            self.embeddings_recomputed += 1
        start = (end_frame - EMBEDDING_FRAMES + 1) % self._mel_capacity
        features = self._emb_input[0, :, :, 0]
        np.maximum(self._mel_ring[start : start + EMBEDDING_FRAMES], floor, out=features)
        features *= 0.1  # the front end's scaling: log-mel / 10 + 2
        features += 2.0
        self._embedding.run_with_iobinding(self._emb_binding)
        self._emb_ring[slot] = self._emb_output.reshape(EMBEDDING_DIM)
        self._emb_frame[slot] = end_frame
        self._emb_floor[slot] = floor
        self._emb_min[slot] = self._frame_min[start : start + EMBEDDING_FRAMES].min()
        self.embeddings_computed += 1
        return self._emb_ring[slot]
